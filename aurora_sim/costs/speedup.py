"""The speedup a cost model implies for speculative decoding at a given acceptance length."""

from __future__ import annotations

from aurora_sim.costs.protocol import CostModel
from aurora_sim.costs.shapes import RoundShape


def implied_speedup(cost: CostModel, batch: int, gamma: int, accept_len: float, context_per_row: int = 512) -> float:
    """Tokens/s with speculation over tokens/s of target-only decoding, steady state: a
    speculative round emits `accept_len` tokens per row (AL includes the bonus token, so it is
    capped at γ+1), a target-only round one."""
    if gamma == 0:
        return 1.0
    al = min(accept_len, gamma + 1)
    base = cost.round_ns(RoundShape.steady(batch, 0, context_per_row))
    spec = cost.round_ns(RoundShape.steady(batch, gamma, context_per_row, al))
    return al * base / spec
