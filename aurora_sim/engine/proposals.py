"""A draft's greedy proposals at every possible round start of a known trajectory.

Under greedy verification the target's tokens are known in advance (the trajectory), so the
round that would start at position n accepts the longest prefix of the draft's chain from n that
matches x_{n+1}, x_{n+2}, ... . This computes, for every chain start of a set of rows at once,
the chain the engine would draft (`aurora_sim.models.chain`: the same attention pattern, the
same inputs) and that accepted count.

Step s of a chain only matters while d_1..d_s matched (after a mismatch the round is over), so
by default step s runs only on the chains still alive: most chains die at step 1 or 2, which
is where the speed comes from. `full=True` runs every step on every chain (each fed its own
proposals, exactly the served chain), for callers that need the rejected tail (discard
sampling). Proposals that were not computed are -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aurora_sim.models.chain import chain_step, gather_chains, true_pass_rows


@dataclass
class Chains:
    starts: torch.Tensor  # [B, C] chain start positions n (padded rows: valid is False)
    valid: torch.Tensor  # [B, C]
    proposals: torch.Tensor  # [B, C, γ] long; -1 = not computed (after the first mismatch)
    accepted: torch.Tensor  # [B, C] leading proposals equal to the truth (0..γ)


def _argmax(head, hidden: torch.Tensor) -> torch.Tensor:
    idx = head.draft_logits(hidden).argmax(-1)
    return idx if head.d2t is None else head.d2t[idx]


def _accepted(proposals: torch.Tensor, truth_next: torch.Tensor) -> torch.Tensor:
    return (proposals == truth_next).long().cumprod(-1).sum(-1)


def _truth_after(truth: torch.Tensor, starts: torch.Tensor, gamma: int) -> torch.Tensor:
    """[B, C, γ]: x_{n+1}..x_{n+γ} for every chain start n (-2 past the row's known tokens)."""
    pos = starts[:, :, None] + torch.arange(1, gamma + 1, device=starts.device)
    t = truth.gather(1, pos.clamp(max=truth.shape[1] - 1).flatten(1)).view(pos.shape)
    return t.masked_fill(pos >= truth.shape[1], -2)


@torch.no_grad()
def greedy_chains(
    draft,
    tokens: torch.Tensor,
    target_features,
    truth: torch.Tensor,
    lo: torch.Tensor,
    count: torch.Tensor,
    gamma: int,
    full: bool = False,
) -> Chains:
    """tokens [B, S]: each row's sequence up to its last chain start at least (padded);
    target_features [B, S, F] (EAGLE-3 heads; ignored by LM drafts); truth [B, T]: each row's
    true tokens, far enough past its last chain start for γ comparisons (the trajectory's
    overhang); chains start at lo[b] .. lo[b] + count[b] - 1."""
    dev = tokens.device
    width = int(count.max()) if len(count) else 0
    ci = torch.arange(max(width, 1), device=dev)
    starts = lo[:, None] + ci[None, :]
    valid = ci[None, :] < count[:, None]
    starts = torch.where(valid, starts, lo[:, None])
    truth_next = _truth_after(truth, starts, gamma)
    if not draft.uses_features:
        props = _lm_chains(draft, truth, starts, gamma)
    else:
        props = _eagle_chains(draft, tokens, target_features, starts, valid, truth_next, gamma, full)
    if not full:  # what follows the first mismatch was not served: leave it unknown
        alive = (props == truth_next).long().cumprod(-1)
        dead_before = torch.cat([torch.ones_like(alive[..., :1]), alive[..., :-1]], dim=-1) == 0
        props = props.masked_fill(dead_before, -1)
    props = props.masked_fill(~valid[..., None], -1)
    return Chains(starts, valid, props, _accepted(props, truth_next) * valid)


def _lm_chains(draft, truth, starts, gamma):
    # A standalone LM draft fed true tokens predicts, at p, what a served chain through p
    # proposes while it is alive: one teacher-forced pass gives every chain.
    b, t = truth.shape
    slots = torch.arange(b, device=truth.device)
    logits, _ = draft(
        truth.clamp(min=0), None, slots, torch.zeros(b, dtype=torch.long, device=truth.device), draft.new_cache(b, t)
    )
    pred = logits.argmax(-1)  # [B, T]
    pos = starts[:, :, None] + torch.arange(gamma, device=truth.device)
    return pred.gather(1, pos.clamp(max=t - 1).flatten(1)).view(pos.shape)


def _eagle_chains(head, tokens, target_features, starts, valid, truth_next, gamma, full):
    b, c = starts.shape
    tp = true_pass_rows(head, tokens, target_features, starts[:, 0], valid.sum(1))  # the prompt: keys only
    props = torch.full((b, c, gamma), -1, dtype=torch.long, device=tokens.device)
    hidden = gather_chains(tp.hidden, starts - tp.offset)  # full layout [B, C, H]
    # the LM head (most of a draft step's arithmetic) only on real chains, not on padding
    rows, cols = valid.nonzero(as_tuple=True)
    props[rows, cols, 0] = _argmax(head, hidden[rows, cols])
    own: list[tuple[torch.Tensor, torch.Tensor]] = []  # full layout [B, KVH, C, D] per step
    live = valid.clone()
    for s in range(1, gamma):
        if not full:
            live = live & (props[:, :, s - 1] == truth_next[:, :, s - 1])
        counts = live.sum(1)
        if int(counts.max()) == 0:
            break
        # compact: each row's live chains first, padded to the widest row
        order = torch.sort((~live).to(torch.int8), dim=1, stable=True).indices[:, : int(counts.max())]
        sel_valid = torch.arange(order.shape[1], device=order.device)[None, :] < counts[:, None]
        sub_starts = starts.gather(1, order)
        sub_tok = props[:, :, s - 1].gather(1, order).clamp(min=0)
        sub_hidden = gather_chains(hidden, order)
        sub_own = [(_gather_kv(k, order), _gather_kv(v, order)) for k, v in own]
        h, (k, v) = chain_step(head, tp, sub_starts, s, sub_tok, sub_hidden, sub_own, valid=sel_valid)
        # scatter back into the full layout (padding entries point at a live chain's slot;
        # write only the real ones)
        rows, cols = sel_valid.nonzero(as_tuple=True)
        dest = order[rows, cols]
        props[rows, dest, s] = _argmax(head, h[rows, cols])
        hidden = hidden.clone()
        hidden[rows, dest] = h[rows, cols]
        k_full = torch.zeros(b, k.shape[1], c, k.shape[3], dtype=k.dtype, device=k.device)
        v_full = torch.zeros_like(k_full)
        k_full[rows, :, dest] = k[rows, :, cols]
        v_full[rows, :, dest] = v[rows, :, cols]
        own.append((k_full, v_full))
    return props


def _gather_kv(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """[B, KVH, C, D] at chain indices order [B, C'] -> [B, KVH, C', D]."""
    b, kvh, _, d = x.shape
    return x.gather(2, order[:, None, :, None].expand(b, kvh, order.shape[1], d))
