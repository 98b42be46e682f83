"""`confidence`: stop a chain when the draft is unsure (SpecDec++ / AdaEDL style).

The depth is γ_max, but the engine stops drafting at the first step whose top draft
probability is below `threshold` for every request of the batch (the whole batch verifies one
chain length, so it stops only where no request would gain); the step that found the draft
unsure is paid for and its token is not proposed. It needs the draft's probabilities at every
step, which only the round-by-round engine computes: the fast path's greedy chains keep only
argmaxes, so a replay with this policy runs on `--engine exact`.
"""

from __future__ import annotations

from controller.depth_base import DepthPolicy


class Confidence(DepthPolicy):
    name = "confidence"

    def __init__(self, cfg, gamma_max: int, round_time=None):
        super().__init__(cfg, gamma_max, round_time)
        self.confidence_floor = cfg.threshold
