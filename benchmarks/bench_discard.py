"""Learning from rejected proposals: the discard-loss variants against the served KL alone, over
paired seeds, with a 95 % interval (issue 17's experiment).

    python3 benchmarks/bench_discard.py [--trace shift-ci] [--seeds 5] [--lam 0.5[,1,...]]
        [--variants none,branch,reach-weighted,reject-point,unlikelihood,lk,expected-length,control]
        [--temperature 0] [--gamma N] [--width 1] [--init scratch] [--recipe fast] [--limit N]
        [--head 200]

Each seed draws its own trace (distinct prompts; the same trace for every variant of that seed,
so variants are paired). Every variant replays the online arm from `--init` with λ = --lam
(`none` ignores λ: the served KL alone, the reference). With --temperature > 0 the trace's
requests sample at that temperature (lossless rejection sampling, so the round-by-round engine
runs them; much slower).

--lam takes a grid (the same λ values for every variant). --gamma (default: the recipe's) and
--width (a from-scratch head's MLP width relative to the target's: 0.5, 2) vary the draft: losses
on acceptance are said to help most where the draft is much weaker than the target.

Per variant and seed:
    head AL      AL over the first --head requests of every segment (the first one from the
                 starting draft, the others after each shift): the area under the AL curve
                 there, i.e. sample efficiency;
    recovery     requests after each shift until AL is back at 95 % of its level before (W = 50);
    final AL     AL over the last --head requests;
    rejection    share of proposed tokens rejected (what the variants feed on).
Per seed (from the `none` run's served requests): the target's mean entropy over the positions
that predict a generated token, at T = 1 and at the serving temperature (how much a sampled
target leaves to the draft's distribution, and so to a loss on acceptance).
Per variant: mean and 95 % Student-t interval over seeds, of the value and of its paired
difference to `none`. `control` spends reject-point's extra updates on random served states:
a gain of reject-point over none that control also shows is "more updates", not "information
in the rejection". -> benchmarks/results/discard-<trace>-T<temperature>.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl
from bench_seeds import interval

from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.eventlog import read_table
from aurora_sim.replay.loop import Replay
from aurora_sim.replay.summary import per_request, summarize

RESULTS = Path(__file__).parent / "results"
VARIANTS = "none,branch,reach-weighted,reject-point,unlikelihood,lk,expected-length,control"


def _trace(name: str, seed: int, temperature: float, out: Path) -> str:
    """The scenario's trace for this seed, at `temperature` (a file; the name itself at T = 0)."""
    if temperature == 0:
        return name
    import traces
    from traces.io import write_trace

    cfg = traces.scenario(name, seed=seed).to_dict()
    cfg["sampling"]["temperature"] = temperature
    path = out / f"{name}-s{seed}-T{temperature:g}.parquet"
    if not path.is_file():
        frame, config = traces.generate_trace(traces.TraceConfig.from_dict(cfg))
        write_trace(frame, path, config)
    return str(path)


def _al(frame: pl.DataFrame) -> float | None:
    r = int(frame["spec_rounds"].sum()) if frame.height else 0
    return float(frame["generated"].sum()) / r if r else None


def measure(run: Path, head: int) -> dict:
    s = summarize(run)
    frame = per_request(run)
    runs = read_table(run, "runs").row(0, named=True)
    starts = [first for first, _ in json.loads(runs["segments_json"])]
    heads = [_al(frame.filter(pl.col("request_index") >= a).head(head)) for a in starts]
    rounds = read_table(run, "rounds")
    proposed = int(rounds["proposed"].sum())
    return {
        "acceptance_length": s["acceptance_length"],
        "head_al": heads,
        "recovery_w50": [sh["recovery_requests"] for sh in s["shifts"]],
        "final_al": _al(frame.tail(head)),
        "rejection_rate": 1 - int(rounds["accepted"].sum()) / proposed if proposed else None,
        "train_steps": s["train_steps"],
        # what a step of this variant costs on this machine (wall clock of the trainer thread;
        # other jobs on the machine inflate it, so compare within one bench run)
        "trainer_s_per_step": _per_step(run, s["train_steps"]),
    }


def _per_step(run: Path, steps: int) -> float | None:
    wall = json.loads((run / "wall.json").read_text())
    return round(wall["trainer_thread_s"] / steps, 4) if steps else None


def target_entropy(run: Path, trace: str, seed: int, temperature: float) -> dict:
    """Mean entropy (nats) of the target's next-token distribution over the served positions that
    predict a generated token: at T = 1 and at `temperature` (T = 0: a point mass, 0). Cached in
    the run directory (it depends only on the served tokens)."""
    cache = run / "target_entropy.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    import torch

    from aurora_sim.generate import stop_ids
    from aurora_sim.models.registry import load_target, load_tokenizer, resolve_model
    from aurora_sim.replay.workload import build_workload

    model_dir = resolve_model("tiny")
    target = load_target("tiny")
    tok = load_tokenizer(model_dir)
    prompts = {
        it.request.request_id: it.request.prompt_ids
        for it in build_workload(trace, seed, tok, stop_ids(tok, model_dir)).items
    }
    served = read_table(run, "requests").filter(pl.col("status") == "completed")
    sums = {"t1": 0.0, "serving": 0.0}
    n = 0
    with torch.inference_mode():
        for rid, out in zip(served["request_id"].to_list(), served["output_ids"].to_list()):
            ids = list(prompts[rid]) + list(out)
            if not out:
                continue
            logits = target(
                torch.tensor([ids]),
                torch.arange(1),
                torch.zeros(1, dtype=torch.long),
                target.new_cache(1, len(ids)),
                (),
            )[0][0, len(prompts[rid]) - 1 : len(ids) - 1].float()
            for key, t in (("t1", 1.0), ("serving", temperature)):
                if t > 0:
                    logp = torch.log_softmax(logits / t, -1)
                    sums[key] += float(-(logp.exp() * logp).sum(-1).sum())
            n += len(out)
    result = {"target_entropy_t1": sums["t1"] / n, "target_entropy_serving": sums["serving"] / n, "positions": n}
    cache.write_text(json.dumps(result))
    return result


def _run_name(variant: str, lam: float, lams: list[float]) -> str:
    """λ 0.5 (the first grid) keeps the bare variant name, so earlier runs are reused."""
    return variant if variant == "none" or lam == 0.5 else f"{variant}-lam{lam:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="shift-ci")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lam", default="0.5", help="λ, or a comma-separated grid of λ")
    ap.add_argument("--variants", default=VARIANTS)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--gamma", type=int, default=None, help="draft tokens per round (default: the recipe's)")
    ap.add_argument("--width", type=float, default=1.0, help="the from-scratch head's MLP width x the target's")
    ap.add_argument("--init", default="scratch")
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--head", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("/tmp/aurora-bench-discard"))
    args = ap.parse_args()
    names = [v.strip() for v in args.variants.split(",") if v.strip() and v.strip() != "none"]
    lams = [float(x) for x in args.lam.split(",")]
    # a run per (variant, λ), keyed by its name (the bare variant at λ 0.5); `none` once
    variants = {"none": ("none", 0.0)}
    for lam in lams:
        for v in names:
            variants[_run_name(v, lam, lams)] = (v, lam)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    setting = (
        f"T{args.temperature:g}"
        + (f"-g{args.gamma}" if args.gamma else "")
        + (f"-w{args.width:g}" if args.width != 1.0 else "")
    )
    # runs of a slice live apart from the whole trace's (the plain setting's runs predate the rule)
    sliced = args.limit and setting != f"T{args.temperature:g}"
    setting += f"-n{args.limit}" if sliced else ""
    per: dict[str, dict[int, dict]] = {v: {} for v in variants}
    entropy: dict[int, dict] = {}
    for seed in range(args.seeds):
        trace = _trace(args.trace, seed, args.temperature, args.out)
        base = ReplayConfig(trace=trace, limit=args.limit, seed=seed, init=args.init, draft_width=args.width)
        base = base.with_recipe(args.recipe, **({"gamma": args.gamma} if args.gamma else {}))
        for name, (v, lam) in variants.items():
            cfg = base.with_(learner_lambda_discard=lam, learner_discard=v)
            run = args.out / setting / f"s{seed}" / name
            t = time.perf_counter()
            if not (run / "wall.json").is_file():  # finished runs are kept; an interrupted one resumes
                Replay(cfg, run, resume=run.is_dir()).run()
            per[name][seed] = measure(run, args.head)
            print(
                f"seed {seed} {name:16s} AL {per[name][seed]['acceptance_length']:.3f} "
                f"head {[round(x, 3) for x in per[name][seed]['head_al'] if x]} ({time.perf_counter() - t:.0f}s)",
                flush=True,
            )
        entropy[seed] = target_entropy(args.out / setting / f"s{seed}" / "none", trace, seed, args.temperature)
    seeds = list(range(args.seeds))
    ref = per["none"]
    table = {}
    for v in variants:
        rows = per[v]
        k_heads = len(rows[0]["head_al"])
        k_shifts = len(rows[0]["recovery_w50"])
        entry = {
            "acceptance_length": interval([rows[s]["acceptance_length"] for s in seeds]),
            "head_al": [interval([rows[s]["head_al"][k] for s in seeds]) for k in range(k_heads)],
            "head_al_mean": interval([_mean(rows[s]["head_al"]) for s in seeds]),
            "final_al": interval([rows[s]["final_al"] for s in seeds]),
            "recovery_w50": [interval([rows[s]["recovery_w50"][k] for s in seeds]) for k in range(k_shifts)],
            "rejection_rate": interval([rows[s]["rejection_rate"] for s in seeds]),
            "trainer_s_per_step": interval([rows[s]["trainer_s_per_step"] for s in seeds]),
        }
        entry["variant"], entry["lambda"] = variants[v]
        if v != "none":
            entry["minus_none"] = _paired(rows, ref, seeds)
            control = _run_name("control", variants[v][1], lams)
            if variants[v][0] != "control" and control in per:  # "new information" beyond "more updates"
                entry["minus_control"] = _paired(rows, per[control], seeds)
        table[v] = entry
    result = {
        "benchmark": "discard",
        "trace": args.trace,
        "temperature": args.temperature,
        "lambda": lams[0] if len(lams) == 1 else lams,
        "gamma": args.gamma,
        "draft_width": args.width,
        "target_entropy": {
            k: interval([entropy[s][k] for s in seeds]) for k in ("target_entropy_t1", "target_entropy_serving")
        },
        "init": args.init,
        "recipe": args.recipe,
        "limit": args.limit,
        "head": args.head,
        "seeds": seeds,
        "variants": table,
        "per_seed": per,
        "bench_wall_s": round(time.perf_counter() - t0, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"discard-{Path(args.trace).stem}-{setting}" + (f"-n{args.limit}" if args.limit and not sliced else "")
    name += f"-lam{'_'.join(f'{x:g}' for x in lams)}" if lams != [0.5] else ""
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    plot(result, RESULTS / f"{name}.png")
    print(json.dumps({v: t.get("minus_none") for v, t in table.items()}, indent=1))


def plot(result: dict, path: Path) -> None:
    """Each variant minus `none` (paired by seed): head AL and whole-run AL, mean and 95 % interval."""
    from matplotlib.figure import Figure

    from analysis.paper_draw import interval_bars

    rows = [(v, e) for v, e in result["variants"].items() if v != "none"]
    fig = Figure(figsize=(max(6.0, 1.1 * len(rows)), 3.6), layout="constrained")
    ax = fig.subplots()
    metrics = (
        ("head_al_mean", f"AL, first {result['head']} of each segment", "#4c72b0"),
        ("acceptance_length", "AL, whole run", "#dd8452"),
    )
    series = [(label, color, [e["minus_none"][key] for _, e in rows]) for key, label, color in metrics]
    interval_bars(ax, [v for v, _ in rows], series, rotation=20)
    ax.set_ylabel("Δ AL vs served KL alone")
    t, g, w = result["temperature"], result.get("gamma"), result.get("draft_width", 1.0)
    ax.set_title(
        f"{result['trace']}, T = {t:g}"
        + (f", γ {g}" if g else "")
        + (f", width {w:g}×" if w != 1.0 else "")
        + f": {len(result['seeds'])} paired seeds, 95 % intervals",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)


def _paired(rows: dict, ref: dict, seeds: list[int]) -> dict:
    """Paired (same seed, same traffic) differences to a reference, with their intervals."""
    return {
        "head_al_mean": interval([_sub(_mean(rows[s]["head_al"]), _mean(ref[s]["head_al"])) for s in seeds]),
        "final_al": interval([_sub(rows[s]["final_al"], ref[s]["final_al"]) for s in seeds]),
        "acceptance_length": interval([rows[s]["acceptance_length"] - ref[s]["acceptance_length"] for s in seeds]),
    }


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _sub(a, b):
    return None if a is None or b is None else a - b


if __name__ == "__main__":
    main()
