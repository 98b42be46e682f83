"""Run a list of replays, each into its own directory: skip the complete ones, run the rest in this
process one after another (`local`) or as Ray tasks (`ray`), install each finished run atomically,
and report every outcome as it arrives. A failed run is recorded and the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aurora_sim.errors import AuroraError
from aurora_sim.replay.complete import complete_with, expected_digest
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.sweep.job import install, run_job

BACKENDS = ("ray", "local")


@dataclass(frozen=True)
class Job:
    name: str
    config: ReplayConfig  # as given (trace_sha256 empty); the replay fills the digest in
    run_dir: Path


@dataclass
class Outcome:
    job: Job
    status: str  # done | skipped | failed
    error: str | None = None
    wall_s: float | None = None  # this sweep's time for the run (None when skipped)
    worker: str | None = None  # host:pid that made it
    wall: dict = field(default_factory=dict)  # the run's wall.json


def prepare(jobs: list[Job]) -> None:
    """Build what runs share before any of them start: the target models and the offline static
    drafts (cached and content-keyed), so parallel workers never race to build the same thing."""
    from aurora_sim.learner.offline import train_static_draft
    from aurora_sim.models.registry import resolve_model

    for model in sorted({j.config.model for j in jobs}):
        resolve_model(model)
    from aurora_sim.replay.config import STATIC_INITS

    for model, kind, init in sorted(
        {(j.config.model, j.config.draft, j.config.init) for j in jobs if j.config.init in STATIC_INITS}
    ):
        train_static_draft(model, kind, progress=True, flavour=STATIC_INITS[init])


def split_done(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """(to run, already complete with exactly this config and trace digest). Loading each trace
    once here also turns a bad trace name into one error before anything starts."""
    digests: dict[tuple, str] = {}
    todo, done = [], []
    for j in jobs:
        key = (j.config.trace, j.config.seed, j.config.limit)
        if key not in digests:
            digests[key] = expected_digest(j.config)
        (done if complete_with(j.run_dir, j.config.with_(trace_sha256=digests[key])) else todo).append(j)
    return todo, done


def _finish(job: Job, result: dict) -> Outcome:
    if result.get("status") != "done":
        return Outcome(
            job, "failed", result.get("error") or "unknown error", result.get("wall_s"), result.get("worker")
        )
    install(result["tar"], job.run_dir)
    return Outcome(job, "done", None, result.get("wall_s"), result.get("worker"), result.get("wall") or {})


def execute(
    jobs: list[Job],
    backend: str = "ray",
    workers: int | None = None,
    address: str | None = None,
    retries: int = 2,
    on_outcome=None,
    on_progress=None,
) -> list[Outcome]:
    """Outcomes in the jobs' order. on_outcome(outcome) is called as each run ends (skipped ones
    first); on_progress(job, progress) with the replay's progress (local backend only)."""
    if backend not in BACKENDS:
        raise AuroraError(f"unknown backend {backend!r} (choose {', '.join(BACKENDS)})")
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise AuroraError("two sweep runs share a name")
    report = on_outcome or (lambda o: None)
    todo, done = split_done(jobs)
    outcomes = {j.name: Outcome(j, "skipped") for j in done}
    for j in done:
        report(outcomes[j.name])
    if todo:
        prepare(todo)
    if backend == "local" or not todo:
        for j in todo:
            cb = (lambda p, j=j: on_progress(j, p)) if on_progress else None
            outcomes[j.name] = _finish(j, run_job(j.config.to_json(), on_progress=cb))
            report(outcomes[j.name])
    else:
        from aurora_sim.sweep.ray_backend import run_on_ray

        for j, result in run_on_ray(todo, workers=workers, address=address, retries=retries):
            outcomes[j.name] = _finish(j, result)
            report(outcomes[j.name])
    return [outcomes[j.name] for j in jobs]
