"""Speculation-depth policies, chosen by name (`aurora replay --depth NAME`).

fixed       γ every round (today's behaviour, the default)
ema         SGLang's adaptive speculative decoding: batch-size tiers of speculative_num_steps,
            an EMA of accepted drafts, its switching rule (depth_ema.py)
cost        the γ in 0..γ_max with the most expected tokens per unit of the cost model's
            round time, the served requests walked again at every depth (depth_cost.py,
            depth_walk.py)
confidence  γ_max, but a chain stops where the draft's top probability falls below a
            threshold (depth_confidence.py; round-by-round engine only)
"""

from __future__ import annotations

from controller.depth_base import DepthPolicy, DepthRound, Fixed
from controller.depth_confidence import Confidence
from controller.depth_cost import Cost
from controller.depth_ema import Ema

DEPTH_POLICIES: dict[str, type[DepthPolicy]] = {"fixed": Fixed, "ema": Ema, "cost": Cost, "confidence": Confidence}

__all__ = ["DEPTH_POLICIES", "DepthPolicy", "DepthRound", "make_depth_policy"]


def make_depth_policy(cfg, gamma_max: int, round_time=None) -> DepthPolicy:
    if cfg.policy not in DEPTH_POLICIES:
        from aurora_sim.errors import AuroraError

        raise AuroraError(f"unknown depth policy {cfg.policy!r} (choose {', '.join(DEPTH_POLICIES)})")
    return DEPTH_POLICIES[cfg.policy](cfg, gamma_max, round_time)
