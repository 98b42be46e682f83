"""Trace -> the requests a replay serves: tokenized with the proxy model's tokenizer, in trace
order, with their arrival times (or a closed-loop concurrency).

Only the engine side of the replay reads this: the controller never sees it (no oracle).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aurora_sim.engine.protocol import GenRequest
from aurora_sim.errors import AuroraError
from aurora_sim.generate import encode


@dataclass(frozen=True)
class WorkItem:
    index: int  # position in the trace
    domain: str
    segment: int
    arrival_ns: int
    request: GenRequest


@dataclass(frozen=True)
class Workload:
    name: str
    sha256: str  # of the trace's canonical bytes: a changed trace is a different run
    items: tuple[WorkItem, ...]
    closed_concurrency: int | None  # closed loop: keep this many in flight; None = open loop
    segments: tuple[tuple[int, str], ...]  # (first request index, domain) of each segment


def load_trace(spec: str, seed: int, limit: int | None = None):
    """A scenario name (generated in memory, deterministic) or a trace file, cut to its first
    `limit` requests. Returns (frame, config, sha256 of the requests actually replayed)."""
    import traces
    from traces.io import canonical, to_parquet_bytes

    if spec in traces.SCENARIOS:
        frame, config = traces.generate_trace(traces.scenario(spec, seed=seed))
        frame = canonical(frame)
    else:
        path = Path(spec)
        if not path.is_file():
            raise AuroraError(f"{spec}: neither a scenario ({', '.join(traces.SCENARIOS)}) nor a trace file")
        trace = traces.read_trace(path)
        frame, config = trace.frame, trace.config
    if limit is not None:
        if limit < 1:
            raise AuroraError(f"--limit must be >= 1, got {limit}")
        frame = frame.head(limit)
    return frame, config, hashlib.sha256(to_parquet_bytes(frame, config)).hexdigest()


def build_workload(spec: str, seed: int, tokenizer, stop: tuple[int, ...], limit: int | None = None) -> Workload:
    frame, config, digest = load_trace(spec, seed, limit)
    items = []
    for i, r in enumerate(frame.iter_rows(named=True)):
        if r["messages"] is not None:
            ids = encode(tokenizer, [dict(m) for m in r["messages"]])
        elif r["prompt"] is not None:
            ids = encode(tokenizer, r["prompt"])
        else:
            ids = tuple(int(t) for t in r["prompt_token_ids"])
        req = GenRequest(
            request_id=r["request_id"],
            prompt_ids=tuple(ids),
            max_new_tokens=int(r["max_new_tokens"]),
            temperature=float(r["temperature"]),
            top_p=float(r["top_p"]),
            seed=int(r["seed"]),
            stop_ids=() if r["ignore_eos"] else stop,
        )
        items.append(WorkItem(i, r["domain"], int(r["segment"]), int(r["arrival_ns"]), req))
    arrivals = config.get("arrivals") or {}
    closed = int(arrivals.get("concurrency", 8)) if arrivals.get("kind") == "closed" else None
    segments, last = [], None
    for it in items:
        if it.segment != last:
            segments.append((it.index, it.domain))
            last = it.segment
    name = spec if not Path(spec).is_file() else Path(spec).name
    return Workload(name, digest, tuple(items), closed, tuple(segments))
