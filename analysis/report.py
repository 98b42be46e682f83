"""`aurora report`: one self-contained HTML page and a Markdown summary over one or many runs.

    OUT/report.html        figures embedded (base64 PNG), every table, run configs, definitions
    OUT/REPORT.md          the same tables, figures linked from figures/
    OUT/figures/NAME.png   and NAME.svg, one pair per figure (analysis.figures)

OUT is written whole into a temporary sibling and renamed into place (aurora_sim.atomic): a reader
never sees half a report, and a re-run replaces the old one. An existing OUT that is not a report
(no report.html / REPORT.md) is never replaced.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from analysis.figures import FIGURES, run_order, write_figures
from analysis.views import DEFINITIONS, check_run_dirs, connect
from aurora_sim.atomic import atomic_dir
from aurora_sim.errors import AuroraError
from aurora_sim.replay.eventlog import AL_CONVENTION
from aurora_sim.replay.summary import RECOVERY_WINDOW
from traces.io import _umask


@dataclass
class Table:
    id: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    extra: dict = field(default_factory=dict)


def _rows(con, query: str, params=None) -> list[dict]:
    cur = con.execute(query, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def fmt(x, digits: int = 3, suffix: str = "") -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:,.{digits}f}{suffix}"
    if isinstance(x, int):
        return f"{x:,}{suffix}" if abs(x) >= 10000 else f"{x}{suffix}"
    return f"{x}{suffix}"


# ---- tables --------------------------------------------------------------------------------------


def summary_table(con) -> Table:
    rows = _rows(con, "SELECT s.* FROM run_summary s JOIN run_dirs d USING (label) ORDER BY d.ord")
    headers = [
        "run",
        "arm",
        "status",
        "completed / refused",
        "AL",
        "acceptance rate",
        "throughput (tok/s)",
        "speedup vs no-spec",
        "speedup vs static",
        "train steps (dropped)",
        "final loss",
        "swaps / rollbacks / holds",
        "trainer lag (ms, mean)",
        "day-0 ramp (requests)",
    ]
    body = [
        [
            r["label"],
            r["arm"],
            r["status"],
            f"{r['completed']} / {r['refused']}",
            fmt(r["spec_decode_acceptance_length"]),
            fmt(r["spec_decode_acceptance_rate"]),
            fmt(r["throughput_tok_s"], 1),
            fmt(r["speedup_vs_no_spec"], 3, "×"),
            fmt(r["speedup_vs_static"], 3, "×"),
            f"{r['train_steps']} ({r['train_steps_dropped']})",
            fmt(r["final_loss"], 4),
            f"{r['swaps']} / {r['rollbacks']} / {r['holds']}",
            fmt(r["trainer_lag_ms_mean"], 1),
            fmt(r["day0_ramp_requests"]),
        ]
        for r in rows
    ]
    return Table(
        "summary",
        "Headline numbers per run",
        headers,
        body,
        "AL = spec_decode_acceptance_length over completed requests; acceptance rate = accepted / "
        "proposed; throughput and speedups in virtual time under each run's cost model.",
    )


def segment_table(con, runs: list[dict]) -> Table:
    rows = _rows(
        con,
        "SELECT run_id, segment, domain, first_request, end_request, requests, "
        "spec_decode_acceptance_length AS al, spec_decode_acceptance_rate AS rate FROM al_by_segment",
    )
    keys = sorted({(r["segment"], r["domain"], r["first_request"], r["end_request"]) for r in rows})
    by = {(r["run_id"], r["segment"], r["domain"]): r for r in rows}
    body = []
    for seg, dom, first, end in keys:
        cells = []
        for run in runs:
            r = by.get((run["run_id"], seg, dom))
            cells.append(
                "–"
                if r is None or r["al"] is None
                else f"{r['al']:.3f} ({r['rate']:.2f})"
                if r["rate"] is not None
                else f"{r['al']:.3f}"
            )
        body.append([str(seg), dom, f"{first}–{end - 1}", *cells])
    return Table(
        "segments",
        "Acceptance length per segment",
        ["segment", "domain", "requests", *[r["label"] for r in runs]],
        body,
        "Each cell: AL (acceptance rate). Segments from the trace schedule (runs.segments_json).",
    )


def recovery_table(con, runs: list[dict]) -> Table:
    rows = _rows(con, "SELECT * FROM recovery")
    keys = sorted({(r["segment"], r["shift_at"], r["from_domain"], r["to_domain"]) for r in rows})
    by = {(r["run_id"], r["segment"]): r for r in rows}
    w = int(con.execute("SELECT aurora_window()").fetchone()[0])
    body = []
    for seg, at, a, b in keys:
        cells = []
        for run in runs:
            r = by.get((run["run_id"], seg))
            if r is None:
                cells.append("–")
            elif run["arm"] == "no-spec":
                cells.append("– (no speculation)")
            else:
                rec = "not recovered" if r["recovery_requests"] is None else f"{r['recovery_requests']} requests"
                cells.append(f"{rec} (AL {fmt(r['level_before'])} before, {fmt(r['al_after_head'])} after)")
        body.append([f"@{at}", f"{a} → {b}", *cells])
    return Table(
        "recovery",
        "Recovery after each shift",
        ["shift", "domains", *[r["label"] for r in runs]],
        body,
        f"Recovery requests (W = {w}): requests after the shift until the AL over the last {w}, all after "
        f"the shift, is back to ≥ 90 % of the AL over the {w} before it. 'before' = that pre-shift AL; "
        "'after' = AL over the first 200 requests after the shift.",
    )


def ramp_table(con) -> Table | None:
    rows = _rows(con, "SELECT d.*, s.label AS static_label FROM day0_ramp d JOIN runs s ON s.run_id = d.static_run_id")
    if not rows:
        return None
    body = [
        [
            r["label"],
            r["static_label"],
            fmt(r["static_acceptance_length"]),
            fmt(r["ramp_requests"]) if r["ramp_requests"] is not None else "not reached",
            fmt(r["target_acceptance_length"]),
            fmt(r["ramp_requests_overall"]),
        ]
        for r in rows
    ]
    return Table(
        "ramp",
        "Day-0 ramp (from-scratch runs)",
        [
            "run",
            "static run",
            "static AL (all)",
            "ramp (requests)",
            "target AL (static, same segment)",
            "ramp vs static AL (all)",
        ],
        body,
        "Completed requests until the from-scratch run's rolling AL (last W) reaches the static run's AL "
        "over the same segment (or its overall AL, last column).",
    )


def lag_table(con) -> Table | None:
    rows = _rows(
        con,
        "SELECT label, count(*) AS swaps, avg(trainer_lag_ms) AS mean, median(trainer_lag_ms) AS med, "
        "quantile_cont(trainer_lag_ms, 0.9) AS p90, max(trainer_lag_ms) AS mx, "
        "avg(requests_meanwhile) AS req_mean, max(requests_meanwhile) AS req_max "
        "FROM trainer_lag JOIN run_dirs d USING (label) GROUP BY label, d.ord ORDER BY d.ord",
    )
    if not rows:
        return None
    body = [
        [
            r["label"],
            str(r["swaps"]),
            fmt(r["mean"], 1),
            fmt(r["med"], 1),
            fmt(r["p90"], 1),
            fmt(r["mx"], 1),
            fmt(r["req_mean"], 1),
            str(r["req_max"]),
        ]
        for r in rows
    ]
    return Table(
        "lag",
        "Trainer lag",
        [
            "run",
            "applied swaps",
            "mean (ms)",
            "median (ms)",
            "p90 (ms)",
            "max (ms)",
            "requests meanwhile (mean)",
            "(max)",
        ],
        body,
        "Virtual time from the newest served request a swapped-in draft learned from to the swap taking "
        "effect; requests meanwhile = requests completed in between (served without that lesson).",
    )


def position_table(con, runs: list[dict]) -> Table | None:
    rows = _rows(
        con,
        "SELECT run_id, position, spec_decode_per_position_acceptance_rate AS rate, draft_rounds "
        "FROM per_position_acceptance",
    )
    if not rows:
        return None
    spec = [r for r in runs if any(x["run_id"] == r["run_id"] for x in rows)]
    by = {(x["run_id"], x["position"]): x["rate"] for x in rows}
    positions = sorted({x["position"] for x in rows})
    body = [[str(p), *[fmt(by.get((r["run_id"], p))) for r in spec]] for p in positions]
    al = {
        x["run_id"]: x["al"]
        for x in _rows(
            con,
            "SELECT p.run_id, 1 + sum(p.spec_decode_per_position_acceptance_rate)"
            " AS al FROM per_position_acceptance p GROUP BY p.run_id",
        )
    }
    body.append(["1 + Σ", *[fmt(al.get(r["run_id"])) for r in spec]])
    return Table(
        "positions",
        "Per-position acceptance rates",
        ["position i", *[r["label"] for r in spec]],
        body,
        "spec_decode_per_position_acceptance_rates: share of draft rounds with ≥ i proposals accepted. "
        "1 + Σ = AL over draft rounds.",
    )


def validation_table(con) -> Table | None:
    from analysis.validation import table_rows

    rows = table_rows(con)
    if rows is None:
        return None
    return Table(
        "validation",
        "Predicted (virtual time, profiled cost model) vs measured (wall clock, same requests)",
        *rows,
        "Relative error = (predicted - measured) / measured. Same rounds: the two clocks served the same "
        "rounds (a frozen draft in a closed loop does). Look-ups outside the table: rounds of the prediction "
        "whose shape left the profile's grid. Drift: a steady calibration round timed before and after serving, "
        "against its profile value (the machine's speed moved by that much since calibration). Serving thread "
        "on a core: its CPU time over its rounds' wall time (below 100 %, it waited for a core).",
    )


def config_table(con) -> Table:
    """One column per run (a transposed table: the fields are many, the runs few)."""
    rows = _rows(con, "SELECT i.* FROM run_info i JOIN run_dirs d USING (label) ORDER BY d.ord")
    fields = [
        ("run_id", lambda r: r["run_id"]),
        ("arm", lambda r: r["arm"]),
        ("status", lambda r: r["status"]),
        ("trace", lambda r: r["trace"] if len(r["trace"]) < 32 else "…" + r["trace"][-30:]),
        ("requests", lambda r: str(r["requests"])),
        ("proxy model (target)", lambda r: r["model"]),
        ("draft kind", lambda r: r["draft"]),
        ("init (starting draft)", lambda r: r["init"] if len(r["init"]) < 32 else "…" + r["init"][-30:]),
        ("policy", lambda r: r["policy"]),
        ("learner recipe", lambda r: r["recipe"] or "–"),
        ("candidate every (steps)", lambda r: fmt(r["controller_every"]) if r["policy"] != "none" else "–"),
        ("rollback guard", lambda r: fmt(r["controller_rollback"]) if r["policy"] != "none" else "–"),
        ("λ_discard", lambda r: fmt(r["lambda_discard"], 2)),
        ("learner lr", lambda r: fmt(r["learner_lr"], 4) if r["policy"] != "none" else "–"),
        ("γ (draft tokens per round)", lambda r: str(r["gamma"])),
        ("depth policy (γ = the maximum unless fixed)", lambda r: r["depth_policy"]),
        ("batch", lambda r: str(r["batch"])),
        ("hardware", lambda r: r["hardware"]),
        ("deployment", lambda r: r["deployment"]),
        ("cost model", lambda r: r["cost_model"] or "–"),
        ("seed", lambda r: str(r["seed"])),
        ("directory", lambda r: r["run_dir"]),
    ]
    body = [[name, *[get(r) for r in rows]] for name, get in fields]
    return Table(
        "configs",
        "Run configurations",
        ["", *[r["label"] for r in rows]],
        body,
        "Hardware + deployment = the cost model whose virtual time the run reports; the proxy model's "
        "tokens and acceptances are real. The full config of each run is below.",
    )


def definitions_table() -> Table:
    return Table(
        "definitions",
        "Definitions",
        ["metric", "definition"],
        [[k, v] for k, v in DEFINITIONS.items()],
        f"AL convention: {AL_CONVENTION}.",
    )


# ---- rendering -----------------------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1280px;
     padding:0 20px;color:#222;line-height:1.45;font-size:14px}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:3px}
.meta{color:#555;margin-top:0} .convention{background:#f3f6fa;border-left:4px solid #1f77b4;padding:8px 12px;margin:12px 0}
nav{font-size:13px;color:#555} nav a{margin-right:12px}
.tablewrap{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;font-size:12.5px} th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5;text-align:center} th:first-child{text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} td.short{white-space:nowrap}
tr:nth-child(even) td{background:#fafafa}
.note{color:#555;font-size:12.5px;margin:4px 0 12px}
figure{margin:16px 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:13px;margin-top:4px}
details{margin:4px 0} pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:11.5px}
"""


_NUM = re.compile(r"^[-–+]?[\d,]*\.?\d*(×| req\w*)?$|^–$|^\d+ / \d+( / \d+)?$|^\d+ \(\d+\)$")


def _td(c: str) -> str:
    cls = "num" if _NUM.match(c) else ("short" if len(c) <= 24 else "")
    return f'<td class="{cls}">{html.escape(c)}</td>' if cls else f"<td>{html.escape(c)}</td>"


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "\n".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in t.rows)
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return (
        f'<h3 id="tab-{t.id}">{html.escape(t.title)}</h3>\n<div class="tablewrap"><table data-table="{t.id}">'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>{note}"
    )


def _md_cell(c: str) -> str:
    return c.replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> str:
    lines = [
        f"### {t.title}",
        "",
        "| " + " | ".join(_md_cell(h) for h in t.headers) + " |",
        "|" + "|".join("---" for _ in t.headers) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
    if t.note:
        lines += ["", f"_{t.note}_"]
    return "\n".join(lines) + "\n"


def _html_figure(name: str, info: dict) -> str:
    data = base64.b64encode(Path(info["png"]).read_bytes()).decode()
    cap = html.escape(info["caption"])
    return (
        f'<figure id="fig-{name}"><img src="data:image/png;base64,{data}" alt="{cap}" data-figure="{name}">'
        f'<figcaption>{cap} <a href="figures/{name}.svg">SVG</a></figcaption></figure>'
    )


def build(con, fig_dir: Path) -> tuple[str, str, dict]:
    """(html, markdown, {figures, tables}) for the runs of `con`; figures written into fig_dir."""
    from analysis import depth, validation

    runs = run_order(con)
    figs = write_figures(con, fig_dir)
    figs |= write_figures(con, fig_dir, {"validation": validation.fig_validation}, validation.FIGURES)
    figs |= write_figures(con, fig_dir, {"depth": depth.fig_depth}, depth.FIGURES)
    w = int(con.execute("SELECT aurora_window()").fetchone()[0])
    traces = sorted({f"{r['trace']} ({r['requests']} requests)" for r in runs})
    tables = {
        t.id: t
        for t in [
            summary_table(con),
            segment_table(con, runs),
            recovery_table(con, runs),
            ramp_table(con),
            lag_table(con),
            position_table(con, runs),
            validation_table(con),
            config_table(con),
            definitions_table(),
        ]
        if t is not None
    }
    if not _rows(con, "SELECT 1 FROM shifts LIMIT 1"):
        tables.pop("recovery")
    sections = [  # (title, [figure names], [table ids])
        ("Summary", ["throughput"], ["summary"]),
        ("Simulator vs real clock", ["validation"], ["validation"]),
        ("Acceptance length over the trace", ["al_vs_request", "segment_al"], ["segments", "recovery", "ramp"]),
        ("Per-position acceptance", ["per_position"], ["positions"]),
        ("Speculation depth", ["depth"], []),
        ("Swaps and trainer lag", ["swap_timeline"], ["lag"]),
        ("Trainer", ["trainer_loss"], []),
        ("Runs", [], ["configs"]),
        ("Definitions", [], ["definitions"]),
    ]
    title = "aurora-sim report: " + ", ".join(r["label"] for r in runs)
    meta = (
        f"{len(runs)} run{'s' if len(runs) != 1 else ''} on {', '.join(traces)}; rolling window W = {w} requests; "
        "virtual time under each run's cost model."
    )
    configs = "".join(
        f"<details><summary>{html.escape(r['label'])}: full config</summary><pre>"
        f"{html.escape(json.dumps(json.loads(r['config_json']), indent=1, sort_keys=True))}</pre></details>"
        for r in _rows(con, "SELECT r.label, r.config_json FROM runs r JOIN run_dirs d USING (label) ORDER BY d.ord")
    )
    convention = f"{AL_CONVENTION} (as vLLM and SGLang report spec_decode_acceptance_length)."
    h = [
        (
            f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>"
        ),
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(meta)}</p>',
        f'<div class="convention"><b>Acceptance length convention.</b> {html.escape(convention)}</div>',
    ]
    nav = []
    md = [f"# {title}", "", meta, "", f"**Acceptance length convention.** {convention}", ""]
    body = []
    for sec_title, fig_names, table_ids in sections:
        fs = [f for f in fig_names if f in figs]
        ts = [t for t in table_ids if t in tables]
        if not fs and not ts:
            continue
        anchor = sec_title.lower().replace(" ", "-")
        nav.append(f'<a href="#{anchor}">{html.escape(sec_title)}</a>')
        body.append(f'<h2 id="{anchor}">{html.escape(sec_title)}</h2>')
        md += [f"## {sec_title}", ""]
        for t in ts:
            body.append(_html_table(tables[t]))
            md.append(_md_table(tables[t]))
        for f in fs:
            body.append(_html_figure(f, figs[f]))
            md += [
                f"![{figs[f]['caption']}](figures/{f}.png)",
                "",
                f"_{figs[f]['caption']}_ ([SVG](figures/{f}.svg))",
                "",
            ]
        if sec_title == "Runs":
            body.append(configs)
    missing = [n for n in FIGURES if n not in figs]
    if missing:
        note = (
            "Not drawn (no data in these runs): "
            + ", ".join(missing)
            + " (e.g. throughput needs a no-spec or static run on the same requests)."
        )
        body.append(f'<p class="note">{html.escape(note)}</p>')
        md += [f"_{note}_", ""]
    h.append("<nav>" + " ".join(nav) + "</nav>")
    h += body
    h.append("</body></html>\n")
    return "\n".join(h), "\n".join(md), {"figures": figs, "tables": list(tables)}


def _check_out(out: Path, run_dirs: list[Path]) -> None:
    out_r = out.resolve()
    for d in run_dirs:
        if out_r == d or d.is_relative_to(out_r) or out_r.is_relative_to(d):
            raise AuroraError(f"{out}: the report directory must not contain or be inside a run directory ({d})")
    if out.exists():
        if not out.is_dir():
            raise AuroraError(f"{out}: exists and is not a directory")
        if any(out.iterdir()) and not ((out / "report.html").is_file() or (out / "REPORT.md").is_file()):
            raise AuroraError(f"{out}: exists and is not a report directory (no report.html); not replacing it")


def write_report(run_dirs: list[Path | str], out: Path | str, window: int = RECOVERY_WINDOW) -> Path:
    """Write OUT/report.html, OUT/REPORT.md and OUT/figures/* atomically. Returns OUT."""
    out = Path(out)
    dirs = check_run_dirs(run_dirs)
    _check_out(out, dirs)
    con = connect(dirs, window=window)
    try:
        with atomic_dir(out) as tmp:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; a report is for reading
            page, md, _ = build(con, tmp / "figures")
            (tmp / "report.html").write_text(page, encoding="utf-8")
            (tmp / "REPORT.md").write_text(md, encoding="utf-8")
    finally:
        con.close()
    return out
