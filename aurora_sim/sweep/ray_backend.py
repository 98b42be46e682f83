"""Sweep runs as Ray tasks: a local Ray instance sized to the machine, or a cluster by address.

Each task takes one CPU (the replay pins its own kernels to one torch thread per thread, which is
also what makes its bytes independent of the machine's core count). A task whose worker process
dies (killed, out of memory, node lost) is re-run by Ray up to `retries` times; an exception inside
the replay is not a death: run_job returns it as a failed run, which would fail the same way again.
"""

from __future__ import annotations

import logging
import os

from aurora_sim.errors import AuroraError


def _start(workers: int | None, address: str | None) -> bool:
    """Connect or start Ray; True when this call started it (and so must stop it)."""
    try:
        import ray
    except ImportError:
        raise AuroraError("Ray is not installed (pip install 'ray>=2.50'), or use --backend local") from None
    if ray.is_initialized():
        return False
    common = dict(logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
    try:
        if address:
            ray.init(address=address, **common)
        else:
            # a small object store: results are one run's event log each, and the default (30 % of
            # RAM) fails where /dev/shm is small; address="local": always a new instance, never
            # a cluster that some `ray start` left behind
            ray.init(
                address="local",
                num_cpus=workers or os.cpu_count() or 1,
                include_dashboard=False,
                object_store_memory=512 * 1024**2,
                **common,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise AuroraError(f"cannot start {where}: {str(exc).strip().splitlines()[0]}") from None
    return True


def run_on_ray(jobs, workers: int | None = None, address: str | None = None, retries: int = 2):
    """Yield (job, result) as each task ends, in completion order."""
    import ray

    from aurora_sim.sweep.job import run_job

    started = _start(workers, address)
    try:
        task = ray.remote(num_cpus=1, max_retries=retries)(run_job)
        pending = {task.options(name=f"aurora-sweep:{j.name}").remote(j.config.to_json()): j for j in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died on every attempt
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    result = {
                        "status": "failed",
                        "error": f"{type(exc).__name__} after {retries + 1} attempts: {first}"[:300],
                    }
                yield job, result
    finally:
        if started:
            ray.shutdown()
