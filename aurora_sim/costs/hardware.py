"""Hardware constants for the analytic cost model, from public spec sheets (GPUs) or measured
on this machine (`cpu`). Every number here ends up in CostModel.describe().

Achievable fractions: dense GEMMs in serving reach ~60-70% of the spec-sheet bf16 peak (cuBLAS
on H100 sustains ~600-700 of 989 TFLOPS on large shapes, less on skinny ones), and streaming
kernels ~80% of HBM bandwidth; we use 0.65 and 0.8. Attention kernels get their own FLOP
fraction (decode/verify attention is memory-bound anyway; 0.5 bounds prefill attention).

Overheads that the roofline cannot see (kernel launches, scheduler, sampling, host syncs) are
separate constants. On GPUs the two speculative-round overheads are *fitted* (see
aurora_sim.costs.analytic.fit_overheads), not written here; `cpu` carries measured ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from aurora_sim.errors import AuroraError

MS = 1_000_000  # ns
US = 1_000


@dataclass(frozen=True)
class HardwareSpec:
    name: str
    peak_flops: float  # dense FLOP/s at the serving dtype (bf16 on GPUs, fp32 on cpu)
    mem_bw: float  # bytes/s
    flops_fraction: float  # achievable share of peak_flops for GEMMs
    bw_fraction: float  # achievable share of mem_bw
    attn_flops_fraction: float  # achievable share of peak_flops inside attention kernels
    bytes_per_param: int  # weights and KV cache: 2 (bf16) on GPUs, 4 (fp32) on cpu
    overlap: bool  # True: a kernel costs max(compute, memory) (GPU); False: their sum (measured on cpu)
    launch_ns: int  # per forward (one CUDA-graph replay + host sync; python entry on cpu)
    layer_launch_ns: int  # per decoder layer per forward (0 with CUDA graphs; python dispatch on cpu)
    allreduce_ns: int  # one tensor-parallel all-reduce (two per layer when tp > 1)
    decode_overhead_ns: int  # per target-only round: scheduler, sampling, output processing
    decode_row_overhead_ns: int  # per row per target-only round, where not hidden behind the GPU
    spec_row_overhead_ns: int  # per row per speculative round: host bookkeeping on the critical path
    disk_write_bw: float  # bytes/s, publishing a draft checkpoint
    disk_read_bw: float
    cache_bytes: float  # weights this small stay in the last-level cache between forwards (cpu L3; 0 = off)
    cache_bw: float  # bytes/s streaming them from there
    h2d_bw: float  # bytes/s host→device copy when loading a draft (0 = none: cpu)
    swap_fixed_ns: int  # file creation, fsync, safetensors header, handshake with the server
    cuda_graphs: bool  # serving replays captured CUDA graphs (what a swap may recapture: costs/swap.py)
    train_fixed_ns: int  # per optimizer step (zero_grad, clip, step launches)
    train_unroll_fixed_ns: int  # per TTT unroll step (forward+backward launches of the head)
    round_overhead_ns: int | None = None  # None: fitted (GPU); cpu: measured
    draft_step_overhead_ns: int | None = None
    source: str = ""

    def describe(self) -> dict:
        return asdict(self)


_GPU_COMMON = dict(
    flops_fraction=0.65,
    bw_fraction=0.8,
    attn_flops_fraction=0.5,
    bytes_per_param=2,
    overlap=True,
    launch_ns=30 * US,  # a CUDA-graph replay is ~10-30 µs of launch + sync
    layer_launch_ns=0,
    allreduce_ns=10 * US,  # one-shot NVLink all-reduce of a decode-sized message
    # Target-only decode of Llama-3.1-8B at batch 1 on an H100 runs at ~6.3 ms/token in SGLang
    # and vLLM (~160 tok/s); the roofline gives ~6.0 ms, the rest is this.
    decode_overhead_ns=250 * US,
    decode_row_overhead_ns=0,  # SGLang's overlap scheduler hides per-request work behind the GPU
    # SGLang's EAGLE path long ran without its overlap scheduler, so per-request bookkeeping of
    # the accepted tokens (output lists, stop checks, KV frees) sits on the critical path of a
    # speculative round while target-only decode hides it. A calibration choice: at 40 µs/row
    # llama3-8b (AL 3.5, γ=5, 512 cached tokens/row) falls from 1.49x at batch 1 to 1.19x at
    # batch 64 (ratio 0.80; without it 1.34x, ratio 0.90), close to the 0.76 ratio EAGLE-3
    # reports for SGLang on an H100 between batch 2 (1.81x) and batch 64 (1.38x).
    spec_row_overhead_ns=40 * US,
    disk_write_bw=2e9,  # NVMe-ish: a draft checkpoint written once and read once per sync
    disk_read_bw=2e9,
    cache_bytes=0.0,  # a 50 MB L2 holds no model worth costing
    cache_bw=0.0,
    h2d_bw=25e9,  # pageable PCIe copies (Gen5 x16 peaks near 64 GB/s; pageable gets ~25)
    swap_fixed_ns=50 * MS,
    # what going live costs depends on the swap mechanism (costs/swap.py: recapture, in-place)
    cuda_graphs=True,
    train_fixed_ns=3 * MS,
    train_unroll_fixed_ns=1 * MS,
)

HARDWARE: dict[str, HardwareSpec] = {
    # NVIDIA H100 SXM5 80GB datasheet: 989 TFLOPS dense bf16 (1979 with sparsity), 3.35 TB/s HBM3.
    "h100": HardwareSpec("h100", 989e12, 3.35e12, **_GPU_COMMON, source="NVIDIA H100 SXM5 datasheet"),
    # H200 SXM 141GB: same GH100 compute, 4.8 TB/s HBM3e.
    "h200": HardwareSpec("h200", 989e12, 4.8e12, **_GPU_COMMON, source="NVIDIA H200 SXM datasheet"),
    # A100 80GB SXM4: 312 TFLOPS dense bf16, 2.039 TB/s HBM2e.
    "a100": HardwareSpec("a100", 312e12, 2.039e12, **_GPU_COMMON, source="NVIDIA A100 80GB SXM datasheet"),
    # This dev machine (2-core AMD EPYC VM), one torch thread, fp32, torch 2.13 CPU; measured
    # 2026-11-23 with aurora_sim.costs.hostprobe (best of repeated runs, machine otherwise idle):
    #   512x1024 @ 1024x2048 fp32 matmul: ~90 GFLOP/s; 128 MB fp32 GEMV: ~21 GB/s;
    #   64 MB write+fsync ~1.2-1.4 GB/s, read back ~1.3-1.9 GB/s.
    # The torch engine reaches less than that on its own shapes, measured on the smollm2 tier:
    # forward time ≈ 65 ms + 4 ms per token at batch 1..64, i.e. weights stream at ~10.5 GB/s
    # (bw_fraction 0.5) and tokens cost ~67 GFLOP/s (flops_fraction 0.75), *added* rather than
    # overlapped (overlap=False); attention over the cache with several queries per row runs at
    # ~4 GFLOP/s (masked SDPA). Python dispatch: ~0.38 ms per decoder layer + ~0.22 ms per
    # forward (synthetic 1/4/16-layer models at hidden 64). Weights under 32 MB (the L3) stream
    # at ~30 GB/s (GEMV on 0.4-4 MB matrices). The engine's own overheads are the residual of
    # TorchSpecEngine.step() on the tiny tier (γ 0,1,2,4,6 × batch 1..16, interleaved, median of
    # 15) after the modelled forwards, least squares: target-only round 2.0 ms + 40 µs/row;
    # speculative round 2.8 ms + 0.65 ms per draft step + 120 µs/row. A save_draft + load_draft
    # round trip of the tiny head takes 30-40 ms, nearly all fixed (fsync, building the module).
    # Timings on this VM drift by ±30% run to run: prefer a calibrated profile for cpu timings.
    # No CUDA graphs: a swap recaptures nothing.
    "cpu": HardwareSpec(
        "cpu",
        90e9,
        21e9,
        flops_fraction=0.75,
        bw_fraction=0.5,
        attn_flops_fraction=0.045,
        bytes_per_param=4,
        overlap=False,
        launch_ns=220 * US,
        layer_launch_ns=380 * US,
        allreduce_ns=0,
        decode_overhead_ns=2000 * US,
        decode_row_overhead_ns=40 * US,
        spec_row_overhead_ns=120 * US,
        disk_write_bw=1.2e9,
        disk_read_bw=1.5e9,
        cache_bytes=32e6,
        cache_bw=30e9,
        h2d_bw=0.0,
        swap_fixed_ns=30 * MS,
        cuda_graphs=False,
        train_fixed_ns=2 * MS,
        train_unroll_fixed_ns=2 * MS,
        round_overhead_ns=2800 * US,
        draft_step_overhead_ns=650 * US,
        source="measured on the 2-core dev VM, 1 torch thread, fp32",
    ),
}


def get_hardware(name: str) -> HardwareSpec:
    try:
        return HARDWARE[name]
    except KeyError:
        raise AuroraError(f"unknown hardware {name!r} (choose from {', '.join(HARDWARE)} or profiled)") from None
