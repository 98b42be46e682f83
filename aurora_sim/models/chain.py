"""The EAGLE-3 head's drafting chain, exactly as serving runs it, for many chains at once.

A round that starts at position n (x_n is the last committed token) drafts a chain:
    step 0  at position n:   token x_n,    feature fuse(h_{n-1}) (the target's), and attends to
                             the head's "true" keys at positions 0..n (all made from true
                             tokens and target features: the engine's catch-up);
    step s  at position n+s: token d_s (its own step-(s-1) proposal), feature = its own step-(s-1)
                             output hidden state, and attends to the true keys at 0..n plus the
                             keys of its own steps 1..s (nothing from other chains).
Step s proposes d_{s+1} = argmax of its logits. This is EAGLE-3's training-time-test attention
pattern, indexed by chain start. One call computes it for every chain start of a sequence:
    true_pass   one causal forward over the whole sequence: step 0 of every chain, and the keys;
    chain_step  step s of a set of chains [B, C] (padded; `starts` per chain), given each chain's
                token, feature and own keys of steps 1..s-1.
The replay's fast path (proposals at every round start) and the learner's TTT loss both use
it, so the learner trains what serving runs (`aurora_sim/learner/losses.py`). A test checks it
against the round-by-round engine's draft steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aurora_sim.models.llama import apply_rope


@dataclass
class TruePass:
    hidden: torch.Tensor  # [B, S - offset, H] step-0 output at positions offset..S-1
    k: torch.Tensor  # [B, KVH, S, D] the true keys at every position (rope applied)
    v: torch.Tensor  # [B, KVH, S, D]
    offset: int = 0


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """[B, S, F] -> the value at p-1 for every position p (zeros at p = 0)."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)


def true_pass(head, tokens: torch.Tensor, target_features: torch.Tensor, outputs_from: int = 0) -> TruePass:
    """tokens [B, S]; target_features [B, S, F] (h_p at p, unfused). The head's causal forward
    over whole rows from position 0 (what `head.hidden` computes through a KV cache, written
    here with a causal attention kernel: no cache writes, and masked blocks are skipped).
    Positions before `outputs_from` only provide keys and values (no chain starts there), so
    their queries, attention output and MLP are not computed."""
    b, s = tokens.shape
    attn, sp = head.self_attn, head.spec
    feature = head.fuse(shift_right(target_features))
    x = head.layer_input(tokens, feature)
    o = min(max(0, outputs_from), s - 1)
    q = attn.q_proj(x[:, o:]).view(b, s - o, sp.num_heads, sp.head_dim).transpose(1, 2)
    k = attn.k_proj(x).view(b, s, sp.num_kv_heads, sp.head_dim).transpose(1, 2)
    v = attn.v_proj(x).view(b, s, sp.num_kv_heads, sp.head_dim).transpose(1, 2)
    cos, sin = head.rope_cos[:s][None, None], head.rope_sin[:s][None, None]
    q, k = apply_rope(q, cos[:, :, o:], sin[:, :, o:]), apply_rope(k, cos, sin)
    gqa = sp.num_heads > sp.num_kv_heads
    if o == 0:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
    else:  # query i sits at position o + i
        mask = torch.arange(s, device=tokens.device)[None, :] <= torch.arange(o, s, device=tokens.device)[:, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
    hidden = head.layer_output(feature[:, o:], attn.o_proj(out.transpose(1, 2).reshape(b, s - o, -1)))
    return TruePass(hidden, k, v, o)


def gather_chains(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x [B, S, ...] -> x at per-row positions index [B, C] -> [B, C, ...]."""
    idx = index.clamp(0, x.shape[1] - 1)
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand(*idx.shape, *x.shape[2:]))


def chain_step(
    head,
    tp: TruePass,
    starts: torch.Tensor,
    step: int,
    tokens: torch.Tensor,
    feature: torch.Tensor,
    own: list[tuple[torch.Tensor, torch.Tensor]],
):
    """Step `step` (>= 1) of the chains starting at `starts` [B, C]: tokens [B, C], feature
    [B, C, H]; `own` = the (k, v) [B, KVH, C, D] of these chains' steps 1..step-1 (in order).
    Returns (hidden [B, C, H], (k, v) of this step)."""
    attn, sp = head.self_attn, head.spec
    b, c = tokens.shape
    x = head.layer_input(tokens, feature)
    q = attn.q_proj(x).view(b, c, sp.num_heads, sp.head_dim).transpose(1, 2)
    k = attn.k_proj(x).view(b, c, sp.num_kv_heads, sp.head_dim).transpose(1, 2)
    v = attn.v_proj(x).view(b, c, sp.num_kv_heads, sp.head_dim).transpose(1, 2)
    pos = (starts + step).clamp(max=head.rope_cos.shape[0] - 1)
    cos, sin = head.rope_cos[pos][:, None], head.rope_sin[pos][:, None]
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    out = _chain_attention(q, tp.k, tp.v, starts, own + [(k, v)])
    return head.layer_output(feature, attn.o_proj(out.transpose(1, 2).reshape(b, c, -1))), (k, v)


def _chain_attention(q, k0, v0, starts, own):
    """q [B, H, C, D] attends to the true keys k0/v0 [B, KVH, S, D] at positions <= its chain's
    start, and to its own chain's keys `own` [(k, v) [B, KVH, C, D]] (one each, no mask)."""
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in (q, k0, v0)):
        return _chain_attention_flash(q, k0, v0, starts, own)
    b, h, c, d = q.shape
    kvh, s = k0.shape[1], k0.shape[2]
    rep = h // kvh  # grouped-query attention: query head i reads kv head i // rep
    scale = d**-0.5
    qg = q.reshape(b, kvh, rep, c, d)
    true_scores = (qg.reshape(b, kvh, rep * c, d) @ k0.transpose(-1, -2)).view(b, kvh, rep, c, s) * scale
    visible = torch.arange(s, device=q.device)[None, None, :] <= starts[:, :, None]  # [B, C, S]
    true_scores = true_scores.masked_fill(~visible[:, None, None], float("-inf"))
    own_scores = torch.stack([(qg * kk[:, :, None]).sum(-1) for kk, _ in own], dim=-1) * scale  # [B, KVH, rep, C, j]
    probs = torch.softmax(torch.cat([true_scores, own_scores], dim=-1).float(), dim=-1).to(q.dtype)
    out = (probs[..., :s].reshape(b, kvh, rep * c, s) @ v0).view(b, kvh, rep, c, d)
    for i, (_, vv) in enumerate(own):
        out = out + probs[..., s + i, None] * vv[:, :, None]
    return out.reshape(b, h, c, d)


def teacher_forced_chains(head, tokens: torch.Tensor, target_features: torch.Tensor, starts: torch.Tensor, steps: int):
    """Yield the hidden states [B, C, H] of steps 0..steps-1 of the chains at `starts` [B, C],
    each step fed the *true* next token (x_{n+s}; 0 past the row's end): EAGLE-3's training
    chains. Where d_1..d_s matched the true tokens this is exactly the served chain."""
    tp = true_pass(head, tokens, target_features, outputs_from=int(starts.min()))
    hidden = gather_chains(tp.hidden, starts - tp.offset)
    yield hidden
    own: list = []
    width = tokens.shape[1]
    for s in range(1, steps):
        pos = starts + s
        tok = tokens.gather(1, pos.clamp(max=width - 1)).masked_fill(pos >= width, 0)
        hidden, kv = chain_step(head, tp, starts, s, tok, hidden, own)
        own.append(kv)
        yield hidden


def _chain_attention_flash(q, k0, v0, starts, own):
    """The same attention without materialising the [C, S] scores (serving, no gradient): the
    true keys through the CPU flash kernel, which also returns each query's log-sum-exp, then
    the chain's own keys merged in by log-sum-exp. Equal to _chain_attention to float rounding."""
    b, h, c, d = q.shape
    kvh, s = k0.shape[1], k0.shape[2]
    rep = h // kvh
    scale = d**-0.5
    visible = torch.arange(s, device=q.device)[None, None, :] <= starts[:, :, None]  # [B, C, S]
    bias = torch.zeros(visible.shape, dtype=q.dtype, device=q.device).masked_fill_(~visible, float("-inf"))[:, None]
    # kv head i // rep serves query head i; with one kv head an expand is free (stride 0)
    if kvh == 1:
        k_all, v_all = k0.expand(b, h, s, d), v0.expand(b, h, s, d)
    else:
        k_all = k0[:, :, None].expand(b, kvh, rep, s, d).reshape(b, h, s, d)
        v_all = v0[:, :, None].expand(b, kvh, rep, s, d).reshape(b, h, s, d)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k_all, v_all, attn_mask=bias, scale=scale)
    qg = q.view(b, kvh, rep, c, d)
    own_scores = [((qg * kk[:, :, None]).sum(-1) * scale).reshape(b, h, c) for kk, _ in own]  # [B, H, C]
    total = torch.logsumexp(torch.stack([lse, *own_scores], dim=-1), dim=-1)
    out = out * (lse - total).exp()[..., None]
    for sc, (_, vv) in zip(own_scores, own):
        out = out + (sc - total).exp()[..., None] * vv[:, :, None].expand(b, kvh, rep, c, d).reshape(b, h, c, d)
    return out
