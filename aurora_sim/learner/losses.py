"""Draft losses: forward KL to the target, with the EAGLE training-time-test (TTT) unroll.

Unroll step 0 feeds the head the target's fused features h_{p-1}; step j is the exact serving
chain (`aurora_sim.models.chain`): the chain that starts at n = p - j is fed its own hidden
state from step j-1, attends to the true keys at positions <= n and to its own steps' keys, and
is weighted decay**j (Aurora: 5-7 steps, 0.8**i). Tokens are the true ones (teacher forcing), so
where the draft's earlier proposals were right this is exactly what serving runs. The loss at
position p, step j compares the chain's prediction with the target's distribution at p.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aurora_sim.learner.discard import step_term
from aurora_sim.models.chain import teacher_forced_chains


def forward_kl(
    target_logits: torch.Tensor, draft_logits: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over (masked) positions of KL(p_target || p_draft). logits: [..., V]; mask: [...]."""
    logp = F.log_softmax(target_logits.float(), dim=-1)
    logq = F.log_softmax(draft_logits.float(), dim=-1)
    kl = (logp.exp() * (logp - logq)).sum(-1)
    if mask is None:
        return kl.mean()
    mask = mask.float()
    return (kl * mask).sum() / mask.sum().clamp(min=1.0)


def eagle3_ttt_loss(head, tokens, target_features, target_logits, unroll: int = 3, decay: float = 0.8, mask=None):
    """tokens [B, S], target_features [B, S, 3H] (h_p at p), target_logits [B, S, V] (predicting
    x_{p+1} at p), mask [B, S] (positions that count). Returns (weighted loss, per-step losses)."""
    b, s = tokens.shape
    keep = torch.ones(b, s, dtype=torch.bool, device=tokens.device) if mask is None else mask.bool()
    rows, cols = keep.nonzero(as_tuple=True)
    kl, steps = unrolled_kl(head, tokens, target_features, (rows, cols), target_logits[rows, cols], unroll, decay)
    return kl.mean(), steps


def lm_draft_loss(draft, tokens, target_logits, mask=None):
    b, s = tokens.shape
    slots = torch.arange(b, device=tokens.device)
    logits, _ = draft(
        tokens, None, slots, torch.zeros(b, dtype=torch.long, device=tokens.device), draft.new_cache(b, s)
    )
    loss = forward_kl(target_logits, logits, mask)
    return loss, [float(loss.detach())]


# ---- per-position losses for the online learner (the loss is taken only where it is used) ----
def position_kl(target_logits: torch.Tensor, draft_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_target || p_draft) per row: [M, V] x [M, V] -> [M]."""
    logp = F.log_softmax(target_logits.float(), dim=-1)
    logq = F.log_softmax(draft_logits.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


SUB_BATCH = 4  # rows per unroll sub-batch unless the caller says otherwise


def unrolled_kl(
    draft, tokens, target_features, index, target_logits, unroll: int, decay: float, extra=None, sub_batch=SUB_BATCH
):
    """Weighted (decay**j) mean over TTT steps of the per-position KL at `index` (rows, cols):
    step j at position p is the chain that started at p - j (a step whose chain would start
    before position 0 does not exist and is left out of that position's mean). An LM draft's
    step-j prediction is its teacher-forced one, so it has one step. Returns ([M] KL, per-step
    mean KL).

    extra = (variant, Rejections) (learner/discard.py, EAGLE heads only): also the variant's
    term on these served states, from the same unroll; then returns ([M] KL, steps, [M] term,
    [M] where it counts).

    Rows run in length-sorted sub-batches of `sub_batch`, each cut to its longest
    loss position: attention costs the square of the padded width, and served requests vary in
    length ~10x. One row per sub-batch computes nothing for padding (see OnlineLearner.sub_batch)."""
    rows, cols = index
    if not draft.uses_features:
        b, s = tokens.shape
        slots = torch.arange(b, device=tokens.device)
        logits, _ = draft(
            tokens, None, slots, torch.zeros(b, dtype=torch.long, device=tokens.device), draft.new_cache(b, s)
        )
        kl = position_kl(target_logits, logits[rows, cols])
        return kl, [float(kl.detach().mean()) if kl.numel() else 0.0]
    target_logits = draft.restrict(target_logits)
    batch = tokens.shape[0]
    if rows.numel() == 0:
        empty = target_logits.new_zeros(0)
        return (empty, [0.0] * unroll) if extra is None else (empty, [0.0] * unroll, empty, empty.bool())
    last = torch.full((batch,), -1, dtype=torch.long, device=cols.device).scatter_reduce(0, rows, cols, "amax")
    order = sorted(range(batch), key=lambda r: (int(last[r]), r))
    pieces, where, sums, counts, terms, marks = [], [], [0.0] * unroll, [0] * unroll, [], []
    for i in range(0, batch, sub_batch):
        sub = torch.tensor(order[i : i + sub_batch], dtype=torch.long, device=rows.device)
        pick = torch.isin(rows, sub).nonzero(as_tuple=True)[0]
        if pick.numel() == 0:
            continue
        remap = torch.full((batch,), -1, dtype=torch.long, device=rows.device)
        remap[sub] = torch.arange(len(sub), device=rows.device)
        width = int(last[sub].max()) + 1
        sub_extra = None if extra is None else (extra[0], _pick(extra[1], pick))
        kl, step_sums, step_counts, term, mark = _unrolled_rows(
            draft,
            tokens[sub, :width],
            target_features[sub, :width],
            remap[rows[pick]],
            cols[pick],
            target_logits[pick],
            unroll,
            decay,
            sub_extra,
        )
        pieces.append(kl)
        terms.append(term)
        marks.append(mark)
        where.append(pick)
        sums = [a + b for a, b in zip(sums, step_sums)]
        counts = [a + b for a, b in zip(counts, step_counts)]
    inverse = torch.empty_like(rows)
    inverse[torch.cat(where)] = torch.arange(rows.numel(), device=rows.device)
    steps = [sm / c if c else 0.0 for sm, c in zip(sums, counts)]
    if extra is None:
        return torch.cat(pieces)[inverse], steps
    return torch.cat(pieces)[inverse], steps, torch.cat(terms)[inverse], torch.cat(marks)[inverse]


def _pick(rej, pick):
    return type(rej)(rej.step[pick], rej.token[pick])


def _unrolled_rows(draft, tokens, target_features, rows, cols, target_logits, unroll, decay, extra=None):
    starts, lo = _chain_starts(tokens.shape[0], rows, cols, unroll)
    # KL(p || q_j) = sum p log p - sum p log q_j: the target's half is computed once for all j
    logp = F.log_softmax(target_logits.float(), dim=-1)
    p = logp.exp()
    neg_entropy = (p * logp).sum(-1)
    total = weight = 0.0
    term = torch.zeros(rows.shape[0], device=rows.device)
    mark = torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)
    term_weight = 0.0
    sums, counts, accepts = [], [], []
    for j, hidden in enumerate(teacher_forced_chains(draft, tokens, target_features, starts, unroll)):
        chain = cols - j - lo[rows]  # the chain (column in `starts`) whose step j sits at (row, col)
        ok = (cols - j >= 0) & (chain >= 0)
        h = hidden[rows, chain.clamp(min=0, max=hidden.shape[1] - 1)]
        logq = F.log_softmax(draft.draft_logits(h).float(), dim=-1)
        kl = (neg_entropy - (p * logq).sum(-1)) * ok
        w = (decay**j) * ok.float()
        total, weight = total + w * kl, weight + w
        sums.append(float(kl.detach().sum()))
        counts.append(int(ok.sum()))
        if extra is not None:
            value, at = step_term(extra[0], j, kl, logq, p, ok, extra[1], draft.d2t)
            if extra[0] == "lk":  # every step counts, weighted as the KL
                term, term_weight = term + w * value, term_weight + w
            elif extra[0] == "expected-length":  # step j's acceptance, laid out by chain
                accepts.append(
                    starts.new_zeros(starts.shape, dtype=value.dtype).index_put((rows[ok], chain[ok]), value[ok])
                )
            else:  # one step per position: where the rejection happened
                term = term + value
            mark = mark | at
    if extra is not None and extra[0] == "lk":
        term = term / term_weight.clamp(min=1e-12)
    if extra is not None and extra[0] == "expected-length":
        # E[accepted] of the chain from n = sum_j prod_{i<=j} a_i (a step with no loss position,
        # past the request's end, has a = 0 and ends the chain); counted at the chain's start
        length = torch.stack(accepts, -1).cumprod(-1).sum(-1)  # [B, C]
        first = cols - lo[rows]
        term = -length[rows, first.clamp(max=length.shape[1] - 1)] / unroll
        mark = first < length.shape[1]
    return total / weight.clamp(min=1e-12), sums, counts, term, mark


def _chain_starts(batch: int, rows: torch.Tensor, cols: torch.Tensor, unroll: int):
    """The chain starts each row needs so that step j (0..unroll-1) lands on every loss
    position: [min col - (unroll - 1), max col] per row, clamped at 0; padded to one width
    (padding repeats the row's last start and is never read)."""
    dev = cols.device
    big = torch.iinfo(torch.long).max
    cmin = torch.full((batch,), big, dtype=torch.long, device=dev).scatter_reduce(0, rows, cols, "amin")
    cmax = torch.full((batch,), -1, dtype=torch.long, device=dev).scatter_reduce(0, rows, cols, "amax")
    empty = cmax < 0
    lo = (cmin - (unroll - 1)).clamp(min=0).masked_fill(empty, 0)
    hi = cmax.masked_fill(empty, 0)
    width = int((hi - lo).max()) + 1 if batch else 1
    starts = torch.minimum(lo[:, None] + torch.arange(width, device=dev)[None, :], hi[:, None])
    return starts, lo
