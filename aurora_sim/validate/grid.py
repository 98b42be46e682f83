"""The shapes a validation meets, as a calibration grid (`aurora validate` without --profile).

batch      1, 2, 4, ... up to the engine's batch, and the batch itself (a closed loop drains
           through every smaller batch at its end)
γ          0 for the no-spec arm, the run's γ for the others
context    mean cached tokens per row: from the shortest prompt to the longest prompt + its
           output + γ, with the median prompt + half the output between
prefill    the longest prompt a round admits: the shortest, median and longest prompt
"""

from __future__ import annotations

from aurora_sim.replay.config import ReplayConfig


def workload(cfg: ReplayConfig):
    """The requests the replay will serve (tokenized as the replay does)."""
    from aurora_sim.generate import stop_ids
    from aurora_sim.models.registry import load_tokenizer, resolve_model
    from aurora_sim.replay.workload import build_workload

    model_dir = resolve_model(cfg.model)
    tokenizer = load_tokenizer(model_dir)
    return build_workload(cfg.trace, cfg.seed, tokenizer, stop_ids(tokenizer, model_dir), cfg.limit)


def grid_for(cfg: ReplayConfig, arms: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    items = workload(cfg).items
    prompts = sorted(len(it.request.prompt_ids) for it in items)
    new = max(it.request.max_new_tokens for it in items)
    median = prompts[len(prompts) // 2]
    batches, b = {cfg.batch}, 1
    while b < cfg.batch:
        batches.add(b)
        b *= 2
    gammas = ({0} if "no-spec" in arms else set()) | ({cfg.gamma} if any(a != "no-spec" for a in arms) else set())
    return {
        "batches": tuple(sorted(batches)),
        "gammas": tuple(sorted(gammas)),
        "contexts": tuple(sorted({prompts[0] + 1, median + new // 2, prompts[-1] + new + cfg.gamma})),
        "prefills": tuple(sorted({prompts[0], median, prompts[-1]})),
    }
