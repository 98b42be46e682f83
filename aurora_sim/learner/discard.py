"""How the learner uses rejected proposals: the discard-loss variants, chosen by name.

Under greedy verification the state *after* a rejected token never occurs in served traffic (the
target emits its argmax, not the rejected token), so training on the rejected branch (`branch`,
what λ_discard meant so far) can act only through generalisation. The other variants act on the
states serving does visit, the served sequence, where the target's distribution is known from
verification anyway (prior work that reports gains trains there: OSD at the correction
positions, DVI up to the first rejection, GRIFFIN/Spec-AUF drop what follows it, LK losses
optimise acceptance directly):

  branch         λ × forward KL on the rejected branch's states (the off-trajectory tail; the
                 chains must be computed in full to have it)
  reach-weighted the branch term with each branch state weighted by the target's probability,
                 at the request's sampling temperature, of reaching it (the product of
                 p_T(d_i | context, d_<i) over the discarded tokens up to that state; batch.py).
                 At T = 0 a rejected token is never the target's argmax, so every weight is 0:
                 it predicts no effect there, and the run equals `none`
  reject-point   λ × forward KL at the state where the rejected proposal was made: step k of
                 the chain from n, at position n + k, which the served loss already weights
                 decay**k; this adds weight where the draft was wrong
  unlikelihood   λ × -log(1 - q(rejected token)) at that state: push the rejected token down
  lk             λ × -log sum_x min(p(x), q(x)) on every served state and unroll step (the
                 acceptance probability of a sampled proposal, 1 - TV(p, q)), weighted as the KL
  expected-length  -λ × the chain's expected accepted length / unroll, differentiable: for the
                 chain from every served state n, sum_j prod_{i<=j} a_i with a_i = sum_x
                 min(p(x), q_i(x)) at n + i (the probability that a sampled proposal of step i is
                 accepted, given steps < i were), a_i = 0 past the request's end. Counted at the
                 chain's start n; the same unroll as lk, no extra forward pass
  control        the compute-matched control for reject-point: the same extra KL weight on as
                 many served states, at the same unroll steps, drawn at random instead of at
                 the rejections (seeded by the sample): separates "more updates" from "the
                 rejection carries information"
  none           the served KL only (λ ignored)

Every variant keeps the served KL; λ weighs the extra term. The rejections a variant sees are
the same per request for all variants (`discard_per_request` of them, drawn by the learner's
RNG at capture), so the variants compare on the same information.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

VARIANTS = ("branch", "reach-weighted", "reject-point", "unlikelihood", "lk", "expected-length", "control", "none")
ON_BRANCHES = ("branch", "reach-weighted")  # terms taken on the rejected branches' own rows
ON_SERVED_STATES = (
    "reject-point",
    "unlikelihood",
    "lk",
    "expected-length",
    "control",
)  # terms taken in the served group


def uses_branches(variant: str, lam: float) -> bool:
    """Whether batches carry the rejected branches (and serving must compute rejected tails)."""
    return variant in ON_BRANCHES and lam > 0


def extra_term(variant: str, lam: float) -> str | None:
    """The term computed on served states, if any."""
    return variant if variant in ON_SERVED_STATES and lam > 0 else None


@dataclass
class Rejections:
    """Per served loss position (aligned with a group's rows/cols): the draft step at which a
    proposal was rejected there (-1: none) and the rejected token (a target id)."""

    step: torch.Tensor  # [M] long
    token: torch.Tensor  # [M] long


def served_rejections(samples, spans: list[tuple[int, int]], control: bool = False) -> Rejections:
    """The rejections of each sample at its loss positions `spans` (lo, hi) per row, laid out as
    batch._padded lays out (rows, cols): row by row, columns ascending. control: as many marks,
    with the same steps, at served positions drawn at random (random.Random(sample uid))."""
    steps, tokens = [], []
    for s, (lo, hi) in zip(samples, spans):
        st = [-1] * (hi - lo)
        tk = [0] * (hi - lo)
        rng = random.Random(s.uid)
        for br in s.branches:
            at = br.start - 1 - lo  # the state that proposed the rejected token
            if br.step >= 0 and 0 <= at < hi - lo:
                if control:
                    free = [i for i in range(hi - lo) if st[i] < 0]
                    at = rng.choice(free) if free else at
                st[at], tk[at] = br.step, br.tokens[0]
        steps.extend(st)
        tokens.extend(tk)
    return Rejections(torch.tensor(steps, dtype=torch.long), torch.tensor(tokens, dtype=torch.long))


def step_term(variant: str, j: int, kl, logq, p, ok, rej: Rejections, d2t) -> tuple[torch.Tensor, torch.Tensor]:
    """This unroll step's contribution to the extra term at each loss position, and where it
    counts: ([M] value, [M] bool). `kl` is the step's KL (already masked by ok), logq the draft's
    log-probabilities over its vocabulary, p the target's over the same."""
    if variant in ("lk", "expected-length"):
        accept = torch.minimum(p, logq.exp()).sum(-1).clamp(min=1e-12)
        if variant == "expected-length":  # the step's acceptance; the chain's product is taken by the caller
            return accept * ok, ok
        return -accept.log() * ok, ok
    at = ok & (rej.step == j)
    if variant in ("reject-point", "control"):
        return kl * at, at
    # unlikelihood: the rejected token in the head's vocabulary (a hot-vocabulary head cannot
    # have proposed a token outside it; such positions are skipped)
    idx = rej.token
    if d2t is not None:
        pos = torch.searchsorted(d2t, idx).clamp(max=len(d2t) - 1)
        at = at & (d2t[pos] == idx)
        idx = pos
    q_rej = logq.gather(-1, idx.clamp(min=0)[:, None]).squeeze(-1).exp().clamp(max=1 - 1e-6)
    return -torch.log1p(-q_rej) * at, at
