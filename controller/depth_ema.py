"""`ema`: a model of SGLang's adaptive speculative decoding (EAGLE/EAGLE3, topk 1), so a user can
predict what SGLang would do with this draft on this traffic.

Modelled on sgl-project/sglang, python/sglang/srt/speculative/adaptive_spec_params.py
(`DEFAULT_ADAPTIVE_CONFIG`, `AdaptiveStepSlot.update`, `AdaptiveStepSlot._recompute_params`,
`AdaptiveSpeculativeParams._route`) and adaptive_step_router.py
(`AdaptiveStepRouter.batch_size_key_for_batch`), as stored in the reference index in 2026:

- tiers by batch size: the largest configured key <= the batch picks a slot with its own
  candidate `speculative_num_steps` (default: 1 -> [1, 3, 5, 7], 8 -> [0, 1, 3], 32 -> [0, 1],
  64 -> [0]), its own EMA and its own counters;
- a slot starts at the configured steps (our γ) if that is a candidate, else at the middle
  candidate, with EMA = steps - 1;
- after every verify, when the slot's steps > 0: EMA <- (1 - 0.2)·EMA + 0.2·(mean accepted
  drafts over the batch's requests, bonus not counted); the batch counter advances either way;
- no switch during the first 10 batches (warm-up), then a recompute every 5th batch:
  from steps 0, probe the next candidate up (EMA reset to its neutral steps - 1 if negative);
  otherwise step down while EMA <= (prev - 0.5, or 0.5 when prev is 0) + down_hysteresis, and if
  it did not move down, step up while EMA > current - 0.5 + up_hysteresis; an optional ceiling
  (ceiling_coeff > 0, off by default) caps downward moves.

Differences, stated: candidates above this run's γ are dropped (our chains, and the fast path's,
are computed at γ; pass `--gamma 7` to keep SGLang's batch-1 tier whole); a slot left with no
candidate falls back to [γ]. SGLang pads a batch to a CUDA-graph size before routing; there are
no CUDA graphs here, so the batch routes as it is (SGLang with graphs disabled does the same).
"""

from __future__ import annotations

import bisect
import math

from controller.depth_base import DepthPolicy, DepthRound

# SGLang's DEFAULT_ADAPTIVE_CONFIG: batch-size key -> slot settings
SGLANG_TIERS: dict[int, dict] = {
    1: {"candidate_steps": [1, 3, 5, 7], "up_hysteresis": 0.0, "down_hysteresis": -0.25, "ceiling_coeff": 0},
    8: {"candidate_steps": [0, 1, 3], "up_hysteresis": 0.0, "down_hysteresis": 0.0, "ceiling_coeff": 0},
    32: {"candidate_steps": [0, 1], "up_hysteresis": 0.0, "down_hysteresis": 0.0, "ceiling_coeff": 0},
    64: {"candidate_steps": [0], "up_hysteresis": 0.0, "down_hysteresis": 0.0, "ceiling_coeff": 0},
}


class EmaSlot:
    """One batch-size tier: SGLang's AdaptiveStepSlot."""

    def __init__(self, initial_steps: int, cfg: dict):
        self.candidate_steps = sorted(set(cfg["candidate_steps"]))
        self.ema_alpha = cfg.get("ema_alpha", 0.2)
        self.update_interval = cfg.get("update_interval", 5)
        self.warmup_batches = cfg.get("warmup_batches", 10)
        self.down_hysteresis = cfg.get("down_hysteresis", -0.25)
        self.up_hysteresis = cfg.get("up_hysteresis", 0.0)
        self.ceiling_coeff = cfg.get("ceiling_coeff", 0)
        if initial_steps in self.candidate_steps:
            self.current_steps = initial_steps
        else:
            self.current_steps = self.candidate_steps[len(self.candidate_steps) // 2]
        self.ema_accept_len = float(self.current_steps - 1)
        self.batch_count = 0

    def update(self, accepted: tuple[int, ...]) -> bool:
        """Fold one verify's accepted drafts in; True if the steps changed."""
        if not accepted:
            return False
        if self.current_steps > 0:
            mean = sum(accepted) / len(accepted)
            self.ema_accept_len = (1 - self.ema_alpha) * self.ema_accept_len + self.ema_alpha * mean
        self.batch_count += 1
        if self.batch_count <= self.warmup_batches:
            return False
        if (self.batch_count - self.warmup_batches) % self.update_interval != 0:
            return False
        return self._recompute()

    def _recompute(self) -> bool:
        old = self.current_steps
        idx = old_idx = self.candidate_steps.index(old)
        if old == 0:  # after a no-speculation interval, probe the smallest positive step
            idx = min(idx + 1, len(self.candidate_steps) - 1)
            target = self.candidate_steps[idx]
            if target > 0 and self.ema_accept_len < 0:
                self.ema_accept_len = float(target - 1)
            return self._apply(target)
        while idx > 0:
            prev = self.candidate_steps[idx - 1]
            drop = (0.5 if prev == 0 else prev - 0.5) + self.down_hysteresis
            if self.ema_accept_len <= drop:
                idx -= 1
            else:
                break
        if idx == old_idx:  # did not move down: try up
            while idx < len(self.candidate_steps) - 1:
                if self.ema_accept_len > self.candidate_steps[idx] - 0.5 + self.up_hysteresis:
                    idx += 1
                else:
                    break
        target = self.candidate_steps[idx]
        if self.ceiling_coeff > 0:  # caps downward moves only
            ceiling = max(1, math.ceil(self.ema_accept_len * self.ceiling_coeff))
            if ceiling < target <= old:
                while idx > 0 and self.candidate_steps[idx] > ceiling:
                    idx -= 1
                target = self.candidate_steps[idx]
        return self._apply(target)

    def _apply(self, target: int) -> bool:
        changed = target != self.current_steps
        self.current_steps = target
        return changed


class Ema(DepthPolicy):
    name = "ema"

    def __init__(self, cfg, gamma_max: int, round_time=None, tiers: dict[int, dict] | None = None):
        super().__init__(cfg, gamma_max, round_time)
        self.slots: dict[int, EmaSlot] = {}
        for key, entry in sorted((tiers or SGLANG_TIERS).items()):
            steps = [s for s in entry["candidate_steps"] if s <= gamma_max] or [gamma_max]
            self.slots[key] = EmaSlot(gamma_max, {**entry, "candidate_steps": steps})
        self._keys = sorted(self.slots)

    def slot(self, batch: int) -> EmaSlot:
        """The largest tier key <= batch (the smallest tier for a batch below every key)."""
        i = bisect.bisect_right(self._keys, batch) - 1
        return self.slots[self._keys[max(0, i)]]

    def choose(self, batch: int, context_tokens: int) -> int:
        return self.slot(batch).current_steps

    def observe(self, rnd: DepthRound) -> None:
        self.slot(rnd.batch).update(rnd.accepted)
