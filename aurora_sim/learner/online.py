"""The online learner: trains a copy of the draft on served traffic while serving goes on.

It owns its model and optimizer. The replay hands it samples as requests finish (`capture`),
asks whether enough new data is there (`ready`), takes a batch from the buffer, runs the step
(`compute`: on the trainer thread, since nothing else touches the learner's model until the
step's virtual end), and takes snapshots between steps for the controller's candidates.

Loss (the paper's): mean KL(p_target || p_draft) over accepted positions + λ_discard × a term
from the rejected proposals: by default (`discard = branch`) the mean KL over the discarded
proposals' positions (`reach-weighted`: each weighted by the target's probability of reaching
it); the other variants (learner/discard.py) take theirs on the served states.
λ = 0 is Aurora's released code. A step whose loss is not finite or whose gradient norm explodes
is dropped (no optimizer update) and reported.
"""

from __future__ import annotations

import copy
import math
import random
from collections import deque
from dataclasses import dataclass

import torch

from aurora_sim.errors import AuroraError
from aurora_sim.learner.batch import Batch
from aurora_sim.learner.buffer import SampleBuffer
from aurora_sim.learner.discard import extra_term, uses_branches
from aurora_sim.learner.evaluate import acceptance_profile
from aurora_sim.learner.losses import SUB_BATCH, unrolled_kl
from aurora_sim.learner.samples import Sample


@dataclass
class StepResult:
    status: str  # ok | dropped_nonfinite | dropped_exploding
    loss: float
    loss_accepted: float
    loss_discard: float
    grad_norm: float


def resolve_precision(precision: str) -> str:
    """auto -> bf16 where the CPU multiplies bf16 natively (as the tiny build decides), else fp32."""
    if precision != "auto":
        return precision
    from aurora_sim.models.tiny import native_bf16

    return "bf16" if native_bf16() else "fp32"


def frozen_embed_copy(draft):
    """A deep copy that shares (does not copy) the target's frozen embedding an EAGLE head reads."""
    memo = {id(draft._embed[0]): draft._embed[0]} if draft.uses_features else {}
    return copy.deepcopy(draft, memo)


class OnlineLearner:
    def __init__(self, target, draft, cfg, rng: random.Random, gamma: int):
        self.target = target
        self.cfg = cfg
        self.gamma = gamma
        self.rng = rng
        self.model = frozen_embed_copy(draft).float().train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=0.0)
        self.layers = tuple(self.model.target_layers) if self.model.uses_features else ()
        self.bf16 = resolve_precision(cfg.precision) == "bf16"
        # Rows per unroll sub-batch. A sub-batch pads its rows to one prompt offset and one chain
        # count: on shift-paper's batches the padded grid holds 1.8x the chains, 2.6x the first
        # pass's outputs and 3.1x the attention scores that are used (benchmarks/bench_trainer.py).
        # In fp32 one row at a time is 1.3x faster per step (2.53 -> 1.94 s, the same loss); under
        # bf16 autocast it was measured slower (2026-12-02, an Intel CPU with native bf16), so
        # SUB_BATCH rows stay there.
        self.sub_batch = SUB_BATCH if self.bf16 else 1
        if extra_term(cfg.discard, cfg.lambda_discard) and not self.model.uses_features:
            raise AuroraError(
                f"--discard {cfg.discard} needs an EAGLE-3 draft (its term comes from the head's unroll); "
                "an LM draft supports branch and none"
            )
        self.buffer = SampleBuffer(cfg.capacity, cfg.buffer, cfg.max_staleness, rng)
        self.heldout: deque[Sample] = deque(maxlen=cfg.eval_requests)
        self.recent: deque[Sample] = deque(maxlen=cfg.eval_requests)
        self.captured = 0
        self.steps = 0  # optimizer updates applied
        self.attempts = 0

    # ---- data -----------------------------------------------------------------------------------
    def capture(self, sample: Sample) -> None:
        self.captured += 1
        # Every Nth request is held out from training: the lazy policy's unbiased yardstick.
        if self.cfg.heldout_every > 0 and self.captured % self.cfg.heldout_every == 0:
            self.heldout.append(sample)
            return
        self.recent.append(sample)
        self.buffer.add(sample)

    def ready(self, serving_version: int) -> bool:
        self.buffer.drop_stale(serving_version)
        return self.buffer.new_count() >= self.cfg.min_new

    # ---- the step (no shared state beyond self.model / self.opt) -----------------------------------
    def batch(self, samples: list[Sample]):
        """The training batch for `samples` under this learner's discard variant: what a replay and
        a live run both train on (rejected branches only for `branch`, rejection marks for the
        served-state variants)."""
        from aurora_sim.learner.batch import build_batch

        c = self.cfg
        term = extra_term(c.discard, c.lambda_discard)
        rejections = "control" if term == "control" else term is not None
        branches = uses_branches(c.discard, c.lambda_discard)
        reach = c.discard == "reach-weighted"
        return build_batch(
            self.target, samples, branches, c.branch_context, self.layers, rejections=rejections, reach=reach
        )

    def compute(self, b: Batch) -> StepResult:
        self.attempts += 1
        parts = {False: [], True: []}
        variant = extra_term(self.cfg.discard, self.cfg.lambda_discard)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for g in b.groups:
                args = (self.model, g.tokens, g.features, (g.rows, g.cols), g.target_logits, self.cfg.unroll)
                if variant and not g.discard and g.rejections is not None:
                    kl, _, term, at = unrolled_kl(
                        *args, self.cfg.decay, extra=(variant, g.rejections), sub_batch=self.sub_batch
                    )
                    parts[True].append(term[at])  # the variant's term where it counts
                else:
                    kl, _ = unrolled_kl(*args, self.cfg.decay, sub_batch=self.sub_batch)
                parts[g.discard].append(kl if g.reach is None else kl * g.reach)
        acc, disc = (torch.cat(parts[k]) if parts[k] else None for k in (False, True))
        zero = next(self.model.parameters()).sum() * 0.0
        loss_acc = acc.mean() if acc is not None and acc.numel() else zero
        loss_disc = disc.mean() if disc is not None and disc.numel() and self.cfg.discard != "none" else zero
        loss = loss_acc + self.cfg.lambda_discard * loss_disc
        value = float(loss.detach())
        result = StepResult("ok", value, float(loss_acc.detach()), float(loss_disc.detach()), float("nan"))
        self.opt.zero_grad(set_to_none=True)
        if not math.isfinite(value):
            result.status = "dropped_nonfinite"
            return result
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip))
        result.grad_norm = norm
        if not math.isfinite(norm) or norm > self.cfg.explode_grad_norm:
            self.opt.zero_grad(set_to_none=True)
            result.status = "dropped_nonfinite" if not math.isfinite(norm) else "dropped_exploding"
            return result
        self.opt.step()
        self.steps += 1
        return result

    # ---- candidates -------------------------------------------------------------------------------
    def snapshot(self):
        """A frozen copy of the current weights (call only between steps)."""
        return frozen_embed_copy(self.model).eval()

    def eval_set(self, kind: str) -> list[Sample]:
        return list(self.heldout if kind == "heldout" else self.recent)

    def score(self, draft, samples: list[Sample]) -> float:
        return self.profile(draft, samples)[0]

    def profile(self, draft, samples: list[Sample]) -> tuple[float, list[float]]:
        """(estimated AL at γ, survival per draft position): see learner/evaluate.py."""
        was = draft.training
        draft.eval()
        try:
            return acceptance_profile(draft, self.target, samples, self.gamma, self.layers)
        finally:
            draft.train(was)
