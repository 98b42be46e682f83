"""The report's figures, drawn from the DuckDB views (matplotlib, Agg; no pyplot state).

Each `fig_*` takes a connection from analysis.views.connect and returns a matplotlib Figure, or
None when the runs have nothing to show (no speculative run, no swap, no train step, no baseline).
`write_figures` saves every one as PNG and SVG. Every figure carries the AL convention and W in
its footnote.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from aurora_sim.replay.eventlog import AL_CONVENTION

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
ARM_COLORS = {
    "no-spec": "#7f7f7f",
    "static": "#1f77b4",
    "online-static": "#2ca02c",
    "online-scratch": "#ff7f0e",
    "scratch-frozen": "#9467bd",
}
DPI = 130
RC = {
    "svg.hashsalt": "aurora-report",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

FIGURES = {  # name -> caption (the HTML and Markdown use these)
    "al_vs_request": "Rolling acceptance length vs request (trace order), one line per run; dashed "
    "verticals = domain shifts.",
    "per_position": "Per-position acceptance rates: share of draft rounds with at least i proposals "
    "accepted (cumulative, as vLLM / SGLang report spec_decode_per_position_acceptance_rates).",
    "segment_al": "Acceptance length per trace segment.",
    "swap_timeline": "Serving draft version vs virtual time, per learning run, with swaps, rollbacks and holds.",
    "trainer_loss": "Trainer loss vs optimizer step (dropped steps marked).",
    "throughput": "Throughput (output tokens per virtual second) per run, with speedups vs the "
    "no-spec and static runs on the same requests and cost model.",
}


def _rows(con, query: str, params=None) -> list[dict]:
    cur = con.execute(query, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def run_order(con) -> list[dict]:
    """Runs in the order given: label, run_id, arm, colour."""
    rows = _rows(
        con,
        "SELECT i.label, i.run_id, i.arm, i.trace, i.trace_sha256, i.requests FROM run_info i "
        "JOIN run_dirs d USING (label) ORDER BY d.ord",
    )
    arms = [r["arm"] for r in rows]
    for k, r in enumerate(rows):
        unique_arm = arms.count(r["arm"]) == 1 and r["arm"] in ARM_COLORS
        r["color"] = ARM_COLORS[r["arm"]] if unique_arm else PALETTE[k % len(PALETTE)]
    return rows


def _window(con) -> int:
    return int(con.execute("SELECT aurora_window()").fetchone()[0])


def _name(r: dict) -> str:
    return r["label"] if r["label"] == r["arm"] else f"{r['label']} ({r['arm']})"


def _footnote(fig: Figure, con, extra: str = "") -> None:
    """The AL convention under the axes, in space the layout leaves free for it."""
    text = f"{AL_CONVENTION}. W = {_window(con)} requests." + (f" {extra}" if extra else "")
    width_in, height_in = fig.get_size_inches()
    lines = textwrap.wrap(text, width=max(40, int(width_in * 15)))
    reserve = (0.14 * len(lines) + 0.08) / height_in
    fig.get_layout_engine().set(rect=(0, reserve, 1, 1 - reserve))
    fig.text(0.01, 0.008, "\n".join(lines), fontsize=7, color="#444444", ha="left", va="bottom")


def _new(width: float, height: float, rows: int = 1, cols: int = 1, **kw):
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.06, w_pad=0.06)
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    return fig, axes


def fig_al_vs_request(con) -> Figure | None:
    runs = run_order(con)
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["trace_sha256"], r["requests"]), []).append(r)
    fig, axes = _new(10, 3.6 * len(groups) + 0.5, rows=len(groups))
    w = _window(con)
    for ax, ((_sha, n), members) in zip(axes[:, 0], groups.items()):
        top = 1.0
        for r in members:
            pts = _rows(
                con,
                "SELECT request_index, spec_decode_acceptance_length AS al FROM rolling_al "
                "WHERE run_id = ? ORDER BY request_index",
                [r["run_id"]],
            )
            xs = [p["request_index"] for p in pts if p["al"] is not None]
            ys = [p["al"] for p in pts if p["al"] is not None]
            if ys:
                top = max(top, max(ys))
            ax.plot(xs, ys, color=r["color"], lw=1.3, label=_name(r))
        segs = _rows(
            con,
            "SELECT segment, domain, first_request FROM segments WHERE run_id = ? ORDER BY segment",
            [members[0]["run_id"]],
        )
        for s in segs:
            if s["segment"] > 0:
                ax.axvline(s["first_request"], color="#333333", ls="--", lw=0.9)
            ax.annotate(
                s["domain"] if s["segment"] == 0 else f"→ {s['domain']}",
                (s["first_request"], 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize=8,
                fontweight="bold",
                color="#333333",
            )
        ax.set_xlim(0, max(n - 1, 1))
        ax.set_ylim(0.9, top * 1.12 + 0.05)
        ax.set_xlabel("request (trace order)")
        ax.set_ylabel(f"acceptance length\n(rolling, last {w} requests)")
        ax.set_title(f"Acceptance length vs request — {Path(members[0]['trace']).name} ({n} requests)")
        ax.grid(alpha=0.25)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=min(len(members), 5), frameon=False)
    _footnote(fig, con, f"Until request {w}, the average over all requests so far.")
    return fig


def fig_per_position(con) -> Figure | None:
    runs = [r for r in run_order(con)]
    data = {
        r["run_id"]: _rows(
            con,
            "SELECT position, spec_decode_per_position_acceptance_rate AS rate "
            "FROM per_position_acceptance WHERE run_id = ? ORDER BY position",
            [r["run_id"]],
        )
        for r in runs
    }
    runs = [r for r in runs if data[r["run_id"]]]
    if not runs:
        return None
    fig, axes = _new(7.5, 4.2)
    ax = axes[0, 0]
    width = 0.8 / len(runs)
    maxpos = max(p["position"] for r in runs for p in data[r["run_id"]])
    for k, r in enumerate(runs):
        pts = data[r["run_id"]]
        xs = [p["position"] + (k - (len(runs) - 1) / 2) * width for p in pts]
        ys = [p["rate"] for p in pts]
        bars = ax.bar(xs, ys, width=width * 0.95, color=r["color"], label=_name(r))
        ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=6.5, padding=1)
    ax.set_xticks(range(1, maxpos + 1), [f"position {i}" for i in range(1, maxpos + 1)])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("acceptance rate (share of draft rounds\nwith ≥ i proposals accepted)")
    ax.set_xlabel("draft position i")
    ax.set_title("Per-position acceptance rates")
    ax.grid(axis="y", alpha=0.25)
    ax.legend(loc="upper right")
    _footnote(fig, con, "AL = 1 + Σ_i rate_i over draft rounds.")
    return fig


def fig_segment_al(con) -> Figure | None:
    runs = run_order(con)
    rows = _rows(con, "SELECT run_id, segment, domain, spec_decode_acceptance_length AS al FROM al_by_segment")
    keys = sorted({(x["segment"], x["domain"]) for x in rows})
    if not keys:
        return None
    fig, axes = _new(max(6.5, 1.6 * len(keys) + 3), 4.2)
    ax = axes[0, 0]
    width = 0.8 / len(runs)
    for k, r in enumerate(runs):
        by = {(x["segment"], x["domain"]): x["al"] for x in rows if x["run_id"] == r["run_id"]}
        xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(keys))]
        ys = [by.get(key) or 0.0 for key in keys]
        bars = ax.bar(xs, ys, width=width * 0.95, color=r["color"], label=_name(r))
        ax.bar_label(bars, labels=[f"{by[key]:.2f}" if by.get(key) else "–" for key in keys], fontsize=6.5, padding=1)
    ax.set_xticks(range(len(keys)), [f"segment {s}: {d}" for s, d in keys])
    ax.set_ylabel("acceptance length")
    ax.set_ylim(0, max([x["al"] or 0 for x in rows] + [1.0]) * 1.18)
    ax.axhline(1.0, color="#999999", lw=0.8)
    ax.set_title("Acceptance length per segment")
    ax.grid(axis="y", alpha=0.25)
    # below the axes, not inside: with one or two segments and many runs, a legend inside is
    # wider than the axes and the layout collapses them
    long = max(len(_name(r)) for r in runs) > 30
    fig.legend(loc="outside upper center", ncols=min(len(runs), 2 if long else 4), fontsize=7.5, frameon=False)
    _footnote(fig, con)
    return fig


def _events(ev: list[dict], kind: str, t: str = "effective_ns", v: str = "to_version"):
    """(times in s, versions) of the decisions of one kind."""
    sel = [e for e in ev if e["kind"] == kind and e[t] is not None]
    return [e[t] / 1e9 for e in sel], [e[v] for e in sel]


def fig_swap_timeline(con) -> Figure | None:
    runs = [
        r
        for r in run_order(con)
        if con.execute("SELECT count(*) FROM swaps WHERE run_id = ?", [r["run_id"]]).fetchone()[0]
    ]
    if not runs:
        return None
    fig, axes = _new(10, 2.3 * len(runs) + 0.8, rows=len(runs), sharex=True)
    for ax, r in zip(axes[:, 0], runs):
        iv = _rows(
            con,
            "SELECT version, since_ns, until_ns FROM serving_versions WHERE run_id = ? ORDER BY interval",
            [r["run_id"]],
        )
        xs, ys = [], []
        for v in iv:
            xs += [v["since_ns"] / 1e9, v["until_ns"] / 1e9]
            ys += [v["version"], v["version"]]
        ax.plot(xs, ys, color=r["color"], lw=1.4, drawstyle="steps-post")
        ev = _rows(
            con,
            "SELECT kind, decided_ns, effective_ns, from_version, to_version FROM swap_timeline "
            "WHERE run_id = ? ORDER BY decision",
            [r["run_id"]],
        )

        x, y = _events(ev, "swap")
        ax.scatter(x, y, s=14, color=r["color"], zorder=3)
        x, y = _events(ev, "rollback")
        ax.scatter(x, y, s=60, marker="X", color="#d62728", zorder=4)
        x, y = _events(ev, "hold", "decided_ns", "from_version")
        ax.scatter(x, y, s=40, marker="|", color="#555555", zorder=4)
        x, y = _events(ev, "superseded", "decided_ns")
        ax.scatter(x, y, s=20, marker="o", facecolors="none", edgecolors="#999999", zorder=3)
        shifts = _rows(
            con,
            "SELECT s.to_domain, min(q.admit_ns) AS t FROM shifts s JOIN requests q "
            "ON q.run_id = s.run_id AND q.request_index = s.shift_at WHERE s.run_id = ? GROUP BY ALL",
            [r["run_id"]],
        )
        for s in shifts:
            if s["t"] is not None and s["t"] >= 0:
                ax.axvline(s["t"] / 1e9, color="#333333", ls="--", lw=0.9)
                ax.annotate(
                    f"→ {s['to_domain']}",
                    (s["t"] / 1e9, 0.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, 4),
                    textcoords="offset points",
                    fontsize=8,
                    color="#333333",
                )
        counts = {k: sum(e["kind"] == k for e in ev) for k in ("swap", "rollback", "hold")}
        ax.set_title(
            f"{_name(r)}: {counts['swap']} swaps, {counts['rollback']} rollbacks, {counts['hold']} holds", loc="left"
        )
        ax.set_ylabel("draft version")
        ax.grid(alpha=0.25)
        ax.set_ylim(bottom=-0.5)
    axes[-1, 0].set_xlabel("virtual time (s)")
    handles = [
        Line2D([], [], color="#444444", drawstyle="steps-post", label="serving version"),
        Line2D([], [], color="#444444", marker="o", ls="", ms=4, label="swap (effective)"),
        Line2D([], [], color="#d62728", marker="X", ls="", ms=7, label="rollback"),
        Line2D([], [], color="#555555", marker="|", ls="", ms=8, label="hold (decided)"),
        Line2D([], [], color="#999999", marker="o", mfc="none", ls="", ms=5, label="superseded"),
        Line2D([], [], color="#333333", ls="--", label="domain shift (first request admitted)"),
    ]
    fig.legend(handles=handles, loc="outside upper center", fontsize=7.5, ncols=len(handles), frameon=False)
    _footnote(fig, con, "A swap takes effect at a round boundary after the new draft is written and loaded.")
    return fig


def fig_trainer_loss(con) -> Figure | None:
    runs = [
        r
        for r in run_order(con)
        if con.execute("SELECT count(*) FROM train_steps WHERE run_id = ?", [r["run_id"]]).fetchone()[0]
    ]
    if not runs:
        return None
    fig, axes = _new(8, 4.2)
    ax = axes[0, 0]
    lo, hi = float("inf"), 0.0
    for r in runs:
        rows = _rows(
            con,
            "SELECT step, status, loss, loss_accepted, loss_discard, loss_mean10 FROM trainer_loss "
            "WHERE run_id = ? ORDER BY step",
            [r["run_id"]],
        )
        ok = [x for x in rows if x["status"] == "ok" and x["loss"] is not None]
        ax.plot([x["step"] for x in ok], [x["loss"] for x in ok], color=r["color"], lw=0.6, alpha=0.45)
        ax.plot([x["step"] for x in ok], [x["loss_mean10"] for x in ok], color=r["color"], lw=1.6, label=_name(r))
        if any((x["loss_discard"] or 0) > 0 for x in ok):
            ax.plot(
                [x["step"] for x in ok],
                [x["loss_discard"] for x in ok],
                color=r["color"],
                lw=1.0,
                ls=":",
                label=f"{r['label']}: discard part",
            )
        vals = [x["loss"] for x in ok if x["loss"] > 0]
        if vals:
            lo, hi = min(lo, min(vals)), max(hi, max(vals))
        dropped = [x for x in rows if x["status"] != "ok"]
        if dropped:
            y = [x["loss"] if x["loss"] is not None and x["loss"] > 0 else (hi or 1.0) for x in dropped]
            ax.scatter(
                [x["step"] for x in dropped],
                y,
                marker="x",
                color="#d62728",
                s=30,
                zorder=4,
                label=f"{r['label']}: dropped steps ({len(dropped)})",
            )
    if hi > 0 and lo < float("inf") and hi / lo > 20:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (KL target ‖ draft)")
    ax.set_title("Trainer loss (thin: per step; thick: mean of the last 10 ok steps)")
    ax.grid(alpha=0.25)
    ax.legend(loc="upper right")
    _footnote(fig, con)
    return fig


def fig_throughput(con) -> Figure | None:
    rows = _rows(con, "SELECT s.*, d.ord FROM speedup s JOIN run_dirs d USING (label) ORDER BY d.ord")
    if not any(x["speedup_vs_no_spec"] is not None or x["speedup_vs_static"] is not None for x in rows):
        return None
    colors = {r["run_id"]: r["color"] for r in run_order(con)}
    fig, axes = _new(max(6.5, 1.3 * len(rows) + 2.5), 4.4)
    ax = axes[0, 0]
    xs = range(len(rows))
    bars = ax.bar(xs, [x["throughput_tok_s"] or 0 for x in rows], color=[colors[x["run_id"]] for x in rows], width=0.6)
    labels = []
    for x in rows:
        parts = [f"{x['throughput_tok_s']:.0f} tok/s"]
        if x["speedup_vs_no_spec"] is not None:
            parts.append(f"{x['speedup_vs_no_spec']:.3f}× vs no-spec")
        if x["speedup_vs_static"] is not None:
            parts.append(f"{x['speedup_vs_static']:.3f}× vs static")
        labels.append("\n".join(parts))
    for text in ax.bar_label(bars, labels=labels, fontsize=7, padding=3):
        text.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.9})
        text.set_zorder(5)
    for base in {x["no_spec_throughput_tok_s"] for x in rows if x["no_spec_throughput_tok_s"] is not None}:
        ax.axhline(base, color="#7f7f7f", ls=":", lw=1.0)
    ax.set_xticks(list(xs), [x["label"] if x["label"] == x["arm"] else f"{x['label']}\n({x['arm']})" for x in rows])
    ax.set_ylabel("throughput (output tokens / virtual s)")
    ax.set_ylim(0, max(x["throughput_tok_s"] or 0 for x in rows) * 1.3)
    ax.set_title("Throughput and speedup (virtual time, modelled cost)")
    ax.grid(axis="y", alpha=0.25)
    _footnote(fig, con, "Throughput = output tokens / virtual makespan; dotted: the no-spec run's throughput.")
    return fig


DRAW = {
    "al_vs_request": fig_al_vs_request,
    "per_position": fig_per_position,
    "segment_al": fig_segment_al,
    "swap_timeline": fig_swap_timeline,
    "trainer_loss": fig_trainer_loss,
    "throughput": fig_throughput,
}


def write_figures(con, out_dir: Path, draw: dict | None = None, captions: dict | None = None) -> dict[str, dict]:
    """Draw every figure that has data (DRAW, or `draw` with its `captions`) into out_dir/NAME.png
    and NAME.svg. Returns name -> {png, svg (paths), caption}; a figure without data is left out."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    draw, captions = (DRAW, FIGURES) if draw is None else (draw, captions)
    with matplotlib.rc_context(RC):
        for name, make in draw.items():
            fig = make(con)
            if fig is None:
                continue
            png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
            fig.savefig(png, dpi=DPI, metadata={"Software": None})
            fig.savefig(svg, metadata={"Date": None, "Creator": None})
            written[name] = {"png": png, "svg": svg, "caption": captions[name]}
    return written
