"""Importers: turn other people's traffic into a trace (`aurora trace import FORMAT SRC -o OUT`).

Formats: ``openai-jsonl``, ``sharegpt``, ``sglang-log``, ``hf-datasets``, ``length-only``.
Each module parses its source into records (errors name the file and line or row); this module
fills in what the source lacks and writes the trace atomically, after validating it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from aurora_sim.errors import AuroraError
from aurora_sim.hashing import sha256_file as file_sha256

from ..io import write_trace
from . import hf_datasets, length_only, openai_jsonl, sglang_log, sharegpt
from .common import ImportOptions, build_frame

FORMATS = ("openai-jsonl", "sharegpt", "sglang-log", "hf-datasets", "length-only")


def import_frame(fmt: str, src: Path | str, opts: ImportOptions | None = None, **kw) -> tuple[pl.DataFrame, dict]:
    """(frame, config for the metadata). Format-specific keywords: sharegpt `turns`; hf-datasets
    `split`, `column`; length-only `time_unit`, `chars_per_token`, `block_size`,
    `max_prompt_chars`, `documents`."""
    src = Path(src)
    opts = opts or ImportOptions()
    if fmt == "openai-jsonl":
        records, details = openai_jsonl.read(src, **kw)
    elif fmt == "sharegpt":
        records, details = sharegpt.read(src, **kw)
    elif fmt == "sglang-log":
        records, details = sglang_log.read(src, **kw)
    elif fmt == "hf-datasets":
        records, details = hf_datasets.read(src, **kw)
    elif fmt == "length-only":
        records, details = length_only.read(src, opts.domain, seed=opts.seed, **kw)
    else:
        raise AuroraError(f"unknown import format {fmt!r} (expected one of {', '.join(FORMATS)})")
    frame, arrivals = build_frame(records, opts, prefix=fmt.split("-")[0], where=str(src))
    if arrivals.get("kind") == "source" and "source_arrivals" in details:
        arrivals = details.pop("source_arrivals")
    details.pop("source_arrivals", None)
    config = {
        "name": f"import-{fmt}",
        "importer": fmt,
        "source": str(src),
        "source_sha256": file_sha256(src) if src.is_file() else None,
        "options": opts.to_dict() | details,
        "arrivals": arrivals,
    }
    return frame, config


def import_trace(fmt: str, src: Path | str, out: Path | str, opts: ImportOptions | None = None, **kw) -> Path:
    frame, config = import_frame(fmt, src, opts, **kw)
    return write_trace(frame, out, config)
