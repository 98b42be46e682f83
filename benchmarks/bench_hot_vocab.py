"""What a hot draft vocabulary costs in acceptance and saves in trainer time (online-scratch).

    python3 benchmarks/bench_hot_vocab.py [--trace shift-ci] [--seeds 3] [--vocab 0,1024]
        [--recipe fast] [--limit N]

EAGLE-3 heads propose only a "hot" part of the target's vocabulary (Aurora's drafts: 32,000 of
Llama-3's 128,256 tokens, a quarter); `--draft-vocab N` gives a from-scratch head the N most
frequent tokens of the training split. Per seed (each draws its own trace; the same requests for
every size, so sizes are paired within a seed), an online-scratch replay per vocabulary size on
the fast path: AL overall and per segment, over the first 200 requests of each segment (head AL: day 0 and after
each shift) and the last 200, the share of served tokens the hot vocabulary covers, and the trainer
thread's seconds per step. Differences to the first size, paired by seed, with a two-sided 95 %
Student-t interval. -> benchmarks/results/hot-vocab-<trace>-<recipe>.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench_discard import measure  # AL, head AL per segment, recovery, trainer s/step: one definition

from analysis.paper_numbers import interval
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.loop import Replay
from aurora_sim.replay.summary import summarize

RESULTS = Path(__file__).parent / "results"
HEAD = 200


def hot_masks(sizes: list[int]) -> dict:
    """size -> a [V] mask of the hot vocabulary (None for 0, the whole vocabulary)."""
    import torch

    from aurora_sim.models.registry import load_target
    from aurora_sim.replay.initial import hot_vocab

    v = load_target("tiny").spec.vocab_size
    masks = {}
    for size in sizes:
        masks[size] = (
            None if not size else torch.zeros(v, dtype=torch.bool).index_fill_(0, hot_vocab("tiny", size, v), True)
        )
    return masks


def coverage(run: Path, hot) -> float | None:
    """Share of served output tokens inside the hot vocabulary (None for the whole vocabulary)."""
    if hot is None:
        return None
    import torch

    from aurora_sim.replay.eventlog import read_table

    ids = [t for row in read_table(run, "requests")["output_ids"].to_list() for t in row]
    return float(hot[torch.tensor(ids)].float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", default="shift-ci")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--vocab", default="0,1024", help="comma-separated sizes; the first is the reference (0 = all)")
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("/tmp/aurora-bench-hot-vocab"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.vocab.split(",")]
    base = ReplayConfig(trace=args.trace, limit=args.limit, init="scratch").with_recipe(args.recipe)
    per = {s: [] for s in sizes}
    masks = hot_masks(sizes)
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for size in sizes:
            out = args.out / f"seed{seed}" / f"vocab{size}"
            if not (out / "wall.json").is_file():  # finished runs are kept
                Replay(base.with_(seed=seed, draft_vocab=size), out, overwrite=True).run()
            row = {"seed": seed, **measure(out, HEAD), "coverage": coverage(out, masks[size])}
            row["segments_al"] = [g["acceptance_length"] for g in summarize(out)["segments"]]
            row["head_al_mean"] = sum(row["head_al"]) / len(row["head_al"])
            per[size].append(row)
            print(
                f"seed {seed} vocab {size or 'all'}: AL {row['acceptance_length']:.3f} head {row['head_al']}",
                flush=True,
            )
    ref = sizes[0]
    result = {
        "benchmark": "hot-vocab",
        "trace": args.trace,
        "recipe": args.recipe,
        "seeds": args.seeds,
        "limit": args.limit,
        "reference": ref,
        "runs": {str(s): rows for s, rows in per.items()},
        "minus_reference": {},
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    for size in sizes[1:]:
        diffs = {}
        for key in ("acceptance_length", "head_al_mean", "final_al"):
            diffs[key] = interval([a[key] - b[key] for a, b in zip(per[size], per[ref])])
        diffs["segments_al"] = [
            interval([a["segments_al"][i] - b["segments_al"][i] for a, b in zip(per[size], per[ref])])
            for i in range(len(per[ref][0]["segments_al"]))
        ]
        diffs["head_al"] = [
            interval([a["head_al"][i] - b["head_al"][i] for a, b in zip(per[size], per[ref])])
            for i in range(len(per[ref][0]["head_al"]))
        ]
        diffs["trainer_s_per_step_ratio"] = round(
            sum(a["trainer_s_per_step"] or 0 for a in per[size])
            / max(1e-9, sum(b["trainer_s_per_step"] or 0 for b in per[ref])),
            3,
        )
        result["minus_reference"][str(size)] = diffs
    name = f"hot-vocab-{args.trace}-{args.recipe}" + (f"-n{args.limit}" if args.limit else "") + ".json"
    (RESULTS / name).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["minus_reference"], indent=1))
    print(f"-> {RESULTS / name}")


if __name__ == "__main__":
    main()
