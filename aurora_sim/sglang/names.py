"""Our EAGLE-3 head's weights under the names SGLang's `LlamaForCausalLMEagle3.load_weights`
(python/sglang/srt/models/llama_eagle3.py, 0.5.17 and 0.5.23 alike) maps onto its modules.

Why this is a renaming and not a conversion: our `Eagle3Head` is SGLang's draft layer term for
term (checked against the source, and executed against it in tests/test_sglang_contract.py):
    fc        Linear(len(layers)·H -> H, no bias) over the concatenated target features
    layer     cat([input_layernorm(embed), hidden_norm(fc_out)]) -> q/k/v (2H in) -> attention,
              residual = fc_out; post_attention_layernorm; SwiGLU MLP; residual again
    head      norm -> lm_head (full or hot vocabulary, d2t); the pre-norm output feeds the next step
SGLang's loader stacks q/k/v into `qkv_proj` and gate/up into `gate_up_proj` itself, accepts
`layers.0.*` (or the legacy `midlayer.*`) with or without a `model.` prefix, and *silently skips*
any name it does not know, so a wrong name here would serve a random weight: the contract test
runs the real loader over these names and fails on any name it skips.

Two things SGLang decides from the target's side that we must match:
- Which target layers: SGLang captures the *input* of layer i+1 for each configured id i (the
  `+1` in `set_eagle3_layers_to_capture`), i.e. the output of layer i = our `target_layers[i]`.
  So `eagle_aux_hidden_state_layer_ids` = our ids unshifted. The last layer (L-1) can never be
  captured (the capture loop runs over layers 0..L-1 and would need index L).
- Order: captures are appended in layer order, so SGLang's feature is concatenated in
  ascending layer order whatever order the ids are listed in. Our fc columns follow our own
  list order; `sglang_fc` permutes (and, for a repeated layer, sums) the column blocks so the
  exported fc computes exactly our fused feature from SGLang's concatenation.
"""

from __future__ import annotations

import torch

from aurora_sim.errors import AuroraError

# our Eagle3Head state_dict key -> SGLang checkpoint name (layers.0.* is the current spelling)
_LAYER_KEYS = (
    "input_layernorm.weight",
    "hidden_norm.weight",
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
)
EAGLE3_NAMES: dict[str, str] = {
    "fc.weight": "fc.weight",
    **{k: f"layers.0.{k}" for k in _LAYER_KEYS},
    "norm.weight": "norm.weight",
    "lm_head.weight": "lm_head.weight",
}


def capture_ids(target_layers: tuple[int, ...], num_target_layers: int) -> list[int]:
    """`eagle_aux_hidden_state_layer_ids` for SGLang: our ids (outputs of those layers), sorted,
    distinct. Raises where SGLang cannot capture a layer we read."""
    bad = [i for i in target_layers if not 0 <= i <= num_target_layers - 2]
    if bad:
        raise AuroraError(
            f"draft reads target layer(s) {bad} of a {num_target_layers}-layer target: SGLang captures the "
            f"output of layer i as the input of layer i+1, so only layers 0..{num_target_layers - 2} can be "
            "exported (retrain the head on other layers)"
        )
    return sorted(set(target_layers))


def sglang_fc(fc_weight: torch.Tensor, target_layers: tuple[int, ...], hidden: int) -> torch.Tensor:
    """fc weight [H, len(target_layers)·H] re-laid for SGLang's ascending, de-duplicated capture
    order: block j of the result multiplies captured layer ids[j] (a repeated layer's blocks add,
    which is exact: W1·h + W2·h = (W1 + W2)·h)."""
    ids = sorted(set(target_layers))
    blocks = [torch.zeros_like(fc_weight[:, :hidden]) for _ in ids]
    for k, layer in enumerate(target_layers):
        blocks[ids.index(layer)] += fc_weight[:, k * hidden : (k + 1) * hidden]
    return torch.cat(blocks, dim=1)


def eagle3_state(
    state: dict[str, torch.Tensor], target_layers: tuple[int, ...], hidden: int, vocab_size: int | None = None
) -> dict[str, torch.Tensor]:
    """Our Eagle3Head state_dict -> SGLang checkpoint tensors (exact names, fc re-laid). A
    hot-vocabulary head's `d2t` (ascending target ids) becomes SGLang's `d2t`, stored as the
    difference target id - draft id (its loader adds arange back: hot_token_id), plus `t2d`, the
    target-vocabulary mask SGLang's loader skips but EAGLE-3 checkpoints carry."""
    state = dict(state)
    d2t = state.pop("d2t", None)
    missing = sorted(set(EAGLE3_NAMES) - set(state))
    extra = sorted(set(state) - set(EAGLE3_NAMES))
    if missing or extra:
        raise AuroraError(f"EAGLE-3 head has unexpected weights (missing {missing[:3]}, unknown {extra[:3]})")
    out = {EAGLE3_NAMES[k]: v for k, v in state.items()}
    out["fc.weight"] = sglang_fc(state["fc.weight"], target_layers, hidden)
    if d2t is not None:
        if vocab_size is None:
            raise AuroraError("a hot-vocabulary head needs the target's vocabulary size to export t2d")
        out["d2t"] = (d2t - torch.arange(len(d2t), device=d2t.device)).to(torch.int64)
        t2d = torch.zeros(vocab_size, dtype=torch.bool)
        t2d[d2t.cpu()] = True
        out["t2d"] = t2d
    return out
