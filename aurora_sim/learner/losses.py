"""Draft losses: forward KL to the target, with the EAGLE training-time-test (TTT) unroll.

Unroll step 0 feeds the head the target's fused features h_{p-1}; step j feeds it its own
output hidden state from step j-1 at p-1, exactly what drafting step j+1 sees at serving time,
and is weighted decay**j (Aurora: 5-7 steps, 0.8**i). Simplification, stated: within a step
every position attends to keys computed from that step's inputs, whereas at serving time the
older keys come from true features; EAGLE-3's tree mask models that exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def forward_kl(target_logits: torch.Tensor, draft_logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over (masked) positions of KL(p_target || p_draft). logits: [..., V]; mask: [...]."""
    logp = F.log_softmax(target_logits.float(), dim=-1)
    logq = F.log_softmax(draft_logits.float(), dim=-1)
    kl = (logp.exp() * (logp - logq)).sum(-1)
    if mask is None:
        return kl.mean()
    mask = mask.float()
    return (kl * mask).sum() / mask.sum().clamp(min=1.0)


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """[B, S, F] -> the value at p-1 for every position p (zeros at p = 0)."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)


def eagle3_ttt_loss(head, tokens, target_features, target_logits, unroll: int = 3, decay: float = 0.8, mask=None):
    """tokens [B, S], target_features [B, S, 3H] (h_p at p), target_logits [B, S, V] (predicting
    x_{p+1} at p). Returns (weighted loss, per-step losses)."""
    total, steps = 0.0, []
    target_logits = head.restrict(target_logits)  # a hot-vocabulary head: the target given those tokens
    for j, hidden in enumerate(draft_unroll(head, tokens, target_features, unroll)):
        loss_j = forward_kl(target_logits, head.draft_logits(hidden), mask)
        total = total + (decay**j) * loss_j
        steps.append(float(loss_j.detach()))
    return total / sum(decay**j for j in range(unroll)), steps


def lm_draft_loss(draft, tokens, target_logits, mask=None):
    b, s = tokens.shape
    slots = torch.arange(b, device=tokens.device)
    logits, _ = draft(tokens, None, slots, torch.zeros(b, dtype=torch.long, device=tokens.device), draft.new_cache(b, s))
    loss = forward_kl(target_logits, logits, mask)
    return loss, [float(loss.detach())]


# ---- per-position losses for the online learner (the loss is taken only where it is used) ----
def position_kl(target_logits: torch.Tensor, draft_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_target || p_draft) per row: [M, V] x [M, V] -> [M]."""
    logp = F.log_softmax(target_logits.float(), dim=-1)
    logq = F.log_softmax(draft_logits.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def draft_unroll(draft, tokens, target_features, unroll: int):
    """Yield the draft's hidden states [B, S, H] for TTT steps 0..unroll-1 (EAGLE-3 head), or
    its logits once (LM draft, whose chain prediction at step j is its teacher-forced one)."""
    b, s = tokens.shape
    slots = torch.arange(b, device=tokens.device)
    start = torch.zeros(b, dtype=torch.long, device=tokens.device)
    if not draft.uses_features:
        logits, _ = draft(tokens, None, slots, start, draft.new_cache(b, s))
        yield logits
        return
    feature = draft.fuse(shift_right(target_features))
    for _ in range(unroll):
        hidden = draft.hidden(tokens, feature, slots, start, draft.new_cache(b, s))
        yield hidden
        feature = shift_right(hidden)


def unrolled_kl(draft, tokens, target_features, index, target_logits, unroll: int, decay: float):
    """Weighted (decay**j) mean over TTT steps of the per-position KL at `index` (rows, cols).
    Returns ([M] KL, per-step mean KL)."""
    rows, cols = index
    total, steps, weight = 0.0, [], 0.0
    if draft.uses_features:
        target_logits = draft.restrict(target_logits)
    for j, out in enumerate(draft_unroll(draft, tokens, target_features, unroll)):
        logits = out[rows, cols] if not draft.uses_features else draft.draft_logits(out[rows, cols])
        kl = position_kl(target_logits, logits)
        total = total + (decay**j) * kl
        weight += decay**j
        steps.append(float(kl.detach().mean()) if kl.numel() else 0.0)
    return total / weight, steps
