"""One random stream per subsystem, derived from (seed, name): streams never share state, so
changing how one subsystem draws (or adding a new one) leaves every other stream as it was."""

from __future__ import annotations

import hashlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """A PCG64 generator seeded by SHA-256 of (seed, name); same inputs, same draws anywhere."""
    digest = hashlib.sha256(f"aurora-sim.traces/{int(seed)}/{name}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))
