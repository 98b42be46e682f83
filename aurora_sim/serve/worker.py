"""The engine thread: the only code that touches TorchSpecEngine while the server runs.

HTTP handlers (asyncio) hand requests over through a thread-safe inbox; the thread admits
them at a round boundary, steps the engine while it has work (continuous batching across
every client), and delivers each request's rounds and result back to its handler's event
loop with `call_soon_threadsafe`. Swaps and cancellations go through the same inbox, so they
also land between rounds: the engine never sees two threads.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from aurora_sim.engine.protocol import GenRequest, RequestResult, RoundOutcome
from aurora_sim.engine.torch_engine import TorchSpecEngine


@dataclass
class Job:
    req: GenRequest
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue  # ("tokens", (RoundOutcome|None, new ids)) | ("done", RequestResult) | ("error", str)
    meta: dict = field(default_factory=dict)  # what the served feed records besides tokens (rid, domain)
    arrival_ns: int = 0
    rounds: list = field(default_factory=list)  # (position, proposals, accepted, draft_version)
    sent: int = 0  # output tokens already delivered to the handler

    def send(self, kind: str, value) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))


class Stats:
    """Counters the /metrics endpoint exposes; written by the engine thread, read under a lock."""

    def __init__(self, draft_version: int):
        self.lock = threading.Lock()
        self.c = dict(
            requests_completed=0,
            requests_aborted=0,
            requests_rejected=0,
            prompt_tokens=0,
            generation_tokens=0,
            verify_rounds=0,
            spec_verify_rounds=0,
            round_tokens=0,
            accepted_tokens=0,
            proposed_tokens=0,
            engine_steps=0,
            engine_step_rows=0,
            swaps=0,
            swap_failures=0,
        )
        self.g = dict(draft_version=draft_version, running=0, waiting=0, max_batch_observed=0)

    def add(self, **kw) -> None:
        with self.lock:
            for k, v in kw.items():
                self.c[k] += v

    def set(self, **kw) -> None:
        with self.lock:
            self.g.update(kw)

    def snapshot(self) -> tuple[dict, dict]:
        with self.lock:
            return dict(self.c), dict(self.g)


class ServedFeed:
    """Completed requests with their token ids and per-round proposals (GET /aurora/served):
    what a learner or `aurora capture` reads. Bounded; sequence numbers never repeat."""

    def __init__(self, size: int):
        self.items: deque[dict] = deque(maxlen=size)
        self.next_seq = 0
        self.lock = threading.Lock()

    def add(self, record: dict) -> None:
        with self.lock:
            self.items.append({"seq": self.next_seq, **record})
            self.next_seq += 1

    def after(self, seq: int, limit: int) -> tuple[list[dict], int]:
        with self.lock:
            out = [r for r in self.items if r["seq"] > seq][:limit]
            return out, self.next_seq - 1


class EngineWorker:
    def __init__(self, engine: TorchSpecEngine, stats: Stats, feed: ServedFeed, threads: int = 1):
        self.engine = engine
        self.stats = stats
        self.feed = feed
        self.threads = threads
        self.depth = None  # a depth policy (controller/depth.py) installed by build_state, or None
        self.inbox: queue.Queue = queue.Queue()
        self.jobs: dict[str, Job] = {}
        self.t0 = time.monotonic_ns()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aurora-engine", daemon=True)
        self.error: str | None = None

    # ---- called from handlers (any thread) ---------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.inbox.put(("wake", None))
        self._thread.join(timeout=10)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def now_ns(self) -> int:
        return time.monotonic_ns() - self.t0

    def submit(self, job: Job) -> None:
        job.arrival_ns = self.now_ns()
        self.inbox.put(("add", job))

    def cancel(self, request_id: str) -> None:
        self.inbox.put(("cancel", request_id))

    def swap(self, draft, version: int) -> Future:
        """Install `draft` at the next round boundary; the future says whether the engine took it."""
        fut: Future = Future()
        self.inbox.put(("swap", (draft, version, fut)))
        return fut

    # ---- the engine thread -------------------------------------------------------------------------
    def _run(self) -> None:
        torch.set_num_threads(self.threads)
        try:
            while not self._stop.is_set():
                self._drain(block=not self.engine.has_work())
                if self.engine.has_work():
                    self._step()
        except BaseException as exc:  # a dead engine thread must be visible (/health), not silent
            self.error = f"{exc.__class__.__name__}: {exc}"
            for job in list(self.jobs.values()):
                job.send("error", f"engine failed: {self.error}")
            raise

    def _drain(self, block: bool) -> None:
        try:
            item = self.inbox.get(timeout=0.5) if block else self.inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(*item)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, kind: str, value) -> None:
        if kind == "add":
            job = value
            try:
                self.engine.add(job.req)
            except Exception as exc:  # validated upstream; anything left is the client's problem
                self.stats.add(requests_rejected=1)
                job.send("error", str(exc))
                return
            self.jobs[job.req.request_id] = job
        elif kind == "cancel":
            if self.jobs.pop(value, None) is not None and self.engine.cancel(value):
                self.stats.add(requests_aborted=1)
        elif kind == "swap":
            draft, version, fut = value
            try:
                self.engine.swap_draft(draft, version)
                if not self.engine.has_work():
                    self.engine.step()  # an idle engine installs it now (a step with no rows does nothing else)
            except Exception as exc:
                self.stats.add(swap_failures=1)
                fut.set_result((False, str(exc)))
                return
            self.stats.add(swaps=1)
            self.stats.set(draft_version=version)
            if self.depth is not None:
                self.depth.on_swap()
            fut.set_result((True, f"draft version {version} serves from the next round"))

    def _step(self) -> None:
        outcomes = self.engine.step()
        rounds = self.engine.last_round
        if self.depth is not None and outcomes:  # the depth policy sees what the verify found
            from controller.depth import DepthRound

            depth = max(len(o.proposals) for o in outcomes)
            self.depth.observe(
                DepthRound(
                    len(outcomes),
                    depth,
                    tuple(o.accepted for o in outcomes),
                    requests=tuple(o.request_id for o in outcomes),
                    proposed=tuple(len(o.proposals) for o in outcomes),
                    emitted=tuple(len(o.emitted) for o in outcomes),
                )
            )
        c = dict(engine_steps=1, engine_step_rows=rounds.batch, prompt_tokens=rounds.prefill_tokens)
        by_rid = {}
        for o in outcomes:
            by_rid[o.request_id] = o
            c["verify_rounds"] = c.get("verify_rounds", 0) + 1
            job = self.jobs.get(o.request_id)
            if o.proposals and job is not None:
                job.rounds.append((o.position, list(o.proposals), o.accepted, o.draft_version))
                c["spec_verify_rounds"] = c.get("spec_verify_rounds", 0) + 1
                c["round_tokens"] = c.get("round_tokens", 0) + o.accepted + 1
                c["accepted_tokens"] = c.get("accepted_tokens", 0) + o.accepted
                c["proposed_tokens"] = c.get("proposed_tokens", 0) + len(o.proposals)
        # New tokens per request, prefill's first token included (it is in no RoundOutcome).
        finished = self.engine.pop_finished()
        for res in [row.result for row in self.engine.live.values()] + finished:
            job = self.jobs.get(res.request_id)
            if job is not None and len(res.output_ids) > job.sent:
                job.send("tokens", (by_rid.get(res.request_id), list(res.output_ids[job.sent :])))
                job.sent = len(res.output_ids)
        for res in finished:
            job = self.jobs.pop(res.request_id, None)
            if job is None:
                continue
            c["generation_tokens"] = c.get("generation_tokens", 0) + len(res.output_ids)
            c["requests_completed"] = c.get("requests_completed", 0) + 1
            self._record(job, res)
            job.send("done", res)
        self.stats.add(**c)
        _, g = self.stats.snapshot()
        self.stats.set(
            running=len(self.engine.live),
            waiting=len(self.engine.waiting),
            max_batch_observed=max(g["max_batch_observed"], rounds.batch),
        )

    def _record(self, job: Job, res: RequestResult) -> None:
        r = job.req
        self.feed.add(
            {
                "request_id": r.request_id,
                "prompt_ids": list(r.prompt_ids),
                "output_ids": list(res.output_ids),
                "max_new_tokens": r.max_new_tokens,
                "temperature": r.temperature,
                "top_p": r.top_p,
                "seed": r.seed,
                "ignore_eos": not r.stop_ids,
                "finish_reason": res.finish_reason,
                "arrival_ns": job.arrival_ns,
                "finish_ns": self.now_ns(),
                "rounds": [list(x) for x in job.rounds],
                **job.meta,
            }
        )


__all__ = ["EngineWorker", "Job", "RoundOutcome", "ServedFeed", "Stats"]
