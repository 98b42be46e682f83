"""What a controller can decide. Applying a decision is the serving side's job."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Swap:
    version: int
    reason: str


@dataclass(frozen=True)
class Hold:
    version: int  # the candidate that was not swapped in
    reason: str


@dataclass(frozen=True)
class Rollback:
    version: int  # the version to serve again
    reason: str


Decision = Swap | Hold | Rollback
