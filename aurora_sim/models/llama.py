"""A Llama-family transformer for inference, with a slot-based KV cache.

Loads the weights of any HF `LlamaForCausalLM` directory (the tiny and smollm2 tiers) and runs a
batch of requests that sit at *different* positions: row b writes its keys and values at
`start[b] + s` in cache slot `slots[b]` and attends to every cached position up to its own.
That one primitive serves prefill (ragged prompts, padded), verification (γ+1 tokens per row)
and plain decoding. Rolling back a rejected suffix is just lowering a row's length: stale
entries past it are never visible and get overwritten by the next write.

It knows nothing of drafting or sampling (see `aurora_sim.engine`).

    model = Llama.from_pretrained("~/.cache/aurora-sim/models/tiny")
    cache = model.new_cache(num_slots=8, max_len=512)
    logits, hidden = model(tokens, slots, start, cache, hidden_layers=(0, 2, 3))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from aurora_sim.errors import AuroraError
from aurora_sim.models.linear import Linear


@dataclass(frozen=True)
class LlamaSpec:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float
    rms_eps: float
    max_position: int
    tie_embeddings: bool

    @classmethod
    def from_hf(cls, cfg: dict) -> LlamaSpec:
        heads = cfg["num_attention_heads"]
        return cls(
            vocab_size=cfg["vocab_size"],
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_layers=cfg["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=cfg.get("num_key_value_heads") or heads,
            head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
            rope_theta=float(cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)),
            rms_eps=float(cfg.get("rms_norm_eps", 1e-6)),
            max_position=cfg.get("max_position_embeddings", 2048),
            tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        )

    def to_hf(self) -> dict:
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_eps,
            "max_position_embeddings": self.max_position,
            "tie_word_embeddings": self.tie_embeddings,
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
            "torch_dtype": "float32",
        }


class KVCache:
    """Keys and values for `num_layers` layers: [slots, kv_heads, max_len, head_dim] each."""

    def __init__(self, num_layers, num_slots, num_kv_heads, max_len, head_dim, dtype, device):
        shape = (num_slots, num_kv_heads, max_len, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.max_len = max_len


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(var + self.eps)).to(x.dtype) * self.weight


def rope_tables(head_dim: int, theta: float, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    freqs = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)  # HF layout: halves, not interleaved
    return emb.cos().float(), emb.sin().float()


def apply_rope(x, cos, sin):
    # x: [B, H, S, D]; cos/sin: [B, 1, S, D]
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def cached_attention(q, k, v, layer_k, layer_v, slots, pos, n_rep):
    """Write k/v at (slot, pos) and attend each query to its slot's positions <= its own.

    q: [B, H, S, D]; k, v: [B, KVH, S, D]; layer_k/v: [slots, KVH, T, D]; pos: [B, S].
    """
    b, _, s, _ = q.shape
    t_cap = layer_k.shape[2]
    write_pos = pos.clamp(max=t_cap - 1)  # padding rows may run past the end: harmless garbage
    slot_idx = slots[:, None].expand(b, s)
    # (under bf16 autocast k/v arrive in bf16 while the cache keeps its own dtype)
    layer_k[slot_idx, :, write_pos] = k.transpose(1, 2).to(layer_k.dtype)
    layer_v[slot_idx, :, write_pos] = v.transpose(1, 2).to(layer_v.dtype)
    t = min(int(pos.max().item()) + 1, t_cap)  # padding may point past the cache; real rows never do
    contiguous = bool(slots[0].item() == 0 and torch.equal(slots, torch.arange(b, device=slots.device)))
    if contiguous:  # the common case (slots 0..B-1): a view, no copy
        keys, values = layer_k[:b, :, :t], layer_v[:b, :, :t]
    else:
        keys, values = layer_k[slots, :, :t], layer_v[slots, :, :t]
    mask = torch.arange(t, device=q.device)[None, None, :] <= pos[:, :, None]  # [B, S, T]
    # enable_gqa reads each kv head once for its n_rep query heads; repeating keys and values
    # instead copied them n_rep times per layer and step (most of a decode step at long context)
    return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask[:, None], enable_gqa=n_rep > 1)


class Attention(nn.Module):
    def __init__(self, spec: LlamaSpec, in_dim: int | None = None):
        super().__init__()
        in_dim = in_dim or spec.hidden_size
        self.spec = spec
        d, h, kvh = spec.head_dim, spec.num_heads, spec.num_kv_heads
        self.q_proj = Linear(in_dim, h * d, bias=False)
        self.k_proj = Linear(in_dim, kvh * d, bias=False)
        self.v_proj = Linear(in_dim, kvh * d, bias=False)
        self.o_proj = Linear(h * d, spec.hidden_size, bias=False)

    def forward(self, x, cos, sin, layer_k, layer_v, slots, pos):
        b, s, _ = x.shape
        sp = self.spec
        q = self.q_proj(x).view(b, s, sp.num_heads, sp.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, sp.num_kv_heads, sp.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, sp.num_kv_heads, sp.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if layer_k is None:  # whole rows from position 0, no cache: the causal kernel skips masked blocks
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=sp.num_heads > sp.num_kv_heads)
        else:
            out = cached_attention(q, k, v, layer_k, layer_v, slots, pos, sp.num_heads // sp.num_kv_heads)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, -1))


class MLP(nn.Module):
    def __init__(self, spec: LlamaSpec):
        super().__init__()
        self.gate_proj = Linear(spec.hidden_size, spec.intermediate_size, bias=False)
        self.up_proj = Linear(spec.hidden_size, spec.intermediate_size, bias=False)
        self.down_proj = Linear(spec.intermediate_size, spec.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, spec: LlamaSpec):
        super().__init__()
        self.input_layernorm = RMSNorm(spec.hidden_size, spec.rms_eps)
        self.self_attn = Attention(spec)
        self.post_attention_layernorm = RMSNorm(spec.hidden_size, spec.rms_eps)
        self.mlp = MLP(spec)

    def forward(self, x, cos, sin, layer_k, layer_v, slots, pos):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, layer_k, layer_v, slots, pos)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """HF-compatible parameter names (`model.layers.0.self_attn.q_proj.weight`, ...)."""

    def __init__(self, spec: LlamaSpec):
        super().__init__()
        self.spec = spec
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(spec.vocab_size, spec.hidden_size)
        self.model.layers = nn.ModuleList(DecoderLayer(spec) for _ in range(spec.num_layers))
        self.model.norm = RMSNorm(spec.hidden_size, spec.rms_eps)
        self.lm_head = Linear(spec.hidden_size, spec.vocab_size, bias=False)
        if spec.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        cos, sin = rope_tables(spec.head_dim, spec.rope_theta, spec.max_position)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, dtype=torch.float32, device="cpu") -> Llama:
        path = Path(path).expanduser()
        cfg = read_config(path)
        if cfg.get("model_type") not in ("llama", None) and "LlamaForCausalLM" not in cfg.get("architectures", []):
            raise AuroraError(f"{path / 'config.json'}: not a Llama-family model (model_type={cfg.get('model_type')})")
        model = cls(LlamaSpec.from_hf(cfg))
        model.load_state_dict_strict(read_safetensors(path), path)
        return model.to(device=device, dtype=dtype).eval()

    def load_state_dict_strict(self, state: dict, path: Path) -> None:
        if self.spec.tie_embeddings:
            state = {k: v for k, v in state.items() if k != "lm_head.weight"}
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [m for m in missing if not (self.spec.tie_embeddings and m == "lm_head.weight")]
        if missing or unexpected:
            raise AuroraError(
                f"{path}: weights do not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )

    def new_cache(self, num_slots: int, max_len: int) -> KVCache:
        p = next(self.parameters())
        sp = self.spec
        return KVCache(sp.num_layers, num_slots, sp.num_kv_heads, max_len, sp.head_dim, p.dtype, p.device)

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, tokens, slots, start, cache: KVCache, hidden_layers: tuple[int, ...] = (), logits_at=None):
        """tokens: [B, S]; slots, start: [B]. Returns logits [B, S, V] and the outputs of the
        requested decoder layers, concatenated on the last dim: [B, S, len(hidden_layers)*H].
        With `logits_at` ([B] column per row) only those positions are projected: logits [B, 1, V]
        (a prefill needs one row of logits, not S; the LM head dominates small models)."""
        x, hidden = self.trunk(tokens, slots, start, cache, hidden_layers)
        if logits_at is not None:
            x = x[torch.arange(x.shape[0], device=x.device), logits_at][:, None]
        return self.head(x), hidden

    def trunk(self, tokens, slots, start, cache: KVCache, hidden_layers: tuple[int, ...] = (), last: bool = True):
        """The decoder stack without the LM head: (last layer's output [B, S, H], the requested
        layers' outputs as in forward). `head` of the first is exactly forward's logits.
        last=False stops after the deepest requested layer (and returns None for the first).
        cache=None: whole rows from position 0 (start must be 0), nothing cached."""
        pos = start[:, None] + torch.arange(tokens.shape[1], device=tokens.device)[None, :]
        table_pos = pos.clamp(max=self.rope_cos.shape[0] - 1)
        cos, sin = self.rope_cos[table_pos][:, None], self.rope_sin[table_pos][:, None]
        x = self.model.embed_tokens(tokens)
        taken = {}
        depth = len(self.model.layers) if last or not hidden_layers else max(hidden_layers) + 1
        for i, layer in enumerate(self.model.layers[:depth]):
            x = layer(x, cos, sin, *((cache.k[i], cache.v[i]) if cache is not None else (None, None)), slots, pos)
            if i in hidden_layers:
                taken[i] = x
        hidden = torch.cat([taken[i] for i in hidden_layers], dim=-1) if hidden_layers else None
        return (x if depth == len(self.model.layers) else None), hidden

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Final norm + LM head: logits from the last layer's output."""
        return self.lm_head(self.model.norm(x))


def read_config(path: Path) -> dict:
    cfg_file = path / "config.json"
    if not path.is_dir():
        raise AuroraError(f"{path}: model directory not found")
    if not cfg_file.is_file():
        raise AuroraError(f"{cfg_file}: missing (not a model directory)")
    try:
        return json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AuroraError(f"{cfg_file}: corrupt config ({exc.__class__.__name__})") from None


def read_safetensors(path: Path, only: str | None = None) -> dict[str, torch.Tensor]:
    """Every *.safetensors file of a (possibly sharded) model directory, or just `only`."""
    files = [path / only] if only else sorted(path.glob("*.safetensors"))
    if not files or not all(f.is_file() for f in files):
        raise AuroraError(f"{path}: no {only or '.safetensors'} weights")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            state.update(load_file(str(f)))
        except Exception as exc:  # safetensors raises several types for a damaged header
            raise AuroraError(f"{f}: corrupt safetensors file ({exc})") from None
    return state
