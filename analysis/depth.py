"""The report's speculation-depth figure: γ per round over virtual time, one line per run.

Drawn only when some run's depth changed during the run (an adaptive `--depth` policy, or a
confidence floor that stopped chains); a fixed-γ run is one flat line and says nothing.
"""

from __future__ import annotations

from analysis.figures import _footnote, _name, _new, _rows, run_order

FIGURES = {
    "depth": "Speculation depth γ per engine round vs virtual time (mean over the last 64 rounds; "
    "0 = plain decode steps), one line per speculative run, with its depth policy.",
}
WINDOW = 64  # rounds per point of the rolling mean


def fig_depth(con):
    runs = [r for r in run_order(con) if r["arm"] != "no-spec"]
    varied = _rows(con, "SELECT run_id FROM depth_timeline GROUP BY run_id HAVING count(DISTINCT depth) > 1")
    if not varied:
        return None
    fig, axes = _new(10, 3.8)
    ax = axes[0, 0]
    top = 1
    for r in runs:
        pts = _rows(
            con,
            f"SELECT t_start_ns, depth_policy, avg(depth) OVER (ORDER BY round ROWS BETWEEN {WINDOW - 1} "
            "PRECEDING AND CURRENT ROW) AS mean_depth FROM depth_timeline WHERE run_id = ? ORDER BY round",
            [r["run_id"]],
        )
        if not pts:
            continue
        top = max(top, max(p["mean_depth"] for p in pts))
        ax.plot(
            [p["t_start_ns"] / 1e9 for p in pts],
            [p["mean_depth"] for p in pts],
            color=r["color"],
            lw=1.2,
            label=f"{_name(r)}, depth {pts[0]['depth_policy']}",
        )
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel(f"γ (mean of {WINDOW} rounds)")
    ax.set_ylim(-0.1, top + 0.5)
    ax.set_title("Speculation depth over time")
    ax.grid(alpha=0.25)
    ax.legend(loc="upper right")
    _footnote(fig, con, "γ = proposals per request in a round (the rounds table's `proposed`).")
    return fig
