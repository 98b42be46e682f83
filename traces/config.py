"""A generator config: name, seed, schedule, arrivals, prompts and sampling.

As a file (JSON, or TOML by suffix)::

    {"name": "my-shift", "seed": 0,
     "schedule": {"kind": "ordered", "segments": [{"domain": "code", "requests": 500},
                                                   {"domain": "chat", "requests": 500}]},
     "arrivals": {"kind": "poisson", "rate_per_s": 4.0},
     "prompts": {"max_chars": 800, "kinds": {"code": {"function": 1.0}}},
     "sampling": {"temperature": 0.0, "max_new_tokens": {"code": {"median": 128, "sigma": 0.5}}}}

Only ``schedule`` is required. ``to_dict()`` writes every default out, and that full dict is
what a generated trace stores in its metadata, so ``--config`` on it regenerates the same bytes.
`aurora trace gen NAME --dump-config` prints a named scenario's config as a starting point.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aurora_sim.errors import AuroraError

from . import parse
from .arrivals import Arrivals, Closed, FromTrace, arrivals_from_dict
from .prompts import PromptConfig
from .sampling import SamplingConfig
from .schedules import Schedule, schedule_from_dict

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class TraceConfig:
    schedule: Schedule
    name: str = "custom"
    seed: int = 0
    arrivals: Arrivals = field(default_factory=Closed)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    @classmethod
    def from_dict(cls, d: Any, where: str = "config") -> TraceConfig:
        # "provenance" is written by the generator (corpus hash, pool sizes) and ignored here
        parse.obj(
            d, where, required=("schedule",), optional=("name", "seed", "arrivals", "prompts", "sampling", "provenance")
        )
        return cls(
            schedule=schedule_from_dict(d["schedule"], f"{where}.schedule"),
            name=parse.text(d.get("name", "custom"), f"{where}.name"),
            seed=parse.integer(d.get("seed", 0), f"{where}.seed", lo=0, hi=MAX_SEED),
            arrivals=arrivals_from_dict(d.get("arrivals", {"kind": "closed"}), f"{where}.arrivals"),
            prompts=PromptConfig.from_dict(d.get("prompts", {}), f"{where}.prompts"),
            sampling=SamplingConfig.from_dict(d.get("sampling", {}), f"{where}.sampling"),
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "seed": self.seed,
            "schedule": self.schedule.to_dict(),
            "arrivals": self.arrivals.to_dict(),
            "prompts": self.prompts.to_dict(),
            "sampling": self.sampling.to_dict(),
        }

    def with_seed(self, seed: int) -> TraceConfig:
        return replace(self, seed=parse.integer(seed, "seed", lo=0, hi=MAX_SEED))

    def resolved(self) -> TraceConfig:
        """Pin external inputs (an arrivals trace file's sha256) so the stored config is complete."""
        if isinstance(self.arrivals, FromTrace):
            return replace(self, arrivals=self.arrivals.resolved())
        return self

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.schedule.expand())


def load_config(path: Path | str) -> TraceConfig:
    """A TraceConfig from a JSON or TOML file; errors name the file and the key."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuroraError(f"{path}: cannot read config ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = tomllib.loads(raw) if path.suffix.lower() == ".toml" else json.loads(raw)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AuroraError(f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'} ({exc})") from None
    return TraceConfig.from_dict(data, where=str(path))
