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
    reach: torch.Tensor | None = None  # [M] reach-weighted: P_T(reaching the state) (discard group)


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


def _group(target, seqs, spans, layers, discard: bool, sampling=None, first=None) -> Group:
    """sampling, first: per row, the (temperature, top_p) and the first token's probability to
    price each loss position's reach with (the `reach-weighted` discard variant)."""
    tokens, rows_t, cols_t = _padded(seqs, spans)
    width = tokens.shape[1]
    with torch.no_grad():
        b = tokens.shape[0]
        logits, feats = target(
            tokens, torch.arange(b), torch.zeros(b, dtype=torch.long), target.new_cache(b, width), layers
        )
        reach = None if sampling is None else reach_probability(logits, tokens, rows_t, cols_t, sampling, first)
    feats = feats if layers else None
    return Group(tokens, rows_t, cols_t, logits[rows_t, cols_t].float(), feats, discard, reach=reach)


def reach_probability(logits, tokens, rows, cols, sampling: list[tuple[float, float]], first) -> torch.Tensor:
    """[M] the probability that the target, sampling as its row's request did ((temperature,
    top_p): what serving draws from, `engine.sampling.target_probs`), emits the row's tokens
    from its span's first loss position up to each loss position (cols ascending, one contiguous
    span per row): first[r], the first token's probability at the served state (full context;
    None where that state has no served loss position, the request's last token: then the branch
    row's), times p(token at c | prefix) over the row's logits at c - 1 for the rest (the branch
    row's cropped context, as its KL is). At T = 0 the weight is 0: verification rejected the
    first token, so the target never emits it."""
    from aurora_sim.engine.sampling import target_probs

    out = torch.zeros(rows.shape[0])
    for r in rows.unique().tolist():  # a product along each row's span (a few short branch rows)
        at = (rows == r).nonzero(as_tuple=True)[0]
        temperature, top_p = sampling[r]
        if temperature <= 0:
            continue
        c = cols[at] if first[r] is None else cols[at][1:]
        probs = target_probs(logits[r, c - 1], temperature, top_p).gather(1, tokens[r, c][:, None]).squeeze(1)
        if first[r] is not None:
            probs = torch.cat([first[r].reshape(1).double(), probs])
        out[at] = probs.cumprod(0).float()
    return out


def _first_token_probability(served: Group, samples: list[Sample], sampling) -> list[torch.Tensor | None]:
    """Per rejected branch (in build order), the target's probability at the served state of
    the first discarded token, under its request's sampling. None where it is not needed (T = 0:
    reach_probability gives such a branch weight 0) or not served (the state is the request's last
    token, which predicts nothing served: a round that drafted past the end; the row prices it)."""
    from aurora_sim.engine.sampling import target_probs

    out, offset, k = [], 0, 0
    for s in samples:
        for br in s.branches:
            temperature, top_p = sampling[k]
            k += 1
            if temperature <= 0 or br.start >= len(s.tokens):
                out.append(None)
                continue
            at = offset + (br.start - 1) - (s.prompt_len - 1)  # the state that proposed tokens[0]
            out.append(target_probs(served.target_logits[at], temperature, top_p)[br.tokens[0]])
        offset += len(s.tokens) - s.prompt_len
    return out


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
    reach: bool = False,
) -> Batch:
    """rejections: attach to the served group where each rejection happened (the discard
    variants that act on served states, learner/discard.py); "control": at random served
    states instead, as many, at the same steps (the compute-matched control). reach: weigh each
    rejected-branch state by the target's probability of reaching it (`reach-weighted`)."""
    seqs = [list(s.tokens) for s in samples]
    if all(s.teacher is not None for s in samples):
        groups = [_teacher_group(target, samples, feature_layers)]
    else:
        groups = [_group(target, seqs, _accepted_spans(samples), feature_layers, False)]
    if rejections:
        groups[0].rejections = served_rejections(samples, _accepted_spans(samples), control=rejections == "control")
    if with_discard:
        bseqs, bspans, bsampling = [], [], []
        for s in samples:
            for br in s.branches:
                lo = max(0, br.start - branch_context)
                bseqs.append(list(s.tokens[lo : br.start]) + list(br.tokens))
                bspans.append((br.start - lo, len(bseqs[-1])))
                bsampling.append((s.temperature, s.top_p))
        if bseqs:
            first = _first_token_probability(groups[0], samples, bsampling) if reach else None
            groups.append(_group(target, bseqs, bspans, feature_layers, True, bsampling if reach else None, first))
    return Batch(groups, batch_tokens(samples, with_discard, branch_context))
