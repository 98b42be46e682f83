"""Loading a draft for /update_weights_from_disk without trusting the request.

Rules: the path must resolve inside the configured weights directory (no `..`, no absolute
path elsewhere, no symlink anywhere on the way or inside the version directory); only
safetensors are read (never pickle / torch.load); the sha256 given in the request must match
the weights. The files are copied into a private temp directory first and hashed and loaded
from that copy, so a file swapped on disk between the check and the load cannot slip in.
"""

from __future__ import annotations

import hmac
import shutil
import tempfile
from pathlib import Path

from aurora_sim.errors import AuroraError
from aurora_sim.hashing import sha256_file
from aurora_sim.models.drafts import load_draft

ALLOWED = ("config.json", "model.safetensors")


def resolve_version_dir(weights_dir: Path, model_path: str) -> Path:
    if not model_path or "\x00" in model_path:
        raise AuroraError("model_path is empty")
    root = Path(weights_dir).resolve(strict=True)
    given = Path(model_path)
    candidate = given if given.is_absolute() else root / given
    # Walk the un-resolved path from the root: any symlink on the way is refused outright.
    try:
        rel = Path(*candidate.parts).relative_to(root) if candidate.is_absolute() else None
    except ValueError:
        rel = None
    if rel is None or ".." in rel.parts:
        raise AuroraError(f"{model_path}: outside the weights directory")
    p = root
    for part in rel.parts:
        p = p / part
        if p.is_symlink():
            raise AuroraError(f"{model_path}: symlinks are not followed")
    if not p.is_dir():
        raise AuroraError(f"{model_path}: no such draft directory in the weights directory")
    real = p.resolve(strict=True)
    if not real.is_relative_to(root):
        raise AuroraError(f"{model_path}: outside the weights directory")
    return real


def load_verified(weights_dir: Path, model_path: str, sha256: str, target):
    """The draft at `model_path` if its model.safetensors hashes to `sha256`; AuroraError otherwise."""
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise AuroraError("sha256 (64 hex digits of model.safetensors) is required")
    src = resolve_version_dir(weights_dir, model_path)
    for name in ALLOWED:
        f = src / name
        if f.is_symlink() or not f.is_file():
            raise AuroraError(f"{model_path}: {name} is missing or not a regular file")
    with tempfile.TemporaryDirectory(prefix="aurora-draft-") as tmp:
        for name in ALLOWED:  # only these two: a stray *.safetensors or pickle beside them is never read
            shutil.copyfile(src / name, Path(tmp) / name, follow_symlinks=False)
        if not hmac.compare_digest(sha256_file(Path(tmp) / "model.safetensors"), sha256.lower()):
            raise AuroraError(f"{model_path}: sha256 does not match model.safetensors (refusing to load)")
        return load_draft(tmp, target)
