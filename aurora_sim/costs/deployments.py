"""Deployments: which target and draft sizes a replay is costed as.

Named entries come from the models' public config.json files. `proxy` costs the replay's own
proxy models. A JSON file defines any other deployment:

    {
      "name": "my-8b",                        optional; default: the file name
      "target": { HF config.json fields: hidden_size, intermediate_size, num_hidden_layers,
                  num_attention_heads, num_key_value_heads, head_dim (default hidden/heads),
                  vocab_size, tie_word_embeddings (default false); for MoE also num_experts,
                  num_experts_per_tok, moe_intermediate_size }
                or {"shape": { ModelShape fields: params, layers, hidden, kv_dim, vocab, ... }},
      "draft":  {"kind": "eagle3", "intermediate_size": (default the target's), "draft_vocab_size": (default the target's)}
                or {"kind": "lm"} (one layer at the target's width) or {"kind": "lm", HF config fields}
                or {"kind": ..., "shape": { ModelShape fields }},
      "tp": 1,                                tensor-parallel GPUs (FLOPs and bandwidth scale, two all-reduces per layer)
      "source": "where the numbers come from"
    }
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aurora_sim.costs.shapes import ModelShape, decoder_shape, eagle3_head_shape
from aurora_sim.errors import AuroraError

if TYPE_CHECKING:
    from aurora_sim.models.llama import LlamaSpec

DRAFT_KINDS = ("eagle3", "lm", "same")


@dataclass(frozen=True)
class Deployment:
    name: str
    target: ModelShape
    draft: ModelShape
    draft_kind: str
    tp: int = 1
    source: str = ""

    def describe(self) -> dict:
        return {
            "name": self.name,
            "draft_kind": self.draft_kind,
            "tp": self.tp,
            "source": self.source,
            "target": asdict(self.target),
            "draft": asdict(self.draft),
            "target_params_b": round(self.target.params / 1e9, 3),
            "draft_params_m": round(self.draft.params / 1e6, 1),
        }


def _eagle3_for(hidden, heads, kv_heads, head_dim, intermediate, vocab) -> ModelShape:
    return eagle3_head_shape(hidden, heads * head_dim, kv_heads * head_dim, intermediate, vocab)


def _named() -> dict[str, Deployment]:
    # meta-llama/Llama-3.1-8B-Instruct: 32 layers, 4096 wide, 14336 MLP, 32 q / 8 kv heads × 128,
    # vocab 128256, untied → 8.03B. The EAGLE-3 head is costed with the full 128k LM head (the
    # released yuhuili/EAGLE3-LLaMA3.1-Instruct-8B head trims it to 32k; a JSON deployment with
    # draft_vocab_size 32000 costs that): 819M params ≈ 1.6 GB bf16, Aurora's "≈2 GB per sync".
    llama8 = dict(hidden=4096, heads=32, kv_heads=8, head_dim=128, intermediate=14336, vocab=128256)
    # Qwen/Qwen3-8B: 36 layers, 4096 wide, 12288 MLP, 32/8 heads × 128, vocab 151936, untied → 8.19B.
    qwen8 = dict(hidden=4096, heads=32, kv_heads=8, head_dim=128, intermediate=12288, vocab=151936)
    # meta-llama/Llama-3.1-70B-Instruct: 80 layers, 8192 wide, 28672 MLP, 64/8 heads × 128 → 70.6B;
    # 141 GB of bf16 weights, so served with tensor parallelism over 4 GPUs.
    llama70 = dict(hidden=8192, heads=64, kv_heads=8, head_dim=128, intermediate=28672, vocab=128256)
    # Qwen/Qwen3-Coder-30B-A3B-Instruct: 48 layers, 2048 wide, 32/4 heads × 128, 128 experts of
    # width 768, 8 per token, vocab 151936 → 30.5B total, 3.3B active. The draft head uses the
    # config's dense intermediate_size 6144.
    coder = dict(hidden=2048, heads=32, kv_heads=4, head_dim=128, intermediate=6144, vocab=151936)
    return {
        "llama3-8b": Deployment(
            "llama3-8b",
            decoder_shape(32, tied=False, **llama8),
            _eagle3_for(**llama8),
            "eagle3",
            1,
            "meta-llama/Llama-3.1-8B-Instruct config.json; EAGLE-3 head with full vocabulary",
        ),
        "qwen3-8b": Deployment(
            "qwen3-8b",
            decoder_shape(36, tied=False, qk_norm=True, **qwen8),
            _eagle3_for(**qwen8),
            "eagle3",
            1,
            "Qwen/Qwen3-8B config.json; EAGLE-3 head with full vocabulary",
        ),
        "llama3-70b": Deployment(
            "llama3-70b",
            decoder_shape(80, tied=False, **llama70),
            _eagle3_for(**llama70),
            "eagle3",
            4,
            "meta-llama/Llama-3.1-70B-Instruct config.json, tp=4; EAGLE-3 head with full vocabulary",
        ),
        "qwen3-coder-30b-a3b": Deployment(
            "qwen3-coder-30b-a3b",
            decoder_shape(48, tied=False, qk_norm=True, experts=128, experts_active=8, moe_intermediate=768, **coder),
            _eagle3_for(**coder),
            "eagle3",
            1,
            "Qwen/Qwen3-Coder-30B-A3B-Instruct config.json (MoE 128x768, top-8); dense EAGLE-3 head",
        ),
    }


DEPLOYMENTS: dict[str, Deployment] = _named()


def proxy_deployment(spec: LlamaSpec | None, draft_kind: str = "eagle3") -> Deployment:
    """Cost the proxy models themselves: the target from its spec, the draft as the engine builds it."""
    if spec is None:
        raise AuroraError("deployment 'proxy' needs the proxy target's spec (proxy_target=...)")
    target = ModelShape.from_spec(spec)
    label = draft_kind
    if draft_kind not in DRAFT_KINDS and draft_kind != "none":
        draft_kind = _saved_draft_kind(draft_kind)
        label = f"{draft_kind} ({label})"
    if draft_kind == "none":  # target-only for now; a day-0 EAGLE head may be swapped in later
        draft_kind, label = "eagle3", "none (a later draft costed as eagle3)"
    if draft_kind == "eagle3":
        draft = _eagle3_for(
            spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim, spec.intermediate_size, spec.vocab_size
        )
    elif draft_kind == "lm":  # aurora_sim.models.drafts.default_lm_spec: one layer at the target's width
        from dataclasses import replace

        draft = ModelShape.from_spec(replace(spec, num_layers=1))
    elif draft_kind == "same":
        draft = target
    else:
        raise AuroraError(f"unknown proxy draft kind {draft_kind!r} (choose from {', '.join(DRAFT_KINDS)})")
    return Deployment("proxy", target, draft, label, 1, "the proxy models the replay runs")


def _saved_draft_kind(path: str) -> str:
    """The kind recorded in a saved draft directory's config.json (aurora_sim.models.drafts format)."""
    cfg_file = Path(path).expanduser() / "config.json"
    try:
        kind = json.loads(cfg_file.read_text()).get("kind")
    except (OSError, ValueError):
        kind = None
    if kind not in ("eagle3", "lm"):
        raise AuroraError(
            f"unknown proxy draft kind {path!r} (choose from {', '.join(DRAFT_KINDS)}, none, or a saved draft directory)"
        )
    return kind


def resolve_deployment(
    name: str, proxy_target: LlamaSpec | None = None, proxy_draft_kind: str = "eagle3"
) -> Deployment:
    if name == "proxy":
        return proxy_deployment(proxy_target, proxy_draft_kind)
    if name in DEPLOYMENTS:
        return DEPLOYMENTS[name]
    path = Path(name).expanduser()
    if name.endswith(".json") or path.is_file():
        return load_deployment(path)
    raise AuroraError(f"unknown deployment {name!r} (choose from {', '.join(DEPLOYMENTS)}, proxy, or a JSON file)")


# ---- JSON deployment files --------------------------------------------------------------------
def load_deployment(path: str | Path) -> Deployment:
    path = Path(path).expanduser()
    if not path.is_file():
        raise AuroraError(f"{path}: deployment file not found")
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict):
            raise ValueError("top level must be a JSON object")
        target_doc, draft_doc = doc["target"], doc.get("draft", {"kind": "eagle3"})
        target, arch = _target_from(target_doc)
        draft, kind = _draft_from(draft_doc, arch)
        tp = int(doc.get("tp", 1))
        if tp < 1:
            raise ValueError("tp must be >= 1")
        return Deployment(str(doc.get("name", path.stem)), target, draft, kind, tp, str(doc.get("source", str(path))))
    except AuroraError as exc:
        raise AuroraError(f"{path}: bad deployment ({exc})") from None
    except (ValueError, KeyError, TypeError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise AuroraError(f"{path}: bad deployment ({what})") from None


def _arch(cfg: dict) -> dict:
    heads = int(cfg["num_attention_heads"])
    hidden = int(cfg["hidden_size"])
    return dict(
        hidden=hidden,
        heads=heads,
        kv_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=int(cfg.get("head_dim") or hidden // heads),
        intermediate=int(cfg.get("intermediate_size") or 0),
        vocab=int(cfg["vocab_size"]),
    )


def _target_from(doc: dict) -> tuple[ModelShape, dict | None]:
    if "shape" in doc:
        return ModelShape(**doc["shape"]), None
    arch = _arch(doc)
    experts = int(doc.get("num_experts") or 0)
    if not experts and not arch["intermediate"]:
        raise ValueError("target needs intermediate_size")
    shape = decoder_shape(
        int(doc["num_hidden_layers"]),
        tied=bool(doc.get("tie_word_embeddings", False)),
        experts=experts,
        experts_active=int(doc.get("num_experts_per_tok") or 0),
        moe_intermediate=int(doc.get("moe_intermediate_size") or 0),
        **arch,
    )
    if experts and not arch["intermediate"]:  # a dense draft layer as wide as the active experts
        arch["intermediate"] = int(doc["moe_intermediate_size"]) * int(doc["num_experts_per_tok"])
    return shape, arch


def _draft_from(doc: dict, arch: dict | None) -> tuple[ModelShape, str]:
    kind = doc.get("kind", "eagle3")
    if kind not in ("eagle3", "lm"):
        raise ValueError(f"draft kind must be eagle3 or lm, got {kind!r}")
    if "shape" in doc:
        return ModelShape(**doc["shape"]), kind
    if arch is None:
        raise ValueError("a target given as a shape needs an explicit draft shape")
    if kind == "eagle3":
        inter = int(doc.get("intermediate_size") or arch["intermediate"])
        vocab = int(doc.get("draft_vocab_size") or arch["vocab"])
        return _eagle3_for(arch["hidden"], arch["heads"], arch["kv_heads"], arch["head_dim"], inter, vocab), kind
    if "hidden_size" in doc:  # an explicit small LM
        return decoder_shape(
            int(doc["num_hidden_layers"]), tied=bool(doc.get("tie_word_embeddings", False)), **_arch(doc)
        ), kind
    return decoder_shape(1, tied=False, **arch), kind
