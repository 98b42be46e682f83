"""The maths of lossless speculative verification, as pure functions.

Every random draw comes from the generator passed in (one per request), so a request's result
never depends on which other requests share its batch.

Standard speculative sampling (Leviathan et al. 2023; Chen et al. 2023): proposal d_i drawn
from the draft's q is accepted with probability min(1, p(d_i)/q(d_i)); at the first rejection
the token is drawn from the residual norm(max(p - q, 0)); if all γ are accepted a bonus token is
drawn from p at the next position. The output is distributed exactly as the target's p.
"""

from __future__ import annotations

import torch


def target_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Distribution actually sampled from: softmax(logits / T) restricted to the top-p nucleus.

    logits: [..., V] -> probs [..., V] in float64 (sums are compared against uniforms).
    Temperature 0 means greedy: a one-hot on the argmax.
    """
    logits = logits.double()
    if temperature <= 0.0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).double()
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token is always kept)
        before = sorted_p.cumsum(-1) - sorted_p
        sorted_p = torch.where(before < top_p, sorted_p, torch.zeros_like(sorted_p))
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample(probs: torch.Tensor, gen: torch.Generator) -> int:
    """One token from a 1-D distribution (argmax when it is one-hot, without a draw)."""
    if probs.max().item() == 1.0:
        return int(probs.argmax().item())
    # per-request generators live on the CPU, so the draw does too (same stream on CPU and CUDA)
    return int(torch.multinomial(probs.float().cpu(), 1, generator=gen).item())


def verify_chain(proposals: list[int], q: torch.Tensor, p: torch.Tensor, gen: torch.Generator) -> tuple[int, int]:
    """Verify a chain of γ proposals.

    q: [γ, V] draft distributions the proposals were drawn from; p: [γ+1, V] target
    distributions at the same positions plus one. Returns (accepted count k, next token):
    the next token is the residual sample at the first rejection, or the bonus from p[γ].
    Greedy (one-hot p) reduces to: accept while the proposal is the target's argmax.
    """
    for i, tok in enumerate(proposals):
        p_tok, q_tok = p[i, tok].item(), q[i, tok].item()
        if p_tok >= q_tok:
            continue  # accept with probability 1, no draw needed
        if p_tok > 0.0 and torch.rand((), generator=gen, dtype=torch.float64).item() < p_tok / q_tok:
            continue
        residual = (p[i] - q[i]).clamp(min=0.0)
        total = residual.sum()
        # total == 0 only when p == q up to rounding; then p itself is the right law
        return i, sample(residual / total if total > 0 else p[i], gen)
    return len(proposals), sample(p[len(proposals)], gen)
