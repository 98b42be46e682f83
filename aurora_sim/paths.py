"""Where built artefacts live: the user cache directory, overridable with AURORA_CACHE."""

import os
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("AURORA_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aurora-sim"


def models_dir() -> Path:
    return cache_dir() / "models"


def corpora_dir() -> Path:
    return cache_dir() / "corpora"
