"""Every problem of a trace file, one line each: ``FILE: row N (request_id 'x'): problem``.

Rows are numbered from 0 (polars' row index, DuckDB's rowid). Each kind of row problem lists
its first ``max_rows`` rows and then how many more rows have it. The checks:

- file: exists, is Parquet (PAR1 magic at both ends: not truncated), readable;
- metadata: schema version present and supported, config present and a JSON object;
- columns: none missing, none unexpected, types as in schema.py (any integer width for
  integer columns, any numeric type for float columns);
- rows: at least one; no nulls in non-null columns; request_id non-empty and unique;
  arrival_ns finite, >= 0 and sorted; known domain; segment >= 0 and never decreasing;
  a non-empty prompt (prompt, messages or prompt_token_ids), not both prompt and messages;
  messages with known roles and content, ending with a non-empty user turn; token ids >= 0;
  max_new_tokens > 0; temperature finite and >= 0; top_p in (0, 1]; seed >= 0;
  metadata a JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from polars.exceptions import PanicException

from .schema import (
    COLUMNS,
    DOMAINS,
    FLOAT_COLUMNS,
    INTEGER_COLUMNS,
    KEY_CONFIG,
    KEY_VERSION,
    NULLABLE,
    ROLES,
    SCHEMA_VERSION,
)

MAX_ROWS = 20


def _dtype_problem(col: str, dtype: pl.DataType) -> str | None:
    """Why dtype cannot hold column `col`, or None when it can (possibly after a cast)."""
    want = COLUMNS[col]
    if col in INTEGER_COLUMNS:
        ok = dtype.is_integer()
        hint = "an integer type" + (" (int64 nanoseconds)" if col == "arrival_ns" else "")
    elif col in FLOAT_COLUMNS:
        ok, hint = dtype.is_numeric(), "a float type"
    elif col == "messages":
        ok = (
            isinstance(dtype, pl.List)
            and isinstance(dtype.inner, pl.Struct)
            and {f.name: f.dtype for f in dtype.inner.fields}.get("role") == pl.Utf8
            and {f.name: f.dtype for f in dtype.inner.fields}.get("content") == pl.Utf8
        )
        hint = "list<struct<role: string, content: string>>"
    elif col == "prompt_token_ids":
        ok, hint = isinstance(dtype, pl.List) and dtype.inner.is_integer(), "list<int32>"
    elif col == "domain":
        ok, hint = dtype in (pl.Utf8, pl.Categorical) or isinstance(dtype, pl.Enum), "string"
    else:
        ok, hint = dtype == want, str(want).lower()
    return None if ok else f"column {col!r} has type {dtype}, expected {hint}"


class _Report:
    def __init__(self, where: str, frame: pl.DataFrame | None, max_rows: int):
        self.where, self.max_rows, self.lines = where, max_rows, []
        self.frame = frame

    def add(self, msg: str) -> None:
        self.lines.append(f"{self.where}: {msg}")

    def rows(self, mask: pl.Expr, what: str, detail: pl.Expr | None = None) -> None:
        """One line per row where mask holds (first max_rows), then a count of the rest."""
        f = self.frame
        ids = (
            pl.col("request_id")
            if "request_id" in f.columns and f.schema["request_id"] == pl.Utf8
            else pl.lit(None, pl.Utf8)
        )
        extra = [ids.alias("_id")] + ([detail.alias("_detail")] if detail is not None else [])
        sel = f.with_row_index("_row").with_columns(extra).filter(mask.fill_null(False))
        if sel.height == 0:
            return
        shown = sel.head(self.max_rows) if self.max_rows else sel
        for r in shown.iter_rows(named=True):
            rid = f" (request_id {r['_id']!r})" if r["_id"] is not None else ""
            extra = f": {r['_detail']}" if detail is not None and r["_detail"] is not None else ""
            self.add(f"row {r['_row']}{rid}: {what}{extra}")
        if sel.height > shown.height:
            self.add(f"... and {sel.height - shown.height:,} more rows where {what}")


def _check_rows(rep: _Report, usable: set[str]) -> None:
    f, c = rep.frame, pl.col
    for col in COLUMNS:
        if col in usable and col not in NULLABLE:
            rep.rows(c(col).is_null(), f"{col} is null")
    if "request_id" in usable:
        rep.rows(c("request_id").str.len_chars() == 0, "request_id is empty")
        first = f.with_row_index("_first").group_by("request_id").agg(c("_first").min())
        rep.frame = f.join(first, on="request_id", how="left", maintain_order="left")
        rep.rows(
            c("request_id").is_not_null() & (c("_first") != pl.int_range(pl.len())),
            "duplicate request_id",
            pl.format("first at row {}", c("_first")),
        )
        rep.frame = f
    if "arrival_ns" in usable:
        t = c("arrival_ns")
        if f.schema["arrival_ns"].is_float():
            rep.rows(t.is_nan(), "arrival_ns is NaN")
            rep.rows(t.is_infinite(), "arrival_ns is infinite")
        rep.rows(t < 0, "arrival_ns is negative", t.cast(pl.Utf8))
        rep.rows(
            t < t.shift(1),
            "arrivals are not sorted",
            pl.format("arrival_ns {} is before the previous row's {}", t, t.shift(1)),
        )
    if "domain" in usable:
        d = c("domain").cast(pl.Utf8)
        rep.rows(
            d.is_not_null() & ~d.is_in(list(DOMAINS)),
            f"unknown domain (expected one of {', '.join(DOMAINS)})",
            pl.format("'{}'", d),
        )
    if "segment" in usable:
        s = c("segment")
        rep.rows(s < 0, "segment is negative", s.cast(pl.Utf8))
        rep.rows(s < s.shift(1), "segment decreases", pl.format("{} after {}", s, s.shift(1)))
    _check_prompts(rep, usable)
    if "max_new_tokens" in usable:
        rep.rows(c("max_new_tokens") <= 0, "max_new_tokens is not positive", c("max_new_tokens").cast(pl.Utf8))
    for col in ("segment", "max_new_tokens", "seed"):  # must fit the canonical type (int32 / int64)
        if col in usable:
            hi = 2**31 - 1 if COLUMNS[col] == pl.Int32 else 2**63 - 1
            rep.rows(
                c(col).cast(pl.Float64) > hi,
                f"{col} is too large for {str(COLUMNS[col]).lower()}",
                c(col).cast(pl.Utf8),
            )
    for col, lo_open in (("temperature", False), ("top_p", True)):
        if col in usable:
            x = c(col).cast(pl.Float64)
            bad = (
                x.is_nan()
                | x.is_infinite()
                | ((x <= 0) if lo_open else (x < 0))
                | ((x > 1) if col == "top_p" else pl.lit(False))
            )
            rep.rows(bad, f"{col} out of range ({'(0, 1]' if col == 'top_p' else 'finite and >= 0'})", x.cast(pl.Utf8))
    if "seed" in usable:
        rep.rows(c("seed") < 0, "seed is negative", c("seed").cast(pl.Utf8))
    if "metadata" in usable:
        bad = [i for i, s in enumerate(f["metadata"].to_list()) if s is not None and not _is_json_object(s)]
        rep.rows(pl.int_range(pl.len()).is_in(bad), "metadata is not a JSON object")


def _is_json_object(s: str) -> bool:
    if not s.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(s), dict)
    except ValueError:
        return False


def _check_prompts(rep: _Report, usable: set[str]) -> None:
    f, c = rep.frame, pl.col
    has = []
    if "prompt" in usable:
        rep.rows(c("prompt").is_not_null() & (c("prompt").str.strip_chars() == ""), "prompt is empty")
        has.append(c("prompt").is_not_null() & (c("prompt").str.strip_chars() != ""))
    if "messages" in usable:
        rep.rows(c("messages").is_not_null() & (c("messages").list.len() == 0), "messages is an empty list")
        has.append(c("messages").list.len().fill_null(0) > 0)
        if "prompt" in usable:
            rep.rows(c("prompt").is_not_null() & c("messages").is_not_null(), "both prompt and messages are set")
        msgs = (
            f.select(pl.int_range(pl.len()).alias("_row"), c("messages"))
            .filter(c("messages").list.len() > 0)
            .explode("messages")
            .unnest("messages")
        )
        msgs = msgs.with_columns(last=pl.int_range(pl.len()).over("_row") == pl.len().over("_row") - 1)
        bad_role = msgs.filter(c("role").is_null() | ~c("role").is_in(list(ROLES)))["_row"].unique()
        no_content = msgs.filter(c("content").is_null())["_row"].unique()
        bad_last = msgs.filter(c("last") & ((c("role") != "user") | (c("content").str.strip_chars() == "")))[
            "_row"
        ].unique()
        rep.rows(
            pl.int_range(pl.len()).is_in(bad_role.implode()),
            f"a message has an unknown role (expected one of {', '.join(ROLES)})",
        )
        rep.rows(pl.int_range(pl.len()).is_in(no_content.implode()), "a message has null content")
        rep.rows(pl.int_range(pl.len()).is_in(bad_last.implode()), "messages do not end with a non-empty user turn")
    if "prompt_token_ids" in usable:
        ids = c("prompt_token_ids")
        rep.rows(ids.is_not_null() & (ids.list.len() == 0), "prompt_token_ids is an empty list")
        rep.rows(
            ids.list.eval(pl.element().is_null() | (pl.element() < 0) | (pl.element().cast(pl.Float64) > 2**31 - 1))
            .list.any()
            .fill_null(False),
            "prompt_token_ids has a null, negative or too large (>= 2^31) id",
        )
        has.append(ids.list.len().fill_null(0) > 0)
    if has:
        rep.rows(~pl.any_horizontal(has), "no prompt (prompt, messages and prompt_token_ids are all null or empty)")


def validate_frame(frame: pl.DataFrame, where: str = "trace", max_rows: int = MAX_ROWS) -> list[str]:
    """Problems of a trace held in memory (columns, types, rows); [] when it is valid."""
    rep = _Report(where, frame, max_rows)
    for col in COLUMNS:
        if col not in frame.columns:
            rep.add(f"missing column {col!r}")
    for col in frame.columns:
        if col not in COLUMNS:
            rep.add(f"unexpected column {col!r} (schema v{SCHEMA_VERSION} columns: {', '.join(COLUMNS)})")
    usable = set()
    for col in COLUMNS:
        if col in frame.columns:
            why = _dtype_problem(col, frame.schema[col])
            if why is None:
                usable.add(col)
            else:
                rep.add(why)
                if col in INTEGER_COLUMNS and frame.schema[col].is_float():
                    usable.add(col)  # still report NaN / negative / unsorted rows
    if frame.height == 0:
        rep.add("no requests (0 rows)")
    else:
        _check_rows(rep, usable)
    return rep.lines


def _check_metadata(meta: dict[str, str], where: str) -> list[str]:
    out = []
    version = meta.get(KEY_VERSION)
    if version is None:
        out.append(f"{where}: no {KEY_VERSION!r} in the Parquet key-value metadata (not an aurora trace?)")
    elif version.strip() != str(SCHEMA_VERSION):
        out.append(f"{where}: schema version {version!r} is not supported (this reader knows version {SCHEMA_VERSION})")
    config = meta.get(KEY_CONFIG)
    if config is None:
        out.append(f"{where}: no {KEY_CONFIG!r} in the Parquet key-value metadata")
    elif not _is_json_object(config):
        out.append(f"{where}: {KEY_CONFIG!r} metadata is not a JSON object")
    return out


def read_parquet_checked(path: Path | str) -> tuple[pl.DataFrame | None, dict[str, str], list[str]]:
    """(frame or None, key-value metadata, file-level problems)."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        return None, {}, [f"{where}: file not found"]
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(size - 4, 0))
            tail = fh.read(4)
    except OSError as exc:
        return None, {}, [f"{where}: cannot read ({exc.strerror or exc})"]
    if size < 12 or head != b"PAR1" or tail != b"PAR1":
        why = (
            "empty"
            if size == 0
            else "truncated (no PAR1 footer)"
            if head == b"PAR1"
            else "another format (no PAR1 magic)"
        )
        return None, {}, [f"{where}: not a Parquet file: {why}"]
    try:
        meta = pl.read_parquet_metadata(path)
        frame = pl.read_parquet(path)
    except (Exception, PanicException) as exc:  # corrupt files raise many types, even panics
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, {}, [f"{where}: corrupt Parquet file ({first[:200]})"]
    return frame, meta, []


def validate_loaded(frame: pl.DataFrame, meta: dict[str, str], where: str, max_rows: int = MAX_ROWS) -> list[str]:
    """Problems of a file already read by read_parquet_checked (metadata, columns, rows)."""
    return _check_metadata(meta, where) + validate_frame(frame, where, max_rows)


def validate_file(path: Path | str, max_rows: int = MAX_ROWS) -> list[str]:
    """Every problem of a trace file, one line each; [] when it is valid."""
    frame, meta, problems = read_parquet_checked(path)
    if frame is None:
        return problems
    return validate_loaded(frame, meta, str(path), max_rows)
