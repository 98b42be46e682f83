"""The live run: wait for the server, sync it to the learner's starting draft, drive the trace,
log every served request and round, and let controller.live learn and swap; the same event-log
tables as a replay (times: wall-clock ns since start, said in runs.config_json), so `aurora
report` and `aurora sql` read a live run like a replayed one."""

from __future__ import annotations

import json
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch

from aurora_sim.errors import AuroraError
from aurora_sim.live.config import TIME_BASE, LiveConfig
from aurora_sim.live.traffic import Served, Traffic
from aurora_sim.replay.eventlog import EventLog


@dataclass
class LiveProgress:
    finished: int
    total: int
    failed: int
    requests_per_s: float
    rolling_al: float
    version: int
    swaps: int
    rejected: int
    train_steps: int
    elapsed_s: float


class LiveRunner:
    def __init__(
        self,
        cfg: LiveConfig,
        out: Path | str,
        api_key: str | None = None,
        overwrite: bool = False,
        on_progress=None,
        fault=None,
    ):
        self.cfg, self.out, self.api_key = cfg, Path(out), api_key
        self.overwrite, self.on_progress, self.fault = overwrite, on_progress, fault

    def run(self) -> dict:
        from aurora_sim.generate import stop_ids
        from aurora_sim.models.registry import load_target, load_tokenizer, resolve_model
        from aurora_sim.replay.initial import initial_draft
        from aurora_sim.replay.workload import build_workload
        from controller.live import LiveLoop
        from controller.live_client import ServerClient
        from controller.registry import VersionRegistry

        cfg = self.cfg
        if self.out.exists() and any(self.out.iterdir()):
            if not self.overwrite:
                raise AuroraError(f"{self.out}: run directory exists and is not empty (use --force to replace it)")
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic_ns()
        self.clock = clock = lambda: time.monotonic_ns() - t0
        client = ServerClient(cfg.server, self.api_key, cfg.timeout_s, cfg.retries, cfg.backoff_s, cfg.backoff_max_s)
        client.wait_ready(cfg.ready_timeout_s)
        info = client.model_info()
        aurora = isinstance(info.get("aurora"), dict)
        gamma = int(info["aurora"]["gamma"]) if aurora else cfg.gamma
        torch.set_num_threads(1)
        model_dir = resolve_model(cfg.model)
        target = load_target(cfg.model)
        target.requires_grad_(False)
        tokenizer = load_tokenizer(model_dir)
        self.workload = build_workload(cfg.trace, cfg.seed, tokenizer, stop_ids(tokenizer, model_dir), cfg.limit)
        self.run_id = cfg.run_id()
        self.log = EventLog(self.out, self.run_id, cfg.to_json())
        self.wall = {"server": cfg.server, "server_kind": "aurora" if aurora else "sglang", "time_base": TIME_BASE}
        self._write_runs("running", None)
        cfg.weights_path.mkdir(parents=True, exist_ok=True)
        registry = VersionRegistry(cfg.weights_path, keep=cfg.keep_versions)
        draft0 = initial_draft(cfg, target)
        self.loop = LiveLoop(
            client,
            target,
            draft0,
            cfg.learner,
            cfg.controller,
            registry,
            self.log,
            clock,
            gamma,
            seed=cfg.seed,
            learning=cfg.learning,
            fault=self.fault,
            pricing=_pricing(cfg),
        )
        self.loop.start(draft0)
        self.finished = self.failed = 0
        self.recent: deque = deque(maxlen=400)
        traffic = Traffic(client, self.workload.items, cfg.concurrency, aurora, clock)
        traffic.start()
        try:
            while not (traffic.done() and traffic.results.empty()):
                try:
                    served = traffic.results.get(timeout=0.05)
                except Exception:
                    served = None
                if served is not None:
                    self._served(served)
                self.loop.pump()
        finally:
            traffic.stop.set()
            self.loop.drain()
            client.close()
        end = clock()
        self.log.flush()
        self._write_runs("complete", end)
        summary = {
            "run_id": self.run_id,
            "out": str(self.out),
            "requests": self.finished,
            "failed": self.failed,
            "swaps": self.loop.swaps,
            "rejected_swaps": self.loop.rejected,
            "trainer_restarts": self.loop.trainer_restarts,
            "serving_version": self.loop.serving_version,
            "train_steps": self.loop.steps_done,
            "wall_s": round(end / 1e9, 3),
            "client_retries": client.retried,
            "rolling_al": self._al(),
            **self.wall,
        }
        (self.out / "wall.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
        return summary

    # ---- one finished request -----------------------------------------------------------------------
    def _served(self, s: Served) -> None:
        it = s.item
        req = it.request
        self.finished += 1
        if s.response is None:
            self.failed += 1
            self.log.add(
                "requests",
                request_index=it.index,
                request_id=req.request_id,
                domain=it.domain,
                segment=it.segment,
                status="refused",
                finish_reason=f"client: {s.error}",
                arrival_ns=s.sent_ns,
                admit_ns=None,
                first_token_ns=None,
                finish_ns=s.done_ns,
                prompt_tokens=len(req.prompt_ids),
                output_tokens=0,
                rounds=0,
                proposed=0,
                accepted=0,
                output_ids=[],
            )
        else:
            self._completed(s)
        if self.finished % self.cfg.flush_every == 0:
            self.log.flush()
        if self.on_progress is not None:
            el = self.clock() / 1e9
            self.on_progress(
                LiveProgress(
                    self.finished,
                    len(self.workload.items),
                    self.failed,
                    self.finished / el if el else 0.0,
                    self._al(),
                    self.loop.serving_version,
                    self.loop.swaps,
                    self.loop.rejected,
                    self.loop.steps_done,
                    el,
                )
            )

    def _completed(self, s: Served) -> None:
        it, resp = s.item, s.response
        meta = resp.get("meta_info") or {}
        out = [int(t) for t in resp.get("output_ids") or []]
        details = meta.get("spec_rounds")
        rounds = (
            [(r["position"], r["proposals"], r["accepted"], r["draft_version"]) for r in details] if details else None
        )
        verify_ct = int(meta.get("spec_verify_ct") or 0)
        accepted = int(meta.get("spec_accept_token_num") or 0)
        version = meta.get("draft_version")
        fr = meta.get("finish_reason")
        reason = fr.get("type") if isinstance(fr, dict) else (fr or "")
        self.log.add(
            "requests",
            request_index=it.index,
            request_id=it.request.request_id,
            domain=it.domain,
            segment=it.segment,
            status="completed",
            finish_reason=reason,
            arrival_ns=s.sent_ns,
            admit_ns=None,
            first_token_ns=None,
            finish_ns=s.done_ns,
            prompt_tokens=len(it.request.prompt_ids),
            output_tokens=len(out),
            rounds=verify_ct,
            proposed=int(meta.get("spec_draft_token_num") or 0),
            accepted=accepted,
            output_ids=out,
        )
        # Rounds rows: per round where the server says (ours); one row per request otherwise
        # (SGLang gives totals only), stamped at the request's finish (no per-round times over HTTP).
        span = (
            [(r[0], len(r[1]), r[2], r[3]) for r in rounds]
            if rounds
            else ([(len(it.request.prompt_ids), None, accepted, version)] if verify_ct else [])
        )
        for _i, (pos, proposed, k, v) in enumerate(span):
            n = 1 if rounds else verify_ct
            self.log.add(
                "rounds",
                round=None,
                request_index=it.index,
                t_start_ns=s.sent_ns,
                t_end_ns=s.done_ns,
                draft_version=v,
                batch=None,
                position=pos,
                proposed=proposed,
                accepted=k,
                bonus=n,
                emitted=k + n,
            )
            self.recent.append((k + n, n))
        if verify_ct:
            self.loop.on_served(
                it.request.prompt_ids,
                out,
                rounds,
                verify_ct,
                accepted,
                version,
                temperature=it.request.temperature,
                top_p=it.request.top_p,
            )

    def _al(self) -> float:
        r = sum(n for _, n in self.recent)
        return sum(g for g, _ in self.recent) / r if r else 1.0

    def _write_runs(self, status: str, end_ns) -> None:
        cfg = self.cfg
        self.log.write_runs(
            {
                "status": status,
                "name": f"live/{self.workload.name}/{cfg.controller.policy if cfg.learning else 'frozen'}",
                "arm": "live-online" if cfg.learning else "live-static",
                "trace": cfg.trace,
                "trace_sha256": self.workload.sha256,
                "model": cfg.model,
                "draft": cfg.draft,
                "init": cfg.init,
                "policy": cfg.controller.policy if cfg.learning else "none",
                "lambda_discard": cfg.learner.lambda_discard,
                "batch": cfg.concurrency,
                "gamma": cfg.gamma,
                "hardware": "live",
                "deployment": cfg.server,
                "seed": cfg.seed,
                "requests": len(self.workload.items),
                "end_ns": end_ns,
                "config_json": cfg.to_json(),
                "cost_model_json": json.dumps({"kind": "live", "time_base": TIME_BASE, **self.wall}, sort_keys=True),
                "segments_json": json.dumps([list(x) for x in self.workload.segments]),
            }
        )


def _pricing(cfg):
    """What `payoff` prices swaps with: this machine's round times at the live concurrency."""
    if cfg.profile is None:
        return None
    from controller.payoff import LivePricing

    return LivePricing(cfg.profile, cfg.concurrency, cfg.controller.floor_window)
