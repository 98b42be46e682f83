"""Read and write trace files (polars), atomically and never invalid.

    from traces.io import read_trace, write_trace, iter_requests

    write_trace(frame, "t.parquet", config={...})   # validates first; temp file, fsync, rename
    trace = read_trace("t.parquet")                 # validates; AuroraError lists the problems
    for req in iter_requests(trace): ...            # TraceRequest per row, in replay order

DuckDB reads the same files directly (``SELECT domain, count(*) FROM 't.parquet' GROUP BY 1``;
the config is in ``parquet_kv_metadata('t.parquet')``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from aurora_sim.atomic import atomic_file
from aurora_sim.errors import AuroraError

from .schema import COLUMNS, KEY_CONFIG, KEY_VERSION, SCHEMA_VERSION
from .validate import read_parquet_checked, validate_frame, validate_loaded

SHOW_PROBLEMS = 5


@dataclass(frozen=True)
class Trace:
    frame: pl.DataFrame
    config: dict
    path: Path | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def arrivals(self) -> dict:
        """The arrivals config: {"kind": "closed", "concurrency": N} is a closed loop (arrival_ns all
        0); any other kind is open loop (send each request at its arrival_ns)."""
        arrivals = self.config.get("arrivals")
        return arrivals if isinstance(arrivals, dict) and "kind" in arrivals else {"kind": "source"}

    def __len__(self) -> int:
        return self.frame.height


@dataclass(frozen=True)
class TraceRequest:
    request_id: str
    arrival_ns: int
    domain: str
    segment: int
    prompt: str | None
    messages: tuple[dict, ...] | None
    prompt_token_ids: tuple[int, ...] | None
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    ignore_eos: bool
    metadata: dict


def _problems_error(where: str, problems: list[str], verb: str) -> AuroraError:
    shown = "; ".join(p.removeprefix(f"{where}: ") for p in problems[:SHOW_PROBLEMS])
    more = f" (and {len(problems) - SHOW_PROBLEMS} more)" if len(problems) > SHOW_PROBLEMS else ""
    return AuroraError(f"{where}: {verb}: {shown}{more}")


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """Columns in schema order and canonical types (callers validate first)."""
    return frame.select([pl.col(c).cast(t) for c, t in COLUMNS.items()])


def to_parquet_bytes(frame: pl.DataFrame, config: dict) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(
        buf,
        compression="zstd",
        statistics=True,
        metadata={
            KEY_VERSION: str(SCHEMA_VERSION),
            KEY_CONFIG: json.dumps(config, sort_keys=True, ensure_ascii=False, allow_nan=False),
        },
    )
    return buf.getvalue()


def publish(path: Path, data: bytes) -> Path:
    """Write atomically (temp file, fsync, rename), readable as a normal file would be (the temp
    file is created 0600; give it the umask's usual mode)."""
    with atomic_file(path, "wb") as fh:
        os.fchmod(fh.fileno(), 0o666 & ~_umask())
        fh.write(data)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_trace(frame: pl.DataFrame, path: Path | str, config: dict) -> Path:
    """Validate, then publish atomically: on any problem nothing is written."""
    path = Path(path)
    problems = validate_frame(frame, str(path))
    if problems:
        raise _problems_error(str(path), problems, "refusing to write an invalid trace")
    return publish(path, to_parquet_bytes(canonical(frame), config))


def read_trace(path: Path | str, validate: bool = True) -> Trace:
    """Load a trace; with `validate` (default) any problem raises AuroraError naming the file."""
    path = Path(path)
    frame, meta, problems = read_parquet_checked(path)
    if frame is not None and validate:
        problems = validate_loaded(frame, meta, str(path))
    if problems:
        n = len(problems)
        raise _problems_error(
            str(path),
            problems,
            f"invalid trace ({n} problem line{'s' if n != 1 else ''}; `aurora trace validate` lists all)",
        )
    try:
        config = json.loads(meta.get(KEY_CONFIG, "{}"))
        version = int(meta.get(KEY_VERSION, SCHEMA_VERSION))
    except ValueError:
        raise AuroraError(f"{path}: unreadable trace metadata") from None
    if validate:
        frame = canonical(frame)
    return Trace(frame, config if isinstance(config, dict) else {}, path, version)


def iter_requests(trace: Trace) -> Iterator[TraceRequest]:
    for r in trace.frame.iter_rows(named=True):
        yield TraceRequest(
            r["request_id"],
            r["arrival_ns"],
            r["domain"],
            r["segment"],
            r["prompt"],
            tuple(r["messages"]) if r["messages"] is not None else None,
            tuple(r["prompt_token_ids"]) if r["prompt_token_ids"] is not None else None,
            r["max_new_tokens"],
            r["temperature"],
            r["top_p"],
            r["seed"],
            r["ignore_eos"],
            json.loads(r["metadata"]),
        )
