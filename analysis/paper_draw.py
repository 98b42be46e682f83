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
