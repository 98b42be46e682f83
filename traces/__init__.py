"""Traces: a validated Parquet trace format (schema.py documents version 1), generators of
real-content traffic (domains × schedules × arrivals, named scenarios) and importers.

    from traces import scenario, generate_to_file, read_trace, iter_requests

    generate_to_file(scenario("shift-ci", seed=0), "shift-ci.parquet")
    trace = read_trace("shift-ci.parquet")        # validated; trace.frame, trace.config
    for req in iter_requests(trace): ...

Modules: schema (columns, metadata keys), validate, io (read/write), schedules, arrivals,
prompts, sampling, config, scenarios, generate, summary (show/plot), importers/, cli.
Names are imported lazily so `aurora --help` stays fast.
"""

from __future__ import annotations

import importlib

_API = {
    "SCHEMA_VERSION": "schema",
    "COLUMNS": "schema",
    "read_trace": "io",
    "write_trace": "io",
    "iter_requests": "io",
    "Trace": "io",
    "TraceRequest": "io",
    "validate_file": "validate",
    "validate_frame": "validate",
    "TraceConfig": "config",
    "load_config": "config",
    "scenario": "scenarios",
    "SCENARIOS": "scenarios",
    "generate_trace": "generate",
    "generate_to_file": "generate",
    "import_trace": "importers",
    "import_frame": "importers",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
