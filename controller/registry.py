"""The draft version registry: every candidate gets an id, its parent, the optimizer step it
came from, metrics and a checksum; its weights are published atomically (temp dir, fsync,
rename) under RUN/drafts/vNNNNN. A swap is a pointer flip to a published version, and a load
verifies the checksum first, so a torn or tampered file is never served.

Old versions' weights are pruned (the serving version, its rollback target and the newest
`keep` candidates stay); their rows stay in the registry.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from aurora_sim.errors import AuroraError
from aurora_sim.hashing import sha256_file
from aurora_sim.models.drafts import load_draft, save_draft


@dataclass
class Version:
    version: int
    parent: int | None
    train_step: int
    created_ns: int
    sha256: str
    path: Path
    metrics: dict = field(default_factory=dict)


class VersionRegistry:
    def __init__(self, root: Path, keep: int = 3):
        self.root = Path(root)
        self.keep = keep
        self.versions: dict[int, Version] = {}

    def publish(
        self, draft, version: int, parent: int | None, train_step: int, created_ns: int, metrics: dict | None = None
    ) -> Version:
        path = self.root / f"v{version:05d}"
        save_draft(draft, path)
        v = Version(
            version, parent, train_step, created_ns, sha256_file(path / "model.safetensors"), path, dict(metrics or {})
        )
        self.versions[version] = v
        return v

    def load(self, version: int, target):
        v = self.versions.get(version)
        if v is None:
            raise AuroraError(f"draft version {version} is not in the registry")
        weights = v.path / "model.safetensors"
        if not weights.is_file():
            raise AuroraError(f"{weights}: draft version {version} was pruned or never written")
        if sha256_file(weights) != v.sha256:
            raise AuroraError(f"{weights}: checksum does not match the registry (refusing to load)")
        return load_draft(v.path, target)

    def prune(self, protect: set[int]) -> None:
        newest = sorted(self.versions)[-self.keep :] if self.keep > 0 else []
        for n, v in self.versions.items():
            if n not in protect and n not in newest and v.path.exists():
                shutil.rmtree(v.path, ignore_errors=True)
