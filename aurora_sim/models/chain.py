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


def true_pass_rows(head, tokens: torch.Tensor, target_features: torch.Tensor, lo: torch.Tensor, count: torch.Tensor):
    """true_pass for serving (no gradient) where row r's chains start at lo[r] .. lo[r] +
    count[r] - 1: the same TruePass (offset min(lo)), computed only where it is read. Keys and
    values at positions < lo + count (a chain at n reads keys <= n), outputs at lo .. lo + count
    - 1, each row's attention over its own width. In a batch of rows sorted by length the
    prompts still differ, so the dense pass computes outputs over other rows' prompt lengths and
    padding; this skips them. Positions not computed are zero and never read."""
    b, s = tokens.shape
    attn, sp = head.self_attn, head.spec
    o = int(lo.min())
    pos = torch.arange(s, device=tokens.device)[None, :]
    kv_at = (pos < (lo + count)[:, None]).nonzero(as_tuple=True)
    out_at = ((pos >= lo[:, None]) & (pos < (lo + count)[:, None])).nonzero(as_tuple=True)
    feature = head.fuse(shift_right(target_features)[kv_at])  # [N, H] at the key positions
    x = head.layer_input(tokens[kv_at], feature)
    cos, sin = head.rope_cos[kv_at[1]][:, None], head.rope_sin[kv_at[1]][:, None]  # [N, 1, D]
    k = apply_rope(attn.k_proj(x).view(-1, sp.num_kv_heads, sp.head_dim), cos, sin)
    v = attn.v_proj(x).view(-1, sp.num_kv_heads, sp.head_dim)
    k_full = x.new_zeros(b, s, sp.num_kv_heads, sp.head_dim)
    v_full = torch.zeros_like(k_full)
    k_full[kv_at], v_full[kv_at] = k, v
    k_full, v_full = k_full.transpose(1, 2), v_full.transpose(1, 2)
    # the output positions are key positions too: their inputs are picked from the keys' rows
    feat_full = x.new_zeros(b, s, feature.shape[-1])
    x_full = x.new_zeros(b, s, x.shape[-1])
    feat_full[kv_at], x_full[kv_at] = feature, x
    q_in, feat_out = x_full[out_at], feat_full[out_at]
    cos_o, sin_o = head.rope_cos[out_at[1]][:, None], head.rope_sin[out_at[1]][:, None]
    q = apply_rope(attn.q_proj(q_in).view(-1, sp.num_heads, sp.head_dim), cos_o, sin_o)  # [M, H, D]
    att = torch.empty(q.shape[0], sp.num_heads, sp.head_dim, dtype=q.dtype, device=q.device)
    scale = sp.head_dim**-0.5
    done = 0
    for r, n in enumerate(count.tolist()):
        if n <= 0:
            continue
        first, width = int(lo[r]), int(lo[r]) + n
        qr = q[done : done + n].transpose(0, 1)[None]  # [1, H, n, D]
        at = torch.arange(first, width, device=q.device)[None]
        out, _ = _true_attention(qr, k_full[r : r + 1, :, :width], v_full[r : r + 1, :, :width], at, scale)
        att[done : done + n] = out[0].transpose(0, 1)
        done += n
    h = head.layer_output(feat_out, attn.o_proj(att.reshape(att.shape[0], -1)))
    hidden = x.new_zeros(b, s - o, h.shape[-1])
    hidden[out_at[0], out_at[1] - o] = h
    return TruePass(hidden, k_full, v_full, o)


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
    valid: torch.Tensor | None = None,
):
    """Step `step` (>= 1) of the chains starting at `starts` [B, C]: tokens [B, C], feature
    [B, C, H]; `own` = the (k, v) [B, KVH, C, D] of these chains' steps 1..step-1 (in order).
    Returns (hidden [B, C, H], (k, v) of this step).

    valid [B, C]: the chains that exist (the rest is padding: its hidden state is zero and its
    keys are never read by a real chain). The projections and the MLP, most of a step's
    arithmetic, then run on the real chains only; only the attention keeps the padded layout
    (the true keys are shared per row). Serving's live chains are a ragged third of the padded
    grid, so this is most of the saving; the values are the same, row by row."""
    if valid is None:
        return _chain_step_dense(head, tp, starts, step, tokens, feature, own)
    attn, sp = head.self_attn, head.spec
    b, c = tokens.shape
    idx = valid.nonzero(as_tuple=True)
    n = idx[0].numel()
    feat = feature[idx]
    x = head.layer_input(tokens[idx], feat)  # [N, 2H]
    pos = (starts[idx] + step).clamp(max=head.rope_cos.shape[0] - 1)
    cos, sin = head.rope_cos[pos][:, None], head.rope_sin[pos][:, None]  # [N, 1, D]
    q = apply_rope(attn.q_proj(x).view(n, sp.num_heads, sp.head_dim), cos, sin)
    k = apply_rope(attn.k_proj(x).view(n, sp.num_kv_heads, sp.head_dim), cos, sin)
    v = attn.v_proj(x).view(n, sp.num_kv_heads, sp.head_dim)
    q, k, v = (_spread(t, idx, b, c) for t in (q, k, v))
    out = _chain_attention(q, tp.k, tp.v, starts, own + [(k, v)], valid)
    h = head.layer_output(feat, attn.o_proj(out.transpose(1, 2)[idx].reshape(n, -1)))
    hidden = feature.new_zeros(b, c, h.shape[-1], dtype=h.dtype)
    hidden[idx] = h
    return hidden, (k, v)


def _spread(x: torch.Tensor, idx, b: int, c: int) -> torch.Tensor:
    """[N, heads, D] at the valid entries `idx` -> [B, heads, C, D], zeros elsewhere."""
    out = x.new_zeros(b, c, x.shape[1], x.shape[2])
    out[idx] = x
    return out.transpose(1, 2)


def _chain_step_dense(head, tp, starts, step, tokens, feature, own):
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


def _chain_attention(q, k0, v0, starts, own, valid=None):
    """q [B, H, C, D] attends to the true keys k0/v0 [B, KVH, S, D] at positions <= its chain's
    start, and to its own chain's keys `own` [(k, v) [B, KVH, C, D]] (one each, no mask).
    valid [B, C] (no gradient only): each row's real chains, a prefix of ascending starts."""
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in (q, k0, v0)):
        return _chain_attention_flash(q, k0, v0, starts, own, valid)
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


def _chain_attention_flash(q, k0, v0, starts, own, valid=None):
    """The same attention without materialising the [C, S] scores (serving, no gradient): the
    true keys through the CPU flash kernel, which also returns each query's log-sum-exp, then
    the chain's own keys merged in by log-sum-exp. Equal to _chain_attention to float rounding."""
    b, h, c, d = q.shape
    kvh = k0.shape[1]
    rep = h // kvh
    scale = d**-0.5
    if valid is None:
        out, lse = _true_attention(q, k0, v0, starts, scale)
    else:
        out, lse = _true_attention_rows(q, k0, v0, starts, valid, scale)
    qg = q.view(b, kvh, rep, c, d)
    own_scores = [((qg * kk[:, :, None]).sum(-1) * scale).reshape(b, h, c) for kk, _ in own]  # [B, H, C]
    total = torch.logsumexp(torch.stack([lse, *own_scores], dim=-1), dim=-1)
    out = out * (lse - total).exp()[..., None]
    for sc, (_, vv) in zip(own_scores, own):
        out = out + (sc - total).exp()[..., None] * vv[:, :, None].expand(b, kvh, rep, c, d).reshape(b, h, c, d)
    return out


def _true_attention(q, k0, v0, starts, scale):
    """(out [B, H, C, D], log-sum-exp [B, H, C]) of q over the true keys at positions <= start."""
    b, h, c, d = q.shape
    kvh, s = k0.shape[1], k0.shape[2]
    rep = h // kvh
    visible = torch.arange(s, device=q.device)[None, None, :] <= starts[:, :, None]  # [B, C, S]
    bias = torch.zeros(visible.shape, dtype=q.dtype, device=q.device).masked_fill_(~visible, float("-inf"))[:, None]
    # kv head i // rep serves query head i; with one kv head an expand is free (stride 0)
    if kvh == 1:
        k_all, v_all = k0.expand(b, h, s, d), v0.expand(b, h, s, d)
    else:
        k_all = k0[:, :, None].expand(b, kvh, rep, s, d).reshape(b, h, s, d)
        v_all = v0[:, :, None].expand(b, kvh, rep, s, d).reshape(b, h, s, d)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k_all, v_all, attn_mask=bias, scale=scale)
    return out, lse


def _true_attention_rows(q, k0, v0, starts, valid, scale):
    """_true_attention one row at a time, over only that row's real chains and the keys up to
    its last chain's start: a masked flash kernel computes every score of its grid, and serving's
    live chains fill a third of the padded one (ragged counts, keys past the last start). Padding
    gets out 0 and log-sum-exp -inf (no weight when the chain's own keys are merged in)."""
    b, h, c, d = q.shape
    out = q.new_zeros(b, h, c, d)
    lse = torch.full((b, h, c), float("-inf"), dtype=torch.float32, device=q.device)
    counts = valid.sum(1).tolist()
    for r, n in enumerate(counts):
        if n == 0:
            continue
        st = starts[r : r + 1, :n]
        width = int(st.max()) + 1
        o, row_lse = _true_attention(q[r : r + 1, :, :n], k0[r : r + 1, :, :width], v0[r : r + 1, :, :width], st, scale)
        out[r, :, :n] = o[0]
        lse[r, :, :n] = row_lse[0]
    return out, lse
