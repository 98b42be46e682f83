"""Draft models: an EAGLE-3-style head (what Aurora serves) and a standalone small LM.

Both present one interface to the engine. A draft position p consumes token x_p and predicts
x_{p+1}; the EAGLE-3 head additionally reads a feature for position p: during catch-up the
target's hidden states at p-1 (three layers, fused by `fuse`), while drafting its own output
hidden state at p-1 (the "training-time test" recurrence).

On-disk format (version 1), one directory:
    config.json        {"aurora_draft": 1, "kind": "eagle3"|"lm", "vocab_size", "target_hidden_size",
                        "target_layers": [..], "draft": {...layer shapes...}, "seed"}
    model.safetensors  the draft's own weights. The EAGLE-3 head does NOT store the token
                       embedding: it reads the target's (frozen), so it loads with its target.
An LM draft's config.json is also a valid HF Llama config (loadable with transformers).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from aurora_sim.atomic import atomic_dir
from aurora_sim.errors import AuroraError
from aurora_sim.models.linear import Linear
from aurora_sim.models.llama import (
    MLP,
    Attention,
    KVCache,
    Llama,
    LlamaSpec,
    RMSNorm,
    read_config,
    read_safetensors,
    rope_tables,
)

FORMAT_VERSION = 1


def default_target_layers(num_layers: int) -> tuple[int, int, int]:
    """Low, middle and high layers, as SGLang's EAGLE-3 (1, L/2-1, L-4) where the model is deep
    enough; for shallow targets spread evenly so the three stay distinct where possible."""
    if num_layers >= 8:
        return (1, num_layers // 2 - 1, num_layers - 4)
    return (0, max(0, num_layers // 2 - 1), max(0, num_layers - 2))


class Eagle3Head(nn.Module):
    kind = "eagle3"
    uses_features = True

    def __init__(
        self,
        target_spec: LlamaSpec,
        target_layers: tuple[int, ...],
        embed: nn.Embedding,
        draft_vocab: torch.Tensor | None = None,
        intermediate_size: int | None = None,
    ):
        """draft_vocab: the target token ids the head can propose (EAGLE-3's hot vocabulary; its
        `d2t`), ascending; None = the whole vocabulary. On a large vocabulary the LM head is most of
        a draft step's cost, and the rare tokens it drops are ones a draft seldom gets accepted.
        intermediate_size: the layer's MLP width (default the target's). The head's hidden size is
        the target's (it reads the target's embedding and fuses its features into that width), so
        the MLP is where a head can be made narrower or wider."""
        super().__init__()
        h = target_spec.hidden_size
        self.spec = replace(
            target_spec, num_layers=1, intermediate_size=intermediate_size or target_spec.intermediate_size
        )
        self.target_layers = tuple(target_layers)
        self.fc = Linear(len(target_layers) * h, h, bias=False)
        self.input_layernorm = RMSNorm(h, target_spec.rms_eps)  # on the token embedding
        self.hidden_norm = RMSNorm(h, target_spec.rms_eps)  # on the fused feature
        self.self_attn = Attention(self.spec, in_dim=2 * h)
        self.post_attention_layernorm = RMSNorm(h, target_spec.rms_eps)
        self.mlp = MLP(self.spec)
        self.norm = RMSNorm(h, target_spec.rms_eps)
        if draft_vocab is not None:
            draft_vocab = torch.as_tensor(draft_vocab, dtype=torch.long)
            ok = draft_vocab.ndim == 1 and len(draft_vocab) > 0 and bool((draft_vocab[1:] > draft_vocab[:-1]).all())
            if not ok or int(draft_vocab[0]) < 0 or int(draft_vocab[-1]) >= target_spec.vocab_size:
                raise AuroraError("draft vocabulary must be distinct ascending target token ids")
            self.register_buffer("d2t", draft_vocab)
        else:
            self.d2t = None
        self.lm_head = Linear(h, target_spec.vocab_size if draft_vocab is None else len(draft_vocab), bias=False)
        self._embed = (embed,)  # a tuple: the target's frozen table, not a parameter of the head
        cos, sin = rope_tables(self.spec.head_dim, self.spec.rope_theta, self.spec.max_position)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    @property
    def vocab_size(self) -> int:
        return self.spec.vocab_size

    @property
    def draft_vocab_size(self) -> int:
        return self.lm_head.out_features

    def fuse(self, target_features: torch.Tensor) -> torch.Tensor:
        return self.fc(target_features)

    def new_cache(self, num_slots: int, max_len: int) -> KVCache:
        p = self.fc.weight
        return KVCache(1, num_slots, self.spec.num_kv_heads, max_len, self.spec.head_dim, p.dtype, p.device)

    def forward(self, tokens, feature, slots, start, cache: KVCache, logits_at=None):
        """tokens: [B, S]; feature: [B, S, H] (fused). Returns logits [B, S, V] (or [B, 1, V] at
        the columns `logits_at`), hidden [B, S, H]."""
        a = self.hidden(tokens, feature, slots, start, cache)
        if logits_at is not None:
            return self.logits(a[torch.arange(a.shape[0], device=a.device), logits_at][:, None]), a
        return self.logits(a), a

    def hidden(self, tokens, feature, slots, start, cache: KVCache) -> torch.Tensor:
        """The layer's output hidden state [B, S, H] (what the next drafting step reads)."""
        pos = start[:, None] + torch.arange(tokens.shape[1], device=tokens.device)[None, :]
        cos, sin = _rope_at(self, pos)
        x = self.layer_input(tokens, feature)
        return self.layer_output(feature, self.self_attn(x, cos, sin, cache.k[0], cache.v[0], slots, pos))

    def layer_input(self, tokens, feature) -> torch.Tensor:
        """What attention reads: the normed token embedding beside the normed feature [.., 2H]."""
        emb = self._embed[0](tokens).to(feature.dtype)
        return torch.cat([self.input_layernorm(emb), self.hidden_norm(feature)], dim=-1)

    def layer_output(self, feature, attn_out) -> torch.Tensor:
        """The residual over the feature, then the MLP: the layer's output hidden state."""
        a = feature + attn_out
        return a + self.mlp(self.post_attention_layernorm(a))

    def draft_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the head's own vocabulary [..., draft_vocab_size] (what a loss compares)."""
        # Separate from forward so a trainer can project only the positions its loss uses (the
        # LM head dominates a small head's cost).
        return self.lm_head(self.norm(hidden))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the target's vocabulary [..., V]: -inf where the head cannot propose, so
        greedy argmax and the sampled draft distribution q live in the target's token space."""
        small = self.draft_logits(hidden)
        if self.d2t is None:
            return small
        full = small.new_full((*small.shape[:-1], self.spec.vocab_size), float("-inf"))
        return full.index_copy(-1, self.d2t, small)

    def restrict(self, target_logits: torch.Tensor) -> torch.Tensor:
        """The target's logits over the head's vocabulary (a softmax of them is the target's
        distribution conditioned on the hot tokens: what the head is trained to match)."""
        return target_logits if self.d2t is None else target_logits.index_select(-1, self.d2t)

    def config(self) -> dict:
        return {"draft": asdict(self.spec)}


class LmDraft(nn.Module):
    """A standalone small Llama sharing the target's tokenizer; features are ignored."""

    kind = "lm"
    uses_features = False
    target_layers: tuple[int, ...] = ()

    def __init__(self, spec: LlamaSpec):
        super().__init__()
        self.lm = Llama(spec)
        self.spec = spec

    @property
    def vocab_size(self) -> int:
        return self.spec.vocab_size

    def fuse(self, target_features):
        return None

    def new_cache(self, num_slots: int, max_len: int) -> KVCache:
        return self.lm.new_cache(num_slots, max_len)

    def forward(self, tokens, feature, slots, start, cache: KVCache, logits_at=None):
        logits, _ = self.lm(tokens, slots, start, cache, logits_at=logits_at)
        return logits, None

    def config(self) -> dict:
        return {**self.spec.to_hf(), "draft": asdict(self.spec)}


def _rope_at(head: Eagle3Head, pos: torch.Tensor):
    table_pos = pos.clamp(max=head.rope_cos.shape[0] - 1)
    return head.rope_cos[table_pos][:, None], head.rope_sin[table_pos][:, None]


Draft = Eagle3Head | LmDraft


# ---- construction ---------------------------------------------------------------------------
def _seeded(seed: int, build):
    # Seed inside a forked RNG so building a draft never disturbs anyone else's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def new_eagle3(
    target: Llama,
    seed: int = 0,
    target_layers: tuple[int, ...] | None = None,
    draft_vocab: torch.Tensor | None = None,
    intermediate_size: int | None = None,
) -> Eagle3Head:
    """A randomly initialised ("day-0") EAGLE-3 head for `target` (over `draft_vocab` if given;
    MLP width `intermediate_size`, default the target's)."""
    layers = target_layers or default_target_layers(target.spec.num_layers)
    p = target.lm_head.weight
    head = _seeded(
        seed, lambda: Eagle3Head(target.spec, layers, target.model.embed_tokens, draft_vocab, intermediate_size)
    )
    return head.to(device=p.device, dtype=p.dtype).eval()


def default_lm_spec(target: LlamaSpec) -> LlamaSpec:
    """One layer at the target's width: the cheapest LM that can still learn bigram-ish drafts."""
    return replace(target, num_layers=1)


def new_lm_draft(target: Llama, seed: int = 0, spec: LlamaSpec | None = None) -> LmDraft:
    p = target.lm_head.weight
    draft = _seeded(seed, lambda: LmDraft(spec or default_lm_spec(target.spec)))
    return draft.to(device=p.device, dtype=p.dtype).eval()


def lm_draft_from_target(target: Llama) -> LmDraft:
    """A draft that is an exact copy of the target (the sanity anchor: every proposal accepted)."""
    draft = LmDraft(target.spec)
    draft.lm.load_state_dict(target.state_dict())
    p = target.lm_head.weight
    return draft.to(device=p.device, dtype=p.dtype).eval()


# ---- save / load ------------------------------------------------------------------------------
def save_draft(draft: Draft, out: str | Path, seed: int | None = None) -> Path:
    out = Path(out)
    cfg = {
        "aurora_draft": FORMAT_VERSION,
        "kind": draft.kind,
        "vocab_size": draft.vocab_size,
        "target_hidden_size": draft.spec.hidden_size,
        "target_layers": list(draft.target_layers),
        "seed": seed,
        **({"draft_vocab_size": draft.draft_vocab_size} if getattr(draft, "d2t", None) is not None else {}),
        **draft.config(),
    }
    state = {k: v.detach().to("cpu").contiguous() for k, v in draft.state_dict().items()}
    if draft.kind == "lm":  # store under HF names so transformers can read it as a Llama
        state = {k.removeprefix("lm."): v for k, v in state.items()}
        if draft.spec.tie_embeddings:
            state.pop("lm_head.weight", None)
    with atomic_dir(out) as tmp:
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return out


def load_draft(path: str | Path, target: Llama) -> Draft:
    path = Path(path).expanduser()
    cfg = read_config(path)
    if cfg.get("aurora_draft") != FORMAT_VERSION or cfg.get("kind") not in ("eagle3", "lm"):
        raise AuroraError(f"{path / 'config.json'}: not an aurora draft (expected aurora_draft={FORMAT_VERSION})")
    if cfg["vocab_size"] != target.spec.vocab_size:
        raise AuroraError(
            f"{path}: draft vocabulary ({cfg['vocab_size']}) does not match the target's ({target.spec.vocab_size})"
        )
    state = read_safetensors(path, only="model.safetensors")  # a draft is one file; strays are ignored
    if cfg["kind"] == "eagle3":
        if cfg["target_hidden_size"] != target.spec.hidden_size:
            raise AuroraError(
                f"{path}: draft expects target hidden size {cfg['target_hidden_size']}, target has {target.spec.hidden_size}"
            )
        d2t = state.get("d2t")
        if (d2t is None) != (cfg.get("draft_vocab_size") is None) or (
            d2t is not None and len(d2t) != cfg["draft_vocab_size"]
        ):
            raise AuroraError(f"{path}: draft_vocab_size in config.json does not match the d2t tensor")
        try:
            width = cfg.get("draft", {}).get("intermediate_size")  # a head saved before widths existed has the target's
            draft = new_eagle3(
                target, seed=0, target_layers=tuple(cfg["target_layers"]), draft_vocab=d2t, intermediate_size=width
            )
        except AuroraError as exc:
            raise AuroraError(f"{path}: {exc}") from None
        prefix = ""
    else:
        spec = LlamaSpec(**cfg["draft"])
        draft = new_lm_draft(target, spec=spec)
        prefix = "lm."
        if spec.tie_embeddings:
            state = {k: v for k, v in state.items() if k != "lm_head.weight"}
    state = {prefix + k: v for k, v in state.items()}
    missing, unexpected = draft.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "lm.lm_head.weight" or not draft.spec.tie_embeddings]
    if missing or unexpected:
        raise AuroraError(
            f"{path}: draft weights do not match its config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    p = target.lm_head.weight
    return draft.to(device=p.device, dtype=p.dtype).eval()
