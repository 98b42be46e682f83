"""Trace format, schema version 1: one Parquet file per trace, one row per request.

Rows are in replay order: sorted by ``arrival_ns`` (ties keep file order) and ``segment`` never
decreases. Columns (all non-null unless marked nullable):

==================  =====================================  =======================================
column              type                                   meaning
==================  =====================================  =======================================
request_id          string                                 unique within the file
arrival_ns          int64                                  virtual arrival time, ns from the start
domain              string                                 one of DOMAINS ("code", "finance", "chat")
segment             int32                                  index of the schedule phase (>= 0)
prompt              string, nullable                       text prompt (sent as is, no template)
messages            list<struct<role, content>>, nullable  chat prompt, ends with a user turn
prompt_token_ids    list<int32>, nullable                  token ids (tokenizer named in metadata)
max_new_tokens      int32                                  > 0
temperature         float64                                >= 0 (0 = greedy)
top_p               float64                                in (0, 1]
seed                int64                                  >= 0, this request's sampling seed
ignore_eos          bool                                   generate exactly max_new_tokens
metadata            string                                 a JSON object (provenance of the row)
==================  =====================================  =======================================

A row carries a prompt as ``prompt`` (text) or ``messages`` (chat; never both) and/or
``prompt_token_ids``. A replay renders ``messages`` with its own model's chat template.

Parquet key-value metadata: ``aurora.trace.schema_version`` ("1") and ``aurora.trace.config``
(JSON: the generator's or importer's full config, including the ``arrivals`` it used; a
``closed`` arrivals config means arrival_ns is 0 everywhere and the replay keeps
``concurrency`` requests in flight).
"""

from __future__ import annotations

import polars as pl

from aurora_sim.corpora import DOMAINS, ROLES

SCHEMA_VERSION = 1
KEY_VERSION = "aurora.trace.schema_version"
KEY_CONFIG = "aurora.trace.config"

MESSAGE = pl.Struct({"role": pl.Utf8, "content": pl.Utf8})

# column -> canonical dtype (the writer casts to these)
COLUMNS: dict[str, pl.DataType] = {
    "request_id": pl.Utf8(),
    "arrival_ns": pl.Int64(),
    "domain": pl.Utf8(),
    "segment": pl.Int32(),
    "prompt": pl.Utf8(),
    "messages": pl.List(MESSAGE),
    "prompt_token_ids": pl.List(pl.Int32()),
    "max_new_tokens": pl.Int32(),
    "temperature": pl.Float64(),
    "top_p": pl.Float64(),
    "seed": pl.Int64(),
    "ignore_eos": pl.Boolean(),
    "metadata": pl.Utf8(),
}
NULLABLE = frozenset({"prompt", "messages", "prompt_token_ids"})
# columns a reader may store with another width of the same kind (e.g. int64 segment)
INTEGER_COLUMNS = frozenset({"arrival_ns", "segment", "max_new_tokens", "seed"})
FLOAT_COLUMNS = frozenset({"temperature", "top_p"})

__all__ = [
    "COLUMNS",
    "DOMAINS",
    "FLOAT_COLUMNS",
    "INTEGER_COLUMNS",
    "KEY_CONFIG",
    "KEY_VERSION",
    "MESSAGE",
    "NULLABLE",
    "ROLES",
    "SCHEMA_VERSION",
    "empty_frame",
]


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=COLUMNS)
