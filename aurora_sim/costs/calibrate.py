"""Measure a profile table (aurora_sim.costs.profiled) on this machine with the real engine.

For every (γ, batch) on the grid: a TorchSpecEngine with the real target and draft, `batch`
synthetic prompts (random token ids from a fixed seed) that never finish while we measure, a
few warm-up rounds, then the median wall time of `rounds` engine.step() calls with the batch
full, the grid's engines taking turns round by round. Also: prefill time per prompt token (one target forward over a batch of prompts), the
draft's training step (forward + backward of the TTT loss + AdamW, at two batch sizes to split
fixed and per-token cost) and a save_draft + load_draft round trip (the swap's publish time).
The swap pause is 0: the torch engine captures no CUDA graphs, and the catch-up after a swap is
already charged by the replay as draft tokens.

Timing noise is real (one shared VM): each row is made non-decreasing in batch (running max)
before it is written; the raw medians are kept under round_ns_raw.
"""

from __future__ import annotations

import datetime as _dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from aurora_sim.atomic import atomic_file
from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.errors import AuroraError
from aurora_sim.paths import cache_dir

PROMPT_TOKENS = 64
TRAIN_SEQ = 32
TRAIN_ROWS = (2, 8)  # two batch sizes: per-token slope and fixed intercept


def default_out(model: str, device: str) -> Path:
    from aurora_sim.models.registry import TIERS

    name = model if model in TIERS else Path(model).expanduser().name
    return cache_dir() / "calibration" / f"{name}-{device.replace(':', '')}.json"


def calibrate(
    model: str = "tiny",
    draft: str = "eagle3",
    batches: tuple[int, ...] = (1, 2, 4, 8, 16),
    gammas: tuple[int, ...] = (0, 1, 2, 4, 6),
    rounds: int = 12,
    device: str = "cpu",
    out: Path | str | None = None,
    progress: bool = True,
    warmup: int = 2,
    threads: int = 1,
    train_unroll: int = 5,
    seed: int = 0,
) -> Path:
    from aurora_sim.models.registry import load_target, make_draft

    batches, gammas = tuple(sorted(set(batches))), tuple(sorted(set(gammas)))
    if not batches or min(batches) < 1:
        raise AuroraError(f"batches must be >= 1, got {batches}")
    if not gammas or min(gammas) < 0:
        raise AuroraError(f"gammas must be >= 0, got {gammas}")
    if rounds < 1:
        raise AuroraError(f"rounds must be >= 1, got {rounds}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AuroraError(f"device {device!r}: no CUDA device on this machine")
    out = Path(out).expanduser() if out else default_out(model, device)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        target = load_target(model, device=device)
        target.requires_grad_(False)  # the EAGLE head reads its embedding: keep it frozen
        head = make_draft(draft, target, seed=seed)
        if head is None and max(gammas) > 0:
            raise AuroraError("draft 'none' can only be calibrated with gammas 0")
        sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        gen = torch.Generator().manual_seed(seed)
        grid = [(g, b) for g in gammas for b in batches]
        columns = (
            TextColumn("calibrate {task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task(f"{model}/{draft} on {device}", total=len(grid) + rounds + 3)
            engines = {}
            for g, b in grid:
                engines[g, b] = _engine(target, head if g else None, g, b, rounds + warmup, gen)
                for _ in range(warmup):
                    engines[g, b].step()
                bar.update(task, advance=1, description=f"warm-up γ={g} batch={b}")
            # Round-robin over the grid, one round each per pass: drift in the machine's speed
            # (a shared VM) spreads over every cell instead of biasing whichever ran last.
            times = {k: [] for k in grid}
            context, accepted = [], []
            for r in range(rounds):
                for (g, b), engine in engines.items():
                    ns, outcomes = _timed(engine.step, sync)
                    if len(outcomes) != b:
                        raise AuroraError(f"calibration lost rows at γ={g} batch={b} (a request finished early)")
                    times[g, b].append(ns)
                    context.append(statistics.fmean(o.position for o in outcomes))
                    if g:
                        accepted.append(statistics.fmean(o.accepted + 1 for o in outcomes))
                bar.update(task, advance=1, description=f"round {r + 1}/{rounds}")
            del engines
            raw = {g: {b: int(statistics.median(times[g, b])) for b in batches} for g in gammas}
            prefill = _measure_prefill(target, gen, sync)
            bar.update(task, advance=1, description="prefill")
            train_fixed, train_per_token = (
                (0, 0.0) if head is None else _measure_train(target, head, train_unroll, gen, sync)
            )
            bar.update(task, advance=1, description="train step")
            publish = 0 if head is None else _measure_swap(target, head, sync)
            bar.update(task, advance=1, description="swap")
    finally:
        torch.set_num_threads(old_threads)

    table = {
        "kind": "profiled",
        "device": device,
        "model": model,
        "draft": draft,
        "gamma_grid": list(gammas),
        "batch_grid": list(batches),
        "round_ns": {str(g): _monotone({str(b): raw[g][b] for b in batches}) for g in gammas},
        "round_ns_raw": {str(g): {str(b): raw[g][b] for b in batches} for g in gammas},
        "prefill_ns_per_token": prefill,
        "train_step_ns_per_token": train_per_token,
        "train_step_fixed_ns": train_fixed,
        "train_unroll": train_unroll,
        "swap_publish_ns": publish,
        "swap_pause_ns": 0,
        "context_per_row": round(statistics.fmean(context), 1),
        "accept_len": round(statistics.fmean(accepted), 3) if accepted else None,
        "rounds": rounds,
        "warmup": warmup,
        "threads": threads,
        "prompt_tokens": PROMPT_TOKENS,
        "seed": seed,
        "measured_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "method": "median wall time of engine.step() per (γ, batch) after warm-up, batch kept full, grid cells "
        "taking turns round by round; rows made non-decreasing in batch (raw medians in round_ns_raw)",
    }
    with atomic_file(out, "w") as fh:
        fh.write(json.dumps(table, indent=1))
    return out


def _monotone(row: dict[str, int]) -> dict[str, int]:
    top, outrow = 0, {}
    for key, value in row.items():  # keys are in batch order
        top = max(top, value)
        outrow[key] = top
    return outrow


def _timed(fn, sync) -> tuple[int, object]:
    """(wall ns, result) of fn(), with the device drained on both sides."""
    sync()
    t0 = time.perf_counter_ns()
    result = fn()
    sync()
    return time.perf_counter_ns() - t0, result


def _prompts(n: int, vocab: int, gen: torch.Generator) -> list[tuple[int, ...]]:
    ids = torch.randint(3, vocab, (n, PROMPT_TOKENS), generator=gen)  # 0-2: pad/bos/eos on the tiers
    return [tuple(row.tolist()) for row in ids]


def _engine(target, draft, gamma, batch, steps, gen) -> TorchSpecEngine:
    """An engine with `batch` live rows that stay live for `steps` more rounds."""
    max_new = (steps + 2) * (gamma + 1) + 1  # nobody finishes while we measure
    engine = TorchSpecEngine(target, draft, gamma=gamma, max_batch=batch, max_len=PROMPT_TOKENS + max_new + gamma + 2)
    for i, prompt in enumerate(_prompts(batch, target.spec.vocab_size, gen)):
        engine.add(GenRequest(f"cal{i}", prompt, max_new, seed=i))
    engine.step()  # admits and prefills everyone: not a steady-state round
    return engine


def _measure_prefill(target, gen, sync, rows: int = 4, repeats: int = 5) -> float:
    cache = target.new_cache(rows, PROMPT_TOKENS)
    tokens = torch.tensor(_prompts(rows, target.spec.vocab_size, gen), device=target.lm_head.weight.device)
    slots = torch.arange(rows, device=tokens.device)
    start = torch.zeros(rows, dtype=torch.long, device=tokens.device)
    with torch.inference_mode():
        target(tokens, slots, start, cache)  # warm-up
        times = [_timed(lambda: target(tokens, slots, start, cache), sync)[0] for _ in range(repeats)]
    return round(statistics.median(times) / (rows * PROMPT_TOKENS), 1)


def _measure_train(target, head, unroll, gen, sync, repeats: int = 3) -> tuple[int, float]:
    """(fixed ns, ns per token) of one optimizer step, from two batch sizes."""
    import copy

    from aurora_sim.learner.losses import eagle3_ttt_loss, lm_draft_loss

    draft = copy.deepcopy(head) if head.kind == "lm" else _fresh_head(head, target)
    draft.train()
    params = [p for p in draft.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    device = target.lm_head.weight.device
    layers = tuple(draft.target_layers)
    medians = []
    for rows in TRAIN_ROWS:
        tokens = torch.randint(3, target.spec.vocab_size, (rows, TRAIN_SEQ), generator=gen).to(device)
        with torch.no_grad():
            logits, feats = target(
                tokens,
                torch.arange(rows, device=device),
                torch.zeros(rows, dtype=torch.long, device=device),
                target.new_cache(rows, TRAIN_SEQ),
                layers,
            )

        def step(tokens=tokens, feats=feats, logits=logits):
            if draft.kind == "eagle3":
                loss, _ = eagle3_ttt_loss(draft, tokens, feats, logits, unroll=unroll)
            else:
                loss, _ = lm_draft_loss(draft, tokens, logits)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()  # warm-up (allocates optimizer state)
        medians.append(statistics.median(_timed(step, sync)[0] for _ in range(repeats)))
    n0, n1 = (r * TRAIN_SEQ for r in TRAIN_ROWS)
    per_token = max(0.0, (medians[1] - medians[0]) / (n1 - n0))
    fixed = max(0, int(medians[0] - per_token * n0))
    if per_token == 0.0:  # noise swamped the slope: charge everything per token
        per_token, fixed = medians[1] / n1, 0
    return fixed, round(per_token, 1)


def _fresh_head(head, target):
    """A trainable copy of an EAGLE head that still reads the target's (frozen) embedding."""
    from aurora_sim.models.drafts import new_eagle3

    copy_ = new_eagle3(target, seed=0, target_layers=tuple(head.target_layers), draft_vocab=head.d2t)
    copy_.load_state_dict(head.state_dict())
    return copy_


def _measure_swap(target, head, sync, repeats: int = 3) -> int:
    from aurora_sim.models.drafts import load_draft, save_draft

    times = []
    with tempfile.TemporaryDirectory(prefix="aurora-swap-") as tmp:
        for i in range(repeats):
            path = Path(tmp) / f"d{i}"
            times.append(_timed(lambda path=path: load_draft(save_draft(head, path), target), sync)[0])
    return int(statistics.median(times))
