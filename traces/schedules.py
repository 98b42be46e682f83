"""Schedules: which domain each request comes from, phase by phase.

Every schedule expands to a list of :class:`Segment` (a number of requests and a domain mix,
optionally drifting linearly to a second mix), and :func:`assign_domains` turns segments into a
per-request domain:

- ``ordered``: segments grouped by domain, abrupt shifts between them (lengths configurable).
- ``mixed``: one segment, domains shuffled with exact proportions.
- ``sharp``: two domains, 50/50, one abrupt switch in the middle.
- ``drift``: one segment whose mix changes linearly from ``start`` to ``end``.
- ``phase``: alternating high- and low-acceptance phases (e.g. code, then chat), each a segment,
  optionally with its own temperature.

Constant-mix segments get exact counts (largest remainder) in shuffled order, so the mix of a
segment is exactly what the config says up to one request; drift segments draw each request
from its interpolated mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aurora_sim.errors import AuroraError

from . import parse
from .schema import DOMAINS

MAX_REQUESTS = 100_000_000


@dataclass(frozen=True)
class Segment:
    requests: int
    mix: dict[str, float]  # normalised, DOMAINS order
    mix_end: dict[str, float] | None = None  # drift linearly to this mix across the segment
    temperature: float | None = None  # overrides the sampling temperature

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"requests": self.requests, "mix": self.mix}
        if self.mix_end is not None:
            d["mix_end"] = self.mix_end
        if self.temperature is not None:
            d["temperature"] = self.temperature
        return d


def _requests(value: Any, where: str) -> int:
    return parse.integer(value, where, lo=1, hi=MAX_REQUESTS)


def _segment(value: Any, where: str) -> Segment:
    """{"domain": d, "requests": n} or {"mix": {...}, "requests": n} [+ mix_end, temperature]."""
    parse.obj(value, where, required=("requests",), optional=("domain", "mix", "mix_end", "temperature"))
    if ("domain" in value) == ("mix" in value):
        raise AuroraError(f"{where}: give exactly one of 'domain' or 'mix'")
    mix = (
        {parse.domain(value["domain"], f"{where}.domain"): 1.0}
        if "domain" in value
        else parse.mix(value["mix"], f"{where}.mix")
    )
    end = parse.mix(value["mix_end"], f"{where}.mix_end") if "mix_end" in value else None
    temp = parse.number(value["temperature"], f"{where}.temperature", lo=0.0) if "temperature" in value else None
    return Segment(_requests(value["requests"], f"{where}.requests"), mix, end, temp)


@dataclass(frozen=True)
class Ordered:
    kind: ClassVar[str] = "ordered"
    segments: tuple[Segment, ...]

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Ordered:
        parse.obj(d, where, required=("kind", "segments"))
        segs = d["segments"]
        if not isinstance(segs, list) or not segs:
            raise AuroraError(f"{where}.segments: expected a non-empty list")
        return cls(tuple(_segment(s, f"{where}.segments[{i}]") for i, s in enumerate(segs)))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "segments": [s.to_dict() for s in self.segments]}

    def expand(self) -> list[Segment]:
        return list(self.segments)


@dataclass(frozen=True)
class Mixed:
    kind: ClassVar[str] = "mixed"
    requests: int
    mix: dict[str, float] = field(default_factory=lambda: {d: 1 / len(DOMAINS) for d in DOMAINS})

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Mixed:
        parse.obj(d, where, required=("kind", "requests"), optional=("mix",))
        mix = parse.mix(d["mix"], f"{where}.mix") if "mix" in d else cls(1).mix
        return cls(_requests(d["requests"], f"{where}.requests"), mix)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "requests": self.requests, "mix": self.mix}

    def expand(self) -> list[Segment]:
        return [Segment(self.requests, self.mix)]


@dataclass(frozen=True)
class Sharp:
    kind: ClassVar[str] = "sharp"
    requests: int
    first: str = "code"
    second: str = "chat"

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Sharp:
        parse.obj(d, where, required=("kind", "requests"), optional=("first", "second"))
        n = _requests(d["requests"], f"{where}.requests")
        if n < 2:
            raise AuroraError(f"{where}.requests: a sharp switch needs at least 2 requests")
        first = parse.domain(d.get("first", "code"), f"{where}.first")
        second = parse.domain(d.get("second", "chat"), f"{where}.second")
        if first == second:
            raise AuroraError(f"{where}: first and second are the same domain {first!r}")
        return cls(n, first, second)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "requests": self.requests, "first": self.first, "second": self.second}

    def expand(self) -> list[Segment]:
        half = self.requests // 2
        return [Segment(half, {self.first: 1.0}), Segment(self.requests - half, {self.second: 1.0})]


@dataclass(frozen=True)
class Drift:
    kind: ClassVar[str] = "drift"
    requests: int
    start: dict[str, float]
    end: dict[str, float]

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Drift:
        parse.obj(d, where, required=("kind", "requests", "start", "end"))
        return cls(
            _requests(d["requests"], f"{where}.requests"),
            parse.mix(d["start"], f"{where}.start"),
            parse.mix(d["end"], f"{where}.end"),
        )

    def to_dict(self) -> dict:
        return {"kind": self.kind, "requests": self.requests, "start": self.start, "end": self.end}

    def expand(self) -> list[Segment]:
        return [Segment(self.requests, self.start, self.end)]


@dataclass(frozen=True)
class Phase:
    kind: ClassVar[str] = "phase"
    phases: int
    requests_per_phase: int
    high: dict[str, float]
    low: dict[str, float]
    high_temperature: float | None = None
    low_temperature: float | None = None

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Phase:
        parse.obj(
            d,
            where,
            required=("kind", "phases", "requests_per_phase", "high", "low"),
            optional=("high_temperature", "low_temperature"),
        )
        temps = [
            parse.number(d[k], f"{where}.{k}", lo=0.0) if d.get(k) is not None else None
            for k in ("high_temperature", "low_temperature")
        ]
        return cls(
            parse.integer(d["phases"], f"{where}.phases", lo=1, hi=100_000),
            _requests(d["requests_per_phase"], f"{where}.requests_per_phase"),
            parse.mix(d["high"], f"{where}.high"),
            parse.mix(d["low"], f"{where}.low"),
            *temps,
        )

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "phases": self.phases,
            "requests_per_phase": self.requests_per_phase,
            "high": self.high,
            "low": self.low,
            "high_temperature": self.high_temperature,
            "low_temperature": self.low_temperature,
        }

    def expand(self) -> list[Segment]:
        out = []
        for p in range(self.phases):  # phase 0 is high, then alternate
            mix, temp = (self.high, self.high_temperature) if p % 2 == 0 else (self.low, self.low_temperature)
            out.append(Segment(self.requests_per_phase, mix, None, temp))
        return out


SCHEDULES = {cls.kind: cls for cls in (Ordered, Mixed, Sharp, Drift, Phase)}
Schedule = Ordered | Mixed | Sharp | Drift | Phase


def schedule_from_dict(d: Any, where: str = "schedule") -> Schedule:
    parse.obj(
        d,
        where,
        required=("kind",),
        optional=tuple(
            {
                "segments",
                "requests",
                "mix",
                "first",
                "second",
                "start",
                "end",
                "phases",
                "requests_per_phase",
                "high",
                "low",
                "high_temperature",
                "low_temperature",
            }
        ),
    )
    kind = parse.text(d["kind"], f"{where}.kind", tuple(SCHEDULES))
    return SCHEDULES[kind].from_dict(d, where)


# ---------------------------------------------------------------------------- assignment


def _exact_counts(mix: dict[str, float], n: int) -> np.ndarray:
    """Largest-remainder counts per domain (DOMAINS order) summing to n."""
    p = np.array([mix.get(d, 0.0) for d in DOMAINS])
    raw = p * n
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")  # ties go to the earlier domain
    counts[order[: n - counts.sum()]] += 1
    return counts


def mix_at(seg: Segment, t: np.ndarray) -> np.ndarray:
    """The segment's mix at relative positions t in [0, 1]: [len(t), len(DOMAINS)]."""
    start = np.array([seg.mix.get(d, 0.0) for d in DOMAINS])
    end = start if seg.mix_end is None else np.array([seg.mix_end.get(d, 0.0) for d in DOMAINS])
    return (1 - t)[:, None] * start[None, :] + t[:, None] * end[None, :]


def assign_domains(segments: list[Segment], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(domain index into DOMAINS, segment index) per request, in schedule order."""
    doms, segs = [], []
    for k, seg in enumerate(segments):
        n = seg.requests
        if seg.mix_end is None:
            d = np.repeat(np.arange(len(DOMAINS)), _exact_counts(seg.mix, n))
            rng.shuffle(d)
        else:
            p = mix_at(seg, (np.arange(n) + 0.5) / n)
            u = rng.random(n)
            d = (u[:, None] > np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)  # inverse CDF per request
        doms.append(d.astype(np.int8))
        segs.append(np.full(n, k, dtype=np.int32))
    return np.concatenate(doms), np.concatenate(segs)
