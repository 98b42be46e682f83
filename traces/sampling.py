"""Per-request generation parameters: max_new_tokens per domain, temperature, top_p, seeds.

``max_new_tokens`` is drawn per domain from a log-normal around a median (``sigma`` 0 gives the
median every time), rounded and clipped to [min, max]. The defaults are in the range of
published serving traces (ShareGPT replies average ≈200–300 tokens; code completions are
shorter) and capped at 512 so prompt + output fits the tiny tier's 1,024-token context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aurora_sim.errors import AuroraError

from . import parse
from .schema import DOMAINS
from .seeding import stream

MAX_NEW_TOKENS = 1_000_000


@dataclass(frozen=True)
class LengthDist:
    median: int
    sigma: float = 0.0
    min: int = 1
    max: int = 4096

    @classmethod
    def from_dict(cls, d, where: str) -> LengthDist:
        if isinstance(d, int) and not isinstance(d, bool):  # a bare number: always that length
            n = parse.integer(d, where, lo=1, hi=MAX_NEW_TOKENS)
            return cls(n, 0.0, n, n)
        parse.obj(d, where, required=("median",), optional=("sigma", "min", "max"))
        lo = parse.integer(d.get("min", 1), f"{where}.min", lo=1, hi=MAX_NEW_TOKENS)
        hi = parse.integer(d.get("max", 4096), f"{where}.max", lo=lo, hi=MAX_NEW_TOKENS)
        return cls(
            parse.integer(d["median"], f"{where}.median", lo=lo, hi=hi),
            parse.number(d.get("sigma", 0.0), f"{where}.sigma", lo=0.0, hi=5.0),
            lo,
            hi,
        )

    def to_dict(self) -> dict:
        return {"median": self.median, "sigma": self.sigma, "min": self.min, "max": self.max}

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.sigma == 0.0:
            return np.full(n, self.median, dtype=np.int32)
        x = np.rint(self.median * np.exp(self.sigma * rng.standard_normal(n)))
        return np.clip(x, self.min, self.max).astype(np.int32)


DEFAULT_MAX_NEW_TOKENS = {
    "code": LengthDist(160, 0.6, 16, 512),
    "finance": LengthDist(256, 0.5, 32, 512),
    "chat": LengthDist(256, 0.7, 16, 512),
}


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.0
    top_p: float = 1.0
    ignore_eos: bool = False
    max_new_tokens: dict[str, LengthDist] = field(default_factory=lambda: dict(DEFAULT_MAX_NEW_TOKENS))

    @classmethod
    def from_dict(cls, d: dict, where: str = "sampling") -> SamplingConfig:
        parse.obj(d, where, optional=("temperature", "top_p", "ignore_eos", "max_new_tokens"))
        lengths = dict(DEFAULT_MAX_NEW_TOKENS)
        if "max_new_tokens" in d:
            m = d["max_new_tokens"]
            if isinstance(m, int) and not isinstance(m, bool):  # one length for every domain
                lengths = {dom: LengthDist.from_dict(m, f"{where}.max_new_tokens") for dom in DOMAINS}
            else:
                parse.obj(m, f"{where}.max_new_tokens", optional=DOMAINS)
                for dom, v in m.items():
                    lengths[dom] = LengthDist.from_dict(v, f"{where}.max_new_tokens.{dom}")
        ignore_eos = d.get("ignore_eos", False)
        if not isinstance(ignore_eos, bool):
            raise AuroraError(f"{where}.ignore_eos: expected true or false, got {ignore_eos!r}")
        return cls(
            parse.number(d.get("temperature", 0.0), f"{where}.temperature", lo=0.0, hi=100.0),
            parse.number(d.get("top_p", 1.0), f"{where}.top_p", lo=0.0, hi=1.0, lo_open=True),
            bool(ignore_eos),
            lengths,
        )

    def to_dict(self) -> dict:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "ignore_eos": self.ignore_eos,
            "max_new_tokens": {d: self.max_new_tokens[d].to_dict() for d in DOMAINS},
        }

    def max_new_tokens_for(self, domain_idx: np.ndarray, seed: int) -> np.ndarray:
        out = np.zeros(len(domain_idx), dtype=np.int32)
        for d, dom in enumerate(DOMAINS):
            rows = np.flatnonzero(domain_idx == d)
            out[rows] = self.max_new_tokens[dom].draw(len(rows), stream(seed, f"sampling/max_new_tokens/{dom}"))
        return out


def request_seeds(n: int, seed: int) -> np.ndarray:
    """A sampling seed per request, from its own stream (int64 in [0, 2^31))."""
    return stream(seed, "sampling/seed").integers(0, 2**31, n, dtype=np.int64)
