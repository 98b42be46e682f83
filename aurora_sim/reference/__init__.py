"""The reference build: the tiny target, its static drafts and hot-vocabulary tables, shipped with
the package so that every number, figure and CI verdict is the same on every machine.

Why shipped and not built: the tiny target and its drafts are *trained*, and their bytes depend on
the CPU that trains them (bf16 autocast where the CPU has it, other kernels elsewhere). Two builds
of one recipe on two CPU kinds measured static AL 3.42 / 2.37 / 2.07 and 2.41 / 2.62 / 2.48, so a
documented number only held on the machine that made it. With the bytes fixed, what is left between
machines is the kernels' rounding in serving and in the learner (measured in docs/reference.md).

Layout, beside this file::

    manifest.json                         version, how it was built, sha256 and size of every file
    tiny/                                 the target (config, weights, tokenizer, provenance)
    drafts/tiny-eagle3-static[-<flavour>]/ the static EAGLE-3 heads (`--init static`, `static-full`)
    hot-vocab/tiny-<size>.safetensors     hot vocabularies (`--draft-vocab <size>`)

Every file is checked against the manifest's sha256 the first time a process loads it (memoised
per path, size and mtime); a missing, damaged or modified file is a one-line error naming it and is
never used. `aurora models build tiny --from-source` rebuilds the target from its recipe instead
(`aurora_sim.models.tiny`), into the cache, under the name `tiny-source`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from aurora_sim.errors import AuroraError
from aurora_sim.hashing import sha256_file

ROOT = Path(__file__).resolve().parent
MANIFEST = ROOT / "manifest.json"
TARGET = "tiny"  # the tier the reference ships
_verified: dict[tuple, str] = {}  # (path, size, mtime_ns) -> sha256 that matched


class ReferenceError(AuroraError):
    """A reference file is missing, damaged or modified."""


@cache
def manifest() -> dict:
    try:
        data = json.loads(MANIFEST.read_text())
        data["files"]  # noqa: B018 (the one key every reader needs)
        return data
    except (OSError, ValueError, KeyError) as exc:
        raise ReferenceError(f"{MANIFEST}: unreadable reference manifest ({exc.__class__.__name__})") from None


def version() -> str:
    return manifest()["version"]


def _check(rel: str) -> Path:
    entry = manifest()["files"].get(rel)
    path = ROOT / rel
    if entry is None:
        raise ReferenceError(f"{path}: not in the reference manifest ({MANIFEST})")
    try:
        st = path.stat()
    except OSError:
        raise ReferenceError(
            f"{path}: reference file missing (reinstall aurora-sim, or `aurora models build tiny --from-source`)"
        ) from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _verified.get(key) == entry["sha256"]:
        return path
    if st.st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
        raise ReferenceError(
            f"{path}: reference file damaged or modified (sha256 does not match {MANIFEST.name}; "
            "reinstall aurora-sim, or `aurora models build tiny --from-source`)"
        )
    _verified[key] = entry["sha256"]
    return path


def _verified_dir(rel_dir: str) -> Path:
    files = [rel for rel in manifest()["files"] if rel.startswith(rel_dir + "/")]
    if not files:
        raise ReferenceError(f"{ROOT / rel_dir}: not part of the reference build {version()}")
    for rel in files:
        _check(rel)
    return ROOT / rel_dir


def target_dir() -> Path:
    """The reference tiny target's directory, every file verified."""
    return _verified_dir(TARGET)


def draft_name(kind: str, flavour: str) -> str:
    return f"{TARGET}-{kind}-static" + ("" if flavour == "ci" else f"-{flavour}")


def has_draft(kind: str, flavour: str) -> bool:
    prefix = f"drafts/{draft_name(kind, flavour)}/"
    return any(rel.startswith(prefix) for rel in manifest()["files"])


def draft_dir(kind: str, flavour: str) -> Path:
    """A shipped static draft of the reference target, every file verified."""
    return _verified_dir(f"drafts/{draft_name(kind, flavour)}")


def hot_vocab_file(size: int) -> Path | None:
    """The shipped hot vocabulary of `size` tokens (verified), or None where none is shipped."""
    rel = f"hot-vocab/{TARGET}-{size}.safetensors"
    return _check(rel) if rel in manifest()["files"] else None


def is_reference(model_dir: Path | str) -> bool:
    """Whether `model_dir` is the shipped reference target (by location)."""
    try:
        return Path(model_dir).resolve() == (ROOT / TARGET).resolve()
    except OSError:
        return False


def describe() -> dict:
    """What `aurora models list` and provenance records say about the reference."""
    m = manifest()
    return {
        "version": m["version"],
        "bytes": sum(e["bytes"] for e in m["files"].values()),
        "files": len(m["files"]),
        "target_sha256": m["files"][f"{TARGET}/model.safetensors"]["sha256"],
        "built": m.get("built", {}),
    }
