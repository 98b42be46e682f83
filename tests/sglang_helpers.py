"""Shared by the SGLang tests: small random targets/heads, and the wheel-source fixture logic."""

from __future__ import annotations

import torch

from aurora_sim.models.drafts import new_eagle3
from aurora_sim.models.llama import Llama, LlamaSpec


def small_target(layers: int = 6, hidden: int = 32, vocab: int = 96, tie: bool = True, seed: int = 0) -> Llama:
    spec = LlamaSpec(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=48,
        num_layers=layers,
        num_heads=4,
        num_kv_heads=2,
        head_dim=8,
        rope_theta=10000.0,
        rms_eps=1e-5,
        max_position=64,
        tie_embeddings=tie,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Llama(spec)
        for p in model.parameters():  # norms away from 1 so a swapped norm shows up
            if p.dim() == 1:
                p.data.uniform_(0.5, 1.5)
    return model.eval()


def small_head(target: Llama, layers: tuple[int, ...], seed: int = 1):
    head = new_eagle3(target, seed=seed, target_layers=layers)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 100)
        for p in head.parameters():
            if p.dim() == 1:
                p.data.uniform_(0.5, 1.5)
    return head


def save_target(model: Llama, out) -> None:
    """An HF-layout directory (config.json + model.safetensors) our loaders and transformers read."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(model.spec.to_hf()))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if model.spec.tie_embeddings:
        state.pop("lm_head.weight")
    save_file(state, str(out / "model.safetensors"))
