"""What the full figure set would cost on this machine, projected from a quick set's runs.

Every full-set run has a quick-set counterpart (same trace role, e.g. "the three-shift stream" or
"batch 4", and same variant). Its wall seconds per output token, measured from the quick
run's wall.json, times the full run's output tokens (the trace's max_new_tokens summed: an upper
bound, since a stop token may end a request early) gives the projection. The full scenarios'
prompts are ~10x longer than the quick ones (≈400-480 vs ≈30-50 tokens), so multiply by a
measured context factor (docs/figures.md gives one) for a closer figure.

    python3 -m analysis.paper_cost DIR [--factor F]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from analysis.paper_plan import all_runs, parse_only, plan


def _trace_tokens(trace, seed: int) -> int:
    import traces

    if trace.scenario:
        frame, _ = traces.generate_trace(traces.scenario(trace.scenario, seed=seed))
    else:
        frame, _ = traces.generate_trace(traces.TraceConfig.from_dict(trace.config))
    if trace.limit:
        frame = frame.head(trace.limit)
    return int(frame["max_new_tokens"].sum())


def _role(p, trace) -> str:
    """What a trace is for in its plan, so a full run finds its quick counterpart."""
    for role in ("ordered", "shifts", "mixed"):
        if trace.key == getattr(p, role).key:
            return role
    return f"batch{trace.config['arrivals']['concurrency']}"


def project(quick_out: Path | str, seed: int = 0, figures: list[int] | None = None, factor: float = 1.0) -> dict:
    from aurora_sim.replay.eventlog import read_table

    quick_out = Path(quick_out)
    figs = figures or parse_only(None)
    qp, fp = plan("quick", seed), plan("full", seed)
    quick = {(_role(qp, s.trace), s.variant): s for s in all_runs(qp, figs)}
    tokens: dict[str, int] = {}
    rows = []
    for b in all_runs(fp, figs):
        a = quick[(_role(fp, b.trace), b.variant)]
        run_dir = quick_out / "runs" / a.trace.key / a.variant
        wall = json.loads((run_dir / "wall.json").read_text())
        out_tokens = int(read_table(run_dir, "requests")["output_tokens"].sum())
        if b.trace.key not in tokens:
            tokens[b.trace.key] = _trace_tokens(b.trace, seed)
        per_token = wall["wall_s"] / out_tokens
        rows.append(
            {
                "figures": sorted(b.figures),
                "quick_run": f"{a.trace.key}/{a.variant}",
                "full_run": f"{b.trace.key}/{b.variant}",
                "quick_wall_s": wall["wall_s"],
                "quick_tokens": out_tokens,
                "ms_per_token": round(per_token * 1e3, 3),
                "full_tokens_max": tokens[b.trace.key],
                "projected_h": round(per_token * tokens[b.trace.key] * factor / 3600, 2),
            }
        )
    quick_s = sum(r["quick_wall_s"] for r in rows)
    return {
        "quick_wall_s_runs": round(quick_s, 1),
        "factor": factor,
        "projected_full_h": round(sum(r["projected_h"] for r in rows), 1),
        "runs": rows,
    }


def main(argv: list[str]) -> None:
    factor = 1.0
    if "--factor" in argv:
        i = argv.index("--factor")
        factor = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
    print(json.dumps(project(Path(argv[0]), factor=factor), indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
