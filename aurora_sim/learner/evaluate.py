"""A candidate draft's acceptance, estimated offline on captured sequences (greedy chains).

For every position n in a request's generated part, take the chain the draft would propose
from there: step i's proposal is TTT unroll i-1's argmax at n+i-1 (the head fed its own hidden
states, exactly what serving does), accepted while it matches the served token. Estimated AL =
1 + mean accepted count (capped at γ): the same convention as the live figure (bonus included),
comparable between a candidate and the serving draft on the same requests.
"""

from __future__ import annotations

import torch

from aurora_sim.learner.batch import build_batch
from aurora_sim.learner.losses import draft_unroll
from aurora_sim.learner.samples import Sample


@torch.no_grad()
def estimate_al(draft, target, samples: list[Sample], gamma: int, feature_layers: tuple[int, ...]) -> float:
    if not samples:
        return float("nan")
    group = build_batch(target, samples, with_discard=False, branch_context=0, feature_layers=feature_layers).groups[0]
    tokens = group.tokens
    preds = []  # preds[j][b, p]: the draft's step-(j+1) argmax at position p
    for out in draft_unroll(draft, tokens, group.features, gamma):
        logits = draft.logits(out) if draft.uses_features else out
        preds.append(logits.argmax(-1))
    if not draft.uses_features:
        preds = preds * gamma
    accepted_sum, count = 0, 0
    for b, s in enumerate(samples):
        seq = tokens[b]
        last = len(s.tokens) - 1
        for n in range(s.prompt_len - 1, last):
            k = 0
            while k < gamma and n + k < last and int(preds[k][b, n + k]) == int(seq[n + k + 1]):
                k += 1
            accepted_sum += k
            count += 1
    return 1.0 + accepted_sum / max(1, count)
