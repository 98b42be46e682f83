"""Hot-swapping the draft inside a running `sglang.Engine`, aimed at the draft only.

What each version offers (read in the wheels; tests/test_sglang_contract.py checks the shapes):
- 0.5.23 (any version whose Engine has `begin_weight_update`): a tensor update must run inside
  `begin_weight_update(selector)` ... `end_weight_update()`, and the request's own `selector`
  picks the runners. `Engine.update_weights_from_tensor` does not expose `selector`, so we
  build `UpdateWeightsFromTensorReqInput(selector="draft")` and send it the way that method does.
- 0.5.12-0.5.17: `Engine.update_weights_from_tensor(named_tensors)` loads the tensors into the
  draft, then the *same* tensors into the target (eagle_worker_v2.update_weights_from_tensor).
  The target's loader matches exact names only, so EAGLE names (`fc.weight`, `layers.0.*`,
  `norm.weight`) miss it; `lm_head.weight` hits it unless the target ties its embeddings (both
  our tiers do, and a tied target skips that name). We refuse the cases that would write the
  target: an untied target, or a STANDALONE draft (its names are the target's names).
- Disk updates (`update_weights_from_disk`) reload the target *and* every draft from one path in
  all these versions, so they cannot swap a draft.
After an update SGLang keeps its cached hot-token map. A hot-vocabulary head keeps its `d2t` for
life (the learner trains the weights, never the map), so the map is not sent again.
"""

from __future__ import annotations

import torch

from aurora_sim.errors import AuroraError
from aurora_sim.sglang import names


def draft_tensors(draft) -> list[tuple[str, torch.Tensor]]:
    """The draft's weights under the names SGLang's draft model loads (as `aurora draft export`)."""
    if draft.kind == "eagle3":
        state = names.eagle3_state(
            dict(draft.state_dict()), draft.target_layers, draft.spec.hidden_size, draft.spec.vocab_size
        )
        state = {k: v for k, v in state.items() if k not in ("d2t", "t2d")}  # the map never changes
    else:
        state = dict(draft.lm.state_dict())
    return [(k, v.detach()) for k, v in sorted(state.items())]


def target_param_names(spec) -> set[str]:
    """SGLang's LlamaForCausalLM parameter names for a target of this shape (tp = 1: q/k/v
    stacked into qkv_proj, gate/up into gate_up_proj; a tied LM head is the embedding)."""
    out = {"model.embed_tokens.weight", "model.norm.weight"} | (set() if spec.tie_embeddings else {"lm_head.weight"})
    for i in range(spec.num_layers):
        out |= {
            f"model.layers.{i}.{n}.weight"
            for n in (
                "self_attn.qkv_proj",
                "self_attn.o_proj",
                "mlp.gate_up_proj",
                "mlp.down_proj",
                "input_layernorm",
                "post_attention_layernorm",
            )
        }
    return out


def target_collisions(named: list[tuple[str, torch.Tensor]], target_params: set[str], tied: bool) -> list[str]:
    """Names a <= 0.5.17 tensor update would also write into the target (exact-name loader,
    q/k/v and gate/up stacked; a tied target skips lm_head.weight)."""
    hits = []
    for name, _ in named:
        stacked = name
        for shard, fused in (
            (".q_proj", ".qkv_proj"),
            (".k_proj", ".qkv_proj"),
            (".v_proj", ".qkv_proj"),
            (".gate_proj", ".gate_up_proj"),
            (".up_proj", ".gate_up_proj"),
        ):
            if shard in name:
                stacked = name.replace(shard, fused)
                break
        if tied and "lm_head.weight" in name:
            continue
        if stacked in target_params:
            hits.append(name)
    return hits


def push_draft(engine, draft, target_params: set[str], target_tied: bool) -> str:
    """Load `draft`'s weights into the engine's draft model. Returns the API used."""
    named = draft_tensors(draft)
    if hasattr(engine, "begin_weight_update"):
        _push_session(engine, named)
        return "begin_weight_update(selector='draft') + update_weights_from_tensor"
    hits = target_collisions(named, target_params, target_tied)
    if hits:
        raise AuroraError(
            f"this SGLang sends draft tensor updates to the target too, and {hits[:3]} would "
            "overwrite target weights; use SGLang >= 0.5.23 (selector='draft')"
        )
    ok, message = _result(engine.update_weights_from_tensor(named))
    if not ok:
        raise AuroraError(f"SGLang rejected the draft update: {message}")
    return "update_weights_from_tensor (draft, then target: no target name matched)"


def _push_session(engine, named) -> None:
    from sglang.srt.managers.io_struct import UpdateWeightsFromTensorReqInput

    ok, message = _result(engine.begin_weight_update(selector="draft"))
    if not ok:
        raise AuroraError(f"SGLang begin_weight_update(selector='draft') failed: {message}")
    try:
        obj = UpdateWeightsFromTensorReqInput(
            serialized_named_tensors=engine._serialize_tensors_per_rank(named, None), selector="draft"
        )
        ok, message = _result(
            engine.loop.run_until_complete(engine.tokenizer_manager.update_weights_from_tensor(obj, None))
        )
    finally:
        end_ok, end_message = _result(engine.end_weight_update())
    if not ok:
        raise AuroraError(f"SGLang rejected the draft update: {message}")
    if not end_ok:
        raise AuroraError(f"SGLang end_weight_update failed: {end_message}")


def _result(res) -> tuple[bool, str]:
    # Engine methods return (success, message); tolerate an object with the same fields
    if isinstance(res, tuple):
        return bool(res[0]), str(res[1]) if len(res) > 1 else ""
    return bool(getattr(res, "success", True)), str(getattr(res, "message", ""))
