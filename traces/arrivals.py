"""Arrival processes: int64 nanosecond arrival times for n requests.

- ``closed``: a closed loop with fixed concurrency; every arrival_ns is 0 and the replay keeps
  ``concurrency`` requests in flight, sending the next when one finishes.
- ``poisson``: exponential gaps at ``rate_per_s``.
- ``bursty``: gamma gaps with mean 1 / ``rate_per_s`` and coefficient of variation ``cv``
  (shape 1 / cv²; cv > 1 is burstier than Poisson, cv = 1 is Poisson).
- ``trace``: the timestamps of a length-only production trace (see length_trace.py), sped up
  by ``speed``; when the trace is shorter than the request count it repeats, each repetition
  starting one mean gap after the previous one ends.

The first request arrives at 0. Gaps are rounded to whole nanoseconds before they are summed,
so times are exact integers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from aurora_sim.errors import AuroraError

from . import parse
from .length_trace import TIME_UNITS, read_length_trace

NS_PER_S = 1_000_000_000


def _cumulative(gaps_s: np.ndarray) -> np.ndarray:
    gaps = np.rint(gaps_s * NS_PER_S).astype(np.int64)
    gaps[0] = 0
    return np.cumsum(gaps)


@dataclass(frozen=True)
class Closed:
    kind: ClassVar[str] = "closed"
    concurrency: int = 8

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Closed:
        parse.obj(d, where, required=("kind",), optional=("concurrency",))
        return cls(parse.integer(d.get("concurrency", 8), f"{where}.concurrency", lo=1, hi=1_000_000))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "concurrency": self.concurrency}

    def times(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(n, dtype=np.int64)


@dataclass(frozen=True)
class Poisson:
    kind: ClassVar[str] = "poisson"
    rate_per_s: float

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Poisson:
        parse.obj(d, where, required=("kind", "rate_per_s"))
        return cls(parse.number(d["rate_per_s"], f"{where}.rate_per_s", lo=0.0, hi=1e9, lo_open=True))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "rate_per_s": self.rate_per_s}

    def times(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return _cumulative(rng.exponential(1.0 / self.rate_per_s, n))


@dataclass(frozen=True)
class Bursty:
    kind: ClassVar[str] = "bursty"
    rate_per_s: float
    cv: float = 2.0

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Bursty:
        parse.obj(d, where, required=("kind", "rate_per_s"), optional=("cv",))
        return cls(
            parse.number(d["rate_per_s"], f"{where}.rate_per_s", lo=0.0, hi=1e9, lo_open=True),
            parse.number(d.get("cv", 2.0), f"{where}.cv", lo=0.01, hi=100.0),
        )

    def to_dict(self) -> dict:
        return {"kind": self.kind, "rate_per_s": self.rate_per_s, "cv": self.cv}

    def times(self, n: int, rng: np.random.Generator) -> np.ndarray:
        shape = 1.0 / self.cv**2
        return _cumulative(rng.gamma(shape, 1.0 / (self.rate_per_s * shape), n))


@dataclass(frozen=True)
class FromTrace:
    kind: ClassVar[str] = "trace"
    path: str
    time_unit: str = "ms"
    speed: float = 1.0
    sha256: str | None = None  # filled in when generating; a changed file is refused

    @classmethod
    def from_dict(cls, d: dict, where: str) -> FromTrace:
        parse.obj(d, where, required=("kind", "path"), optional=("time_unit", "speed", "sha256"))
        sha = d.get("sha256")
        if sha is not None:
            parse.text(sha, f"{where}.sha256")
        return cls(
            parse.text(d["path"], f"{where}.path"),
            parse.text(d.get("time_unit", "ms"), f"{where}.time_unit", tuple(TIME_UNITS)),
            parse.number(d.get("speed", 1.0), f"{where}.speed", lo=0.0, hi=1e6, lo_open=True),
            sha,
        )

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "path": self.path,
            "time_unit": self.time_unit,
            "speed": self.speed,
            "sha256": self.sha256,
        }

    def resolved(self) -> FromTrace:
        """This config with the file's sha256 filled in (refusing a file that changed)."""
        trace = read_length_trace(Path(self.path), self.time_unit)
        if self.sha256 is not None and self.sha256 != trace.sha256:
            raise AuroraError(
                f"{self.path}: the arrivals trace changed since this config was written "
                f"(sha256 {trace.sha256[:12]}…, config says {self.sha256[:12]}…)"
            )
        return replace(self, sha256=trace.sha256)

    def times(self, n: int, rng: np.random.Generator) -> np.ndarray:
        base = read_length_trace(Path(self.path), self.time_unit).arrival_ns
        m = len(base)
        span = int(base[-1])
        period = span + (span // (m - 1) if m > 1 and span > 0 else NS_PER_S)
        k = np.arange(n)
        t = base[k % m] + (k // m).astype(np.int64) * period
        return np.rint(t / self.speed).astype(np.int64) if self.speed != 1.0 else t.astype(np.int64)


ARRIVALS = {cls.kind: cls for cls in (Closed, Poisson, Bursty, FromTrace)}
Arrivals = Closed | Poisson | Bursty | FromTrace


def arrivals_from_dict(d: Any, where: str = "arrivals") -> Arrivals:
    parse.obj(
        d,
        where,
        required=("kind",),
        optional=("concurrency", "rate_per_s", "cv", "path", "time_unit", "speed", "sha256"),
    )
    kind = parse.text(d["kind"], f"{where}.kind", tuple(ARRIVALS))
    return ARRIVALS[kind].from_dict(d, where)
