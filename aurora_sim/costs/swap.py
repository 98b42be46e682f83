"""How a new draft goes live in a CUDA-graph server, and what serving pays for it.

Both mechanisms first *publish* in the background (the trainer writes the draft, the server reads
it and copies it to the device: `AnalyticCost.swap_ns`'s publish time, serving goes on). They
differ in the stall when the new weights take over:

recapture   Aurora's (its SGLang patch, `update_draft_model`): reload the draft from disk, then
            recapture the draft's CUDA graphs for every batch size the server captured. SGLang
            serves nothing while it captures ("You cannot serve requests in the server during
            the capture process", docs/advanced_features/cuda_graphs.md). Sourced cost: SGLang
            logged "Capture draft cuda graph end. Time elapsed: 62.67 s" for an EAGLE draft
            (sgl-project/sglang#10088, 2025-09, FA3) over its default batch-size list with
            speculative decoding, 1-8, 10-32 step 2, 40-160 step 16: 28 sizes on a GPU of
            <= 80 GB, i.e. 2.24 s per captured size. A server launched with
            `--cuda-graph-max-bs B` captures the sizes <= B (and B): 8 sizes, 17.9 s, at batch 8.
            Aurora's own log line for the reload says "this may take a few minutes".
in-place    copy the new weights into the buffers the captured graphs already read (SGLang's
            `update_weights_from_tensor` loads through each parameter's weight loader, in
            place), hot-token map included, so no graph is recaptured: the stall is one
            device-to-device copy of the draft (read + write at the achieved memory bandwidth)
            and a synchronisation. The new weights sit in a staging buffer once published.

On the cpu hardware there are no CUDA graphs: the server serves from the weights it loaded while
publishing, and neither mechanism stalls it.
"""

from __future__ import annotations

from aurora_sim.errors import AuroraError

MECHANISMS = ("in-place", "recapture")
DEFAULT = "in-place"

# sgl-project/sglang#10088: 62.67 s for the draft's graphs over SGLang's 28 default sizes
RECAPTURE_LOGGED_NS = 62_670_000_000
RECAPTURE_SOURCE = "sgl-project/sglang#10088: 'Capture draft cuda graph end. Time elapsed: 62.67 s' (28 sizes)"


def sglang_spec_capture_sizes(max_batch: int | None = None) -> list[int]:
    """SGLang's default CUDA-graph batch sizes with speculative decoding (GPU <= 80 GB),
    cut at `--cuda-graph-max-bs` (which it adds itself when missing)."""
    sizes = list(range(1, 9)) + list(range(10, 33, 2)) + list(range(40, 161, 16))
    if max_batch is None:
        return sizes
    return sorted({s for s in sizes if s <= max_batch} | {max(1, int(max_batch))})


RECAPTURE_NS_PER_SIZE = RECAPTURE_LOGGED_NS // len(sglang_spec_capture_sizes())


def check(mechanism: str) -> str:
    if mechanism not in MECHANISMS:
        raise AuroraError(f"unknown swap mechanism {mechanism!r} (choose {', '.join(MECHANISMS)})")
    return mechanism


def pause_ns(mechanism: str, *, graphs: bool, draft_bytes: int, copy_bw: float, sync_ns: int, batch: int) -> int:
    """The serving stall when a published draft goes live. `graphs`: the server replays CUDA
    graphs (GPUs); `copy_bw`: achieved device memory bandwidth, bytes/s; `batch`: the server's
    largest captured batch (its max batch)."""
    check(mechanism)
    if not graphs:  # nothing captured: the server just serves from the loaded weights
        return 0
    if mechanism == "recapture":
        return RECAPTURE_NS_PER_SIZE * len(sglang_spec_capture_sizes(batch))
    return round(2.0 * draft_bytes / copy_bw * 1e9) + int(sync_ns)


def break_even_al_gain(al: float, pause: float, interval: float) -> float | None:
    """The acceptance-length gain a swap must bring, at a fixed depth, to pay for its pause
    within `interval` (the time to the next swap): serving runs (interval - pause) at AL' where it
    would have run interval at AL, so AL' >= AL * interval / (interval - pause). None when the
    pause fills the interval (no gain pays)."""
    if interval <= pause:
        return None
    return al * pause / (interval - pause)
