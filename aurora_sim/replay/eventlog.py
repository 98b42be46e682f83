"""The event log: one directory per run, Parquet tables DuckDB reads with a glob.

    RUN/runs.parquet                one row: the run's identity, config and final status
    RUN/requests/part-00000.parquet one row per trace request (completed or refused, with reason)
    RUN/rounds/part-*.parquet       one row per request per verify round
    RUN/train_steps/part-*.parquet  one row per optimizer step (dropped ones too, with status)
    RUN/swaps/part-*.parquet        one row per controller decision (swap, rollback, hold)
    RUN/versions/part-*.parquet     the draft version registry (id, parent, step, checksum, metrics)

Times are int64 virtual nanoseconds; every table has `run_id`; every file carries the schema
version and the full config in its key-value metadata. Rows are buffered and written as parts,
each published atomically, at points fixed by the replay's progress (every `flush_every`
finished requests), never by the wall clock: a killed replay leaves whole parts of what had
finished, and two runs with one config write the same bytes. Wall-clock figures go to
RUN/wall.json, outside the log.

Acceptance-length convention: AL = (accepted + bonus) / rounds, the bonus token included
(1.0 = nothing accepted), as SGLang and vLLM report it. `bonus` is the target's own token that
every verify round emits (the correction at the first rejection, or the extra token when all
proposals were accepted), so generated = accepted + bonus in every round.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl

from traces.io import publish

SCHEMA_VERSION = 1
KEY_VERSION = "aurora.eventlog.schema_version"
KEY_CONFIG = "aurora.eventlog.config"
AL_CONVENTION = "AL = (accepted + bonus) / verify rounds; bonus token included; 1.0 = nothing accepted"

I16, I32, I64, F64, STR = pl.Int16(), pl.Int32(), pl.Int64(), pl.Float64(), pl.Utf8()

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "runs": {
        "run_id": STR,
        "schema_version": I32,
        "status": STR,
        "name": STR,
        "arm": STR,
        "trace": STR,
        "trace_sha256": STR,
        "model": STR,
        "draft": STR,
        "init": STR,
        "policy": STR,
        "lambda_discard": F64,
        "batch": I32,
        "gamma": I32,
        "hardware": STR,
        "deployment": STR,
        "seed": I64,
        "requests": I64,
        "end_ns": I64,
        "config_json": STR,
        "cost_model_json": STR,
        "segments_json": STR,
        # where the virtual time went (replay/loop.py `time_ledger`): serving, drafting within
        # it, swap pauses, background publishing; null until the run completes
        "time_json": STR,
    },
    "requests": {
        "run_id": STR,
        "request_index": I32,
        "request_id": STR,
        "domain": STR,
        "segment": I32,
        "status": STR,
        "finish_reason": STR,
        "arrival_ns": I64,
        "admit_ns": I64,
        "first_token_ns": I64,
        "finish_ns": I64,
        "prompt_tokens": I32,
        "output_tokens": I32,
        "rounds": I32,
        "proposed": I32,
        "accepted": I32,
        "output_ids": pl.List(I32),
    },
    "rounds": {
        "run_id": STR,
        "round": I64,
        "request_index": I32,
        "t_start_ns": I64,
        "t_end_ns": I64,
        "draft_version": I32,
        "batch": I16,
        "position": I32,
        "proposed": I16,
        "accepted": I16,
        "bonus": I16,
        "emitted": I16,
    },
    "train_steps": {
        "run_id": STR,
        "step": I32,
        "status": STR,
        "t_start_ns": I64,
        "t_end_ns": I64,
        "requests": I32,
        "new_requests": I32,
        "tokens": I32,
        "discard_tokens": I32,
        "loss": F64,
        "loss_accepted": F64,
        "loss_discard": F64,
        "grad_norm": F64,
        "newest_capture_ns": I64,
        "oldest_capture_ns": I64,
        "base_version": I32,
    },
    "swaps": {
        "run_id": STR,
        "decision": I32,
        "kind": STR,
        "policy": STR,
        "reason": STR,
        "decided_ns": I64,
        "ready_ns": I64,
        "effective_ns": I64,
        "from_version": I32,
        "to_version": I32,
        "train_step": I32,
        "newest_capture_ns": I64,
        "metrics_json": STR,
    },
    "versions": {
        "run_id": STR,
        "version": I32,
        "parent": I32,
        "train_step": I32,
        "created_ns": I64,
        "sha256": STR,
        "path": STR,
        "metrics_json": STR,
    },
}
PART_TABLES = ("requests", "rounds", "train_steps", "swaps", "versions")


def parquet_bytes(table: str, rows: list[dict], config_json: str) -> bytes:
    frame = pl.DataFrame(rows, schema=SCHEMAS[table], orient="row") if rows else pl.DataFrame(schema=SCHEMAS[table])
    buf = io.BytesIO()
    frame.write_parquet(
        buf, compression="zstd", statistics=True, metadata={KEY_VERSION: str(SCHEMA_VERSION), KEY_CONFIG: config_json}
    )
    return buf.getvalue()


class EventLog:
    """Buffers rows per table and publishes them as numbered parts."""

    def __init__(self, root: Path, run_id: str, config_json: str, skip_parts: int = 0):
        self.root = Path(root)
        self.run_id = run_id
        self.config_json = config_json
        self.rows: dict[str, list[dict]] = {t: [] for t in PART_TABLES}
        self.parts = 0
        # --resume: parts below this index already exist; they are recomputed and checked, not rewritten
        self.skip_parts = skip_parts
        self.mismatch: str | None = None

    def add(self, table: str, **row) -> None:
        row["run_id"] = self.run_id
        self.rows[table].append(row)

    def flush(self) -> None:
        index = self.parts
        for table in PART_TABLES:
            data = parquet_bytes(table, self.rows[table], self.config_json)
            path = self.root / table / f"part-{index:05d}.parquet"
            if index < self.skip_parts:
                if not path.is_file() or path.read_bytes() != data:
                    self.mismatch = self.mismatch or str(path)
                    publish(path, data)
            else:
                publish(path, data)
            self.rows[table] = []
        self.parts += 1
        self._write_progress()

    def _write_progress(self) -> None:
        data = json.dumps({"parts": self.parts, "schema_version": SCHEMA_VERSION}, sort_keys=True).encode()
        publish(self.root / "progress.json", data)

    def write_runs(self, row: dict) -> None:
        row = {"run_id": self.run_id, "schema_version": SCHEMA_VERSION, **row}
        publish(self.root / "runs.parquet", parquet_bytes("runs", [row], self.config_json))


def read_table(run_dir: Path | str, table: str) -> pl.DataFrame:
    """All parts of one table of one run (an empty frame with the schema when there are none)."""
    run_dir = Path(run_dir)
    if table == "runs":
        return pl.read_parquet(run_dir / "runs.parquet")
    parts = sorted((run_dir / table).glob("part-*.parquet"))
    if not parts:
        return pl.DataFrame(schema=SCHEMAS[table])
    return pl.concat([pl.read_parquet(p) for p in parts], how="vertical")
