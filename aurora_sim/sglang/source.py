"""What `aurora draft export` reads: a saved draft directory, or a replay run directory whose
version registry (RUN/drafts/vNNNNN, RUN/versions, RUN/swaps) names the draft to take.

In a run, "serving" is the version the last applied swap or rollback put in service (version 0,
the starting draft, when none was applied); "latest" is the newest version whose weights are
still on disk (the registry prunes old ones). The weights' sha256 is checked against the
registry row before anything is exported, as the replay itself does before serving a version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aurora_sim.errors import AuroraError
from aurora_sim.hashing import sha256_file


@dataclass(frozen=True)
class DraftSource:
    path: Path  # an aurora draft directory (config.json + model.safetensors)
    model: str | None  # the target the run used (None for a bare draft directory)
    version: int | None  # registry version (None for a bare draft directory)
    sha256: str  # of model.safetensors


def resolve(path: Path, version: str = "serving") -> DraftSource:
    path = Path(path).expanduser()
    if (path / "runs.parquet").is_file():
        return _from_run(path, version)
    cfg_file = path / "config.json"
    if cfg_file.is_file():
        try:
            cfg = json.loads(cfg_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AuroraError(f"{cfg_file}: corrupt config") from None
        if "aurora_draft" in cfg:
            if version != "serving":
                raise AuroraError(f"{path}: --version applies to a run directory, not a draft directory")
            return DraftSource(path, None, None, _weights_sha(path))
    raise AuroraError(
        f"{path}: neither a replay run directory (runs.parquet) nor an aurora draft directory (config.json)"
    )


def _weights_sha(draft_dir: Path) -> str:
    weights = draft_dir / "model.safetensors"
    if not weights.is_file():
        raise AuroraError(f"{weights}: missing")
    return sha256_file(weights)


def serving_version(swaps) -> int:
    """The version the last applied swap or rollback put in service (0 if none was applied)."""
    applied = swaps.filter(swaps["kind"].is_in(["swap", "rollback"]) & swaps["effective_ns"].is_not_null())
    if applied.height == 0:
        return 0
    last = applied.sort(["effective_ns", "decision"]).tail(1)
    return int(last["to_version"][0])


def _from_run(run: Path, version: str) -> DraftSource:
    from aurora_sim.replay.eventlog import read_table

    runs = read_table(run, "runs")
    versions = read_table(run, "versions")
    if versions.height == 0:
        raise AuroraError(f"{run}: the run has no draft versions (a no-spec run?)")
    rows = {int(v): (sha, p) for v, sha, p in zip(versions["version"], versions["sha256"], versions["path"])}
    if version == "serving":
        n = serving_version(read_table(run, "swaps"))
    elif version == "latest":
        on_disk = [v for v, (_, p) in rows.items() if (run / p / "model.safetensors").is_file()]
        if not on_disk:
            raise AuroraError(f"{run}: no draft version has weights on disk")
        n = max(on_disk)
    else:
        try:
            n = int(version.removeprefix("v"))
        except ValueError:
            raise AuroraError(f"--version must be serving, latest or a number, got {version!r}") from None
    if n not in rows:
        raise AuroraError(f"{run}: draft version {n} is not in the run's registry")
    sha, rel = rows[n]
    draft_dir = run / rel
    if not (draft_dir / "model.safetensors").is_file():
        raise AuroraError(f"{draft_dir}: draft version {n} was pruned (try --version latest)")
    if _weights_sha(draft_dir) != sha:
        raise AuroraError(
            f"{draft_dir / 'model.safetensors'}: checksum does not match the run's registry (refusing to export)"
        )
    return DraftSource(draft_dir, str(runs["model"][0]), n, sha)
