"""Drawing helpers the paper figures share: run styles, rolling AL lines, shift markers, saving.

Built on analysis.figures (palette, rc, footnote with the AL convention) without changing it; the
figures themselves are in analysis.paper_figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from analysis.figures import ARM_COLORS, DPI, PALETTE, RC, _footnote, _rows  # noqa: F401 (RC: callers)

LINESTYLES = {"cadence": "-", "lazy": "--", "shadow": "-.", "shadow-rollback": ":"}


@dataclass
class Ctx:
    """One figure's view of its runs: a DuckDB connection over them and run ids by (trace key,
    variant)."""

    con: object
    ids: dict[tuple[str, str], str]
    plan: object
    window: int

    def id(self, trace, variant: str) -> str:
        return self.ids[(trace.key, variant)]

    def rows(self, query: str, params=None) -> list[dict]:
        return _rows(self.con, query, params)

    def one(self, query: str, params=None) -> dict:
        rows = self.rows(query, params)
        return rows[0] if rows else {}


def new_figure(width: float, height: float, mosaic) -> tuple[Figure, dict]:
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.08, w_pad=0.08)
    return fig, fig.subplot_mosaic(mosaic)


def arm_color(arm: str, k: int = 0) -> str:
    return ARM_COLORS.get(arm, PALETTE[k % len(PALETTE)])


def rolling(ctx: Ctx, run_id: str) -> tuple[list[int], list[float]]:
    pts = ctx.rows(
        "SELECT request_index AS x, spec_decode_acceptance_length AS y FROM rolling_al "
        "WHERE run_id = ? AND spec_decode_acceptance_length IS NOT NULL ORDER BY request_index",
        [run_id],
    )
    return [p["x"] for p in pts], [p["y"] for p in pts]


def plot_rolling(ax, ctx: Ctx, run_id: str, label: str, color: str, ls: str = "-", lw: float = 1.3) -> float:
    xs, ys = rolling(ctx, run_id)
    ax.plot(xs, ys, color=color, ls=ls, lw=lw, label=label)
    return max(ys, default=1.0)


def mark_shifts(ax, ctx: Ctx, run_id: str, label_domains: bool = True) -> list[dict]:
    """Dashed verticals at every domain shift, domain names at the top; returns the segments."""
    segs = ctx.rows(
        "SELECT segment, domain, first_request, end_request FROM segments WHERE run_id = ? ORDER BY segment", [run_id]
    )
    for s in segs:
        if s["segment"] > 0:
            ax.axvline(s["first_request"], color="#333333", ls="--", lw=0.9)
        if label_domains and len(segs) > 1:
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
    return segs


def al_axes(ax, ctx: Ctx, top: float, n: int) -> None:
    ax.set_xlim(0, max(n - 1, 1))
    ax.set_ylim(0.9, top * 1.15 + 0.05)
    ax.set_xlabel("request (trace order)")
    ax.set_ylabel(f"acceptance length\n(rolling, last {ctx.window} requests)")
    ax.grid(alpha=0.25)


def finish(fig: Figure, ctx: Ctx, extra: str) -> None:
    """The footnote: AL convention, W and what made the figure."""
    _footnote(fig, ctx.con, extra)


def save(fig: Figure, out_dir: Path, name: str) -> dict:
    """PNG + SVG without dates or software tags, so a redraw of the same runs gives the same bytes.
    (Draw inside matplotlib.rc_context(RC): font sizes are fixed when artists are made.)"""
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return {"png": png, "svg": svg}


def interval_bars(ax, names: list[str], series: list[tuple[str, str, list[dict]]], rotation: float = 0) -> None:
    """Grouped bars of paired differences with their 95 % intervals: one group per name, one bar
    per series (label, color, an interval dict per name: analysis.paper_numbers.interval), a line
    at 0. An interval with one seed is drawn without error bars; with none, as 0."""
    width = 0.8 / max(len(series), 1)
    for k, (label, color, ivs) in enumerate(series):
        means = [iv.get("mean", 0.0) for iv in ivs]
        lo = [m - iv.get("ci95", [m, m])[0] for m, iv in zip(means, ivs)]
        hi = [iv.get("ci95", [m, m])[1] - m for m, iv in zip(means, ivs)]
        xs = [j + (k - (len(series) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, means, width * 0.92, yerr=[lo, hi], capsize=3, color=color, label=label, edgecolor="white")
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xticks(range(len(names)), names, fontsize=8, rotation=rotation)
