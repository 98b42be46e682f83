"""Speculate only when it pays (issue 16's benchmark): depth policies and the payoff swap policy
against no speculation and every fixed γ, under the run's cost model (H100 / Llama-3-8B).

    python3 benchmarks/bench_depth.py arms  [--trace shift-ci] [--limit N] [--window 200] [--fixed 1,2,3,4,5,6]
    python3 benchmarks/bench_depth.py seeds [--trace shift-ci] [--limit N] [--seeds 3] [--fixed 1,2]
    python3 benchmarks/bench_depth.py batch [--trace shift-ci] [--limit 256] [--batches 1,2,4,8,16,32,64]
    python3 benchmarks/bench_depth.py closed --trace shift-paper [--concurrency 8] [--seeds 3]

arms   static, online-static and online-scratch, each with fixed γ ∈ 1..6 (cadence swaps), ema,
       cost (cadence) and cost + payoff (the online arms). Per run: speedup vs no-spec overall
       (throughput ratio) and its minimum over every window of --window consecutive completions
       (the arm's throughput over completions i-W+1..i against no-spec's over the same count; and
       the same windows counting the tokens emitted in their time span, which is not lumpy when
       output lengths vary: `_rolling`),
       swaps and the serving time their pauses cost. Also the best fixed γ in hindsight per arm.
       -> benchmarks/results/depth-arms-<trace>.json
seeds  the arms (without ema) over --seeds seeds, each drawing its own trace: per arm the best
       fixed γ of each seed, cost (and cost + payoff) minus it, paired by seed, with a 95 %
       t-interval; each seed's minimum window speedup, windows below 0.98x and swaps.
       -> benchmarks/results/depth-seeds-<trace>.json
batch  the static draft, frozen, at each batch size (a closed loop of that many requests in
       flight): no-spec, fixed γ 1..6, ema and cost (γ max 6). Speedup vs no-spec per batch, and
       how far each adaptive policy is from the better of no-spec and the best fixed γ there.
       -> benchmarks/results/depth-batch-<trace>.json and depth-batch-<trace>.png
--recipe paper runs the arms with the paper's learner settings (γ 5, a candidate every 50 steps);
closed writes the scenario as a closed loop, one trace per seed (distinct traffic from files):
       <out>/traces/<scenario>-c<N>-s<seed>.parquet, for `seeds --trace FILE0,FILE1,...`.
--trace takes a scenario name, a trace file (e.g. bench_replay's shift-paper-c8.parquet) or, for
seeds, one file per seed; --arms a subset of the arms (results then named with it).
Runs are kept under --out; a finished run (wall.json present) is measured again, not replayed.
"""

from __future__ import annotations

import argparse
import bisect
import json
import time
from itertools import accumulate
from pathlib import Path

import polars as pl

from aurora_sim.errors import AuroraError
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.eventlog import read_table
from aurora_sim.replay.loop import Replay

RESULTS = Path(__file__).parent / "results"
FIXED = range(1, 7)


def _run(cfg: ReplayConfig, run: Path) -> Path:
    if not (run / "wall.json").is_file():
        t = time.perf_counter()
        Replay(cfg, run, resume=run.is_dir()).run()
        print(f"  {run.name}: {time.perf_counter() - t:.0f} s", flush=True)
    return run


def _completions(run: Path) -> tuple[list[int], list[int]]:
    req = read_table(run, "requests").filter(pl.col("status") == "completed").sort("finish_ns", "request_index")
    return req["output_tokens"].to_list(), req["finish_ns"].to_list()


def _throughput(run: Path) -> float:
    tokens, finish = _completions(run)
    return sum(tokens) / (max(finish) / 1e9)


def _emitted(run: Path) -> tuple[list[int], list[int]]:
    """(end ns, tokens emitted by then) after every engine round."""
    rounds = read_table(run, "rounds").group_by("round").agg(pl.first("t_end_ns"), pl.sum("emitted")).sort("t_end_ns")
    return rounds["t_end_ns"].to_list(), list(accumulate(rounds["emitted"].to_list()))


def _rolling(run: Path, window: int, emitted: bool) -> list[float]:
    """Tokens per ns over every W consecutive completions (the first window from time 0): the
    completed requests' output tokens, or with `emitted` the tokens every round emitted in the
    window's time span, by every request in flight. Counting each completed request's whole output
    at its finish makes a window lumpy when outputs vary (shift-paper: 46-482 tokens): on a run
    that never left depth 0 but for probes, one completion window read 0.973x while every round
    ran at no-spec's speed or one probe slower."""
    tokens, finish = _completions(run)
    done = list(accumulate(tokens, initial=0))
    ends, by_then = _emitted(run) if emitted else ([], [])

    def upto(t: int) -> int:
        i = bisect.bisect_right(ends, t) - 1
        return by_then[i] if i >= 0 else 0

    out = []
    for i in range(window, len(finish) + 1):
        start = finish[i - 1 - window] if i > window else 0
        n = upto(finish[i - 1]) - upto(start) if emitted else done[i] - done[i - window]
        out.append(n / max(finish[i - 1] - start, 1))
    return out


def window_speedups(run: Path, base: Path, window: int, emitted: bool = False) -> list[float]:
    """Throughput over every W consecutive completions, against no-spec's at the same count."""
    a, b = _rolling(run, window, emitted), _rolling(base, window, emitted)
    return [x / y for x, y in zip(a, b)]


def _swaps(run: Path) -> dict:
    swaps = read_table(run, "swaps")
    applied = swaps.filter(pl.col("kind").is_in(["swap", "rollback"])).height if swaps.height else 0
    held = swaps.filter(pl.col("kind") == "hold").height if swaps.height else 0
    cost = json.loads(read_table(run, "runs").row(0, named=True)["cost_model_json"])
    pause = cost.get("swap", {}).get("pause_ns") or 0  # a profiled table names it differently; absent = 0
    return {"swaps": applied, "holds": held, "pause_s": applied * pause / 1e9}


ARMS = ("static", "online-static", "online-scratch")


def measure_arms(base_cfg: ReplayConfig, out: Path, fixed, window: int, ema: bool = True, arms=ARMS) -> dict:
    """Every arm's grid (fixed γ, ema, cost, cost + payoff) against no-spec on base_cfg's trace."""
    nospec = _run(base_cfg.with_(init="none", gamma=0, learner_enabled=False), out / "nospec")
    t_base = _throughput(nospec)
    plan = {
        "static": dict(init="static", learner_enabled=False),
        "online-static": dict(init="static"),
        "online-scratch": dict(init="scratch"),
    }
    result: dict = {}
    for arm, base in plan.items():
        if arm not in arms:
            continue
        grid = {f"fixed-g{g}": dict(base, gamma=g) for g in fixed}
        if ema:
            grid["ema"] = dict(base, gamma=6, depth_policy="ema")
        grid["cost"] = dict(base, gamma=6, depth_policy="cost")
        if arm != "static":
            grid["cost+payoff"] = dict(base, gamma=6, depth_policy="cost", controller_policy="payoff")
        rows = {}
        for name, changes in grid.items():
            print(f"{arm} {name}", flush=True)
            run = _run(base_cfg.with_(**changes), out / arm / name)
            w = window_speedups(run, nospec, window)
            e = window_speedups(run, nospec, window, emitted=True)
            rows[name] = {
                "speedup": round(_throughput(run) / t_base, 4),
                "min_window_speedup": round(min(w), 4),
                "windows_below_0.98": sum(1 for x in w if x < 0.98),
                "min_window_speedup_emitted": round(min(e), 4),
                "windows_below_0.98_emitted": sum(1 for x in e if x < 0.98),
                "windows": len(w),
                **_swaps(run),
            }
            print(f"    {rows[name]}", flush=True)
        best = max((n for n in rows if n.startswith("fixed")), key=lambda n: rows[n]["speedup"])
        result[arm] = {"runs": rows, "best_fixed": best}
    return result


def _trace(args, seed: int) -> str:
    """--trace: a scenario (each seed draws its own traffic), one file, or one file per seed."""
    files = args.trace.split(",")  # main() checked there is one per seed
    return files[seed] if len(files) > 1 else args.trace


def _stem(args) -> str:
    return Path(args.trace.split(",")[0]).stem


def _suffix(args) -> str:
    return "" if tuple(args.arms) == ARMS else "-" + "+".join(args.arms)


def _base(args, seed: int) -> ReplayConfig:
    cfg = ReplayConfig(trace=_trace(args, seed), limit=args.limit, seed=seed)
    return cfg.with_recipe(args.recipe) if args.recipe != "fast" else cfg


def arms(args) -> None:
    base_cfg = _base(args, args.seed)
    result: dict = {"trace": args.trace, "limit": args.limit, "window": args.window, "recipe": args.recipe}
    result["arms"] = measure_arms(base_cfg, args.out / "arms" / _stem(args), args.fixed, args.window, arms=args.arms)
    _write(result, f"depth-arms-{_stem(args)}{_suffix(args)}")


def seeds(args) -> None:
    """The arms over several seeds (each seed draws its own trace: distinct traffic), the adaptive
    policies against the best fixed γ of the same seed, with a 95 % interval over seeds."""
    from analysis.paper_numbers import interval

    per_seed = []
    for seed in range(args.seeds):
        base_cfg = _base(args, seed)
        out = args.out / "seeds" / f"{_stem(args)}-{args.recipe}" / f"seed{seed}"
        per_seed.append(measure_arms(base_cfg, out, args.fixed, args.window, ema=False, arms=args.arms))
    summary: dict = {}
    for arm in per_seed[0]:
        policies = ["cost"] + (["cost+payoff"] if arm != "static" else [])
        best = [s[arm]["runs"][s[arm]["best_fixed"]]["speedup"] for s in per_seed]
        summary[arm] = {"best_fixed_speedup": interval(best), "best_fixed": [s[arm]["best_fixed"] for s in per_seed]}
        for p in policies:
            runs = [s[arm]["runs"][p] for s in per_seed]
            summary[arm][p] = {
                "speedup": interval([r["speedup"] for r in runs]),
                "minus_best_fixed": interval([r["speedup"] - b for r, b in zip(runs, best)]),
                "min_window_speedup": [r["min_window_speedup"] for r in runs],
                "windows_below_0.98": [r["windows_below_0.98"] for r in runs],
                "min_window_speedup_emitted": [r["min_window_speedup_emitted"] for r in runs],
                "windows_below_0.98_emitted": [r["windows_below_0.98_emitted"] for r in runs],
                "swaps": [r["swaps"] for r in runs],
            }
    result = {
        "trace": args.trace,
        "traces": [_trace(args, seed) for seed in range(args.seeds)],
        "limit": args.limit,
        "window": args.window,
        "seeds": args.seeds,
        "recipe": args.recipe,
        "fixed": args.fixed,
        "summary": summary,
        "per_seed": per_seed,
    }
    _write(result, f"depth-seeds-{_stem(args)}{_suffix(args)}")


def _closed_trace(name: str, batch: int, limit: int, out: Path) -> str:
    """The scenario with a closed loop of `batch` requests in flight (the batch the engine fills)."""
    import traces
    from traces.io import write_trace

    path = out / f"{name}-c{batch}.parquet"
    if not path.is_file():
        cfg = traces.scenario(name, seed=0).to_dict()
        cfg["arrivals"] = {"kind": "closed", "concurrency": batch}
        frame, config = traces.generate_trace(traces.TraceConfig.from_dict(cfg))
        write_trace(frame.head(limit), path, config)
    return str(path)


def closed(args) -> None:
    """Closed-loop traces of the scenario --trace, one per seed (distinct traffic), for `seeds`."""
    import traces as tr
    from analysis.paper_plan import _closed_scenario
    from traces.io import write_trace

    out = args.out / "traces"
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(args.seeds):
        t = _closed_scenario(args.trace, seed, args.concurrency)
        path = out / f"{t.key}-s{seed}.parquet"
        if not path.is_file():
            frame, config = tr.generate_trace(tr.TraceConfig.from_dict(t.config))
            write_trace(frame, path, config.to_dict() if hasattr(config, "to_dict") else config)
        print(path)


def batch(args) -> None:
    out = args.out / "batch"
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(b) for b in args.batches.split(",")]
    grid = {"no-spec": dict(init="none", gamma=0)}
    grid |= {f"fixed-g{g}": dict(init="static", gamma=g) for g in FIXED}
    grid |= {p: dict(init="static", gamma=6, depth_policy=p) for p in ("ema", "cost")}
    table: dict = {}
    for b in sizes:
        trace = _closed_trace(args.trace, b, args.limit, out)
        thr = {}
        for name, changes in grid.items():
            cfg = ReplayConfig(trace=trace, batch=b).with_(learner_enabled=False, **changes)
            thr[name] = _throughput(_run(cfg, out / f"b{b}" / name))
        speed = {n: round(t / thr["no-spec"], 4) for n, t in thr.items()}
        best_fixed = max((n for n in speed if n.startswith("fixed")), key=speed.get)
        oracle = max(1.0, speed[best_fixed])
        table[b] = {
            "speedup": speed,
            "best_fixed": best_fixed,
            "oracle": oracle,
            "gap_to_oracle": {p: round(speed[p] / oracle - 1, 4) for p in ("ema", "cost")},
        }
        print(f"batch {b}: {speed} gap {table[b]['gap_to_oracle']}", flush=True)
    name = f"depth-batch-{Path(args.trace).stem}"
    _write({"trace": args.trace, "limit": args.limit, "batches": table}, name)
    _plot(table, RESULTS / f"{name}.png")


def _plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(table)
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    for g in FIXED:
        ax.plot(
            sizes,
            [table[b]["speedup"][f"fixed-g{g}"] for b in sizes],
            color=plt.cm.Greys(0.3 + g / 10),
            lw=1,
            label=f"fixed γ={g}",
        )
    for p, c in (("ema", "tab:blue"), ("cost", "tab:red")):
        ax.plot(sizes, [table[b]["speedup"][p] for b in sizes], color=c, lw=2.2, marker="o", label=p)
    ax.axhline(1.0, color="k", ls=":", lw=1, label="no speculation")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.set_xlabel("batch size (requests in flight)")
    ax.set_ylabel("speedup vs no speculation\n(virtual throughput, H100 / Llama-3-8B)")
    ax.set_title("Static draft: speculation depth against batch size")
    ax.legend(fontsize=7, ncol=3)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write(result: dict, name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    tmp.replace(path)
    print(f"-> {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["arms", "seeds", "batch", "closed"])
    ap.add_argument("--trace", default="shift-ci")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--recipe", default="fast", help="the learner recipe (fast or paper: γ 5, a candidate every 50 steps)"
    )
    ap.add_argument("--seeds", type=int, default=3, help="seeds: how many (0..N-1), each its own trace")
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--batches", default="1,2,4,8,16,32,64")
    ap.add_argument(
        "--fixed", default="1,2,3,4,5,6", help="arms: the fixed γ grid (the best in hindsight is taken over it)"
    )
    ap.add_argument("--arms", default=",".join(ARMS), help="arms, seeds: which arms (a subset of the three)")
    ap.add_argument("--concurrency", type=int, default=8, help="closed: requests in flight")
    ap.add_argument("--out", type=Path, default=Path("/tmp/aurora-bench-depth"))
    args = ap.parse_args()
    unknown = set(args.arms.split(",")) - set(ARMS)
    if unknown:
        ap.error(f"unknown arm(s) {', '.join(sorted(unknown))}: choose from {', '.join(ARMS)}")
    args.arms = tuple(a for a in ARMS if a in args.arms.split(","))
    args.fixed = [int(g) for g in args.fixed.split(",")]
    if args.part == "batch" and args.limit is None:
        args.limit = 256
    files = args.trace.split(",")
    if len(files) > 1 and (args.part != "seeds" or len(files) < args.seeds):
        ap.error(f"--trace lists {len(files)} files: one per seed, for `seeds` with --seeds <= {len(files)}")
    try:
        {"arms": arms, "seeds": seeds, "batch": batch, "closed": closed}[args.part](args)
    except AuroraError as exc:
        raise SystemExit(f"bench_depth: {exc}") from None


if __name__ == "__main__":
    main()
