"""Where a validation's results live, and how they are written and read.

    OUT/validate.json      every arm side by side (predicted, measured, relative errors, look-ups
                           outside the table, contention), what `--json` copies
    OUT/<arm>/profile.json the profile this arm's prediction used: a calibration of the shapes the
                           arm meets, taken just before it is measured, or a copy of --profile
    OUT/<arm>/predicted/   the virtual-time replay's event log (an ordinary run directory)
    OUT/<arm>/measured/    the wall-clock run's event log (run_id ends in `-wall`), and in it
        validation/summary.json       this arm's numbers (the same object as in validate.json)
        validation/rounds.parquet     one row per round per clock: clock (predicted | measured),
                                      round, start_ns, dur_ns, model_ns (the cost model on that
                                      round's shape), outside (its look-up left the table),
                                      cpu_ns (measured: serving-thread CPU time, else -1), batch,
                                      gamma, prefill_requests, prefill_max, context_tokens
        validation/requests.parquet   one row per completed request per clock: clock,
                                      request_index, domain, arrival_ns, first_token_ns,
                                      finish_ns, output_tokens, rounds

The validation data sits inside the measured run, so `aurora report OUT/*/measured` finds it and
draws predicted against measured. Every file is written whole and renamed into place
(aurora_sim.atomic): the `validation/` directory as one, validate.json and profile.json each.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from aurora_sim.atomic import atomic_dir, atomic_file
from aurora_sim.errors import AuroraError

SUMMARY = "validate.json"
PROFILE = "profile.json"
ARM_DIR = "validation"


def write_json(path: Path, doc: dict) -> None:
    with atomic_file(path, "w") as fh:
        fh.write(json.dumps(doc, indent=1, sort_keys=True))


def write_arm(measured_dir: Path, summary: dict, rounds: pl.DataFrame, requests: pl.DataFrame) -> Path:
    target = Path(measured_dir) / ARM_DIR
    with atomic_dir(target) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
        rounds.write_parquet(tmp / "rounds.parquet")
        requests.write_parquet(tmp / "requests.parquet")
    return target


def has_arm(run_dir: Path | str) -> bool:
    return (Path(run_dir) / ARM_DIR / "summary.json").is_file()


def read_arm(run_dir: Path | str) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """(summary, rounds, requests) of a measured run's validation data."""
    d = Path(run_dir) / ARM_DIR
    try:
        summary = json.loads((d / "summary.json").read_text())
        return summary, pl.read_parquet(d / "rounds.parquet"), pl.read_parquet(d / "requests.parquet")
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise AuroraError(f"{d}: unreadable validation data ({exc.__class__.__name__})") from None


def check_out(out: Path) -> None:
    """OUT may be absent, empty, or a previous validation (replaced); anything else is refused."""
    if out.exists():
        if not out.is_dir():
            raise AuroraError(f"{out}: exists and is not a directory")
        if any(out.iterdir()) and not (out / SUMMARY).is_file():
            raise AuroraError(f"{out}: exists and is not a validation directory (no {SUMMARY}); not replacing it")
