"""What a cost model is asked about: the shape of one engine round, and the shape of a model.

RoundShape is all the replay knows about a round (counts, no tensors); ModelShape is all the
roofline needs about a network (parameter counts and the widths that size the KV cache and the
logits). Both are plain frozen dataclasses so they hash, compare and print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aurora_sim.errors import AuroraError

if TYPE_CHECKING:  # the spec type only; importing llama pulls in torch
    from aurora_sim.models.llama import LlamaSpec


@dataclass(frozen=True)
class RoundShape:
    """One engine round, summed over its rows.

    batch           requests in the round (rows), including ones admitted this round
    gamma           draft steps (0 = target-only decoding)
    draft_tokens    tokens the draft processed: its catch-up forward (≈ AL tokens per row for an
                    EAGLE-3 head) + (γ-1) single steps of `batch` tokens
    verify_tokens   tokens in the target's verify/decode forward: B·(γ+1) with speculation, B without
    prefill_tokens  prompt tokens prefilled this round (admitted requests), costed in the same
                    target forward as the verify (chunked-prefill style)
    context_tokens  Σ over rows of the KV length the row attends to (already-cached tokens)
    prefill_requests how many prompts make up prefill_tokens (sizes their quadratic attention);
                    0 = unknown, costed as one prompt (an upper bound)
    prefill_max     the longest of those prompts: the engine pads the prefill (and a draft's
                    catch-up over it) to this length; 0 = unknown (a profiled cost takes the mean)
    draft_models    draft heads that ran (the two-draft arm's rows split between a floor head
                    and the online one: each head's passes are paid)
    """

    batch: int
    gamma: int
    draft_tokens: int
    verify_tokens: int
    prefill_tokens: int = 0
    context_tokens: int = 0
    prefill_requests: int = 0
    prefill_max: int = 0
    draft_models: int = 1

    def __post_init__(self):
        for name in (
            "batch",
            "gamma",
            "draft_tokens",
            "verify_tokens",
            "prefill_tokens",
            "context_tokens",
            "prefill_requests",
            "prefill_max",
            "draft_models",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise AuroraError(f"RoundShape.{name} must be a non-negative int, got {value!r}")

    @classmethod
    def of_round(cls, stats) -> RoundShape:
        """The shape of the round an engine just ran (its `last_round`, engine.slots.RoundStats)."""
        return cls(
            batch=max(stats.batch, len(stats.admitted)),
            gamma=stats.gamma,
            draft_tokens=stats.draft_tokens,
            verify_tokens=stats.verify_tokens,
            prefill_tokens=stats.prefill_tokens,
            context_tokens=stats.context_tokens,
            prefill_requests=len(stats.admitted),
            prefill_max=stats.prefill_max,
            draft_models=getattr(stats, "draft_models", 1),
        )

    @classmethod
    def steady(cls, batch: int, gamma: int, context_per_row: int, accept_len: float = 1.0) -> RoundShape:
        """A round in steady state: every row decoding at `context_per_row` cached tokens, the
        draft catching up on `accept_len` tokens per row (what the last round emitted)."""
        if gamma == 0:
            return cls(batch, 0, 0, batch, 0, batch * context_per_row)
        catch_up = max(batch, round(batch * accept_len))
        return cls(batch, gamma, catch_up + (gamma - 1) * batch, batch * (gamma + 1), 0, batch * context_per_row)


@dataclass(frozen=True)
class ModelShape:
    """What the roofline needs about a model.

    params            total parameters, embeddings and LM head included
    layers, hidden    decoder layers and residual width
    kv_dim            num_kv_heads · head_dim (K and V each, per layer)
    vocab             LM-head rows (logits per token)
    q_dim             num_heads · head_dim (attention FLOPs); 0 = hidden
    embedding_params  parameters that are only *looked up* (an untied input embedding): neither
                      multiplied nor streamed from memory per forward
    moe_experts, moe_active, moe_expert_params
                      a mixture-of-experts MLP: experts per layer, experts each token uses, and
                      parameters of one expert in one layer (0 = dense)
    """

    params: int
    layers: int
    hidden: int
    kv_dim: int
    vocab: int
    q_dim: int = 0
    embedding_params: int = 0
    moe_experts: int = 0
    moe_active: int = 0
    moe_expert_params: int = 0

    def __post_init__(self):
        if self.params <= 0 or self.layers < 0 or self.hidden <= 0 or self.kv_dim < 0 or self.vocab <= 0:
            raise AuroraError(f"invalid model shape {self}")
        if self.moe_experts and not 0 < self.moe_active <= self.moe_experts:
            raise AuroraError(f"invalid model shape {self}: moe_active must be in 1..moe_experts")
        if self.matmul_params <= 0:
            raise AuroraError(f"invalid model shape {self}: embedding_params >= params")

    @property
    def attn_dim(self) -> int:
        return self.q_dim or self.hidden

    @property
    def matmul_params(self) -> int:
        """Parameters that take part in matrix multiplies (all experts counted)."""
        return self.params - self.embedding_params

    @property
    def active_params(self) -> int:
        """Matmul parameters one token uses (MoE: only its top-k experts)."""
        idle = self.layers * (self.moe_experts - self.moe_active) * self.moe_expert_params
        return self.matmul_params - idle

    def weights_read(self, tokens: int) -> float:
        """Parameters streamed from memory by one forward over `tokens` tokens. Dense: all matmul
        weights once. MoE: the dense part plus the experts at least one token routes to, with
        uniform routing E·(1-(1-k/E)^t) per layer (a batch of 1 touches k, a large batch all E)."""
        if not self.moe_experts:
            return float(self.matmul_params)
        e, k = self.moe_experts, self.moe_active
        touched = e * (1.0 - (1.0 - k / e) ** max(tokens, 1))
        dense = self.matmul_params - self.layers * e * self.moe_expert_params
        return dense + self.layers * touched * self.moe_expert_params

    @classmethod
    def from_spec(cls, spec: LlamaSpec) -> ModelShape:
        return decoder_shape(
            layers=spec.num_layers,
            hidden=spec.hidden_size,
            intermediate=spec.intermediate_size,
            heads=spec.num_heads,
            kv_heads=spec.num_kv_heads,
            head_dim=spec.head_dim,
            vocab=spec.vocab_size,
            tied=spec.tie_embeddings,
        )


def decoder_shape(
    layers: int,
    hidden: int,
    intermediate: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    vocab: int,
    tied: bool = False,
    experts: int = 0,
    experts_active: int = 0,
    moe_intermediate: int = 0,
    qk_norm: bool = False,
) -> ModelShape:
    """A Llama/Qwen-style decoder (gated MLP, GQA, RMSNorm; no biases). With `experts`, every
    layer's MLP is a mixture of `experts` gated MLPs of width `moe_intermediate` plus a router."""
    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    attn = hidden * q_dim + 2 * hidden * kv_dim + q_dim * hidden + (2 * head_dim if qk_norm else 0)
    if experts:
        expert = 3 * hidden * moe_intermediate
        mlp = experts * expert + hidden * experts  # experts + router
    else:
        expert, mlp = 0, 3 * hidden * intermediate
    per_layer = attn + mlp + 2 * hidden  # + two RMSNorms
    embed = vocab * hidden
    params = layers * per_layer + hidden + embed + (0 if tied else embed)
    return ModelShape(
        params=params,
        layers=layers,
        hidden=hidden,
        kv_dim=kv_dim,
        vocab=vocab,
        q_dim=q_dim,
        # tied: the one table is also the LM head, so it is multiplied and streamed every forward
        embedding_params=0 if tied else embed,
        moe_experts=experts,
        moe_active=experts_active if experts else 0,
        moe_expert_params=expert,
    )


def eagle3_head_shape(hidden: int, q_dim: int, kv_dim: int, intermediate: int, vocab: int) -> ModelShape:
    """An EAGLE-3 head (aurora_sim.models.drafts.Eagle3Head): fc 3H→H over the target's three
    fused layers, one decoder layer whose attention reads [embedding; feature] (2H wide), its own
    norm and LM head H×V. The token embedding is the target's, so it is not counted."""
    head_dim_norms = 4 * hidden  # input, hidden, post-attention and final RMSNorms
    attn = 2 * hidden * q_dim + 2 * (2 * hidden * kv_dim) + q_dim * hidden
    params = 3 * hidden * hidden + attn + 3 * hidden * intermediate + hidden * vocab + head_dim_norms
    return ModelShape(params=params, layers=1, hidden=hidden, kv_dim=kv_dim, vocab=vocab, q_dim=q_dim)
