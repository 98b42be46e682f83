"""Sweep benchmark: a 4-run sweep one after another in process vs on a local Ray instance, in one
run on this machine, and what the full `aurora figures --paper` set would cost.

The four runs are the paper's arms on shift-mini (600 requests; no-spec, static, online-static,
online-scratch). Both ways must give byte-identical run directories (checked here too). The
projection takes a quick figure set's runs (`aurora figures --paper --quick -o DIR`), projects
each full run's hours as analysis.paper_cost does, and gives the sequential total, the total
divided by the speedup measured here (this machine), and the makespan on W workers
(longest-processing-time-first packing: no run is split, so the longest run is a floor).

    python3 benchmarks/bench_sweep.py [--limit N] [--quick-dir DIR] [--factor 1.3]
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from aurora_sim.replay.compare import ARMS, arm_config


def sweep_jobs(out: Path, limit: int | None):
    from aurora_sim.replay.config import ReplayConfig
    from aurora_sim.sweep.execute import Job

    base = ReplayConfig(trace="shift-mini", limit=limit)
    return [Job(a, arm_config(base, a), out / a) for a in ARMS]


def timed_sweep(out: Path, limit: int | None, backend: str, workers: int | None) -> dict:
    from aurora_sim.sweep.execute import execute

    t0 = time.perf_counter()
    outcomes = execute(sweep_jobs(out, limit), backend=backend, workers=workers)
    wall = time.perf_counter() - t0
    bad = [o for o in outcomes if o.status != "done"]
    if bad:
        raise SystemExit(f"{bad[0].job.name}: {bad[0].status} {bad[0].error}")
    return {
        "wall_s": round(wall, 1),
        "runs": {
            o.job.name: {"replay_wall_s": o.wall.get("wall_s"), "task_wall_s": o.wall_s, "worker": o.worker}
            for o in outcomes
        },
    }


def same_bytes(a: Path, b: Path) -> bool:
    def files(d):
        return {
            str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != "wall.json"
        }

    return all(files(a / x) == files(b / x) for x in ARMS)


def makespan(hours: list[float], workers: int) -> float:
    loads = [0.0] * workers
    for h in sorted(hours, reverse=True):
        heapq.heapreplace(loads, loads[0] + h)
    return max(loads)


def projection(quick_dir: Path, factor: float, speedup: float) -> dict:
    from analysis.paper_cost import project

    p = project(quick_dir, factor=factor)
    hours = [r["projected_h"] for r in p["runs"]]
    return {
        "quick_dir": str(quick_dir),
        "factor": factor,
        "runs": len(hours),
        "sequential_h": round(sum(hours), 1),
        "longest_run_h": max(hours),
        "longest_run": max(p["runs"], key=lambda r: r["projected_h"])["full_run"],
        "this_machine_ray_h": round(sum(hours) / speedup, 1),
        "makespan_h": {str(w): round(makespan(hours, w), 1) for w in (2, 4, 8, 16, len(hours))},
        "note": "makespan assumes one core per run with no contention, i.e. a cluster of W such cores; "
        "this_machine_ray_h = sequential / the 2-core speedup measured above",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="requests per run (default: all 600 of shift-mini)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--quick-dir", type=Path, default=None, help="a quick figure set to project from")
    ap.add_argument("--factor", type=float, default=1.3, help="context factor of the full traces (docs/figures.md)")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "sweep.json")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aurora-bench-sweep-"))
    # build shared models/static drafts first so neither timing includes them
    from aurora_sim.sweep.execute import prepare

    prepare(sweep_jobs(tmp, args.limit))
    seq = timed_sweep(tmp / "seq", args.limit, "local", None)
    par = timed_sweep(tmp / "ray", args.limit, "ray", args.workers)
    speedup = seq["wall_s"] / par["wall_s"]
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "sweep": {"trace": "shift-mini", "limit": args.limit, "arms": list(ARMS)},
        "sequential": seq,
        "ray_local": par,
        "speedup_ray_vs_sequential": round(speedup, 2),
        "byte_identical": same_bytes(tmp / "seq", tmp / "ray"),
    }
    if args.quick_dir:
        result["paper_full_set"] = projection(args.quick_dir, args.factor, speedup)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
