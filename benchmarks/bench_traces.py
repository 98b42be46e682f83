"""Trace generation and validation at scale: a 100,000-request trace.

The trace: four segments of 25,000 requests (code, finance, chat, then an even mix), Poisson
arrivals at 10 req/s, the default prompt and length settings (prompts up to 1,600 characters).
Timed, each the best of `--repeats` runs in this process: building the frame (corpus load and
prompt pools included), writing the Parquet file (validation + zstd + atomic publish),
validating the file from disk, reading it back (validated), and the DuckDB summary of `show`.
Writes benchmarks/results/traces.json.

    python benchmarks/bench_traces.py [--requests 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from aurora_sim.atomic import atomic_file
from traces.config import TraceConfig
from traces.generate import generate_trace
from traces.io import read_trace, write_trace
from traces.summary import summarize
from traces.validate import validate_file

RESULTS = Path(__file__).parent / "results" / "traces.json"


def config(n: int) -> TraceConfig:
    q = n // 4
    return TraceConfig.from_dict(
        {
            "name": "bench",
            "seed": 0,
            "schedule": {
                "kind": "ordered",
                "segments": [
                    {"domain": "code", "requests": q},
                    {"domain": "finance", "requests": q},
                    {"domain": "chat", "requests": q},
                    {"mix": {"code": 1, "finance": 1, "chat": 1}, "requests": n - 3 * q},
                ],
            },
            "arrivals": {"kind": "poisson", "rate_per_s": 10.0},
        }
    )


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, {"best_s": round(min(times), 3), "median_s": round(statistics.median(times), 3), "runs": len(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = config(args.requests)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.parquet"
        (frame, stored), t_gen = timed(lambda: generate_trace(cfg), args.repeats)
        _, t_write = timed(lambda: write_trace(frame, path, stored), args.repeats)
        problems, t_validate = timed(lambda: validate_file(path), args.repeats)
        assert problems == [], problems[:5]
        trace, t_read = timed(lambda: read_trace(path), args.repeats)
        assert trace.frame.equals(frame)
        summary, t_show = timed(lambda: summarize(path), args.repeats)
        size = path.stat().st_size
    result = {
        "benchmark": "traces",
        "requests": frame.height,
        "file_mb": round(size / 1e6, 2),
        "prompt_chars_total": int(frame["prompt"].str.len_chars().sum() or 0)
        + int(sum(len(m["content"]) for ms in frame["messages"].drop_nulls() for m in ms)),
        "distinct_prompts": summary["prompts"]["distinct"],
        "generate": t_gen,
        "write": t_write,
        "validate_file": t_validate,
        "read_validated": t_read,
        "show_summary_duckdb": t_show,
        "generate_and_validate_best_s": round(t_gen["best_s"] + t_validate["best_s"], 3),
        "machine": {
            "python": platform.python_version(),
            "polars": pl.__version__,
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "note": "wall-clock, best of the runs, one process; other jobs on the machine add noise",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(RESULTS, "w") as fh:
        fh.write(json.dumps(result, indent=1) + "\n")
    print(
        f"{result['requests']:,} requests, {result['file_mb']} MB Parquet, {result['distinct_prompts']:,} distinct prompts"
    )
    for k in ("generate", "write", "validate_file", "read_validated", "show_summary_duckdb"):
        print(f"  {k:<20} best {result[k]['best_s']:7.3f} s   median {result[k]['median_s']:7.3f} s")
    print(f"  generate + validate  {result['generate_and_validate_best_s']:.3f} s  -> {RESULTS}")


if __name__ == "__main__":
    main()
