"""Predicted against measured: the numbers of one clock, and the errors between the two.

Per clock (from its event log and round records):
  throughput_tok_s   output tokens / makespan (the end of the last round), as `aurora replay`
  latency_ms         per request, finish - arrival: mean, p50, p90, p99, max
  ttft_ms            per request, first token (the end of the round that admitted it) - arrival
  round_ms           per round, its duration: mean, p50, p90, p99, max, cv (std / mean)
Relative error of a number = (predicted - measured) / measured: > 0, the simulator is slow.

Where a measured makespan's difference from the prediction comes from (fractions of the measured
makespan; they sum to the makespan's relative error):
  round_cost      Σ over measured rounds of (cost model on the round's own shape - wall time)
  server_loop     - (measured makespan - Σ measured round times): the gaps between one round's
                  end and the next one's start (the replay's bookkeeping: event log, controller,
                  learner captures; virtual time charges none; in an open loop also idle time)
  schedule        (predicted makespan - Σ cost model on the measured rounds): the predicted
                  run's rounds differ from the measured run's (none for a frozen draft in a
                  closed loop: same tokens, same rounds; an online draft swaps at other times)
Contention shows in: serving_cpu_share (CPU time of the serving thread / wall time of its rounds:
below 1, it waited for a core), the measured round-time spread (p99 / p50, cv) beside the
predicted one, and the load average around the run.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from aurora_sim.replay.eventlog import read_table
from aurora_sim.replay.summary import summarize
from aurora_sim.validate.clock import RoundRecord

# (section, key) of every number whose relative error is reported; section None = top level
ERROR_KEYS = (
    (None, "throughput_tok_s"),
    (None, "makespan_s"),
    ("latency_ms", "mean"),
    ("latency_ms", "p50"),
    ("latency_ms", "p99"),
    ("ttft_ms", "mean"),
    ("ttft_ms", "p50"),
    ("ttft_ms", "p99"),
    ("round_ms", "mean"),
    ("round_ms", "p50"),
    ("round_ms", "p90"),
    ("round_ms", "p99"),
)


def _quantile(sorted_xs: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    pos = q * (len(sorted_xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (pos - lo) * (sorted_xs[hi] - sorted_xs[lo])


def distribution(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None, "cv": None}
    s = sorted(xs)
    mean = sum(s) / len(s)
    var = sum((x - mean) ** 2 for x in s) / len(s)
    return {
        "n": len(s),
        "mean": mean,
        "p50": _quantile(s, 0.5),
        "p90": _quantile(s, 0.9),
        "p99": _quantile(s, 0.99),
        "max": s[-1],
        "cv": math.sqrt(var) / mean if mean else None,
    }


def request_frame(run_dir: Path) -> pl.DataFrame:
    return (
        read_table(run_dir, "requests")
        .filter(pl.col("status") == "completed")
        .select("request_index", "domain", "arrival_ns", "first_token_ns", "finish_ns", "output_tokens", "rounds")
        .sort("request_index")
    )


def clock_metrics(run_dir: Path, records: list[RoundRecord]) -> dict:
    req = request_frame(run_dir)
    s = summarize(run_dir)
    latency = ((req["finish_ns"] - req["arrival_ns"]) / 1e6).to_list()
    ttft = ((req["first_token_ns"] - req["arrival_ns"]) / 1e6).to_list()
    return {
        "requests": req.height,
        "output_tokens": s["output_tokens"],
        "makespan_s": s["virtual_s"],
        "throughput_tok_s": s["throughput_tok_s"],
        "acceptance_length": s["acceptance_length"],
        "swaps": s["swaps"],
        "train_steps": s["train_steps"],
        "latency_ms": distribution(latency),
        "ttft_ms": distribution(ttft),
        "round_ms": distribution([r.dur_ns / 1e6 for r in records]),
        "rounds": len(records),
    }


def relative(pred: float | None, meas: float | None) -> float | None:
    if pred is None or meas is None or meas == 0:
        return None
    return (pred - meas) / meas


def errors(pred: dict, meas: dict) -> dict:
    out = {}
    for section, key in ERROR_KEYS:
        p = pred[key] if section is None else pred[section][key]
        m = meas[key] if section is None else meas[section][key]
        out[key if section is None else f"{section}.{key}"] = relative(p, m)
    return out


def _median(xs: list[float]) -> float | None:
    return _quantile(sorted(xs), 0.5) if xs else None


def wall_breakdown(
    pred: list[RoundRecord], meas: list[RoundRecord], pred_makespan_ns: int, meas_makespan_ns: int
) -> dict:
    """Where the makespan's error comes from, the serving thread's CPU share, and the per-round
    and model-on-measured-shape agreement."""
    busy = sum(r.dur_ns for r in meas)
    model_on_measured = sum(r.model_ns for r in meas)
    gaps_ns = meas_makespan_ns - busy  # between rounds (and before the first): the server loop, idle
    cpu = [r for r in meas if r.cpu_ns >= 0]
    same = len(pred) == len(meas) and all(a.shape == b.shape for a, b in zip(pred, meas))
    m = max(1, meas_makespan_ns)
    return {
        "same_rounds": same,
        "makespan_error_parts": {
            "round_cost": (model_on_measured - busy) / m,
            "server_loop": -gaps_ns / m,
            "schedule": (pred_makespan_ns - model_on_measured) / m,
        },
        "server_loop_ms": {"total": gaps_ns / 1e6, "per_round": gaps_ns / 1e6 / max(1, len(meas))},
        "model_on_measured_shapes": relative(model_on_measured, busy),
        "per_round_abs_error_p50": _median([abs(r.model_ns - r.dur_ns) / r.dur_ns for r in meas if r.dur_ns]),
        "serving_cpu_share": sum(r.cpu_ns for r in cpu) / max(1, sum(r.dur_ns for r in cpu)) if cpu else None,
        "round_spread": {
            "measured_p99_over_p50": _spread(meas),
            "predicted_p99_over_p50": _spread(pred),
        },
    }


def _spread(records: list[RoundRecord]) -> float | None:
    d = distribution([r.dur_ns for r in records])
    return d["p99"] / d["p50"] if d["p50"] else None


def per_request(pred_dir: Path, meas_dir: Path) -> dict:
    """Per-request agreement: the median |relative error| of latency and TTFT, request by request."""
    both = request_frame(pred_dir).join(request_frame(meas_dir), on="request_index", suffix="_m")
    lat_p = both["finish_ns"] - both["arrival_ns"]
    lat_m = both["finish_ns_m"] - both["arrival_ns_m"]
    ttft_p = both["first_token_ns"] - both["arrival_ns"]
    ttft_m = both["first_token_ns_m"] - both["arrival_ns_m"]
    return {
        "paired": both.height,
        "same_output_tokens": bool((both["output_tokens"] == both["output_tokens_m"]).all()),
        "same_rounds": bool((both["rounds"] == both["rounds_m"]).all()),
        "latency_abs_error_p50": _median([abs(p - m) / m for p, m in zip(lat_p, lat_m) if m]),
        "ttft_abs_error_p50": _median([abs(p - m) / m for p, m in zip(ttft_p, ttft_m) if m]),
    }


def records_frame(records: list[RoundRecord], clock: str) -> pl.DataFrame:
    rows = [
        {
            "clock": clock,
            "round": r.round,
            "start_ns": r.start_ns,
            "dur_ns": r.dur_ns,
            "model_ns": r.model_ns,
            "outside": r.outside,
            "cpu_ns": r.cpu_ns,
            "batch": r.shape.batch,
            "gamma": r.shape.gamma,
            "prefill_requests": r.shape.prefill_requests,
            "prefill_max": r.shape.prefill_max,
            "context_tokens": r.shape.context_tokens,
        }
        for r in records
    ]
    return pl.DataFrame(rows, schema=ROUND_SCHEMA)


ROUND_SCHEMA = {
    "clock": pl.Utf8,
    "round": pl.Int64,
    "start_ns": pl.Int64,
    "dur_ns": pl.Int64,
    "model_ns": pl.Int64,
    "outside": pl.Boolean,
    "cpu_ns": pl.Int64,
    "batch": pl.Int64,
    "gamma": pl.Int64,
    "prefill_requests": pl.Int64,
    "prefill_max": pl.Int64,
    "context_tokens": pl.Int64,
}
