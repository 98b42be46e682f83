"""Pricing a draft in time, not acceptance: the expected speedup over no speculation that a
draft's acceptance profile buys under the run's depth policy, at the batch and context serving
sees now (what the `payoff` swap policy and the lazy/shadow gates report).

A draft's profile is survival[j] = P(a round start accepts at least j + 1 proposals), measured
on captured requests (learner/evaluate.py). A round of depth g emits E_g = 1 + survival[0] +
... + survival[g-1] tokens per row and takes round_time(batch, g, context, E_g) (the run's cost
model, the same function the `cost` depth policy asks). Depth per policy:
    fixed       g = γ every round;
    cost, ema,  the g in 0..γ with the most tokens per unit time: what `cost` converges to, and an
    confidence  upper bound on what `ema`'s tiers or a confidence cut-off reach (both stop chains
                early where they do not pay, with coarser information).
Speedup = (E_g / round_time(g)) / (1 / round_time(0)): a plain decode round emits one token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

RoundTime = Callable[[int, int, int, float], float]  # (batch, γ, context per row, tokens per row) -> ns


def expected_tokens(survival: Sequence[float], depth: int) -> float:
    return 1.0 + sum(survival[:depth])


def expected_speedup(
    survival: Sequence[float], batch: int, context: int, round_time: RoundTime, adaptive: bool
) -> tuple[float, int]:
    """(expected speedup vs no speculation, the depth that gets it)."""
    batch = max(int(batch), 1)
    base = 1.0 / max(round_time(batch, 0, context, 1.0), 1e-9)
    depths = range(len(survival) + 1) if adaptive else [len(survival)]
    best, best_g = -1.0, 0
    for g in depths:
        tokens = expected_tokens(survival, g)
        rate = tokens / max(round_time(batch, g, context, tokens), 1e-9)
        if rate > best:
            best, best_g = rate, g
    return best / base, best_g


def time_saved_ns(serving_speedup: float, candidate_speedup: float, horizon_ns: float) -> float:
    """Serving time the candidate saves over `horizon_ns` of serving at the current draft's pace:
    the same tokens take serving/candidate of the time (negative when the candidate is slower)."""
    if candidate_speedup <= 0:
        return -horizon_ns
    return horizon_ns * (1.0 - serving_speedup / candidate_speedup)
