"""Length-only production traces: arrival timestamps and token counts, no text.

Accepted layouts (one request per line/row; column names matched case-sensitively, first
alias found wins):

- Mooncake (kvcache-ai/Mooncake ``mooncake_trace.jsonl``, also AIPerf's ``mooncake_trace``):
  JSONL ``{"timestamp": ms since the first request, "input_length": n, "output_length": m,
  "hash_ids": [block ids shared by requests with a common prefix]}``.
- Azure LLM inference traces (2023/2024): CSV with ``TIMESTAMP`` (a datetime such as
  ``2023-11-16 18:15:46.6805900``), ``ContextTokens``, ``GeneratedTokens``; the same names in
  JSONL work too.
- BurstGPT-style CSV: ``Timestamp`` (seconds), ``Request tokens``, ``Response tokens``.

Numeric timestamps are in ``time_unit`` (default ``ms``, Mooncake's); datetime strings are
parsed exactly to the nanosecond (their time zone, if any, is ignored). Times are made relative
to the earliest request, and rows are stably sorted by time.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aurora_sim.errors import AuroraError

from .parse import jsonl_objects

TIME_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
TIME_KEYS = ("timestamp", "TIMESTAMP", "Timestamp", "arrival_time", "time")
INPUT_KEYS = ("input_length", "ContextTokens", "input_tokens", "Request tokens", "prompt_tokens")
OUTPUT_KEYS = ("output_length", "GeneratedTokens", "output_tokens", "Response tokens", "completion_tokens")
MAX_TOKENS = 10_000_000
_DATETIME = re.compile(
    r"^\s*(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?\d*\s*(?:Z|[+-]\d\d:?\d\d)?\s*$"
)
_EPOCH = dt.date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class LengthTrace:
    path: Path
    sha256: str
    arrival_ns: np.ndarray  # int64, relative to the first request, sorted
    input_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    hash_ids: list[list[int] | None]
    lines: np.ndarray  # source line (JSONL) or row (CSV, 1 = header) of each request

    def __len__(self) -> int:
        return len(self.arrival_ns)


def datetime_ns(text: str) -> int | None:
    """'YYYY-MM-DD HH:MM:SS[.fffffffff]' -> ns since the Unix epoch (exact), or None."""
    m = _DATETIME.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    try:
        days = dt.date(y, mo, d).toordinal() - _EPOCH
    except ValueError:
        return None
    if h > 23 or mi > 59 or s > 60:
        return None
    frac = (m.group(7) or "").ljust(9, "0")
    return ((days * 86400 + h * 3600 + mi * 60 + s) * 1_000_000_000) + int(frac)


def _pick(row: dict, keys: tuple[str, ...]):
    for k in keys:
        if k in row and row[k] not in (None, ""):
            return row[k]
    return None


def _time(value, unit_ns: int, where: str) -> int:
    if isinstance(value, str):
        ns = datetime_ns(value)
        if ns is not None:
            return ns
        try:
            value = float(value)
        except ValueError:
            raise AuroraError(f"{where}: timestamp {value!r} is neither a number nor a datetime") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AuroraError(f"{where}: timestamp {value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise AuroraError(f"{where}: timestamp {value!r} is not finite")
    if abs(value) > 2**61 // unit_ns:
        raise AuroraError(f"{where}: timestamp {value!r} is out of range")
    return value * unit_ns if isinstance(value, int) else round(value * unit_ns)


def _count(value, name: str, where: str) -> int:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise AuroraError(f"{where}: {name} {value!r} is not a number") from None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value != int(value)
        or not 0 <= value <= MAX_TOKENS
    ):
        raise AuroraError(f"{where}: {name} {value!r} is not a whole number in [0, {MAX_TOKENS}]")
    return int(value)


def _rows(path: Path, text: str):
    """(line number, dict) per record, JSONL or CSV."""
    first = text.lstrip()[:1]
    if path.suffix.lower() == ".csv" or (first and first not in "{["):
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise AuroraError(f"{path}: empty CSV (no header)")
        for row in reader:
            yield reader.line_num, row
        return
    yield from jsonl_objects(path, text)


def read_length_trace(path: Path | str, time_unit: str = "ms") -> LengthTrace:
    path = Path(path)
    if time_unit not in TIME_UNITS:
        raise AuroraError(f"unknown time unit {time_unit!r} (expected one of {', '.join(TIME_UNITS)})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuroraError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AuroraError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    times, ins, outs, hashes, lines = [], [], [], [], []
    for no, row in _rows(path, text):
        where = f"{path}: line {no}"
        t, i, o = _pick(row, TIME_KEYS), _pick(row, INPUT_KEYS), _pick(row, OUTPUT_KEYS)
        for value, keys in ((t, TIME_KEYS), (i, INPUT_KEYS), (o, OUTPUT_KEYS)):
            if value is None:
                raise AuroraError(f"{where}: missing {keys[0]!r} (or {', '.join(map(repr, keys[1:]))})")
        h = row.get("hash_ids")
        if h is not None and not (
            isinstance(h, list) and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**62 for x in h)
        ):
            raise AuroraError(f"{where}: hash_ids must be a list of non-negative integers")
        times.append(_time(t, TIME_UNITS[time_unit], where))
        ins.append(_count(i, "input length", where))
        outs.append(_count(o, "output length", where))
        hashes.append(h)
        lines.append(no)
    if not times:
        raise AuroraError(f"{path}: no requests")
    t = np.array(times, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t = t[order] - t[order[0]]
    return LengthTrace(
        path,
        hashlib.sha256(data).hexdigest(),
        t,
        np.array(ins, dtype=np.int64)[order],
        np.array(outs, dtype=np.int64)[order],
        [hashes[k] for k in order],
        np.array(lines, dtype=np.int64)[order],
    )
