"""The sweep's result: one row per run with its key metrics from the analysis views (DuckDB over
the runs' event logs, so speedups pair runs within the sweep as `aurora sql` does), written as
DIR/sweep.json and DIR/summary.csv and printed as a table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from traces.io import publish

METRICS = (
    "arm",
    "spec_decode_acceptance_length",
    "speedup_vs_no_spec",
    "speedup_vs_static",
    "swaps",
    "rollbacks",
    "train_steps",
    "final_loss",
)


def metrics(outcomes) -> dict[str, dict]:
    """{run name: metrics} for every run with an event log (made now or skipped as complete)."""
    from analysis.views import connect

    ok = [o for o in outcomes if o.status in ("done", "skipped")]
    if not ok:
        return {}
    con = connect([o.job.run_dir for o in ok])
    by_dir = {str(Path(o.job.run_dir).resolve()): o.job.name for o in ok}
    cols = ", ".join(f"s.{m}" for m in METRICS)
    rows = con.execute(f"SELECT r.run_dir, {cols} FROM run_summary s JOIN runs r USING (run_id)").fetchall()
    out = {by_dir[r[0]]: dict(zip(METRICS, r[1:])) for r in rows}
    rec = con.execute(
        "SELECT r.run_dir, list(v.recovery_requests ORDER BY v.segment) FROM recovery v "
        "JOIN runs r USING (run_id) GROUP BY r.run_dir"
    ).fetchall()
    for run_dir, values in rec:
        out[by_dir[run_dir]]["recovery_requests"] = values
    return out


def rows(sweep, outcomes) -> list[dict]:
    m = metrics(outcomes)
    out = []
    for o in outcomes:
        row = {
            "run": o.job.name,
            "status": o.status,
            "run_dir": str(o.job.run_dir),
            "config_hash": o.job.config.config_hash(),
            "error": o.error,
            "wall_s": o.wall_s,
            "replay_wall_s": o.wall.get("wall_s"),
            "worker": o.worker,
        }
        row.update(m.get(o.job.name, {}))
        out.append(row)
    return out


def write(out: Path, sweep, table: list[dict], backend: str, wall_s: float) -> None:
    doc = {
        "sweep": sweep.name,
        "spec": sweep.source,
        "backend": backend,
        "wall_s": round(wall_s, 1),
        "runs": table,
        "duplicates": {r.name: list(r.also) for r in sweep.runs if r.also},
    }
    publish(out / "sweep.json", (json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n").encode())
    keys = ["run", "status", *METRICS, "recovery_requests", "wall_s", "worker", "error", "run_dir"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in table:
        w.writerow(
            {
                k: (";".join("" if v is None else str(v) for v in r[k]) if isinstance(r.get(k), list) else r.get(k))
                for k in keys
            }
        )
    publish(out / "summary.csv", buf.getvalue().encode())


def _f(x, d=3):
    if x is None:
        return "-"
    return f"{x:.{d}f}" if isinstance(x, float) else str(x)


def show(sweep, table: list[dict], console: Console | None = None) -> None:
    from aurora_sim.replay.eventlog import AL_CONVENTION

    t = Table(title=f"sweep {sweep.name}: {len(table)} runs", caption=AL_CONVENTION)
    for c, j in (
        ("run", "left"),
        ("status", "left"),
        ("AL", "right"),
        ("vs no-spec", "right"),
        ("vs static", "right"),
        ("swaps", "right"),
        ("recovery (req)", "right"),
        ("wall s", "right"),
    ):
        t.add_column(c, justify=j, overflow="fold")
    for r in table:
        status = r["status"] if r["status"] != "failed" else f"[red]failed[/red]: {r['error']}"
        rec = r.get("recovery_requests")
        t.add_row(
            r["run"],
            status,
            _f(r.get("spec_decode_acceptance_length")),
            _f(r.get("speedup_vs_no_spec")),
            _f(r.get("speedup_vs_static")),
            _f(r.get("swaps")),
            "/".join(_f(v) for v in rec) if rec else "-",
            _f(r.get("wall_s"), 1),
        )
    (console or Console()).print(t)
