"""`aurora figures --paper -o DIR [--quick]`: the Aurora paper's figure set on our models.

    DIR/figN_NAME.png|svg   the figure
    DIR/figN_NAME.md        its caption, headline numbers, and the exact commands that made it
    DIR/figN_NAME.json      the same as data (numbers, runs, configs' commands, wall time per run)
    DIR/INDEX.md, index.html, COMMANDS.md   every figure present in DIR
    DIR/traces/, DIR/runs/  the traces and the replays' event logs (analysis.paper_runs)

Runs already complete with the same config are skipped, so an interrupted set resumes at the
first missing run and `--only 4` after a full set only redraws.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib

from analysis import paper_figures as pf
from analysis import paper_figures_sys as ps
from analysis import paper_index
from analysis.paper_draw import RC, Ctx, save
from analysis.paper_plan import FIGURES, Plan, all_runs, runs_for
from analysis.paper_runs import RunResult, replay_command, run_config, run_dir, trace_command, wall_of, write_trace
from aurora_sim.errors import AuroraError
from aurora_sim.sweep.execute import Job
from aurora_sim.sweep.progress import execute_with_progress

DRAW = {
    1: pf.fig1_ordered,
    2: pf.fig2_shifts,
    3: pf.fig3_mixed,
    4: ps.fig4_batch,
    5: pf.fig5_day0,
    6: pf.fig6_discard,
    7: ps.fig7_policies,
}


def fig_name(n: int) -> str:
    return f"fig{n}_{FIGURES[n]}"


def check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise AuroraError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not ((out / "runs").is_dir() or (out / "INDEX.md").is_file()):
        raise AuroraError(f"{out}: exists and is not a figures directory (no runs/ or INDEX.md); not writing into it")


def figures_line(p: Plan, figs: list[int], out: Path) -> str:
    if p.mode not in ("quick", "full"):
        return f"# plan {p.mode!r}: made through analysis.paper.make_paper_figures (no CLI form)"
    only = ",".join(map(str, figs))
    return (
        f"aurora figures --paper -o {out}"
        + (" --quick" if p.mode == "quick" else "")
        + f" --only {only} --seed {p.base.seed}"
    )


def make_paper_figures(
    out: Path | str,
    p: Plan,
    figs: list[int],
    log=print,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    quiet: bool = False,
) -> dict:
    """Make (or skip) every run the figures need, draw them, write their commands and the index.
    The runs go through the sweep machinery (aurora_sim.sweep): backend "ray" runs them in parallel.
    Returns {"figures": {n: record}, "made": [run dirs replayed], "skipped": [...], "wall_s": total}."""
    t0 = time.perf_counter()
    out = Path(out).resolve()
    check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = all_runs(p, figs)
    for t in {s.trace.key: s.trace for s in specs}.values():
        write_trace(out, t)
    jobs = [Job(f"{s.trace.key}/{s.variant}", run_config(p, out, s), run_dir(out, s)) for s in specs]
    outcomes = execute_with_progress(
        jobs, "figure runs", quiet=quiet, backend=backend, workers=workers, address=address
    )
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise AuroraError(
            f"{len(failed)} of the figures' runs failed (the rest are kept; run again to resume): "
            f"{failed[0].job.name}: {failed[0].error}"
        )
    done = {
        s.key: RunResult(s, o.job.run_dir, o.job.config, o.status == "skipped", wall_of(o.job.run_dir))
        for s, o in zip(specs, outcomes)
    }
    for o in outcomes:
        if o.status == "skipped":
            log(f"{o.job.name}: complete with the same config, skipped ({o.job.run_dir})")
    records = {}
    for n in figs:
        records[n] = _draw(out, p, n, [done[s.key] for s in runs_for(p, n)])
        log(f"figure {n}: {out / fig_name(n)}.png (.svg, .md)")
    paper_index.write_index(out)
    made = [str(r.dir) for r in done.values() if not r.skipped]
    return {
        "figures": records,
        "made": made,
        "skipped": [str(r.dir) for r in done.values() if r.skipped],
        "wall_s": round(time.perf_counter() - t0, 1),
        "out": str(out),
    }


def _draw(out: Path, p: Plan, n: int, results: list) -> dict:
    from analysis.views import connect

    con = connect([r.dir for r in results], window=p.window)
    by_dir = {row[1]: row[0] for row in con.execute("SELECT run_id, run_dir FROM runs").fetchall()}
    ids = {r.spec.key: by_dir[str(r.dir.resolve())] for r in results}
    ctx = Ctx(con, ids, p, p.window)
    with matplotlib.rc_context(RC):
        fig, numbers, caption = DRAW[n](ctx)
        files = save(fig, out, fig_name(n))
    tokens = dict(
        con.execute(
            "SELECT ru.run_dir, sum(q.output_tokens) FROM requests q JOIN runs ru USING (run_id) GROUP BY ru.run_dir"
        ).fetchall()
    )
    record = {
        "figure": n,
        "name": fig_name(n),
        "mode": p.mode,
        "seed": p.base.seed,
        "caption": caption,
        "window": p.window,
        "png": files["png"].name,
        "svg": files["svg"].name,
        "numbers": numbers,
        "commands": _commands(out, p, n, results, tokens),
    }
    (out / f"{fig_name(n)}.json").write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    (out / f"{fig_name(n)}.md").write_text(paper_index.figure_markdown(record))
    return record


def _commands(out: Path, p: Plan, n: int, results: list, tokens: dict) -> dict:
    traces, runs = [], []
    for r in results:
        tc = trace_command(out, r.spec.trace)
        if tc and tc not in traces:
            traces.append(tc)
        line, extra = replay_command(r.config, r.dir)
        wall = r.wall or {}
        runs.append(
            {
                "run": f"{r.spec.trace.key}/{r.spec.variant}",
                "command": line,
                "not_cli": extra,
                "skipped": r.skipped,
                "wall_s": wall.get("wall_s"),
                "requests": wall.get("requests"),
                "output_tokens": int(tokens.get(str(r.dir.resolve())) or 0),
            }
        )
    return {"figures": figures_line(p, [n], out), "traces": traces, "runs": runs}
