"""Re-measure the numbers behind HARDWARE["cpu"] on this machine (one torch thread, fp32):

    python -m aurora_sim.costs.hostprobe

Best of several runs, because a shared VM is only ever slower than its best. Not used at run
time: the cost model must not read a clock.
"""

from __future__ import annotations

import os
import tempfile
import time

import torch


def _best_ns(fn, repeats: int = 9) -> int:
    fn()
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        dt = time.perf_counter_ns() - t0
        best = dt if best is None else min(best, dt)
    return best


def probe() -> dict:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(512, 1024), torch.randn(1024, 2048)
        gemm = 2 * 512 * 1024 * 2048 / _best_ns(lambda: a @ b)  # FLOP/ns = GFLOP/s
        w, v = torch.randn(8192, 4096), torch.randn(1, 4096)  # 128 MB: well past the L3
        gemv = w.numel() * 4 / _best_ns(lambda: v @ w.T)
        small = torch.randn(1024, 1024)  # 4 MB: cache-resident
        cached = small.numel() * 4 / _best_ns(lambda: v[:, :1024] @ small.T)
        data = os.urandom(64 * 2**20)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "probe")

            def write():
                with open(path, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())

            def read():
                with open(path, "rb") as fh:
                    fh.read()

            disk_w = len(data) / _best_ns(write, 3)
            disk_r = len(data) / _best_ns(read, 3)
    finally:
        torch.set_num_threads(old)
    return {
        "gemm_gflops": round(gemm, 1),
        "gemv_gbps": round(gemv, 1),
        "cached_gemv_gbps": round(cached, 1),
        "disk_write_gbps": round(disk_w, 2),
        "disk_read_gbps": round(disk_r, 2),
        "torch": torch.__version__,
    }


if __name__ == "__main__":  # pragma: no cover
    print(probe())
