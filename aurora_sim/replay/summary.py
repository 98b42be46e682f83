"""End-of-run numbers from a run directory's event log (the same numbers `--json` writes).

Definitions (DESIGN.md):
  acceptance length   (accepted + bonus) / verify rounds, bonus included (1.0 = nothing accepted)
  throughput          output tokens / virtual makespan (last round's end)
  recovery            requests after a shift until the rolling AL over the last W requests, all
                      after the shift, is back to >= 90 % of the AL over the W requests just
                      before it (resolution: at least W requests; None = not within the segment)
  AL after shift      AL over the first `head` requests after the shift (a second, threshold-free
                      view of the same thing)
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from aurora_sim.replay.eventlog import AL_CONVENTION, read_table

RECOVERY_WINDOW = 50
RECOVERY_LEVEL = 0.9
AFTER_SHIFT_HEAD = 200


def per_request(run_dir: Path) -> pl.DataFrame:
    """One row per completed request in trace order: generated and verify rounds."""
    req = read_table(run_dir, "requests").filter(pl.col("status") == "completed")
    rounds = read_table(run_dir, "rounds")  # target-only rounds count too: AL 1.0 each
    g = rounds.group_by("request_index").agg(
        (pl.col("accepted") + pl.col("bonus")).sum().alias("generated"), pl.len().alias("spec_rounds")
    )
    return (
        req.join(g, on="request_index", how="left")
        .fill_null(0)
        .sort("request_index")
        .select("request_index", "segment", "domain", "generated", "spec_rounds", "output_tokens", "finish_ns")
    )


def _al(frame: pl.DataFrame) -> float | None:
    r = int(frame["spec_rounds"].sum()) if frame.height else 0
    return round(float(frame["generated"].sum()) / r, 4) if r else None


def recovery(frame: pl.DataFrame, shift_at: int, end: int, window: int = RECOVERY_WINDOW) -> dict:
    before = frame.filter((pl.col("request_index") >= shift_at - window) & (pl.col("request_index") < shift_at))
    after = frame.filter((pl.col("request_index") >= shift_at) & (pl.col("request_index") < end))
    level = _al(before)
    out = {
        "shift_at": shift_at,
        "window": window,
        "level_before": level,
        "al_after_head": _al(after.head(AFTER_SHIFT_HEAD)),
        "head": AFTER_SHIFT_HEAD,
        "recovery_requests": None,
    }
    if level is None or after.height < window:
        return out
    gen = after["generated"].to_list()
    rnd = after["spec_rounds"].to_list()
    g = sum(gen[:window])
    r = sum(rnd[:window])
    for i in range(window, len(gen) + 1):
        if r and g / r >= RECOVERY_LEVEL * level:
            out["recovery_requests"] = i
            break
        if i < len(gen):
            g += gen[i] - gen[i - window]
            r += rnd[i] - rnd[i - window]
    return out


def time_breakdown(runs: dict, acceptance_length: float | None) -> dict | None:
    """Where a completed run's virtual time went (replay/loop.py `time_ledger`), in seconds, and
    the break-even of its swaps: the AL gain each must bring, at the run's mean swap interval, to
    pay for its pause (costs/swap.py). None for a run logged before the ledger existed."""
    from aurora_sim.costs.swap import break_even_al_gain

    raw = runs.get("time_json")
    if not raw:
        return None
    led = json.loads(raw)
    s = lambda k: None if led.get(k) is None else round(led[k] / 1e9, 4)  # noqa: E731
    span = max(led["makespan_ns"], 1)
    swaps = led["swaps_applied"]
    interval = span / swaps if swaps else None
    gain = (
        break_even_al_gain(acceptance_length, led["pause_ns_per_swap"], interval)
        if swaps and acceptance_length
        else None
    )
    return {
        "mechanism": led["swap_mechanism"],
        "makespan_s": s("makespan_ns"),
        "serving_s": s("serving_ns"),
        "drafting_s": s("drafting_ns"),
        "pause_s": s("pause_ns"),
        "publish_s": s("publish_ns"),
        "idle_s": s("idle_ns"),
        "pause_share": round(led["pause_ns"] / span, 4),
        "drafting_share": None if led.get("drafting_ns") is None else round(led["drafting_ns"] / span, 4),
        "swaps": swaps,
        "pause_per_swap_s": round(led["pause_ns_per_swap"] / 1e9, 4),
        "swap_interval_s": None if interval is None else round(interval / 1e9, 4),
        "break_even_al_gain": None if gain is None else round(gain, 4),
    }


def summarize(run_dir: Path | str) -> dict:
    run_dir = Path(run_dir)
    runs = read_table(run_dir, "runs").row(0, named=True)
    frame = per_request(run_dir)
    req = read_table(run_dir, "requests")
    steps = read_table(run_dir, "train_steps")
    swaps = read_table(run_dir, "swaps")
    segments = json.loads(runs["segments_json"])
    # an unfinished (killed) run has no end yet: its makespan so far is its last finish
    end_ns = int(runs["end_ns"] or req["finish_ns"].max() or 1)
    tokens = int(req["output_tokens"].sum())
    seg_rows = []
    bounds = [s[0] for s in segments] + [int(runs["requests"])]
    prev_end = 0
    for k, (first, domain) in enumerate(segments):
        part = frame.filter((pl.col("request_index") >= first) & (pl.col("request_index") < bounds[k + 1]))
        # a segment's serving time: from the previous segment's last finish to its own (ordered
        # traces run their segments one after the other; a mixed one has a single segment)
        end = int(part["finish_ns"].max() or prev_end) if part.height else prev_end
        span = end - prev_end
        seg_rows.append(
            {
                "segment": k,
                "domain": domain,
                "first_request": first,
                "requests": part.height,
                "acceptance_length": _al(part),
                "throughput_tok_s": round(float(part["output_tokens"].sum()) / (span / 1e9), 3) if span > 0 else None,
            }
        )
        prev_end = max(prev_end, end)
    shifts = [
        recovery(frame, bounds[k], bounds[k + 1]) | {"to_domain": segments[k][1]} for k in range(1, len(segments))
    ]
    if not runs["gamma"]:  # no speculation: AL is 1.0 by construction, nothing to recover
        shifts = [sh | {"recovery_requests": None} for sh in shifts]
    ok = steps.filter(pl.col("status") == "ok")
    applied = swaps.filter(pl.col("kind").is_in(["swap", "rollback"]))
    lag = applied.filter(pl.col("newest_capture_ns").is_not_null())
    return {
        "run_id": runs["run_id"],
        "name": runs["name"],
        "init": runs["init"],
        "policy": runs["policy"],
        "lambda_discard": runs["lambda_discard"],
        "hardware": runs["hardware"],
        "deployment": runs["deployment"],
        "acceptance_length_convention": AL_CONVENTION,
        "requests": int(runs["requests"]),
        "completed": int((req["status"] == "completed").sum()),
        "refused": int((req["status"] == "refused").sum()),
        "output_tokens": tokens,
        "virtual_s": end_ns / 1e9,
        "throughput_tok_s": tokens / (end_ns / 1e9),
        "acceptance_length": _al(frame),
        "segments": seg_rows,
        "shifts": shifts,
        "train_steps": steps.height,
        "train_steps_ok": ok.height,
        "train_steps_dropped": steps.height - ok.height,
        "final_loss": round(float(ok["loss"].tail(10).mean()), 5) if ok.height else None,
        "swaps": int((swaps["kind"] == "swap").sum()),
        "rollbacks": int((swaps["kind"] == "rollback").sum()),
        "holds": int((swaps["kind"] == "hold").sum()),
        "trainer_lag_ms_mean": round(float((lag["effective_ns"] - lag["newest_capture_ns"]).mean()) / 1e6, 3)
        if lag.height
        else None,
        "time": time_breakdown(runs, _al(frame)),
    }


def segment_speedups(summary: dict, baseline: dict) -> list[float | None]:
    """Per segment, this run's throughput over `baseline`'s (the same trace)."""
    out = []
    for a, b in zip(summary["segments"], baseline["segments"]):
        ta, tb = a.get("throughput_tok_s"), b.get("throughput_tok_s")
        out.append(round(ta / tb, 4) if ta and tb else None)
    return out


def speedups(summary: dict, baselines: dict[str, dict]) -> dict:
    """Throughput ratios vs other arms' summaries on the same trace and cost model."""
    return {
        f"speedup_vs_{name}": round(summary["throughput_tok_s"] / b["throughput_tok_s"], 4)
        for name, b in baselines.items()
        if b and b.get("throughput_tok_s")
    }
