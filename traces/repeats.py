"""How often a trace's prompts repeat, per segment.

An online draft partly memorises traffic it will see again, so a replay on repeating prompts
overstates what learning gives on live traffic (which rarely repeats). `aurora trace show`
prints these numbers; `aurora trace validate` warns past REPEAT_WARN.

Two prompts are the same when their ``prompt``, ``messages`` and ``prompt_token_ids`` are all
equal (a 64-bit row hash: a collision among 10^5 prompts has odds of about 1 in 10^9).
"""

from __future__ import annotations

import polars as pl

REPEAT_WARN = 0.05  # the share of a segment's requests whose prompt is a repeat
_PROMPT_COLUMNS = ("prompt", "messages", "prompt_token_ids")


def prompt_keys(frame: pl.DataFrame) -> pl.Series:
    cols = [c for c in _PROMPT_COLUMNS if c in frame.columns]
    return frame.select(cols).hash_rows(seed=0)


def segment_repeats(frame: pl.DataFrame) -> list[dict]:
    """Per segment: requests, distinct prompts, repeat rate (1 - distinct / requests) and the
    share of its requests whose prompt already appeared in an earlier segment."""
    keys = frame.select(pl.col("segment"), prompt_keys(frame).alias("key"))
    out, earlier = [], set()
    for seg in sorted(keys["segment"].unique().to_list()):
        k = keys.filter(pl.col("segment") == seg)["key"]
        distinct = k.n_unique()
        seen = int(k.is_in(list(earlier)).sum()) if earlier else 0
        out.append(
            {
                "segment": seg,
                "requests": len(k),
                "distinct": distinct,
                "repeat_rate": round(1 - distinct / len(k), 4),
                "seen_before": round(seen / len(k), 4),
            }
        )
        earlier.update(k.to_list())
    return out


def repeat_warnings(frame: pl.DataFrame, where: str) -> list[str]:
    return [
        f"{where}: warning: segment {r['segment']} repeats {r['repeat_rate']:.1%} of its "
        f"{r['requests']:,} prompts ({r['distinct']:,} distinct; over {REPEAT_WARN:.0%}): an online "
        "draft can memorise repeated traffic"
        for r in segment_repeats(frame)
        if r["repeat_rate"] > REPEAT_WARN
    ]
