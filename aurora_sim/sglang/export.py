"""`aurora draft export`: write a draft directory SGLang loads.

    sglang-eagle3      --speculative-algorithm EAGLE3 --speculative-draft-model-path DIR
                       config.json: architectures ["LlamaForCausalLMEagle3"], one layer, the
                       target's widths, draft_vocab_size (the head's), tie_word_embeddings false,
                       eagle_config.eagle_aux_hidden_state_layer_ids; model.safetensors under the
                       names in names.py. No token embedding (SGLang shares the target's at load
                       time, as our head reads the target's); d2t/t2d only for a hot-vocabulary head
                       (draft_vocab_size < vocab_size), none for a full-vocabulary one.
    sglang-standalone  --speculative-algorithm STANDALONE: an HF LlamaForCausalLM directory with
                       the target's tokenizer files (SGLang checks draft and target vocabularies
                       are identical, and STANDALONE uses the draft's own embedding and head).

Why `draft_vocab_size` is always written: with it absent, SGLang sets `load_lm_head_from_target`
and replaces our trained LM head with the target's at load time. Why the target's config is
the base: rope fields, token ids and norms then reach SGLang in the spelling the target used
(transformers 5 writes `rope_parameters`), and `dtype` is what SGLang's `--dtype auto` reads.

The serving context differs in one respect that no export can change (documented in
docs/sglang.md): our engine's draft cache also holds position 0 (the first prompt token with a
zero feature), SGLang's starts at (token 1, feature 0). The weights compute the same function.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from aurora_sim.atomic import atomic_dir
from aurora_sim.errors import AuroraError
from aurora_sim.sglang import names
from aurora_sim.sglang.source import resolve

FORMATS = ("sglang-eagle3", "sglang-standalone")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)


def export_draft(
    src: Path, fmt: str, out: Path, model: str | None = None, dtype: str = "float32", version: str = "serving"
) -> dict:
    """Export the draft at `src` (draft dir or run dir) for SGLang into `out` (atomically)."""
    from aurora_sim.models.drafts import load_draft
    from aurora_sim.models.llama import read_config
    from aurora_sim.models.registry import load_target, resolve_model

    if fmt not in FORMATS:
        raise AuroraError(f"unknown export format {fmt!r} (choose {', '.join(FORMATS)})")
    if dtype not in DTYPES:
        raise AuroraError(f"unknown dtype {dtype!r} (choose {', '.join(DTYPES)})")
    source = resolve(src, version)
    model = model or source.model or "tiny"
    model_dir = resolve_model(model)
    target = load_target(model)
    draft = load_draft(source.path, target)
    want = "eagle3" if fmt == "sglang-eagle3" else "lm"
    if draft.kind != want:
        other = "sglang-standalone" if draft.kind == "lm" else "sglang-eagle3"
        raise AuroraError(f"{source.path}: the draft is of kind {draft.kind}, which exports as {other}, not {fmt}")
    base = read_config(model_dir)
    provenance = {
        "format": fmt,
        "source": str(source.path),
        "version": source.version,
        "model": model,
        "aurora_sha256": source.sha256,
    }
    if fmt == "sglang-eagle3":
        cfg, state = eagle3_files(draft, target.spec.num_layers, base, dtype)
    else:
        cfg, state = standalone_files(draft, base, dtype)
    cfg["aurora_export"] = provenance
    with atomic_dir(Path(out)) as tmp:
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        if fmt == "sglang-standalone":
            for name in TOKENIZER_FILES:
                if (model_dir / name).is_file():
                    shutil.copyfile(model_dir / name, tmp / name)
    return {
        **provenance,
        "out": str(out),
        "dtype": dtype,
        "weights": sorted(state),
        "eagle_aux_hidden_state_layer_ids": cfg.get("eagle_config", {}).get("eagle_aux_hidden_state_layer_ids"),
    }


def _cast(state: dict, dtype: str) -> dict:
    # only floating weights take the dtype: d2t (int64) and t2d (bool) are maps
    return {
        k: v.detach().to("cpu", DTYPES[dtype] if v.is_floating_point() else v.dtype).contiguous()
        for k, v in state.items()
    }


def _with_rope(cfg: dict, theta: float) -> dict:
    # keep the target's spelling (transformers 5: rope_parameters; older: rope_theta)
    if isinstance(cfg.get("rope_parameters"), dict):
        cfg["rope_parameters"] = {**cfg["rope_parameters"], "rope_theta": theta}
        cfg.pop("rope_theta", None)
    else:
        cfg["rope_theta"] = theta
    return cfg


def _llama_fields(spec, base: dict, dtype: str) -> dict:
    cfg = {k: v for k, v in base.items() if k not in ("auto_map", "quantization_config", "torch_dtype", "dtype")}
    cfg.update(
        {
            "model_type": "llama",
            "vocab_size": spec.vocab_size,
            "hidden_size": spec.hidden_size,
            "intermediate_size": spec.intermediate_size,
            "num_hidden_layers": spec.num_layers,
            "num_attention_heads": spec.num_heads,
            "num_key_value_heads": spec.num_kv_heads,
            "head_dim": spec.head_dim,
            "rms_norm_eps": spec.rms_eps,
            "max_position_embeddings": spec.max_position,
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
            # SGLang reads `dtype` (then `torch_dtype`); transformers 4 reads `torch_dtype`
            "dtype": dtype,
            "torch_dtype": dtype,
        }
    )
    return _with_rope(cfg, spec.rope_theta)


def eagle3_files(draft, num_target_layers: int, base: dict, dtype: str) -> tuple[dict, dict]:
    spec = draft.spec
    ids = names.capture_ids(draft.target_layers, num_target_layers)
    cfg = _llama_fields(spec, base, dtype)
    cfg.update(
        {
            "architectures": ["LlamaForCausalLMEagle3"],
            "num_hidden_layers": 1,
            "tie_word_embeddings": False,
            # absent => SGLang swaps in the target's LM head; < vocab_size with d2t: a hot vocabulary
            "draft_vocab_size": draft.draft_vocab_size,
            "eagle_config": {"eagle_aux_hidden_state_layer_ids": ids, "use_aux_hidden_state": True},
        }
    )
    state = names.eagle3_state(dict(draft.state_dict()), draft.target_layers, spec.hidden_size, spec.vocab_size)
    return cfg, _cast(state, dtype)


def standalone_files(draft, base: dict, dtype: str) -> tuple[dict, dict]:
    spec = draft.spec
    cfg = _llama_fields(spec, base, dtype)
    cfg.update({"architectures": ["LlamaForCausalLM"], "tie_word_embeddings": spec.tie_embeddings})
    state = dict(draft.lm.state_dict())
    if spec.tie_embeddings:
        state.pop("lm_head.weight", None)  # HF layout: a tied head is not stored
    return cfg, _cast(state, dtype)
