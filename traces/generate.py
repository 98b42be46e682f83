"""Generate a trace from a config: domains by schedule, prompts from the held-out corpora,
arrival times, lengths and seeds, each from its own (seed, name) stream.

    from traces.generate import generate_trace
    frame, stored = generate_trace(config)      # stored: the full config written to metadata
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from aurora_sim import corpora

from .config import TraceConfig
from .io import write_trace
from .prompts import build_pools, draw, pool_sizes
from .sampling import request_seeds
from .schedules import assign_domains
from .schema import COLUMNS, DOMAINS
from .seeding import stream

GENERATOR = "aurora-sim traces v1"


def _provenance(pools: dict, documents: dict | None) -> dict:
    prov = {"generator": GENERATOR, "prompt_pool_sizes": pool_sizes(pools)}
    if documents is None:  # real corpora: pin them
        prov.update(
            corpus_version=corpora.CORPUS_VERSION, corpus_recipe_hash=corpora.recipe_hash(), corpus_split="heldout"
        )
    else:
        prov["corpus"] = "documents passed in by the caller"
    return prov


def generate_trace(config: TraceConfig, documents: dict[str, list[dict]] | None = None) -> tuple[pl.DataFrame, dict]:
    """(frame, full config for the metadata). `documents` ({domain: [doc]}) replaces the
    held-out corpora, for tests; by default the corpora are loaded (built once if needed)."""
    config = config.resolved()
    seed = config.seed
    segments = config.schedule.expand()
    domain_idx, segment = assign_domains(segments, stream(seed, "schedule"))
    n = len(domain_idx)
    pools = build_pools(config.prompts, documents)
    picks = draw(pools, domain_idx, config.prompts, seed)

    temperature = np.full(n, config.sampling.temperature)
    starts = np.cumsum([0] + [s.requests for s in segments])
    for k, seg in enumerate(segments):
        if seg.temperature is not None:
            temperature[starts[k] : starts[k + 1]] = seg.temperature

    width = max(6, len(str(n - 1)))
    names = np.array(DOMAINS)
    frame = pl.DataFrame(
        {
            "request_id": [f"{config.name}-{i:0{width}d}" for i in range(n)],
            "arrival_ns": config.arrivals.times(n, stream(seed, "arrivals")),
            "domain": names[domain_idx],
            "segment": segment,
            "prompt": [c.prompt for c in picks],
            "messages": [
                [{"role": r, "content": t} for r, t in c.messages] if c.messages is not None else None for c in picks
            ],
            "prompt_token_ids": pl.Series([None] * n, dtype=COLUMNS["prompt_token_ids"]),
            "max_new_tokens": config.sampling.max_new_tokens_for(domain_idx, seed),
            "temperature": temperature,
            "top_p": np.full(n, config.sampling.top_p),
            "seed": request_seeds(n, seed),
            "ignore_eos": np.full(n, config.sampling.ignore_eos),
            "metadata": [
                json.dumps({"kind": c.kind, "source": c.source, "doc_id": c.doc_id}, sort_keys=True) for c in picks
            ],
        },
        schema_overrides={"messages": COLUMNS["messages"], "prompt": COLUMNS["prompt"]},
    )
    stored = config.to_dict() | {"provenance": _provenance(pools, documents)}
    return frame, stored


def generate_to_file(config: TraceConfig, out: Path | str, documents: dict[str, list[dict]] | None = None) -> Path:
    frame, stored = generate_trace(config, documents)
    return write_trace(frame, out, stored)
