"""A candidate draft's acceptance, estimated offline on captured sequences (greedy chains).

For every round start n a served request could have had (its first generated token comes from
the prefill, so n runs over the generated part), take the chain the draft would propose from
there (`aurora_sim.engine.proposals`: the serving chain, exactly), accepted while it matches the
served tokens (never past the request's end). Estimated AL = 1 + mean accepted count (capped at
γ): the same convention as the live figure (bonus included), comparable between a candidate
and the serving draft on the same requests.
"""

from __future__ import annotations

import torch

from aurora_sim.engine.proposals import greedy_chains
from aurora_sim.learner.batch import build_batch
from aurora_sim.learner.samples import Sample


@torch.no_grad()
def estimate_al(draft, target, samples: list[Sample], gamma: int, feature_layers: tuple[int, ...]) -> float:
    return acceptance_profile(draft, target, samples, gamma, feature_layers)[0]


@torch.no_grad()
def acceptance_profile(
    draft, target, samples: list[Sample], gamma: int, feature_layers: tuple[int, ...]
) -> tuple[float, list[float]]:
    """(estimated AL, survival): survival[j] = P(accepted >= j + 1) over the round starts, j <
    gamma. A round of depth g then emits 1 + survival[0] + ... + survival[g-1] tokens per row, so
    the profile prices a draft under any depth policy (controller/payoff.py), not only at γ."""
    if not samples:
        return float("nan"), [float("nan")] * gamma
    group = build_batch(target, samples, with_discard=False, branch_context=0, feature_layers=feature_layers).groups[0]
    tokens = group.tokens
    truth = tokens.clone()
    for b, s in enumerate(samples):
        truth[b, len(s.tokens) :] = -2  # padding never matches a proposal
    lo = torch.tensor([s.prompt_len for s in samples], dtype=torch.long)
    count = torch.tensor([max(0, len(s.tokens) - 1 - s.prompt_len) for s in samples], dtype=torch.long)
    if int(count.sum()) == 0:
        return 1.0, [0.0] * gamma
    chains = greedy_chains(draft, tokens, group.features, truth, lo, count, gamma)
    valid = float(chains.valid.sum())
    accepted = chains.accepted[chains.valid]
    survival = [float((accepted > j).sum()) / valid for j in range(gamma)]
    return 1.0 + float(chains.accepted.sum()) / valid, survival
