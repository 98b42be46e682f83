"""Self-distillation data for the static EAGLE-3 head: the target's own greedy continuations of
training-split prompts, as EAGLE-3 trains its heads on the target's responses.

Prompts are cut the way trace prompts are (`traces.prompts.build_pools`: the same kinds per
domain) but from the corpora's *training* split, never the held-out one traffic comes from;
domains in turn (code, finance, chat), kinds by the traces' default weights. They are tokenized
as replay tokenizes a request (`aurora_sim.generate.encode`: chat prompts through the target's
chat template) and continued greedily by the target, with the serving stop ids, through the
shared trajectory cache (`aurora_sim.replay.trajectories`: decoded once, batched, reused by
every later build). A training row is the prompt's last `context` tokens and the continuation;
the loss is taken where a position predicts a continuation token (the prompt is context).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from aurora_sim.engine.protocol import GenRequest


@dataclass(frozen=True)
class Row:
    domain: str
    tokens: tuple[int, ...]  # prompt tail + continuation
    prompt_len: int  # tokens of prompt in `tokens`; the loss covers the rest


@functools.lru_cache(maxsize=1)
def _train_pools() -> dict:
    """The prompt pools of the training split (built once per process: a few seconds)."""
    from aurora_sim.corpora import DOMAINS, load_documents
    from traces.prompts import PromptConfig, build_pools

    return build_pools(PromptConfig(), documents={d: load_documents(d, "train") for d in DOMAINS})


def training_requests(
    tokenizer,
    stops: tuple[int, ...],
    count: int,
    seed: int,
    max_new_tokens: int,
    window: int,
    domains: tuple[str, ...] | None = None,
) -> list[tuple[str, GenRequest]]:
    """`count` greedy requests of training-split prompts, `domains` (default: all) in turn:
    (domain, request). Prompts that would not fit the context window with the continuation are
    skipped."""
    from aurora_sim.corpora import DOMAINS
    from aurora_sim.generate import encode
    from aurora_sim.replay.trajectories import OVERHANG
    from traces.prompts import PromptConfig, draw

    cfg = PromptConfig()
    pools = _train_pools()
    unknown = sorted(set(domains or ()) - set(DOMAINS))
    if unknown:
        from aurora_sim.errors import AuroraError

        raise AuroraError(f"self-distillation: unknown domain(s) {', '.join(unknown)} ({', '.join(DOMAINS)})")
    # indices into DOMAINS (what `draw` takes); all domains in turn is the recipe's default
    cycle = np.array([DOMAINS.index(d) for d in domains] if domains else range(len(DOMAINS)), dtype=np.int64)
    room = window - 1 - max_new_tokens - OVERHANG
    out: list[tuple[str, GenRequest]] = []
    drawn = 0
    while len(out) < count:
        n = 2 * (count - len(out)) + len(cycle)
        domain_idx = cycle[np.arange(drawn, drawn + n) % len(cycle)]
        # each draw of a domain/kind is one seeded shuffled cycle over its pool: a new seed per
        # round of drawing (only when prompts were skipped) keeps the first round's picks
        picks = draw(pools, domain_idx, cfg, seed + drawn)
        for d, c in zip(domain_idx.tolist(), picks):
            if len(out) == count:
                break
            prompt = [{"role": r, "content": t} for r, t in c.messages] if c.messages is not None else c.prompt
            ids = encode(tokenizer, prompt)
            if 0 < len(ids) <= room:
                out.append((DOMAINS[d], GenRequest(f"sd{len(out)}", ids, max_new_tokens, 0.0, 1.0, 0, stops)))
        drawn += n
    return out


def self_distill_rows(
    target,
    model_dir,
    tokenizer,
    count: int,
    seed: int,
    max_new_tokens: int,
    context: int,
    progress: bool = True,
    domains: tuple[str, ...] | None = None,
) -> tuple[list[Row], dict]:
    """The training rows and (trajectory cache info, decode seconds, token counts)."""
    from aurora_sim.generate import stop_ids
    from aurora_sim.replay.trajectories import trajectories_for

    reqs = training_requests(
        tokenizer, stop_ids(tokenizer, model_dir), count, seed, max_new_tokens, target.spec.max_position, domains
    )
    trajs, info = trajectories_for(target, model_dir, [r for _, r in reqs], progress=progress)
    rows = []
    for (dom, r), t in zip(reqs, trajs):
        ctx = tuple(r.prompt_ids[-context:])
        rows.append(Row(dom, ctx + tuple(t.output_ids), len(ctx)))
    stats = {
        "requests": len(rows),
        "decoded": info["decoded"],
        "decode_s": round(info["build_s"], 1),
        "continuation_tokens": sum(len(x.tokens) - x.prompt_len for x in rows),
        "per_domain": {d: sum(1 for x in rows if x.domain == d) for d in dict.fromkeys(x.domain for x in rows)},
    }
    return rows, stats


def batches(rows: list[Row], steps: int, batch: int, seed: int):
    """`steps` batches of `batch` rows, in seeded shuffled epochs: (tokens [B, S] padded with 0,
    mask [B, S] of the positions that predict a continuation token)."""
    gen = torch.Generator().manual_seed(seed)
    order: list[int] = []
    for _ in range(steps):
        while len(order) < batch:
            order += torch.randperm(len(rows), generator=gen).tolist()
        pick, order = [rows[i] for i in order[:batch]], order[batch:]
        width = max(len(r.tokens) for r in pick)
        tokens = torch.zeros(batch, width, dtype=torch.long)
        mask = torch.zeros(batch, width, dtype=torch.bool)
        for b, r in enumerate(pick):
            tokens[b, : len(r.tokens)] = torch.tensor(r.tokens, dtype=torch.long)
            mask[b, r.prompt_len - 1 : len(r.tokens) - 1] = True  # position p predicts x_{p+1}
        yield tokens, mask
