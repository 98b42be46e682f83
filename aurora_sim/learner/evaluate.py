"""A candidate draft's acceptance, estimated offline on captured sequences (greedy chains).

For every position n a served request could have started a round at (its first generated token
comes from the prefill, so n runs over the generated part), take the chain the draft would
propose from there (`aurora_sim.engine.proposals`: the serving chain, exactly), accepted while it
matches the served tokens (never past the request's end).

Then walk the request as serving would at depth g: a round starts at n, accepts k = min(accepted
at n, g), emits k + 1 tokens, and the next round starts at n + k + 1. E_g = tokens / rounds over
the walk is what serving at depth g realises on these requests, exactly (greedy, same draft).
Averaging over *every* position instead over-weights easy stretches (a stretch of L easy tokens
gives L round starts with long accepts where serving crosses it in ≈ L/γ rounds): on shift-ci it
priced a day-0 candidate at E_4 ≈ 3.1 that served at 2.4, and `payoff` swapped drafts whose
windows then ran below no speculation. Estimated AL = E_γ (bonus included, the live figure's
convention).
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
    """(estimated AL, survival): survival[j] = E_{j+1} - E_j, the tokens per round a (j+1)-th
    proposal adds to serving's walk (module docstring), j < gamma. A round of depth g then emits
    1 + survival[0] + ... + survival[g-1] = E_g tokens per row, so the profile prices a draft under
    any depth policy (controller/payoff.py), not only at γ."""
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
    rows = list(zip(chains.accepted.tolist(), count.tolist()))
    per_depth = [[walk(accepted, n, g) for accepted, n in rows] for g in range(gamma + 1)]
    emitted = [sum(t for t, _ in runs) / max(sum(r for _, r in runs), 1) for runs in per_depth]
    survival = [emitted[j + 1] - emitted[j] for j in range(gamma)]
    return emitted[gamma], survival


def walk(accepted: list[int], count: int, depth: int) -> tuple[int, int]:
    """(tokens emitted, rounds) serving one request at `depth` proposals per round, given the
    proposals the chain starting at each position would get accepted (capped at the chain's γ)."""
    n = tokens = rounds = 0
    while n < count:
        k = min(accepted[n], depth)
        tokens, rounds, n = tokens + k + 1, rounds + 1, n + k + 1
    return tokens, rounds
