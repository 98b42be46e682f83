"""One sweep run, as a Ray task or in-process: replay into a private staging folder, hand back the
finished run directory as a tar archive, and let the driver install it atomically.

Why bytes and not a path: on a cluster the worker's disk is not the driver's, and a run killed
half-way must leave nothing in the sweep folder (the driver only ever renames a complete one in).
The replay is deterministic and its event log names no absolute path, so the bytes are the same
whichever process or host made them.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import tarfile
import tempfile
import time
from pathlib import Path

from aurora_sim.replay.config import ReplayConfig


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(config_json: str, on_progress=None) -> dict:
    """{"status": "done", "tar": bytes, "wall": wall.json, "worker"} or {"status": "failed", "error"}.
    An exception in the replay is a failed run, not a crash: the sweep records it and goes on."""
    import json

    from aurora_sim.replay.loop import Replay

    t0 = time.perf_counter()
    stage = Path(tempfile.mkdtemp(prefix="aurora-sweep-"))
    try:
        cfg = ReplayConfig.from_dict(json.loads(config_json))
        wall = Replay(cfg, stage / "run", on_progress=on_progress).run()
        return {
            "status": "done",
            "tar": pack(stage / "run"),
            "wall": {k: v for k, v in wall.items() if k != "out"},
            "worker": worker_id(),
            "wall_s": round(time.perf_counter() - t0, 2),
        }
    except Exception as exc:  # noqa: BLE001 - any failure of one run is recorded, never fatal to the sweep
        text = str(exc).strip().splitlines()
        return {
            "status": "failed",
            "error": f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "),
            "worker": worker_id(),
            "wall_s": round(time.perf_counter() - t0, 2),
        }
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


def install(data: bytes, run_dir: Path) -> None:
    """Unpack next to run_dir, then swap it in: readers see the old directory or the whole new one."""
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = run_dir.parent / f".{run_dir.name}.partial"
    old = run_dir.parent / f".{run_dir.name}.old"
    for p in (partial, old):
        shutil.rmtree(p, ignore_errors=True)
    partial.mkdir()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(partial, filter="data")  # "data": no absolute paths, links out or devices
    if run_dir.exists():
        os.rename(run_dir, old)
    os.rename(partial, run_dir)
    shutil.rmtree(old, ignore_errors=True)
