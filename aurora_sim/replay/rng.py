"""One seeded random stream per subsystem, derived from (seed, name).

Streams are independent by construction (a hash of the pair), so adding draws to one subsystem
(say, the learner's batch sampling) never shifts another's (arrivals, sampling, policy).
"""

from __future__ import annotations

import hashlib
import random

import torch


def stream_seed(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"aurora-sim/{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def py_stream(seed: int, name: str) -> random.Random:
    return random.Random(stream_seed(seed, name))


def torch_stream(seed: int, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(stream_seed(seed, name))
