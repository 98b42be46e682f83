"""Is a run directory already a finished replay of exactly this config? (skip-or-run decisions).

Used by `aurora figures --paper` and `aurora sweep`: a run is skipped only when its runs.parquet
says `complete` and its stored config equals the one that would run, trace digest included, so a
changed trace file or setting re-runs it and an interrupted one is replaced.
"""

from __future__ import annotations

from pathlib import Path

from aurora_sim.replay.config import ReplayConfig


def expected_digest(cfg: ReplayConfig) -> str:
    """The trace digest the replay will record (the one workload.build_workload computes)."""
    from aurora_sim.replay.workload import load_trace

    return load_trace(cfg.trace, cfg.seed, cfg.limit)[2]


def complete_with(run_dir: Path, cfg: ReplayConfig) -> bool:
    """True when run_dir holds a finished replay of exactly this config (trace digest included)."""
    import polars as pl

    from aurora_sim.replay.eventlog import read_table

    if not (Path(run_dir) / "runs.parquet").is_file():
        return False
    try:
        row = read_table(run_dir, "runs").row(0, named=True)
    except (OSError, ValueError, KeyError, IndexError, pl.exceptions.PolarsError):  # unreadable: redo the run
        return False
    if row["status"] != "complete":
        return False
    from aurora_sim.errors import AuroraError
    from aurora_sim.replay.resolve import resolved_config
    from aurora_sim.replay.workload import load_trace

    try:  # `auto` settings compare as what they resolve to (what the run recorded)
        frame = load_trace(cfg.trace, cfg.seed, cfg.limit)[0]
        cfg = resolved_config(cfg, frame["temperature"].to_list())
    except AuroraError:
        return False
    return row["config_json"] == cfg.to_json()
