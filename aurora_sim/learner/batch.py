"""A training batch from captured samples: padded token rows, the positions the loss uses, and
the teacher's features and logits there, recomputed by the learner's own copy of the target.

Recomputing (instead of shipping hidden states from the server) is what the SGLang path must
do anyway; on the torch path it gives the same numbers as the verify pass, up to batching.

Rows:
  accepted  the served sequence; loss at every position that predicts a generated token;
  discard   a rejected branch: the `branch_context` accepted tokens before it, then the
            discarded proposals; loss at the proposals' positions. The context is cropped to
            bound the cost (the teacher is run on the same cropped row, so the pair stays
            self-consistent); a tree-attention mask would avoid the crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aurora_sim.learner.samples import Sample


@dataclass
class Batch:
    tokens: torch.Tensor  # [R, S]
    rows: torch.Tensor  # [M] row of each loss position
    cols: torch.Tensor  # [M] column
    discard: torch.Tensor  # [M] bool: position on a rejected branch
    target_logits: torch.Tensor  # [M, V]
    features: torch.Tensor | None  # [R, S, F] (EAGLE-3 heads)
    tokens_total: int  # real (unpadded) tokens, what a trainer step is charged for

    @property
    def accepted_positions(self) -> int:
        return int((~self.discard).sum())

    @property
    def discard_positions(self) -> int:
        return int(self.discard.sum())


def build_batch(target, samples: list[Sample], with_discard: bool, branch_context: int,
                feature_layers: tuple[int, ...]) -> Batch:
    seqs: list[list[int]] = []
    spans: list[tuple[int, int, bool]] = []  # per row: loss columns [lo, hi) and kind
    for s in samples:
        seqs.append(list(s.tokens))
        spans.append((s.prompt_len - 1, len(s.tokens) - 1, False))
    if with_discard:
        for s in samples:
            for br in s.branches:
                lo = max(0, br.start - branch_context)
                row = list(s.tokens[lo : br.start]) + list(br.tokens)
                seqs.append(row)
                spans.append((br.start - lo, len(row), True))
    width = max(len(q) for q in seqs)
    tokens = torch.tensor([q + [0] * (width - len(q)) for q in seqs], dtype=torch.long)
    rows, cols, disc = [], [], []
    for r, (lo, hi, is_disc) in enumerate(spans):
        rows.extend([r] * (hi - lo))
        cols.extend(range(lo, hi))
        disc.extend([is_disc] * (hi - lo))
    rows_t, cols_t = torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)
    with torch.no_grad():
        b = tokens.shape[0]
        cache = target.new_cache(b, width)
        logits, feats = target(tokens, torch.arange(b), torch.zeros(b, dtype=torch.long), cache, feature_layers)
    return Batch(
        tokens=tokens, rows=rows_t, cols=cols_t, discard=torch.tensor(disc, dtype=torch.bool),
        target_logits=logits[rows_t, cols_t].float(), features=feats if feature_layers else None,
        tokens_total=sum(len(q) for q in seqs),
    )
