"""Static-draft benchmark: a frozen draft's acceptance length per domain on held-out traffic.

    python3 -m aurora_sim trace gen shift-paper --seed 0 -o /tmp/sp.parquet
    python3 benchmarks/bench_static_draft.py /tmp/sp.parquet [--per-domain 200] [--gamma 4]
        [--draft NAME=DIR ...]          (default: the offline recipe's static draft of --model)

Per domain, the first --per-domain requests of the trace's first segment of that domain (the
requests a replay would accept: prompt + max_new_tokens within the context window). Their
greedy outputs come from the shared trajectory cache (decoded once). AL is the served figure of
a static replay (aurora replay --init DIR --no-learn): the rounds a greedy engine runs, each
starting where the last one ended and accepting the draft's chain (the exact serving chain,
aurora_sim.engine.proposals) while it matches the target's tokens; AL = tokens per round, bonus
included (1.0 = nothing accepted). -> benchmarks/results/static_draft.json (merged by draft name,
so drafts measured in separate runs on the same slice sit side by side).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def _slices(workload, per_domain: int, window: int) -> dict[str, list]:
    """{domain: requests}: the first `per_domain` fitting requests of each domain's first segment."""
    first: dict[str, int] = {}
    for it in workload.items:
        first.setdefault(it.domain, it.segment)
    out: dict[str, list] = {}
    for it in workload.items:
        r = it.request
        if it.segment != first[it.domain] or len(out.setdefault(it.domain, [])) >= per_domain:
            continue
        if len(r.prompt_ids) + r.max_new_tokens + 1 <= window and r.temperature == 0.0:
            out[it.domain].append(r)
    return out


@torch.no_grad()
def served_al(draft, target, seqs: list[tuple[tuple[int, ...], int]], gamma: int, rows: int = 8) -> dict:
    """seqs: (prompt + output tokens, prompt length). Rounds as a greedy engine runs them."""
    from aurora_sim.engine.proposals import greedy_chains

    layers = tuple(draft.target_layers) if draft.uses_features else ()
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i][0]), i))
    rounds = emitted = 0
    for lo in range(0, len(order), rows):
        part = [seqs[i] for i in order[lo : lo + rows]]
        width = max(len(t) for t, _ in part)
        tokens = torch.tensor([list(t) + [0] * (width - len(t)) for t, _ in part], dtype=torch.long)
        truth = tokens.clone()
        for b, (t, _) in enumerate(part):
            truth[b, len(t) :] = -2  # never accepted past the request's end
        b = len(part)
        _, feats = target(tokens, torch.arange(b), torch.zeros(b, dtype=torch.long), target.new_cache(b, width), layers)
        start = torch.tensor([p for _, p in part], dtype=torch.long)
        count = torch.tensor([max(0, len(t) - 1 - p) for t, p in part], dtype=torch.long)
        chains = greedy_chains(draft, tokens, feats if layers else None, truth, start, count, gamma)
        acc = chains.accepted.tolist()
        for r, (t, p) in enumerate(part):
            n = p  # the prefill emitted tokens[p]; the first round drafts from there
            while n <= len(t) - 2:
                a = acc[r][n - p]
                rounds += 1
                emitted += a + 1
                n += a + 1
    return {"al": round(emitted / rounds, 4) if rounds else float("nan"), "rounds": rounds, "tokens": emitted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", help="a trace file (or scenario name)")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--per-domain", type=int, default=200)
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0, help="scenario seed (when TRACE is a scenario name)")
    ap.add_argument(
        "--draft",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a draft directory to measure (repeatable); default: the static recipe's default draft",
    )
    ap.add_argument("-o", "--out", type=Path, default=RESULTS / "static_draft.json")
    args = ap.parse_args()

    from aurora_sim import reference
    from aurora_sim.generate import stop_ids
    from aurora_sim.models import drafts
    from aurora_sim.models.registry import load_target, load_tokenizer, resolve_model
    from aurora_sim.replay.trajectories import model_identity, trajectories_for
    from aurora_sim.replay.workload import build_workload

    torch.set_num_threads(1)
    model_dir = resolve_model(args.model)
    target = load_target(args.model)
    target.requires_grad_(False)
    tokenizer = load_tokenizer(model_dir)
    workload = build_workload(args.trace, args.seed, tokenizer, stop_ids(tokenizer, model_dir))
    slices = _slices(workload, args.per_domain, target.spec.max_position)
    t0 = time.perf_counter()
    seqs = {}
    for dom, reqs in slices.items():
        trajs, _ = trajectories_for(target, model_dir, reqs)
        seqs[dom] = [(tuple(r.prompt_ids) + t.output_ids, len(r.prompt_ids)) for r, t in zip(reqs, trajs)]
    traj_s = time.perf_counter() - t0

    named = [d.split("=", 1) for d in args.draft]
    if not named:
        from aurora_sim.learner.offline import train_static_draft

        named = [["static", str(train_static_draft(args.model, "eagle3"))]]
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if (
        results.get("slice", {}).get("trace") != str(args.trace)
        or results.get("slice", {}).get("per_domain") != args.per_domain
    ):
        results = {}  # another slice: numbers are not comparable
    results.update(
        {
            "benchmark": "static-draft",
            "gamma": args.gamma,
            "model": args.model,
            "slice": {
                "trace": str(args.trace),
                "workload_sha256": workload.sha256,
                "per_domain": args.per_domain,
                "requests": {d: len(r) for d, r in slices.items()},
                "output_tokens": {d: sum(len(t) - p for t, p in s) for d, s in seqs.items()},
            },
            "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": 1},
            # which bytes: the shipped reference (the same on every machine) or a build of this one
            "build": {
                "reference": reference.version() if reference.is_reference(model_dir) else None,
                "model_identity": model_identity(model_dir),
            },
            "trajectory_s": round(traj_s, 1),
            "al_convention": "served tokens per verify round of a frozen draft, bonus included (greedy, exact serving chain)",
        }
    )
    drafts_out = results.setdefault("drafts", {})
    for name, path in named:
        draft = drafts.load_draft(Path(path), target).eval()
        t1 = time.perf_counter()
        row = {d: served_al(draft, target, s, args.gamma) for d, s in seqs.items()}
        prov_file = Path(path) / "provenance.json"
        prov = json.loads(prov_file.read_text()) if prov_file.is_file() else {}
        drafts_out[name] = {
            "path": str(path),
            "al": {d: r["al"] for d, r in row.items()},
            "rounds": {d: r["rounds"] for d, r in row.items()},
            "measure_s": round(time.perf_counter() - t1, 1),
            "recipe_version": prov.get("recipe", {}).get("version"),
            "flavour": prov.get("flavour"),
            "steps": prov.get("steps"),
            "build_wall_s": prov.get("build_wall_s", prov.get("wall_s")),
            "data": prov.get("data"),
        }
        print(name, json.dumps(drafts_out[name]["al"]), f"({drafts_out[name]['measure_s']} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
