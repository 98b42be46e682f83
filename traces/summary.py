"""`aurora trace show`: a summary of a trace computed with DuckDB, and a PNG of the domain mix.

Prompt length is in characters: the text prompt, or the sum of the chat messages' contents;
``prompt tokens`` counts prompt_token_ids where a row has them.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import duckdb

from .io import publish, read_trace
from .repeats import prompt_keys, segment_repeats
from .schema import DOMAINS

NS_PER_S = 1e9
PERCENTILES = (0.5, 0.9, 0.99)

_PROMPT_CHARS = "coalesce(length(prompt), list_sum(list_transform(messages, lambda m: length(m.content))), 0)"


def _lengths(con, expr: str, where: str = "true") -> dict:
    q = (
        f"SELECT count({expr}), min({expr}), quantile_disc({expr}, {list(PERCENTILES)}), max({expr}), "
        f"avg({expr}) FROM t WHERE {where}"
    )
    n, lo, qs, hi, mean = con.execute(q).fetchone()
    if not n:
        return {}
    return {
        "n": n,
        "min": lo,
        **{f"p{round(p * 100)}": v for p, v in zip(PERCENTILES, qs)},
        "max": hi,
        "mean": round(mean, 1),
    }


def summarize(path: Path | str) -> dict:
    """Everything `show` prints, as a dict (counts, rates, length percentiles)."""
    trace = read_trace(path)
    con = duckdb.connect()
    # validated above; DuckDB reads the file itself (file_row_number = the row index)
    literal = "'" + str(path).replace("'", "''") + "'"
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({literal}, file_row_number = true)")
    n, t0, t1 = con.execute("SELECT count(*), min(arrival_ns), max(arrival_ns) FROM t").fetchone()
    duration_s = (t1 - t0) / NS_PER_S
    arrivals = trace.arrivals
    segments = []
    repeats = {r["segment"]: r for r in segment_repeats(trace.frame)}
    for seg, first, last, s0, s1, cnt in con.execute(
        "SELECT segment, min(file_row_number), max(file_row_number), min(arrival_ns), max(arrival_ns), "
        "count(*) FROM t GROUP BY segment ORDER BY segment"
    ).fetchall():
        by_domain = dict(
            con.execute("SELECT domain, count(*) FROM t WHERE segment = ? GROUP BY domain", [seg]).fetchall()
        )
        span = (s1 - s0) / NS_PER_S
        segments.append(
            {
                "segment": seg,
                "first_row": first,
                "last_row": last,
                "requests": cnt,
                "domains": {d: by_domain.get(d, 0) for d in DOMAINS},
                "distinct_prompts": repeats[seg]["distinct"],
                "repeat_rate": repeats[seg]["repeat_rate"],
                "seen_before": repeats[seg]["seen_before"],
                "rate_per_s": round((cnt - 1) / span, 3) if span > 0 else None,
            }
        )
    domains = {}
    for d in DOMAINS:
        where = f"domain = '{d}'"
        if con.execute(f"SELECT count(*) FROM t WHERE {where}").fetchone()[0]:
            domains[d] = {
                "prompt_chars": _lengths(con, _PROMPT_CHARS, where),
                "prompt_tokens": _lengths(con, "len(prompt_token_ids)", where),
                "max_new_tokens": _lengths(con, "max_new_tokens", where),
            }
    # one definition of "the same prompt" for the whole trace and its segments (repeats.prompt_keys)
    counts = prompt_keys(trace.frame).value_counts()["count"]
    distinct, top = len(counts), int(counts.max())
    kinds = con.execute(
        "SELECT count(*) FILTER (prompt IS NOT NULL), count(*) FILTER (messages IS NOT NULL), "
        "count(*) FILTER (prompt_token_ids IS NOT NULL), "
        "count(DISTINCT temperature), min(temperature), max(temperature) FROM t"
    ).fetchone()
    cfg = trace.config
    return {
        "file": str(path),
        "schema_version": trace.schema_version,
        "name": cfg.get("name") or cfg.get("importer"),
        "seed": cfg.get("seed"),
        "requests": n,
        "duration_s": round(duration_s, 3),
        "arrivals": arrivals,
        "rate_per_s": round((n - 1) / duration_s, 3) if duration_s > 0 else None,
        "segments": segments,
        "domains": domains,
        "prompts": {
            "text": kinds[0],
            "chat": kinds[1],
            "token_ids": kinds[2],
            "distinct": distinct,
            "most_repeated": top,
        },
        "temperature": {"min": kinds[4], "max": kinds[5]},
    }


def _fmt(x) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if isinstance(x, (int, float)) and float(x).is_integer() else f"{x:,}"


def print_summary(s: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Console()
    arr = s["arrivals"]
    how = (
        f"closed loop, concurrency {arr.get('concurrency')}"
        if arr.get("kind") == "closed"
        else f"{arr.get('kind')}: {_fmt(s['rate_per_s'])} req/s over {_fmt(s['duration_s'])} s"
    )
    seed = "" if s["seed"] is None else f" (seed {s['seed']})"
    out.print(
        f"[bold]{escape(s['file'])}[/bold]  schema v{s['schema_version']}  {escape(str(s['name']))}{seed}",
        highlight=False,
        soft_wrap=True,
    )
    p = s["prompts"]
    out.print(
        f"{s['requests']:,} requests, arrivals {how}; prompts: {p['text']:,} text, {p['chat']:,} chat, "
        f"{p['token_ids']:,} token ids; {p['distinct']:,} distinct (most repeated ×{p['most_repeated']}); "
        f"temperature {s['temperature']['min']}–{s['temperature']['max']}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    seg = Table(
        "segment",
        "rows",
        *DOMAINS,
        "req/s",
        "distinct",
        "repeats",
        "seen before",
        title="requests per segment and domain",
    )
    for r in s["segments"]:
        seg.add_row(
            str(r["segment"]),
            f"{r['first_row']:,}–{r['last_row']:,}",
            *(_fmt(r["domains"][d]) for d in DOMAINS),
            _fmt(r["rate_per_s"]),
            _fmt(r["distinct_prompts"]),
            f"{r['repeat_rate']:.1%}",
            f"{r['seen_before']:.1%}",
        )
    out.print(seg)
    lengths = Table(
        "domain",
        "length",
        "min",
        *(f"p{round(q * 100)}" for q in PERCENTILES),
        "max",
        "mean",
        title="prompt and output lengths",
    )
    for d, stats in s["domains"].items():
        for label, key in (
            ("prompt chars", "prompt_chars"),
            ("prompt tokens", "prompt_tokens"),
            ("max_new_tokens", "max_new_tokens"),
        ):
            st = stats[key]
            if st:
                lengths.add_row(d, label, *(_fmt(st[k]) for k in ("min", "p50", "p90", "p99", "max", "mean")))
    out.print(lengths)


def plot_mix(path: Path | str, out: Path | str, bins: int = 120) -> Path:
    """PNG: domain share per window of requests (segment boundaries dashed) and arrivals per second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    trace = read_trace(path)
    f = trace.frame
    n = f.height
    dom = f["domain"].to_numpy()
    width = max(1, math.ceil(n / bins))
    edges = np.arange(0, n + width, width)[: math.ceil(n / width) + 1]
    edges[-1] = n
    shares = np.array([[np.mean(dom[a:b] == d) for a, b in zip(edges[:-1], edges[1:])] for d in DOMAINS])
    closed = trace.arrivals.get("kind") == "closed"
    fig, axes = plt.subplots(1 if closed else 2, 1, figsize=(10, 4.5 if closed else 6.5), squeeze=False)
    ax = axes[0][0]
    ax.stackplot(edges, np.column_stack([shares, shares[:, -1]]), labels=DOMAINS, step="post", alpha=0.85)
    seg = f["segment"].to_numpy()
    for b in np.flatnonzero(np.diff(seg)) + 1:
        ax.axvline(b, color="black", ls="--", lw=0.8)
    ax.set(xlim=(0, n), ylim=(0, 1), xlabel=f"request index (windows of {width})", ylabel="share of requests")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    name = trace.config.get("name") or trace.config.get("importer") or Path(path).stem
    ax.set_title(f"{name}: domain mix over the trace ({n:,} requests)")
    if not closed:
        t = f["arrival_ns"].to_numpy() / NS_PER_S
        ax2 = axes[1][0]
        span = max(t[-1], 1e-9)
        tb = np.linspace(0, span, min(bins, max(n // 5, 2)) + 1)
        counts, _ = np.histogram(t, bins=tb)
        ax2.step(tb[:-1], counts / np.diff(tb), where="post", color="tab:gray")
        ax2.set(xlim=(0, span), xlabel="arrival time (s)", ylabel="arrivals / s")
        ax2.set_title(f"arrivals: {trace.arrivals.get('kind')}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return publish(Path(out), buf.getvalue())


def summary_json(s: dict) -> str:
    return json.dumps(s, indent=1, default=str)
