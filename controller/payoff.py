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

from collections import deque
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


class LivePricing:
    """What `payoff` weighs in a live run, where there is no virtual clock: both drafts'
    expected speedup under this machine's measured round times (an `aurora calibrate` table), at
    the live batch (the client's requests in flight) and the context of recently served requests,
    against the swap's pause as the last weight update measured it (wall clock, from the request
    to the server's answer: an upper bound on the pause). The server runs γ every round (its own
    depth policy is not visible from here), so drafts are priced at fixed γ. The floor guard's
    window is measured on the wall clock: each served request's finish time, its tokens priced
    as plain decode rounds by the same table."""

    def __init__(self, profile_path: str, batch: int, floor_window: int = 200):
        from aurora_sim.costs import RoundShape, make_cost_model
        from controller.floor import FloorMeter

        self.cost = make_cost_model("profiled", profile_path=profile_path)
        self._shape = RoundShape.steady
        self.batch = max(int(batch), 1)
        self.contexts: deque[int] = deque(maxlen=64)
        self.pause_ns: int | None = None
        self.floor = FloorMeter(floor_window)

    def served(self, prompt_len: int, output_len: int, finish_ns: int | None = None) -> None:
        # a row's mean context over its life: the prompt plus half its output
        context = prompt_len + output_len // 2
        self.contexts.append(context)
        if finish_ns is not None:
            plain = self.round_ns(self.batch, 0, context, 1.0) / self.batch
            self.floor.completed(finish_ns, output_len * plain)

    def flipped(self, duration_ns: int) -> None:
        self.pause_ns = int(duration_ns)

    def round_ns(self, batch: int, gamma: int, context: int, tokens: float) -> float:
        return self.cost.round_ns(self._shape(batch, gamma, context, tokens))

    def price(self, candidate: Sequence[float], serving: Sequence[float]) -> dict:
        """The metrics `payoff` decides on (as a replay's lazy/shadow/payoff record them)."""
        if not self.contexts or self.pause_ns is None or any(x != x for x in (*candidate, *serving)):
            return {}
        context = sum(self.contexts) // len(self.contexts)
        cand, cand_g = expected_speedup(candidate, self.batch, context, self.round_ns, False)
        serve, serve_g = expected_speedup(serving, self.batch, context, self.round_ns, False)
        return {
            "candidate_speedup": round(cand, 6),
            "serving_speedup": round(serve, 6),
            "candidate_depth": cand_g,
            "serving_depth": serve_g,
            "priced_batch": self.batch,
            "priced_context": context,
            "swap_pause_ns": self.pause_ns,
            **self.floor.metrics(self.pause_ns),
        }
