"""Measure a profile table (aurora_sim.costs.profiled) on this machine with the real engine.

Steady rounds: for every (context, γ, batch) on the grid, a TorchSpecEngine with the real target
and draft, `batch` synthetic prompts (random token ids from a fixed seed) sized so that the rows
hold `context` cached tokens on average while measured, that never finish while we measure, a
few warm-up rounds, then the median wall time of `rounds` engine.step() calls with the batch
full, the engines of one context taking turns round by round.
Admission rounds: for every (γ, batch, k in {1, batch}, prompt length on the prefill grid), k
new prompts of that length join an engine whose other batch - k rows are decoding; the median
wall time of that step() minus the steady round of the same shape (looked up in the table just
measured) is what an admission adds: the prefill, and with a draft its catch-up over the prompt
(the new prompts are cancelled after the step, so every measured round admits again).
Also: prefill time per prompt token (one target forward over a batch of prompts), the
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
from aurora_sim.costs.profiled import ProfiledCost
from aurora_sim.costs.shapes import RoundShape
from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.errors import AuroraError
from aurora_sim.paths import cache_dir

PROMPT_TOKENS = 64
CONTEXTS = (32, 128, 512)  # default context grid (mean cached tokens per row)
PREFILLS = (16, 64, 256)  # default prefill grid (longest prompt admitted in a round)
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
    contexts: tuple[int, ...] = CONTEXTS,
    prefills: tuple[int, ...] = PREFILLS,
) -> Path:
    from aurora_sim.models.registry import load_target, make_draft

    batches, gammas = tuple(sorted(set(batches))), tuple(sorted(set(gammas)))
    contexts, prefills = tuple(sorted(set(contexts))), tuple(sorted(set(prefills)))
    if not batches or min(batches) < 1:
        raise AuroraError(f"batches must be >= 1, got {batches}")
    if not gammas or min(gammas) < 0:
        raise AuroraError(f"gammas must be >= 0, got {gammas}")
    if not contexts or min(contexts) < 1:
        raise AuroraError(f"contexts must be >= 1, got {contexts}")
    if not prefills or min(prefills) < 1:
        raise AuroraError(f"prefills must be >= 1, got {prefills}")
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
        admissions = [(g, b, k, n) for g in gammas for b in batches for k in sorted({1, b}) for n in prefills]
        columns = (
            TextColumn("calibrate {task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
        )
        passes = len(contexts) + len(prefills)
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task(f"{model}/{draft} on {device}", total=passes * (rounds + 1) + 3)
            steady, context, accepted = {}, [], []
            for c in contexts:
                bar.update(task, description=f"warm-up, context {c}")
                engines = {
                    (g, b): _engine(
                        target, head if g else None, g, b, rounds + warmup, gen, _prompt_len(c, warmup, rounds)
                    )
                    for g, b in grid
                }
                times = _measure(engines, rounds, warmup, sync, lambda: bar.update(task, advance=1))
                for (g, b), engine in engines.items():
                    if len(engine.live) != b:
                        raise AuroraError(f"calibration lost rows at γ={g} batch={b} (a request finished early)")
                for key, ts in times.items():
                    steady[c, *key] = int(statistics.median(t for t, _ in ts))
                    context.extend(ctx for _, ctx in ts)
                    if key[0]:
                        accepted.append(statistics.fmean(engines[key].accept_len))
                del engines
                bar.update(task, advance=1, description=f"context {c}")
            layers = {c: {g: {b: steady[c, g, b] for b in batches} for g in gammas} for c in contexts}
            base = contexts[len(contexts) // 2]  # the layer older readers (round_ns) get
            probe = ProfiledCost(
                {"gamma_grid": list(gammas), "batch_grid": list(batches)}
                | _steady_table(gammas, batches, contexts, layers, base)
            )
            admit = {}
            for n in prefills:
                bar.update(task, description=f"warm-up, admitting {n}-token prompts")
                engines = {}
                for g, b, k, length in admissions:
                    if length == n:
                        engines[g, b, k] = _Admitting(
                            target,
                            head if g else None,
                            g,
                            b,
                            k,
                            n,
                            rounds + warmup,
                            gen,
                            _prompt_len(contexts[0], warmup, rounds),
                        )
                times = _measure(engines, rounds, warmup, sync, lambda: bar.update(task, advance=1))
                for (g, b, k), ts in times.items():
                    extra = [t - probe.steady_ns(shape) for t, shape in ts]
                    admit.setdefault(str(g), {}).setdefault(str(b), {}).setdefault(str(k), {})[str(n)] = max(
                        0, int(statistics.median(extra))
                    )
                del engines
                bar.update(task, advance=1, description=f"admissions of {n}-token prompts")
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

    raw = layers[base]
    table = {
        "kind": "profiled",
        "device": device,
        "model": model,
        "draft": draft,
        "gamma_grid": list(gammas),
        "batch_grid": list(batches),
        **_steady_table(gammas, batches, contexts, layers, base),
        "round_ns_raw": {str(g): {str(b): raw[g][b] for b in batches} for g in gammas},
        "round_ns_by_context_raw": {
            str(c): {str(g): {str(b): layers[c][g][b] for b in batches} for g in gammas} for c in contexts
        },
        "prefill_grid": list(prefills),
        "admit_ns": admit,
        "prefill_ns_per_token": prefill,
        "train_step_ns_per_token": train_per_token,
        "train_step_fixed_ns": train_fixed,
        "train_unroll": train_unroll,
        "swap_publish_ns": publish,
        "swap_pause_ns": 0,
        "context_per_row": base,
        "context_per_row_measured": round(statistics.fmean(context), 1),
        "accept_len": round(statistics.fmean(accepted), 3) if accepted else None,
        "rounds": rounds,
        "warmup": warmup,
        "threads": threads,
        "prompt_tokens": PROMPT_TOKENS,
        "seed": seed,
        "measured_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "method": "median wall time of engine.step() per (context, γ, batch) after warm-up, batch kept full, "
        "the cells of one context taking turns round by round; rows made non-decreasing in batch (raw medians "
        "in round_ns_raw, round_ns_by_context_raw; round_ns is the layer at context_per_row); admissions: "
        "median of (step() that admits k prompts of the grid length) - (the steady round of its shape)",
    }
    with atomic_file(out, "w") as fh:
        fh.write(json.dumps(table, indent=1))
    return out


def reference_rounds(
    target, draft, gamma: int, batch: int, context: int, rounds: int = 12, warmup: int = 2, seed: int = 0
) -> int:
    """Median wall ns of one steady calibration cell, measured now the way calibrate measures it:
    run before and after a wall-clock run, against the profile's value for the same cell, it
    says how much faster or slower the machine is than when it was calibrated."""
    gen = torch.Generator().manual_seed(seed)
    engine = _engine(
        target, draft if gamma else None, gamma, batch, rounds + warmup, gen, _prompt_len(context, warmup, rounds)
    )
    times = _measure({0: engine}, rounds, warmup, lambda: None, lambda: None)[0]
    return int(statistics.median(t for t, _ in times))


def _monotone(row: dict[str, int]) -> dict[str, int]:
    top, outrow = 0, {}
    for key, value in row.items():  # keys are in batch order
        top = max(top, value)
        outrow[key] = top
    return outrow


def _steady_table(gammas, batches, contexts, layers, base) -> dict:
    """The steady-round fields of a table: round_ns (the `base` context) and one layer per context."""

    def layer(c):
        return {str(g): _monotone({str(b): layers[c][g][b] for b in batches}) for g in gammas}

    return {
        "round_ns": layer(base),
        "context_grid": list(contexts),
        "round_ns_by_context": {str(c): layer(c) for c in contexts},
    }


def _prompt_len(context: int, warmup: int, rounds: int) -> int:
    """Prompt length whose rows hold ≈ `context` cached tokens on average while measured (a row
    grows by at least one token a round)."""
    return max(1, context - 1 - warmup - rounds // 2)


def _measure(engines: dict, rounds: int, warmup: int, sync, tick) -> dict:
    """Round-robin over the engines, `warmup` unmeasured rounds then `rounds` measured ones each:
    key -> [(wall ns, what the engine reports about the round)]. Drift in the machine's speed (a
    shared VM) spreads over every cell instead of biasing whichever ran last."""
    for _ in range(warmup):
        for engine in engines.values():
            _step(engine)
    times = {k: [] for k in engines}
    for _ in range(rounds):
        for key, engine in engines.items():
            ns, info = _timed(lambda engine=engine: _step(engine), sync)
            times[key].append((ns, info))
        tick()
    return times


def _step(engine):
    """One measured round: (steady engine) the mean context per row; (admitting) the round's shape."""
    if isinstance(engine, _Admitting):
        return engine.step()
    outcomes = engine.step()
    engine.accept_len.extend(o.accepted + 1 for o in outcomes)
    return statistics.fmean(o.position for o in outcomes)


class _Admitting:
    """An engine whose `batch - k` rows decode while k new prompts of `length` tokens join each
    measured round (cancelled after it, so the next round admits again)."""

    def __init__(self, target, draft, gamma, batch, k, length, steps, gen, context):
        self.engine = _engine(target, draft, gamma, batch - k, steps, gen, context, max_batch=batch, extra=length)
        self.k, self.prompts = k, _prompts(k, target.spec.vocab_size, gen, length)
        self.max_new = 2 * (gamma + 1)  # outlives its one round (then cancelled)
        self.rounds = 0

    def step(self):
        ids = [f"adm{self.rounds}-{i}" for i in range(self.k)]
        for rid, prompt in zip(ids, self.prompts):
            self.engine.add(GenRequest(rid, prompt, self.max_new, seed=self.rounds))
        self.engine.step()
        for rid in ids:
            self.engine.cancel(rid)
        self.rounds += 1
        return RoundShape.of_round(self.engine.last_round)

    @property
    def live(self):
        return self.engine.live


def _timed(fn, sync) -> tuple[int, object]:
    """(wall ns, result) of fn(), with the device drained on both sides."""
    sync()
    t0 = time.perf_counter_ns()
    result = fn()
    sync()
    return time.perf_counter_ns() - t0, result


def _prompts(n: int, vocab: int, gen: torch.Generator, length: int = PROMPT_TOKENS) -> list[tuple[int, ...]]:
    ids = torch.randint(3, vocab, (n, length), generator=gen)  # 0-2: pad/bos/eos on the tiers
    return [tuple(row.tolist()) for row in ids]


def _engine(target, draft, gamma, batch, steps, gen, prompt=PROMPT_TOKENS, max_batch=None, extra=0) -> TorchSpecEngine:
    """An engine with `batch` live rows of `prompt` tokens that stay live for `steps` more rounds
    (room for `max_batch` rows, and prompts up to `extra` tokens beside them)."""
    max_new = (steps + 2) * (gamma + 1) + 1  # nobody finishes while we measure
    max_len = max(prompt + max_new, extra + (steps + 2) * (gamma + 1)) + gamma + 2
    engine = TorchSpecEngine(target, draft, gamma=gamma, max_batch=max_batch or batch, max_len=max_len)
    engine.accept_len = []
    for i, p in enumerate(_prompts(batch, target.spec.vocab_size, gen, prompt)):
        engine.add(GenRequest(f"cal{i}", p, max_new, seed=i))
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
