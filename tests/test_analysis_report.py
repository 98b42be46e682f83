"""`aurora sql` and `aurora report` (analysis.cli) end to end on real replays: tables, CSV,
the view list, one-line errors, and a report whose files a reader can open."""

from __future__ import annotations

import base64
import csv
import io
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
import typer
from analysis_runs import ARMS, make_runs
from PIL import Image
from typer.testing import CliRunner

from analysis.cli import report_command, sql_command
from analysis.figures import FIGURES
from aurora_sim.replay.compare import add_speedups
from aurora_sim.replay.eventlog import AL_CONVENTION
from aurora_sim.replay.summary import summarize

app = typer.Typer()
app.command("sql")(sql_command)
app.command("report")(report_command)
runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained_head_dir):
    return make_runs(tmp_path_factory.getbasetemp() / "analysis_runs", trained_head_dir)


def dirs(runs, arms=ARMS):
    return [str(runs[a]) for a in arms]


def test_sql_table_csv_and_variables(runs):
    query = "SELECT label, spec_decode_acceptance_length FROM acceptance ORDER BY label"
    res = runner.invoke(app, ["sql", *dirs(runs), query], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert all(a in res.output for a in ARMS) and "bonus token included" in res.output
    query = "SELECT run_id, label, spec_decode_acceptance_length AS al FROM acceptance ORDER BY label"
    res = runner.invoke(app, ["sql", *dirs(runs), query, "--csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert sorted(r["label"] for r in rows) == sorted(ARMS)
    for r in rows:
        assert float(r["al"]) == pytest.approx(summarize(runs[r["label"]])["acceptance_length"], abs=5e-5)
    # several statements: the last one's result; the window is a variable the views read
    res = runner.invoke(
        app,
        [
            "sql",
            str(runs["online-scratch"]),
            'SET VARIABLE aurora_window = 7; SELECT DISTINCT "window" FROM rolling_al',
            "--csv",
        ],
    )
    assert res.exit_code == 0 and res.stdout.split() == ["window", "7"], res.output
    res = runner.invoke(
        app,
        [
            "sql",
            str(runs["online-scratch"]),
            "--window",
            "9",
            "--csv",
            "SELECT max(window_requests) AS m FROM rolling_al",
        ],
    )
    assert res.exit_code == 0 and res.stdout.split() == ["m", "9"], res.output


def test_sql_views_lists_every_view_with_columns(runs):
    res = runner.invoke(app, ["sql", str(runs["static"]), "--views"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    for name in (
        "run_info",
        "acceptance",
        "rolling_al",
        "per_position_acceptance",
        "speedup",
        "recovery",
        "day0_ramp",
        "trainer_lag",
        "swap_timeline",
        "run_summary",
    ):
        assert name in res.output
    assert "spec_decode_per_position_acceptance_rate" in res.output and "aurora_window" in res.output


def test_sql_errors_are_one_line(tmp_path, runs):
    cases = [
        (["sql", str(runs["static"]), "SELECT nope FROM acceptance"], "SQL:"),
        (["sql", str(runs["static"]), "SELEC 1"], "SQL:"),
        (["sql", str(tmp_path / "missing"), "SELECT 1"], "not a run directory"),
        (["sql", str(tmp_path), "SELECT 1"], "not a run directory"),
        (["sql", str(runs["static"])], "missing the query"),
        (["sql", "SELECT 1"], "no run directory"),
    ]
    for args, msg in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], (args, res.output)
        assert "Traceback" not in res.output


class _Tables(HTMLParser):
    """Cells of every <table data-table=ID>: {ID: [[header cells], [row cells], ...]}."""

    def __init__(self):
        super().__init__()
        self.tables, self.current, self.row, self.cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "data-table" in attrs:
            self.current = self.tables.setdefault(attrs["data-table"], [])
        elif tag == "tr" and self.current is not None:
            self.row = []
            self.current.append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell)
            self.cell = None
        elif tag == "table":
            self.current = self.row = None


def html_tables(page: str) -> dict[str, list[list[str]]]:
    p = _Tables()
    p.feed(page)
    return p.tables


def _png_ok(data: bytes) -> tuple[int, int]:
    img = Image.open(io.BytesIO(data))
    img.verify()
    assert img.format == "PNG"
    w, h = img.size
    assert 500 <= w <= 3000 and 300 <= h <= 3000, img.size
    return w, h


def test_report_has_every_figure_and_table(tmp_path, runs):
    out = tmp_path / "rep"
    res = runner.invoke(app, ["report", *dirs(runs), "-o", str(out)])
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    md = (out / "REPORT.md").read_text()
    for name in FIGURES:  # all four arms: every figure has data
        png, svg = out / "figures" / f"{name}.png", out / "figures" / f"{name}.svg"
        _png_ok(png.read_bytes())
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        assert f'data-figure="{name}"' in page and f"figures/{name}.png" in md
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(FIGURES)
    for data in embedded:
        _png_ok(base64.b64decode(data))
    assert not re.search(r'src="(?!data:)', page)  # self-contained: nothing to fetch
    for table in ("summary", "segments", "recovery", "ramp", "lag", "positions", "configs", "definitions"):
        assert f'data-table="{table}"' in page and 'href="#' in page, table
    assert AL_CONVENTION in page and AL_CONVENTION in md
    tables = html_tables(page)
    summary = {row[0]: dict(zip(tables["summary"][0], row)) for row in tables["summary"][1:]}
    assert sorted(summary) == sorted(ARMS)
    for arm in ARMS:
        assert f"| {arm} |" in md
    # run configs (one column per run): hardware, deployment, proxy model, policy, lambda_discard
    configs = {row[0]: row[1:] for row in tables["configs"][1:]}
    assert tables["configs"][0][1:] == list(ARMS)
    assert configs["hardware"] == ["h100"] * 4 and configs["deployment"] == ["proxy"] * 4
    assert configs["proxy model (target)"] == ["tiny"] * 4 and configs["λ_discard"] == ["0.00"] * 4
    assert configs["policy"] == ["none", "none", "cadence", "cadence"]
    # the numbers in the page are the summary's and compare's
    summaries = {arm: summarize(runs[arm]) for arm in ARMS}
    add_speedups(summaries)
    for arm, s in summaries.items():
        row = summary[arm]
        # the page's SQL and this Python sum in different orders: a value at a rounding boundary
        # may print one digit apart
        assert abs(float(row["AL"]) - s["acceptance_length"]) <= 1.0005e-3, (arm, row["AL"], s["acceptance_length"])
        assert f"| {row['AL']} |" in md
        for key, col in (("speedup_vs_no-spec", "speedup vs no-spec"), ("speedup_vs_static", "speedup vs static")):
            if key not in s:
                assert row[col] == "–", (arm, col)
            else:  # the page's SQL and this Python sum in different orders: equal to rounding
                assert abs(float(row[col].rstrip("×")) - s[key]) <= 1e-3, (arm, col, row[col], s[key])
        assert row["swaps / rollbacks / holds"] == f"{s['swaps']} / {s['rollbacks']} / {s['holds']}"
    segs = tables["segments"]
    assert [r[1] for r in segs[1:]] == ["code", "chat"]


def test_report_is_replaced_atomically_and_guards_other_directories(tmp_path, runs):
    out = tmp_path / "rep"
    res = runner.invoke(app, ["report", str(runs["online-scratch"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    # one learning run: no baseline, so no throughput figure, and the page says so
    assert 'data-figure="throughput"' not in page and "Not drawn" in page
    assert not (out / "figures" / "throughput.png").exists()
    assert 'data-figure="swap_timeline"' in page and 'data-figure="trainer_loss"' in page
    (out / "stale.txt").write_text("from an older report")
    res = runner.invoke(app, ["report", *dirs(runs, ("no-spec", "static")), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert not (out / "stale.txt").exists() and 'data-figure="throughput"' in (out / "report.html").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rep")]  # no temp dir left behind
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    for target, msg in ((other, "not a report directory"), (runs["static"] / "rep", "run directory")):
        res = runner.invoke(app, ["report", str(runs["static"]), "-o", str(target)])
        assert res.exit_code == 2 and msg in res.output, res.output
    assert (other / "keep.txt").read_text() == "mine"
    res = runner.invoke(app, ["report", str(tmp_path / "nope"), "-o", str(tmp_path / "r2")])
    assert res.exit_code == 2 and "not a run directory" in res.output and not (tmp_path / "r2").exists()
