"""A training batch from captured samples: padded token rows, the positions the loss uses, and
the teacher's features and logits there, recomputed by the learner's own copy of the target.

Recomputing (instead of shipping hidden states from the server) is what the SGLang path must
do anyway; on the torch path it gives the same numbers as the verify pass, up to batching.

Two groups of rows, each padded only to its own width (branch rows are short; padding them to
the served rows' width would multiply the discard loss's cost):
  accepted  the served sequence; loss at every position that predicts a generated token;
  discard   a rejected branch: the `branch_context` accepted tokens before it, then the
            discarded proposals; loss at the proposals' positions. The context is cropped to
            bound the cost (the teacher is run on the same cropped row, so the pair stays
            self-consistent); a tree-attention mask would avoid the crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aurora_sim.learner.discard import served_rejections
from aurora_sim.learner.samples import Sample


@dataclass
class Group:
    tokens: torch.Tensor  # [R, S]
    rows: torch.Tensor  # [M] row of each loss position
    cols: torch.Tensor  # [M] column
    target_logits: torch.Tensor  # [M, V]
    features: torch.Tensor | None  # [R, S, F] (EAGLE-3 heads)
    discard: bool
    rejections: object = None  # learner.discard.Rejections at the loss positions (served group)


@dataclass
class Batch:
    groups: list[Group]
    tokens_total: int  # real (unpadded) tokens, what a trainer step is charged for

    @property
    def accepted_positions(self) -> int:
        return sum(len(g.rows) for g in self.groups if not g.discard)

    @property
    def discard_positions(self) -> int:
        return sum(len(g.rows) for g in self.groups if g.discard)


def _padded(seqs: list[list[int]], spans: list[tuple[int, int]]):
    """Token rows padded to the longest, and (rows, cols) of every loss position in `spans`."""
    width = max(len(q) for q in seqs)
    tokens = torch.tensor([q + [0] * (width - len(q)) for q in seqs], dtype=torch.long)
    rows, cols = [], []
    for r, (lo, hi) in enumerate(spans):
        rows.extend([r] * (hi - lo))
        cols.extend(range(lo, hi))
    return tokens, torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)


def _group(target, seqs: list[list[int]], spans: list[tuple[int, int]], layers, discard: bool) -> Group:
    tokens, rows_t, cols_t = _padded(seqs, spans)
    width = tokens.shape[1]
    with torch.no_grad():
        b = tokens.shape[0]
        logits, feats = target(
            tokens, torch.arange(b), torch.zeros(b, dtype=torch.long), target.new_cache(b, width), layers
        )
    return Group(tokens, rows_t, cols_t, logits[rows_t, cols_t].float(), feats if layers else None, discard)


def _teacher_group(target, samples: list[Sample], layers) -> Group:
    """The accepted group from the teachers kept at serving time (`learner/teacher.py`): no
    target forward. The logits are the target's own head over its kept last-layer outputs."""
    tokens, rows, cols = _padded([list(s.tokens) for s in samples], _accepted_spans(samples))
    feats = None
    if layers:
        f0 = samples[0].teacher.features
        feats = torch.zeros(len(samples), tokens.shape[1], f0.shape[-1], dtype=f0.dtype)
        for r, s in enumerate(samples):
            feats[r, : len(s.tokens)] = s.teacher.features
    with torch.no_grad():
        logits = target.head(torch.cat([s.teacher.final for s in samples])).float()
    return Group(tokens, rows, cols, logits, feats, False)


def _accepted_spans(samples: list[Sample]) -> list[tuple[int, int]]:
    """Each served sequence's loss positions: every one that predicts a generated token."""
    return [(s.prompt_len - 1, len(s.tokens) - 1) for s in samples]


def batch_tokens(samples: list[Sample], with_discard: bool, branch_context: int) -> int:
    """Real tokens of the batch build_batch makes from these samples (what a step is charged for),
    known before the batch is built."""
    total = sum(len(s.tokens) for s in samples)
    if with_discard:
        total += sum(min(branch_context, br.start) + len(br.tokens) for s in samples for br in s.branches)
    return total


def build_batch(
    target,
    samples: list[Sample],
    with_discard: bool,
    branch_context: int,
    feature_layers: tuple[int, ...],
    rejections: bool | str = False,
) -> Batch:
    """rejections: attach to the served group where each rejection happened (the discard
    variants that act on served states, learner/discard.py); "control": at random served
    states instead, as many, at the same steps (the compute-matched control)."""
    seqs = [list(s.tokens) for s in samples]
    if all(s.teacher is not None for s in samples):
        groups = [_teacher_group(target, samples, feature_layers)]
    else:
        groups = [_group(target, seqs, _accepted_spans(samples), feature_layers, False)]
    if rejections:
        groups[0].rejections = served_rejections(samples, _accepted_spans(samples), control=rejections == "control")
    if with_discard:
        bseqs, bspans = [], []
        for s in samples:
            for br in s.branches:
                lo = max(0, br.start - branch_context)
                bseqs.append(list(s.tokens[lo : br.start]) + list(br.tokens))
                bspans.append((br.start - lo, len(bseqs[-1])))
        if bseqs:
            groups.append(_group(target, bseqs, bspans, feature_layers, True))
    return Batch(groups, batch_tokens(samples, with_discard, branch_context))
