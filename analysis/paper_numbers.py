"""The numbers the paper figures show, read from the DuckDB views (analysis/sql), per run.

Kept apart from the drawing so docs and tests read the same values the figures plot.
"""

from __future__ import annotations

import math
import statistics

from analysis.paper_draw import Ctx

# two-sided 95 % Student-t quantiles by degrees of freedom (seeds - 1)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def interval(xs: list[float]) -> dict:
    """Mean, sd and 95 % Student-t interval of per-seed values (None and non-finite left out)."""
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return {"n": 0}
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return {"n": 1, "mean": round(mean, 4)}
    sd = statistics.stdev(xs)
    half = T95.get(len(xs) - 1, 1.96) * sd / math.sqrt(len(xs))
    return {
        "n": len(xs),
        "mean": round(mean, 4),
        "sd": round(sd, 4),
        "ci95": [round(mean - half, 4), round(mean + half, 4)],
    }


def head_al(ctx: Ctx, run_id: str, head: int) -> float | None:
    """AL over the first `head` requests of every segment (from the starting draft, then after
    each shift): the area under the AL curve where a learner has least data, its sample efficiency."""
    r = ctx.one(
        "SELECT sum(p.generated) / nullif(sum(p.verify_rounds), 0) AS al FROM per_request p "
        "JOIN segments s ON s.run_id = p.run_id AND p.segment = s.segment "
        "WHERE p.run_id = ? AND p.request_index < s.first_request + ?",
        [run_id, head],
    )
    return r4(r.get("al"))


def r4(x):
    return None if x is None else round(float(x), 4)


def summary(ctx: Ctx, run_id: str) -> dict:
    s = ctx.one("SELECT * FROM run_summary WHERE run_id = ?", [run_id])
    keep = (
        "spec_decode_acceptance_length",
        "spec_decode_acceptance_rate",
        "throughput_tok_s",
        "speedup_vs_no_spec",
        "speedup_vs_static",
        "train_steps",
        "swaps",
        "rollbacks",
        "holds",
        "trainer_lag_ms_mean",
        "requests_meanwhile_mean",
        "day0_ramp_requests",
        "completed",
        "output_tokens",
    )
    out = {k: (r4(s.get(k)) if isinstance(s.get(k), float) else s.get(k)) for k in keep}
    out["al"] = out.pop("spec_decode_acceptance_length")
    return out


def segments(ctx: Ctx, run_id: str) -> list[dict]:
    return [
        {
            "segment": r["segment"],
            "domain": r["domain"],
            "first_request": r["first_request"],
            "requests": r["requests"],
            "al": r4(r["al"]),
        }
        for r in ctx.rows(
            "SELECT segment, domain, first_request, requests, spec_decode_acceptance_length AS al "
            "FROM al_by_segment WHERE run_id = ? ORDER BY segment",
            [run_id],
        )
    ]


def by_domain(ctx: Ctx, run_id: str) -> dict[str, float]:
    """AL per request domain. Not the al_by_domain view: its domain is the trace segment's (the
    first request's domain names a mixed trace's only segment), not each request's own."""
    return {
        r["domain"]: r4(r["al"])
        for r in ctx.rows(
            "SELECT q.domain, sum(p.generated) / nullif(sum(p.verify_rounds), 0) AS al FROM per_request p "
            "JOIN requests q ON q.run_id = p.run_id AND q.request_index = p.request_index WHERE p.run_id = ? "
            "GROUP BY q.domain ORDER BY q.domain",
            [run_id],
        )
    }


def recovery(ctx: Ctx, run_id: str) -> list[dict]:
    """Per shift: recovery requests (None = not within the segment), AL before and just after."""
    return [
        {
            "shift_at": r["shift_at"],
            "to": r["to_domain"],
            "segment_requests": r["after_requests"],
            "recovery_requests": r["recovery_requests"],
            "level_before": r4(r["level_before"]),
            "al_after_head": r4(r["al_after_head"]),
        }
        for r in ctx.rows("SELECT * FROM recovery WHERE run_id = ? ORDER BY segment", [run_id])
    ]


def lag(ctx: Ctx, run_id: str) -> dict:
    r = ctx.one(
        "SELECT count(*) AS swaps, avg(trainer_lag_ms) AS ms_mean, median(trainer_lag_ms) AS ms_median, "
        "avg(requests_meanwhile) AS req_mean, max(requests_meanwhile) AS req_max, "
        "quantile_cont(requests_meanwhile, 0.9) AS req_p90 FROM trainer_lag WHERE run_id = ?",
        [run_id],
    )
    return {k: r4(v) if isinstance(v, float) else v for k, v in r.items()}


def al_at(ctx: Ctx, run_id: str, counts: list[int]) -> dict[int, float]:
    """AL over the first n completed requests (trace order), for each n."""
    out = {}
    for n in counts:
        r = ctx.one(
            "SELECT sum(generated) / nullif(sum(verify_rounds), 0) AS al, count(*) AS k FROM per_request "
            "WHERE run_id = ? AND n <= ?",
            [run_id, n],
        )
        if r.get("k", 0) >= n:
            out[n] = r4(r["al"])
    return out


def swap_requests(ctx: Ctx, run_id: str) -> list[int]:
    """For every applied swap: completed requests when it took effect (where it lands on a
    request axis)."""
    return [
        r["n"]
        for r in ctx.rows(
            "SELECT s.effective_ns, (SELECT count(*) FROM requests q WHERE q.run_id = s.run_id AND q.status = 'completed' "
            "AND q.finish_ns <= s.effective_ns) AS n FROM swap_timeline s WHERE s.run_id = ? AND s.applied "
            "ORDER BY s.effective_ns",
            [run_id],
        )
    ]


def windowed_throughput(ctx: Ctx, run_id: str, window: int) -> tuple[list[int], list[float]]:
    """Output tokens of the last `window` completed requests / the virtual time they took to
    finish (completion order): throughput as it evolves over the run."""
    rows = ctx.rows(
        "SELECT output_tokens, finish_ns FROM requests WHERE run_id = ? AND status = 'completed' "
        "ORDER BY finish_ns, request_index",
        [run_id],
    )
    xs, ys, tok = [], [], 0
    for i, r in enumerate(rows):
        tok += r["output_tokens"]
        if i >= window:
            tok -= rows[i - window]["output_tokens"]
            dt = (r["finish_ns"] - rows[i - window]["finish_ns"]) / 1e9
            if dt > 0:
                xs.append(i + 1)
                ys.append(tok / dt)  # the W requests finished in (finish[i-W], finish[i]]
    return xs, ys
