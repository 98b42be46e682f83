"""The settings a run resolves when it starts, so its recorded config says what actually ran.

`engine=auto` becomes fast or exact, `learner.precision=auto` becomes bf16 or fp32. The replay
records the resolved config (its run id hashes it), and a skip-or-run check compares a planned
config with a stored one after the same resolution.
"""

from __future__ import annotations

from aurora_sim.errors import AuroraError
from aurora_sim.replay.config import ReplayConfig


def resolve_engine(cfg: ReplayConfig, temperatures) -> str:
    """auto -> fast where the fast path is exact (greedy requests; a chain within the cached
    overhang; rejected tails only for EAGLE heads), else exact. `fast` asked where it is not
    exact is an error that says why."""
    from aurora_sim.replay.trajectories import OVERHANG

    if cfg.engine == "exact":
        return "exact"
    why = []
    if any(t > 0 for t in temperatures):
        why.append("the trace has sampled requests (temperature > 0; the fast path is greedy only)")
    if cfg.speculative and cfg.gamma > OVERHANG + 1:
        why.append(f"gamma {cfg.gamma} > {OVERHANG + 1} (the cached trajectories' overhang)")
    if cfg.draft == "lm" and cfg.learning and cfg.learner.lambda_discard > 0:
        why.append("discard sampling with an LM draft needs its rejected tails (EAGLE heads only)")
    if cfg.speculative and cfg.depth.policy == "confidence":
        why.append(
            "--depth confidence needs the draft's probability at every step (fast-path chains keep only argmaxes)"
        )
    if why and cfg.engine == "fast":
        raise AuroraError("--engine fast: " + "; ".join(why) + " (use --engine exact)")
    return "exact" if why else "fast"


def resolved_config(cfg: ReplayConfig, temperatures) -> ReplayConfig:
    from aurora_sim.learner.online import resolve_precision

    return cfg.with_(
        engine=resolve_engine(cfg, temperatures), learner_precision=resolve_precision(cfg.learner.precision)
    )
