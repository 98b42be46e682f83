"""The analytic cost model: a per-kernel-class roofline for every forward plus fixed overheads.

A forward of a model over t tokens costs
    GEMMs       2·active_params·t FLOPs against the weights streamed once (bytes_per_param each)
    attention   4·layers·q_dim·(context × queries per row) FLOPs against the KV cache read
                (context·2·layers·kv_dim·bytes) and the new tokens' KV written
    logits      t·vocab fp32 logits written and read back by sampling (3 passes)
    launches    launch_ns + layer_launch_ns·layers (+ two all-reduces per layer under tp)
each kernel class costing max(compute, memory) on a GPU (kernels overlap loads and math) and
compute + memory on the cpu (measured: one thread does not overlap them). Classes add up: they
are separate kernels.

A speculative round = the draft's γ forwards (catch-up over its `draft_tokens - (γ-1)·B`
tokens, then γ-1 forwards over B tokens) + γ·draft_step_overhead + one target forward over the
verify tokens and the prefill tokens + round_overhead + spec_row_overhead·B. A target-only
round = one target forward + decode_overhead + decode_row_overhead·B.

The two speculative overheads are fitted per GPU so that, for llama3-8b at batch 1 (context 1024),
a speculative round costs 1.2 + 0.23·γ target-only rounds: the fit of SGLang's EAGLE
measurements on an H100 for an 8B target with a one-layer draft. Beyond batch 1 nothing is
fitted: the erosion of speedup with batch is the verify forward's GEMMs crossing the roofline
ridge (b·(γ+1) tokens ≈ 240 on an H100) plus the per-row host overhead.
"""

from __future__ import annotations

import functools

from aurora_sim.costs import swap as swap_mechanism
from aurora_sim.costs.deployments import DEPLOYMENTS, Deployment
from aurora_sim.costs.hardware import HardwareSpec
from aurora_sim.costs.shapes import ModelShape, RoundShape
from aurora_sim.errors import AuroraError

# The SGLang fit the GPU overheads are calibrated to, and where.
FIT_BASE, FIT_PER_STEP = 1.2, 0.23
FIT_CONTEXT = 1024  # tokens per row: a typical chat turn; at batch 1 the KV is <1% of the weights
FIT_GAMMAS = range(1, 9)
OPTIMIZER_BYTES_PER_PARAM = 28  # AdamW: read grad, fp32 master, m, v; write master, m, v, weight copy
LOSS_BYTES_PER_LOGIT = 32  # fp32 logits of draft and target through log-softmax + KL, forward and backward
LOGIT_PASSES = 3  # fp32 logits written once, read by softmax and by the sampler


class _Roofline:
    """Time of one forward of a model on a hardware, in float ns, without round overheads."""

    def __init__(self, hw: HardwareSpec, tp: int = 1):
        self.hw, self.tp = hw, tp
        self.flops = hw.peak_flops * hw.flops_fraction * tp
        self.attn_flops = hw.peak_flops * hw.attn_flops_fraction * tp
        self.bw = hw.mem_bw * hw.bw_fraction * tp

    def _kernel(self, flops: float, nbytes: float, flop_rate: float) -> float:
        compute, memory = flops / flop_rate, nbytes / self.bw
        return (max(compute, memory) if self.hw.overlap else compute + memory) * 1e9

    def forward(
        self,
        m: ModelShape,
        tokens: int,
        context: int,
        queries_per_row: float,
        logit_rows: int | None = None,
        prefill_tokens: int = 0,
        prefill_requests: int = 0,
    ) -> float:
        """`tokens` includes `prefill_tokens`; `context` is the cached KV the decode rows attend to
        (each with `queries_per_row` queries); a prefill of n prompts attends within itself."""
        if tokens <= 0:
            return 0.0
        bpp = self.hw.bytes_per_param
        weights = m.weights_read(tokens) * bpp
        if weights <= self.hw.cache_bytes:  # cache-resident (the tiny tier on the cpu): cache bandwidth
            weights *= self.bw / self.hw.cache_bw
        gemm = self._kernel(2.0 * m.active_params * tokens, weights, self.flops)
        prompts = max(1, prefill_requests)
        causal = prefill_tokens * prefill_tokens / (2.0 * prompts)  # Σ p²/2 for equal-length prompts
        attn_flops = 4.0 * m.layers * m.attn_dim * (context * queries_per_row + causal)
        kv_bytes = (context + tokens) * 2.0 * m.layers * m.kv_dim * bpp  # read the cache, write the new tokens
        attn = self._kernel(attn_flops, kv_bytes, self.attn_flops) if m.layers else 0.0
        rows = tokens if logit_rows is None else logit_rows
        logits = rows * m.vocab * 4.0 * LOGIT_PASSES / self.bw * 1e9
        launch = self.hw.launch_ns + self.hw.layer_launch_ns * m.layers
        if self.tp > 1:
            launch += 2 * m.layers * self.hw.allreduce_ns
        return gemm + attn + logits + launch


class AnalyticCost:
    """CostModel from a hardware spec and a deployment. Deterministic: same inputs, same ints."""

    def __init__(
        self,
        hardware: HardwareSpec,
        deployment: Deployment,
        train_unroll: int = 5,
        swap: str = swap_mechanism.DEFAULT,
        max_batch: int = 8,
    ):
        if train_unroll < 1:
            raise AuroraError(f"train_unroll must be >= 1, got {train_unroll}")
        self.hw, self.dep, self.train_unroll = hardware, deployment, train_unroll
        self.swap, self.max_batch = swap_mechanism.check(swap), max(1, int(max_batch))
        self.name = f"analytic:{hardware.name}:{deployment.name}"
        self.roof = _Roofline(hardware, deployment.tp)
        self.round_overhead_ns, self.draft_step_overhead_ns, self.overhead_source = overheads_for(hardware)

    # ---- serving -----------------------------------------------------------------------------
    def round_ns(self, shape: RoundShape) -> int:
        if shape.batch == 0 and shape.prefill_tokens == 0:
            return 0
        t = physical_ns(self.roof, self.dep, shape)
        if shape.gamma == 0 or shape.batch == 0:
            t += self.hw.decode_overhead_ns + self.hw.decode_row_overhead_ns * shape.batch
        else:
            t += self.round_overhead_ns + shape.gamma * self.draft_step_overhead_ns
            # a second head's passes over its share of the rows: charged as a whole second
            # drafting (its weights are streamed and its kernels launched all the same)
            t += (shape.draft_models - 1) * self.draft_ns(shape)
        return round(t)

    # ---- training and swapping ---------------------------------------------------------------
    def train_step_ns(self, tokens: int) -> int:
        """One optimizer step of the draft over `tokens` tokens with the TTT unroll: each unroll
        step is a forward (2 FLOPs/param/token) and backward (4) of the whole head, plus the KL
        loss over the vocabulary, plus AdamW over every trainable parameter. Attention inside the
        training windows is ignored (<2% of the FLOPs for a one-layer head at 2k tokens)."""
        if tokens <= 0:
            return 0
        d, hw, u, r = self.dep.draft, self.hw, self.train_unroll, self.roof
        bpp = hw.bytes_per_param
        gemm = r._kernel(6.0 * d.active_params * tokens * u, 3.0 * d.weights_read(tokens) * bpp * u, r.flops)
        loss = tokens * u * d.vocab * LOSS_BYTES_PER_LOGIT / r.bw * 1e9
        optimizer = d.matmul_params * OPTIMIZER_BYTES_PER_PARAM / r.bw * 1e9
        fixed = hw.train_fixed_ns + u * (hw.train_unroll_fixed_ns + hw.layer_launch_ns * d.layers * 3)
        return round(gemm + loss + optimizer + fixed)

    def draft_bytes(self) -> int:
        return self.dep.draft.params * self.hw.bytes_per_param

    def swap_ns(self) -> tuple[int, int]:
        """(publish, pause): the trainer writes the draft, the server reads it back and copies it
        to the device, all in the background; then serving stalls while it goes live, for as
        long as the swap mechanism takes (costs/swap.py)."""
        hw, nbytes = self.hw, self.draft_bytes()
        publish = nbytes / hw.disk_write_bw + nbytes / hw.disk_read_bw + (nbytes / hw.h2d_bw if hw.h2d_bw else 0.0)
        return round(publish * 1e9) + hw.swap_fixed_ns, self.pause_ns(self.swap)

    def pause_ns(self, mechanism: str) -> int:
        """The serving stall of a swap by `mechanism` at this model's max batch."""
        return swap_mechanism.pause_ns(
            mechanism,
            graphs=self.hw.cuda_graphs,
            draft_bytes=self.draft_bytes(),
            copy_bw=self.roof.bw,
            sync_ns=self.hw.launch_ns,
            batch=self.max_batch,
        )

    def draft_ns(self, s: RoundShape) -> int:
        """The drafting part of a round's `round_ns` (one head): its γ forwards and their overheads."""
        if s.gamma == 0 or s.batch == 0:
            return 0
        return round(draft_forwards_ns(self.roof, self.dep, s) + s.gamma * self.draft_step_overhead_ns)

    # ---- reporting ---------------------------------------------------------------------------
    def describe(self) -> dict:
        publish, pause = self.swap_ns()
        return {
            "kind": "analytic",
            "name": self.name,
            "units": "ns (int)",
            "hardware": self.hw.describe(),
            "deployment": self.dep.describe(),
            # ridge: tokens per forward where a GEMM's 2 FLOPs per weight per token equal its bytes
            "achieved": {
                "gemm_flops": self.roof.flops,
                "attn_flops": self.roof.attn_flops,
                "mem_bw": self.roof.bw,
                "ridge_tokens": self.roof.flops / self.roof.bw * self.hw.bytes_per_param / 2,
            },
            "overheads": {
                "round_overhead_ns": self.round_overhead_ns,
                "draft_step_overhead_ns": self.draft_step_overhead_ns,
                "decode_overhead_ns": self.hw.decode_overhead_ns,
                "decode_row_overhead_ns": self.hw.decode_row_overhead_ns,
                "spec_row_overhead_ns": self.hw.spec_row_overhead_ns,
                "source": self.overhead_source,
            },
            "constants": {
                "optimizer_bytes_per_param": OPTIMIZER_BYTES_PER_PARAM,
                "loss_bytes_per_logit": LOSS_BYTES_PER_LOGIT,
                "logit_passes": LOGIT_PASSES,
            },
            "train": {"unroll": self.train_unroll, "step_ns_4096_tokens": self.train_step_ns(4096)},
            "swap": {
                "mechanism": self.swap,
                "max_batch": self.max_batch,
                "draft_bytes": self.draft_bytes(),
                "publish_ns": publish,
                "pause_ns": pause,
                "pause_ns_by_mechanism": {m: self.pause_ns(m) for m in swap_mechanism.MECHANISMS},
                "recapture_source": swap_mechanism.RECAPTURE_SOURCE,
            },
        }


@functools.cache
def overheads_for(hw: HardwareSpec) -> tuple[int, int, str]:
    """(round_overhead_ns, draft_step_overhead_ns, how they were obtained)."""
    if hw.round_overhead_ns is not None and hw.draft_step_overhead_ns is not None:
        return hw.round_overhead_ns, hw.draft_step_overhead_ns, "measured (see aurora_sim.costs.hardware)"
    r, d = fit_overheads(hw)
    return (
        r,
        d,
        (
            f"fitted: llama3-8b at batch 1, context {FIT_CONTEXT}, γ=1..8, spec round = "
            f"{FIT_BASE} + {FIT_PER_STEP}·γ target-only rounds (SGLang EAGLE, 8B target, H100, one-layer draft)"
        ),
    )


def physical_ns(roof: _Roofline, dep: Deployment, s: RoundShape) -> float:
    """The forwards of a round + its per-row host overhead: everything but the fixed overheads."""
    rows = max(s.batch, 1)
    target_tokens = s.verify_tokens + s.prefill_tokens
    logit_rows = s.verify_tokens + (max(1, s.prefill_requests) if s.prefill_tokens else 0)
    target = roof.forward(
        dep.target,
        target_tokens,
        s.context_tokens,
        s.verify_tokens / rows,
        logit_rows,
        s.prefill_tokens,
        s.prefill_requests,
    )
    if s.gamma == 0 or s.batch == 0:
        return target
    return draft_forwards_ns(roof, dep, s) + target + roof.hw.spec_row_overhead_ns * s.batch


def draft_forwards_ns(roof: _Roofline, dep: Deployment, s: RoundShape) -> float:
    """The draft's γ forwards of a speculative round (no fixed overheads)."""
    rows = max(s.batch, 1)
    step = s.batch  # draft steps 2..γ: one token per row
    first = max(s.batch, s.draft_tokens - (s.gamma - 1) * step)  # the catch-up forward, >= 1 token per row
    draft = roof.forward(dep.draft, first, s.context_tokens, first / rows)
    return draft + (s.gamma - 1) * roof.forward(dep.draft, step, s.context_tokens, 1.0)


def fit_overheads(hw: HardwareSpec) -> tuple[int, int]:
    """Least squares over γ of the gap between the SGLang fit and the roofline's physical cost."""
    dep = DEPLOYMENTS["llama3-8b"]
    roof = _Roofline(hw, dep.tp)
    base = (
        physical_ns(roof, dep, RoundShape.steady(1, 0, FIT_CONTEXT)) + hw.decode_overhead_ns + hw.decode_row_overhead_ns
    )
    xs, ys = [], []
    for g in FIT_GAMMAS:
        shape = RoundShape.steady(1, g, FIT_CONTEXT, accept_len=1 + g / 2)
        xs.append(float(g))
        ys.append((FIT_BASE + FIT_PER_STEP * g) * base - physical_ns(roof, dep, shape))
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    intercept = my - slope * mx
    return max(0, round(intercept)), max(0, round(slope))
