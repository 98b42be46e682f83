"""DuckDB views over one or many run directories (the event log of aurora_sim.replay.eventlog).

    con = connect([Path("runs/cmp/static"), Path("runs/cmp/online-scratch")], window=50)
    con.sql("SELECT label, spec_decode_acceptance_length FROM acceptance").show()

Base views, one per event-log table, over every run given (`read_parquet([...], union_by_name=true)`;
a table with no part in any run is an empty view with the schema's types; a column an older log
lacks reads NULL): runs (plus `run_dir` and `label`, the run directory's name), requests, rounds,
train_steps, swaps, versions. Derived views: the SQL files in analysis/sql/, run in name order;
each view's comment there (`-- view NAME: ...`) is its documentation (`list_views`, `aurora sql
--views`).

Parameters are DuckDB variables read when a query runs, so one connection can be re-asked with
another window: `SET VARIABLE aurora_window = 100` (W, the rolling window in completed requests,
default 50 as summary.RECOVERY_WINDOW), `aurora_recovery_level` (0.9), `aurora_after_shift_head`
(200). The AL convention (aurora_sim.replay.eventlog.AL_CONVENTION) is `al_convention()` and in
the `definitions` table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl

from aurora_sim.errors import AuroraError
from aurora_sim.replay.eventlog import AL_CONVENTION, PART_TABLES, SCHEMAS
from aurora_sim.replay.summary import AFTER_SHIFT_HEAD, RECOVERY_LEVEL, RECOVERY_WINDOW

BASE_TABLES = ("runs", *PART_TABLES)

# metric -> definition; the `definitions` table, the report's definitions section
DEFINITIONS: dict[str, str] = {
    "spec_decode_acceptance_length": "(accepted + bonus) / verify rounds over completed requests; " + AL_CONVENTION,
    "spec_decode_acceptance_rate": "accepted / proposed draft tokens",
    "spec_decode_per_position_acceptance_rate": "position i: share of draft rounds with accepted >= i "
    "(cumulative, as vLLM / SGLang); 1 + sum over i = AL over draft rounds for a chain draft",
    "rolling AL": "AL over the last W completed requests in trace order (W = aurora_window)",
    "throughput_tok_s": "output tokens / virtual makespan (end of the last round), in virtual seconds",
    "speedup_vs_no_spec / speedup_vs_static": "throughput / the no-spec (init none) or static (frozen "
    "offline draft) run's throughput on the same requests and cost model (hardware + deployment)",
    "recovery_requests": "requests after a shift until the AL over the last W requests, all after the "
    "shift, is back to >= 90 % of the AL over the W requests before it (at least W; NULL = not within "
    "the segment)",
    "al_after_head": "AL over the first 200 completed requests after a shift",
    "day0_ramp_requests": "completed requests until a from-scratch run's rolling AL (last W) reaches the "
    "static run's AL over the same segment",
    "trainer_lag": "virtual time from the newest served request a swapped-in draft learned from "
    "(newest_capture_ns) to the swap taking effect (effective_ns); requests_meanwhile = requests "
    "completed in between",
}

_DUCK_TYPES = {
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Utf8: "VARCHAR",
    pl.String: "VARCHAR",
    pl.Boolean: "BOOLEAN",
}


def _duck_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.List):
        return _duck_type(dtype.inner) + "[]"
    for k, v in _DUCK_TYPES.items():
        if dtype == k:
            return v
    raise TypeError(f"no DuckDB type for {dtype}")


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@dataclass(frozen=True)
class ViewDoc:
    name: str
    doc: str
    source: str  # the SQL file, or "base"


def sql_files() -> list[tuple[str, str]]:
    """(name, text) of the shipped SQL files in run order."""
    root = resources.files("analysis") / "sql"
    files = sorted((f for f in root.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name, f.read_text(encoding="utf-8")) for f in files]


def view_docs() -> list[ViewDoc]:
    """Every view with its one-paragraph description (base tables first)."""
    out = [
        ViewDoc(
            t,
            f"base: every run's {'runs.parquet' if t == 'runs' else t + '/part-*.parquet'}"
            + (" plus run_dir and label (the run directory's name)" if t == "runs" else ""),
            "base",
        )
        for t in BASE_TABLES
    ]
    for fname, text in sql_files():
        doc, name = [], None
        for line in text.splitlines():
            m = re.match(r"--\s*view\s+(\w+):\s*(.*)$", line)
            if m:
                name, doc = m.group(1), [m.group(2).strip()]
            elif name and line.startswith("--"):
                doc.append(line[2:].strip())
            elif name:
                out.append(ViewDoc(name, " ".join(doc), fname))
                name = None
    out.append(ViewDoc("definitions", "metric, definition: the metrics' definitions and the AL convention", "python"))
    return out


def _labels(run_dirs: list[Path]) -> list[str]:
    """The directory name; parent/name where two runs share a name."""
    names = [d.name for d in run_dirs]
    out = []
    for d in run_dirs:
        out.append(d.name if names.count(d.name) == 1 else f"{d.parent.name}/{d.name}")
    # still equal (a/x/r, b/x/r): number them
    return [lab if out.count(lab) == 1 else f"{lab}#{i}" for i, lab in enumerate(out)]


def check_run_dirs(run_dirs: list[Path | str]) -> list[Path]:
    if not run_dirs:
        raise AuroraError("no run directory given")
    out = []
    for d in run_dirs:
        d = Path(d)
        if not (d / "runs.parquet").is_file():
            what = "does not exist" if not d.exists() else "no runs.parquet"
            raise AuroraError(f"{d}: not a run directory ({what})")
        r = d.resolve()
        if r in out:
            raise AuroraError(f"{d}: given twice")
        out.append(r)
    return out


def _base_view(con: duckdb.DuckDBPyConnection, table: str, files: list[str]) -> None:
    schema = SCHEMAS[table]
    if not files:
        cols = ", ".join(f"NULL::{_duck_type(t)} AS {c}" for c, t in schema.items())
        con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {cols} WHERE false")
        return
    src = f"read_parquet([{', '.join(_quote(f) for f in files)}], union_by_name=true" + (
        ", filename=true)" if table == "runs" else ")"
    )
    have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    missing = "".join(f", NULL::{_duck_type(t)} AS {c}" for c, t in schema.items() if c not in have)
    if table == "runs":
        con.execute(
            f"CREATE OR REPLACE VIEW runs AS SELECT r.* EXCLUDE (filename){missing}, d.run_dir, d.label "
            f"FROM {src} r JOIN run_dirs d ON r.filename = d.runs_file"
        )
    else:
        con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT *{missing} FROM {src}")


def connect(
    run_dirs: list[Path | str],
    window: int = RECOVERY_WINDOW,
    database: str = ":memory:",
    recovery_level: float = RECOVERY_LEVEL,
    after_shift_head: int = AFTER_SHIFT_HEAD,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the base and derived views over these run directories.
    Raises AuroraError for a missing or unreadable run, or one run given twice."""
    dirs = check_run_dirs(run_dirs)
    if window < 1:
        raise AuroraError(f"window must be >= 1, got {window}")
    con = duckdb.connect(database)
    con.execute(f"SET VARIABLE aurora_window = {int(window)}")
    con.execute(f"SET VARIABLE aurora_recovery_level = {float(recovery_level)!r}")
    con.execute(f"SET VARIABLE aurora_after_shift_head = {int(after_shift_head)}")
    con.execute(f"SET VARIABLE aurora_al_convention = {_quote(AL_CONVENTION)}")
    con.execute("CREATE OR REPLACE TABLE run_dirs (ord INTEGER, run_dir VARCHAR, label VARCHAR, runs_file VARCHAR)")
    con.executemany(
        "INSERT INTO run_dirs VALUES (?, ?, ?, ?)",
        [(k, str(d), lab, str(d / "runs.parquet")) for k, (d, lab) in enumerate(zip(dirs, _labels(dirs)))],
    )
    con.execute("CREATE OR REPLACE TABLE definitions (metric VARCHAR, definition VARCHAR)")
    con.executemany("INSERT INTO definitions VALUES (?, ?)", list(DEFINITIONS.items()))
    try:
        for table in BASE_TABLES:
            if table == "runs":
                files = [str(d / "runs.parquet") for d in dirs]
            else:
                files = [str(p) for d in dirs for p in sorted((d / table).glob("part-*.parquet"))]
            _base_view(con, table, files)
        ids = con.execute(
            "SELECT run_id, list(run_dir ORDER BY run_dir) FROM runs GROUP BY run_id HAVING count(*) > 1"
        ).fetchall()
    except duckdb.Error as exc:
        raise AuroraError(f"cannot read the event log: {_one_line(exc)}") from None
    if ids:
        run_id, where = ids[0]
        raise AuroraError(f"run {run_id} appears twice: {' and '.join(where)} (the same run copied?)")
    for name, text in sql_files():
        for stmt in _statements(text):
            try:
                con.execute(stmt)
            except duckdb.Error as exc:  # a bug in a shipped file, not bad input: say where
                raise RuntimeError(f"analysis/sql/{name}: {exc}\n{stmt[:200]}") from exc
    return con


def _statements(text: str) -> list[str]:
    """The statements of a SQL file (each ends with ';' at the end of a line)."""
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*\n", body + "\n") if s.strip()]


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__


def columns(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    """(column, type) of a view."""
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()]


def list_views(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """name, description and columns of every view (what `aurora sql --views` prints)."""
    return [{"name": v.name, "doc": v.doc, "source": v.source, "columns": columns(con, v.name)} for v in view_docs()]


def frame(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> pl.DataFrame:
    """A query's result as a polars frame."""
    return con.execute(query, params or []).pl()
