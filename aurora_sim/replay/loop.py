"""The replay: one trace through the real engine in deterministic virtual time, with the draft
learning online and the controller swapping it.

Events (time, priority, sequence) drive everything:
    ARRIVAL     a trace request reaches the server (closed loop: when a slot frees up)
    ROUND       the engine runs one step now (real models); its virtual duration comes from the
                cost model and its outcomes exist only at ROUND_END
    ROUND_END   outcomes are logged, finished requests captured for the learner, the
                controller's rollback guard sees the round, the next round is scheduled
    TRAIN_DONE  a trainer step (or a candidate's scoring) ends: its weights exist from now on
    SWAP_READY  a published draft version is loaded; it serves from the next round boundary
The trainer's computation runs on a second thread (a second core on this machine) while
serving goes on, but its result is only used at its virtual end time, so the log never depends
on which thread finished first. Wall-clock time never enters the log.

The clock is this class's four hooks (`_drain`, `_round_ns`, `_trainer_started`, and the cost
model's swap times): `aurora validate` overrides them to serve the same requests on the real clock
(aurora_sim/validate/clock.py); nothing else in the loop knows which clock it runs on.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from aurora_sim.engine.fast_engine import FastEngine
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.errors import AuroraError
from aurora_sim.learner.discard import uses_branches
from aurora_sim.replay import events as ev
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.eventlog import EventLog
from aurora_sim.replay.resolve import resolved_config
from aurora_sim.replay.rng import py_stream


@dataclass
class _ReqState:
    index: int
    arrival_ns: int
    admit_ns: int = -1
    first_token_ns: int = -1
    rounds: list = field(default_factory=list)  # (position, proposals, accepted, version)
    min_version: int = 1 << 30


@dataclass
class Progress:
    finished: int
    total: int
    rolling_al: float
    version: int
    swaps: int
    train_steps: int
    now_ns: int


class Replay:
    run_id_suffix = ""  # a run of the same config on another clock names itself apart (validate)

    def __init__(
        self, cfg: ReplayConfig, out: Path | str, *, resume: bool = False, overwrite: bool = False, on_progress=None
    ):
        self.cfg = cfg
        self.out = Path(out)
        self.resume = resume
        self.overwrite = overwrite
        self.on_progress = on_progress

    # ---- setup -------------------------------------------------------------------------------------
    def _prepare_dir(self) -> int:
        out = self.out
        if self.resume:
            prog = out / "progress.json"
            return json.loads(prog.read_text()).get("parts", 0) if prog.is_file() else 0
        if out.exists() and any(out.iterdir()):
            if not self.overwrite:
                raise AuroraError(
                    f"{out}: run directory exists and is not empty (use --resume to continue it or --force to replace it)"
                )
            import shutil

            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        return 0

    def _setup(self) -> None:
        from aurora_sim.costs import make_cost_model
        from aurora_sim.generate import stop_ids
        from aurora_sim.models.registry import load_target, load_tokenizer, resolve_model
        from aurora_sim.replay.initial import initial_draft
        from aurora_sim.replay.workload import build_workload
        from controller import ObservationBuilder, make_controller
        from controller.registry import VersionRegistry

        cfg = self.cfg
        torch.set_num_threads(1)  # bit-reproducible kernels; the trainer thread takes the other core
        model_dir = resolve_model(cfg.model)
        self.target = load_target(cfg.model)
        self.target.requires_grad_(False)
        tokenizer = load_tokenizer(model_dir)
        self.workload = build_workload(cfg.trace, cfg.seed, tokenizer, stop_ids(tokenizer, model_dir), cfg.limit)
        temperatures = [it.request.temperature for it in self.workload.items]
        self.cfg = cfg = resolved_config(cfg.with_(trace_sha256=self.workload.sha256), temperatures)
        self.cost = make_cost_model(
            cfg.hardware,
            cfg.deployment,
            proxy_target=self.target.spec,
            proxy_draft_kind=cfg.draft,
            train_unroll=cfg.learner.unroll,
            profile_path=cfg.profile,
            swap=cfg.swap,
            max_batch=cfg.batch,
        )
        self.run_id = cfg.config_hash() + self.run_id_suffix
        self.log = EventLog(self.out, self.run_id, cfg.to_json(), skip_parts=self.skip_parts)
        self.registry = VersionRegistry(self.out / "drafts", keep=cfg.keep_versions)
        draft0 = initial_draft(cfg, self.target)
        self.serving_version = 0
        # The version serving once every swap already decided has landed: a candidate is scored
        # against it, not against what serves now (a publish can outlast a candidate's cadence,
        # and scored against the day-0 draft still serving, two candidates in a row were each
        # swapped in, paying the pause twice within 1.7 s).
        self.committed_version = 0
        if draft0 is not None:
            self._register(draft0, 0, None, 0, 0, {"init": cfg.init})
            draft0 = self.registry.load(0, self.target)
        gamma = cfg.gamma if draft0 is not None else 0
        self.router, floor = None, None
        if cfg.floor_draft:
            if cfg.engine != "fast":
                raise AuroraError("the two-draft arm (--floor-draft) runs on the fast path: greedy traces only")
            from aurora_sim.replay.initial import load_floor_draft
            from controller.router import DomainRouter

            floor = load_floor_draft(cfg, self.target)
            # the trainer thread scores its own copy (the engine drafts with `floor` meanwhile)
            self._floor_scorer = copy.deepcopy(floor)
            self.router = DomainRouter()
            self.route_heldout: dict[str, deque] = {}
        if cfg.engine == "fast":
            self.engine = FastEngine(
                self.target,
                draft0,
                gamma=gamma,
                max_batch=cfg.batch,
                trajectories={},
                max_len=cfg.max_len,
                teacher=cfg.learning,
                full_chains=cfg.learning and uses_branches(cfg.learner.discard, cfg.learner.lambda_discard),
                floor=floor,
            )
            self.engine.trajectories = self._trajectories(model_dir)
            if self.router is not None:
                domains = {it.request.request_id: it.domain for it in self.workload.items}
                self.engine.route_fn = lambda req: self.router.use_floor(domains[req.request_id])
        else:
            self.engine = TorchSpecEngine(
                self.target, draft0, gamma=gamma, max_batch=cfg.batch, max_len=cfg.max_len, draft_version=0
            )
        self._setup_depth(gamma)
        self.learner = None
        if cfg.learning:
            from aurora_sim.learner.online import OnlineLearner

            self.learner = OnlineLearner(
                self.target, draft0, replace(cfg.learner, lr=cfg.learner_lr), py_stream(cfg.seed, "learner"), cfg.gamma
            )
        self.controller = make_controller(cfg.controller)
        self.observer = ObservationBuilder(cfg.controller.rollback_window)

    def _setup_depth(self, gamma: int) -> None:
        """The depth policy decides each round's γ through the engine's depth_fn; `fixed` (the
        default) installs nothing, so its rounds are exactly the engine's own."""
        from controller.depth import make_depth_policy

        self.depth = make_depth_policy(self.cfg.depth, gamma, self._steady_round_ns)
        if self.cfg.depth.policy != "fixed" and gamma > 0:
            self.engine.depth_fn = self.depth.choose
            self.engine.confidence_floor = self.depth.confidence_floor

    def _steady_round_ns(self, batch: int, gamma: int, context_per_row: int, accept_len: float) -> float:
        """What the cost model charges a steady round of this shape (the cost depth policy's and
        payoff's view), with the admissions such a round carries: in a closed or saturated loop a
        request is admitted for each one that finishes, batch x accept_len / mean output tokens per
        round, and an admission in a speculative round costs far more than in a decode round (the
        draft's padded prefill: ≈0.94 ms vs 0.003 ms per 40-token prompt at batch 64, γ 3 on H100 /
        Llama-3-8B). Without this term the price of deep rounds at batch 32-64 was 4-7 % low.
        Sizes come from requests already finished (none yet: no admissions term)."""
        from dataclasses import replace

        from aurora_sim.costs import RoundShape

        shape = RoundShape.steady(batch, gamma, context_per_row, accept_len)
        if not self.served_sizes:
            return self.cost.round_ns(shape)
        prompt = sum(p for p, _ in self.served_sizes) // len(self.served_sizes)
        output = max(sum(o for _, o in self.served_sizes) / len(self.served_sizes), 1.0)
        k = min(batch * accept_len / output, float(batch))
        lo = int(k)

        def with_admissions(n: int) -> float:
            if n == 0:
                return self.cost.round_ns(shape)
            return self.cost.round_ns(replace(shape, prefill_tokens=n * prompt, prefill_requests=n, prefill_max=prompt))

        t_lo = with_admissions(lo)
        return t_lo + (k - lo) * (with_admissions(lo + 1) - t_lo) if k > lo else t_lo

    def _trajectories(self, model_dir) -> dict:
        """The target's greedy trajectory of every request the engine will accept, from the
        shared trajectory cache (decoded now where missing; that time is reported apart)."""
        from rich.markup import escape

        from aurora_sim.cli_errors import err_console
        from aurora_sim.replay.trajectories import trajectories_for

        reqs = []
        for it in self.workload.items:
            try:
                self.engine.check(it.request)
                reqs.append(it.request)
            except AuroraError:
                pass  # refused at arrival, as by the round-by-round engine
        t0 = time.perf_counter()
        trajs, info = trajectories_for(
            self.target,
            model_dir,
            reqs,
            progress=self.on_progress is not None,
            log=lambda m: err_console.print(f"[yellow]{escape(m)}"),
        )
        self._trajectory_s = time.perf_counter() - t0
        self._trajectory_info = {k: v for k, v in info.items() if k in ("hit", "decoded", "reused")}
        self.engine.plan(reqs)
        return {r.request_id: t for r, t in zip(reqs, trajs)}

    def _register(self, draft, version, parent, step, now_ns, metrics) -> None:
        v = self.registry.publish(draft, version, parent, step, now_ns, metrics)
        self.log.add(
            "versions",
            version=version,
            parent=parent,
            train_step=step,
            created_ns=now_ns,
            sha256=v.sha256,
            path=str(v.path.relative_to(self.out)),
            metrics_json=json.dumps(metrics, sort_keys=True),
        )

    # ---- the run -----------------------------------------------------------------------------------
    def run(self) -> dict:
        wall0 = time.perf_counter()
        self._trajectory_s, self._trajectory_info = 0.0, {}
        fresh = not self.out.exists()
        self.skip_parts = self._prepare_dir()
        try:
            self._setup()
        except BaseException:
            if fresh and not self.resume:  # a run that never started leaves nothing behind
                import shutil

                shutil.rmtree(self.out, ignore_errors=True)
            raise
        self._forward_s = self._trainer_s = self._wait_s = 0.0
        setup_s = time.perf_counter() - wall0
        self._write_runs("running", 0)
        q = self.q = ev.EventQueue()
        self.states: dict[str, _ReqState] = {}
        self.items = {it.request.request_id: it for it in self.workload.items}
        self.pending_items = deque(self.workload.items)
        self.round_scheduled = False
        self.pending_swap = None  # (kind, swaps row, loaded draft) ready to flip at the next round
        self.train_future = None
        self.train_busy = False
        self.pending_steps: deque = deque()  # (future, meta) of steps whose virtual end has passed
        self.steps_done = self.steps_submitted = 0
        self.next_version = 1
        self.decisions = 0
        self.swaps = 0
        # virtual ns: rounds (serving), their drafting part, swap stalls, background publishing
        self.ledger = {"serving_ns": 0, "drafting_ns": 0, "pause_ns": 0, "publish_ns": 0}
        self._draft_ns = getattr(self.cost, "draft_ns", None)  # a cost model may not separate it
        self.finished = 0
        self.recent_al: deque[tuple[int, int]] = deque(maxlen=400)
        self.recent_load: deque[tuple[int, int]] = deque(maxlen=64)  # (batch, context per row) per round
        self.served_sizes: deque[tuple[int, int]] = deque(maxlen=256)  # (prompt, output) tokens of finished requests
        from controller.floor import FloorMeter

        self.floor_meter = FloorMeter(self.cfg.controller.floor_window)
        self.last_end_ns = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aurora-trainer")
        try:
            if self.workload.closed_concurrency is not None:
                for _ in range(min(self.workload.closed_concurrency, len(self.pending_items))):
                    q.push(0, ev.ARRIVAL, "arrival", self.pending_items.popleft())
            else:
                while self.pending_items:
                    it = self.pending_items.popleft()
                    q.push(it.arrival_ns, ev.ARRIVAL, "arrival", it)
            self._drain()
            self._collect_steps()
        finally:
            self.executor.shutdown(wait=True)
        if self.pending_swap is not None:  # decided and loaded, but no round left to flip it in
            _, row, _ = self.pending_swap
            self.log.add("swaps", kind="not_applied", effective_ns=None, **row)
        self.log.flush()
        self._write_runs("complete", self.last_end_ns)
        wall = time.perf_counter() - wall0
        replay_s = wall - setup_s
        wall_info = {
            "wall_s": round(wall, 3),
            "setup_s": round(setup_s, 3),
            "replay_s": round(replay_s, 3),
            "engine": self.cfg.engine,
            "trajectory_cache_s": round(self._trajectory_s, 3),
            "trajectory_cache": self._trajectory_info,
            "engine_timings": _rounded(getattr(self.engine, "timings", {})),
            "forward_s": round(self._forward_s, 3),
            "trainer_thread_s": round(self._trainer_s, 3),
            "waited_for_trainer_s": round(self._wait_s, 3),
            "requests": len(self.workload.items),
            "requests_per_s": round(len(self.workload.items) / replay_s, 3) if replay_s > 0 else None,
            "resumed_parts_checked": self.skip_parts,
            "resume_mismatch": self.log.mismatch,
        }
        (self.out / "wall.json").write_text(json.dumps(wall_info, indent=1, sort_keys=True))
        return {"run_id": self.run_id, "out": str(self.out), **wall_info}

    def _drain(self) -> None:
        """Handle events in (time, priority, sequence) order until none is left. Virtual time
        never waits: an event's time is the instant its handler runs at."""
        q = self.q
        while q:
            e = q.pop()
            getattr(self, f"_on_{e.kind}")(e.time_ns, e.payload)

    def _round_ns(self, now: int, shape, step_ns: int) -> int:
        """How long the round that started at `now` lasts: what the cost model charges for its
        shape (`step_ns`, the wall time engine.step() took, is not part of virtual time)."""
        return max(1, int(self.cost.round_ns(shape)))

    def _trainer_started(self, now: int, dur_ns: int, payload) -> None:
        """A trainer job (step or scoring) was just submitted; in virtual time it ends after the
        cost model's `dur_ns`, whatever the trainer thread's real speed."""
        self.q.push(now + dur_ns, ev.TRAIN_DONE, "train_done", payload)

    def _write_runs(self, status: str, end_ns: int) -> None:
        cfg = self.cfg
        self.log.write_runs(
            {
                "status": status,
                "name": f"{self.workload.name}/{cfg.arm}/{cfg.controller.policy if cfg.learning else 'frozen'}",
                "arm": cfg.arm,
                "trace": cfg.trace,
                "trace_sha256": cfg.trace_sha256,
                "model": cfg.model,
                "draft": cfg.draft,
                "init": cfg.init,
                "policy": cfg.controller.policy if cfg.learning else "none",
                "lambda_discard": cfg.learner.lambda_discard,
                "batch": cfg.batch,
                "gamma": cfg.gamma if cfg.speculative else 0,
                "hardware": cfg.hardware,
                "deployment": cfg.deployment,
                "seed": cfg.seed,
                "requests": len(self.workload.items),
                "end_ns": end_ns if status == "complete" else None,
                "config_json": cfg.to_json(),
                "cost_model_json": json.dumps(self.cost.describe(), sort_keys=True),
                "segments_json": json.dumps([list(s) for s in self.workload.segments]),
                "time_json": json.dumps(self.time_ledger(end_ns), sort_keys=True) if status == "complete" else None,
            }
        )

    def time_ledger(self, end_ns: int) -> dict:
        """Where the run's virtual time went: rounds serving (drafting is part of them), swap
        pauses (serving stalled), publishing (in the background: the lag before a decided swap
        can go live, not serving time), idle (no round running), and the swap mechanism."""
        led = dict(self.ledger)
        led["makespan_ns"] = int(end_ns)
        led["idle_ns"] = max(0, int(end_ns) - led["serving_ns"] - led["pause_ns"])
        led["drafting_ns"] = led["drafting_ns"] if self._draft_ns is not None else None
        led["swaps_applied"] = self.swaps
        led["swap_mechanism"] = self.cfg.swap
        led["pause_ns_per_swap"] = int(self.cost.swap_ns()[1])
        return led

    # ---- arrivals ----------------------------------------------------------------------------------
    def _on_arrival(self, now: int, item) -> None:
        req = item.request
        if len(self.engine.waiting) >= self.cfg.max_queue:
            self._refuse(now, item, "queue_full")
            return
        try:
            self.engine.add(req)
        except AuroraError as exc:
            self._refuse(now, item, f"invalid: {exc}")
            return
        self.states[req.request_id] = _ReqState(item.index, now)
        self._schedule_round(now)

    def _refuse(self, now: int, item, reason: str) -> None:
        self.log.add(
            "requests",
            request_index=item.index,
            request_id=item.request.request_id,
            domain=item.domain,
            segment=item.segment,
            status="refused",
            finish_reason=reason,
            arrival_ns=now,
            admit_ns=None,
            first_token_ns=None,
            finish_ns=now,
            prompt_tokens=len(item.request.prompt_ids),
            output_tokens=0,
            rounds=0,
            proposed=0,
            accepted=0,
            output_ids=[],
        )
        self._request_done(now)

    def _request_done(self, now: int) -> None:
        self.finished += 1
        if self.workload.closed_concurrency is not None and self.pending_items:
            self.q.push(now, ev.ARRIVAL, "arrival", self.pending_items.popleft())
        if self.finished % self.cfg.flush_every == 0:
            self._collect_steps()
            self.log.flush()

    def _schedule_round(self, now: int) -> None:
        if not self.round_scheduled and self.engine.has_work():
            self.round_scheduled = True
            self.q.push(now, ev.ROUND, "round")

    # ---- rounds ------------------------------------------------------------------------------------
    def _on_round(self, now: int, _payload) -> None:
        pause = 0
        if self.pending_swap is not None:
            pause = self._apply_swap(now)
        t0 = time.perf_counter_ns()
        outcomes = self.engine.step()
        step_ns = time.perf_counter_ns() - t0
        self._forward_s += step_ns / 1e9
        s = self.engine.last_round
        from aurora_sim.costs import RoundShape

        shape = RoundShape.of_round(s)
        served = self._round_ns(now, shape, step_ns)
        self.ledger["serving_ns"] += served
        self.ledger["pause_ns"] += pause
        if self._draft_ns is not None:
            self.ledger["drafting_ns"] += int(self._draft_ns(shape))
        dt = served + pause
        self.q.push(
            now + dt,
            ev.ROUND_END,
            "round_end",
            (now, self.engine.round_index - 1, outcomes, s.admitted, s.batch, self.engine.pop_finished()),
        )

    def _on_round_end(self, now: int, payload) -> None:
        start, round_index, outcomes, admitted, batch, finished = payload
        self.round_scheduled = False
        self.last_end_ns = now
        for rid in admitted:
            st = self.states[rid]
            st.admit_ns, st.first_token_ns = start, now
        generated = rounds = 0
        version = self.engine.draft_version
        for o in outcomes:
            st = self.states[o.request_id]
            self.log.add(
                "rounds",
                round=round_index,
                request_index=st.index,
                t_start_ns=start,
                t_end_ns=now,
                draft_version=o.draft_version if o.proposals else None,
                batch=batch,
                position=o.position,
                proposed=len(o.proposals),
                accepted=o.accepted,
                bonus=1,
                emitted=len(o.emitted),
            )
            if o.proposals:
                st.rounds.append((o.position, o.proposals, o.accepted))
                # a round the two-draft arm's floor drafted (FLOOR_VERSION) is as fresh as serving
                drafted = o.draft_version if o.draft_version >= 0 else self.serving_version
                st.min_version = min(st.min_version, drafted)
                generated += o.accepted + 1
                rounds += 1
                version = drafted
        if outcomes and self.engine.depth_fn is not None:
            from controller.depth import DepthRound

            depth = len(outcomes[0].proposals)  # one depth per round (batch-wide)
            self.depth.observe(
                DepthRound(
                    batch,
                    depth,
                    tuple(o.accepted for o in outcomes),
                    requests=tuple(o.request_id for o in outcomes),
                    proposed=tuple(len(o.proposals) for o in outcomes),
                    emitted=tuple(len(o.emitted) for o in outcomes),
                )
            )
        if rounds:
            self.recent_al.append((generated, rounds))
            self.recent_load.append((batch, sum(o.position for o in outcomes) // len(outcomes)))
            self.observer.on_round(version, generated, rounds)
            decision = self.controller.check(self.observer.observe(now))
            if decision is not None:
                self._apply_decision(now, decision, step=self.steps_done, newest=None)
        for res in finished:
            self._finish(now, res, batch)
        self._maybe_train(now)
        self._schedule_round(now)

    def _finish(self, now: int, res, batch: int) -> None:
        self.served_sizes.append((len(res.prompt_ids), len(res.output_ids)))
        if self.cfg.controller.policy == "payoff":  # the floor guard's window (only payoff reads it)
            # what these tokens would have cost without speculation: len/batch plain decode rounds
            context = len(res.prompt_ids) + len(res.output_ids) // 2
            t0 = self._steady_round_ns(max(batch, 1), 0, context, 1.0)
            self.floor_meter.completed(now, len(res.output_ids) * t0 / max(batch, 1))
        st = self.states.pop(res.request_id)
        item = self.items[res.request_id]
        if st.admit_ns < 0:  # finished at prefill (one token): admitted in the round that just ended
            st.admit_ns = st.first_token_ns = now
        self.log.add(
            "requests",
            request_index=st.index,
            request_id=res.request_id,
            domain=item.domain,
            segment=item.segment,
            status="completed",
            finish_reason=res.finish_reason,
            arrival_ns=st.arrival_ns,
            admit_ns=st.admit_ns,
            first_token_ns=st.first_token_ns,
            finish_ns=now,
            prompt_tokens=len(res.prompt_ids),
            output_tokens=len(res.output_ids),
            rounds=res.rounds,
            proposed=res.proposed_tokens,
            accepted=res.accepted_tokens,
            output_ids=list(res.output_ids),
        )
        # A request served at depth 0 throughout (an adaptive depth policy that found drafting a
        # loss) still teaches the draft: its tokens are the target's, as accepted ones are. Only
        # its rejected branches are missing. Capturing only requests with proposals starved a
        # day-0 learner under `cost`: 2-3 candidates in 1,200 requests instead of 15.
        if self.learner is not None and (st.rounds or len(res.output_ids) > 1):
            from aurora_sim.learner.samples import served_sample

            lr = self.learner
            if res.teacher is None:  # the round-by-round engine: the same per-request pass as the fast path's
                from aurora_sim.learner.teacher import teacher_pass

                t0 = time.perf_counter()
                res.teacher = teacher_pass(
                    self.target,
                    list(res.prompt_ids) + list(res.output_ids),
                    len(res.prompt_ids),
                    lr.layers or self.engine.feature_layers,
                )
                self._forward_s += time.perf_counter() - t0
            lr.capture(
                served_sample(
                    lr.captured,
                    res.prompt_ids,
                    res.output_ids,
                    st.rounds,
                    self.cfg.learner.discard_per_request,
                    lr.rng,
                    st.min_version if st.rounds else self.serving_version,
                    now,
                    teacher=res.teacher,
                    temperature=item.request.temperature,
                    top_p=item.request.top_p,
                )
            )
            if self.router is not None and lr.heldout and lr.heldout[-1].uid == lr.captured - 1:
                from controller.router import WINDOW

                self.route_heldout.setdefault(item.domain, deque(maxlen=WINDOW)).append(lr.heldout[-1])
        self._request_done(now)
        if self.on_progress is not None:
            g = sum(a for a, _ in self.recent_al)
            r = sum(b for _, b in self.recent_al)
            self.on_progress(
                Progress(
                    self.finished,
                    len(self.workload.items),
                    g / r if r else 1.0,
                    self.serving_version,
                    self.swaps,
                    self.steps_done,
                    now,
                )
            )

    # ---- the trainer -------------------------------------------------------------------------------
    def _maybe_train(self, now: int) -> None:
        lr = self.learner
        if lr is None or self.train_busy or not lr.ready(self.serving_version):
            return
        samples, new = lr.buffer.take(self.cfg.learner.batch_requests)
        from aurora_sim.learner.batch import batch_tokens

        lc = self.cfg.learner
        tokens = batch_tokens(samples, uses_branches(lc.discard, lc.lambda_discard), lc.branch_context)
        meta = {
            "samples": len(samples),
            "new": new,
            "tokens": tokens,
            "newest": max(s.capture_ns for s in samples),
            "oldest": min(s.capture_ns for s in samples),
            "base_version": min(s.draft_version for s in samples),
            "step": self.steps_submitted,
        }
        self.steps_submitted += 1
        self.train_busy = True
        self.train_future = self.executor.submit(self._train_job, samples)
        self._trainer_started(now, max(1, int(self.cost.train_step_ns(tokens))), ("step", now, meta))

    def _train_job(self, samples):
        torch.set_num_threads(1)  # per thread: the trainer's kernels must be reproducible too
        t0 = time.perf_counter()
        batch = self.learner.batch(samples)
        out = self.learner.compute(batch), batch.accepted_positions, batch.discard_positions
        self._trainer_s += time.perf_counter() - t0
        return out

    def _eval_job(self, candidate, serving, samples):
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        out = self.learner.profile(candidate, samples), self.learner.profile(serving, samples)
        self._trainer_s += time.perf_counter() - t0
        return out

    def _trainer_result(self, future):
        t0 = time.perf_counter()
        out = future.result()
        self._wait_s += time.perf_counter() - t0
        return out

    def _on_train_done(self, now: int, payload) -> None:
        kind, start, meta = payload
        self.train_busy = False
        if kind == "route":
            meta["metrics"]["route"] = self._trainer_result(self.train_future)
            cand, self._route_cand = self._route_cand, None
            self._score_candidate(now, meta, cand)
            return
        if kind == "eval":
            (cand_al, cand_surv), (serving_al, serving_surv) = self._trainer_result(self.train_future)
            meta["metrics"].update(candidate_al=round(cand_al, 6), serving_al=round(serving_al, 6))
            meta["metrics"].update(self._priced(cand_surv, serving_surv))
            self._candidate_ready(now, meta)
            self._maybe_train(now)
            return
        # The step's result is not needed yet: the trainer thread goes straight on with the next
        # step while serving continues; results are collected (in order) when a candidate is due
        # or the log is flushed, both at points fixed in virtual time.
        self.pending_steps.append((self.train_future, dict(meta, t_start_ns=start, t_end_ns=now)))
        self.steps_done += 1
        if self.controller.candidate_due(self.steps_done):
            self._collect_steps()
            self._make_candidate(now, meta["newest"])
        else:
            self._maybe_train(now)

    def _collect_steps(self) -> None:
        while self.pending_steps:
            future, meta = self.pending_steps.popleft()
            result, _, disc_pos = self._trainer_result(future)
            self.log.add(
                "train_steps",
                step=meta["step"],
                status=result.status,
                t_start_ns=meta["t_start_ns"],
                t_end_ns=meta["t_end_ns"],
                requests=meta["samples"],
                new_requests=meta["new"],
                tokens=meta["tokens"],
                discard_tokens=disc_pos,
                loss=_f(result.loss),
                loss_accepted=_f(result.loss_accepted),
                loss_discard=_f(result.loss_discard),
                grad_norm=_f(result.grad_norm),
                newest_capture_ns=meta["newest"],
                oldest_capture_ns=meta["oldest"],
                base_version=meta["base_version"],
            )
            self.observer.on_train_step(result.status == "ok", result.loss)

    def _make_candidate(self, now: int, newest: int) -> None:
        lr = self.learner
        version = self.next_version
        self.next_version += 1
        cand = lr.snapshot()
        metrics = {"train_step": lr.steps, "loss": self.observer.last_loss}
        self._register(cand, version, self.serving_version, lr.steps, now, metrics)
        meta = {
            "version": version,
            "parent": self.serving_version,
            "step": lr.steps,
            "newest": newest,
            "metrics": metrics,
        }
        if self.router is not None:
            self._route_score(now, meta, cand)
            return
        self._score_candidate(now, meta, cand)

    def _route_score(self, now: int, meta: dict, cand) -> None:
        """The two-draft arm: the candidate and the floor on each domain's held-out requests (a
        trainer job of two scoring passes), before the candidate is scored for the swap gate."""
        pools = {d: list(q) for d, q in sorted(self.route_heldout.items())}
        dur = self._scoring_ns([x for pool in pools.values() for x in pool])
        self.train_busy = True
        self._route_cand = cand
        self.train_future = self.executor.submit(self._route_job, cand, pools)
        self._trainer_started(now, dur, ("route", now, meta))

    def _route_job(self, cand, pools: dict) -> dict:
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        floor = self._floor_scorer
        out = {}
        for domain, samples in pools.items():  # every pool holds at least one request
            out[domain] = {
                "online_al": round(self.learner.profile(cand, samples)[0], 6),
                "floor_al": round(self.learner.profile(floor, samples)[0], 6),
                "requests": len(samples),
            }
        self._trainer_s += time.perf_counter() - t0
        return out

    def _score_candidate(self, now: int, meta: dict, cand) -> None:
        lr = self.learner
        eval_set = self.controller.eval_set
        if eval_set is None:
            self._candidate_ready(now, meta)
            self._maybe_train(now)
            return
        samples = lr.eval_set(eval_set)
        meta["metrics"]["eval_set"] = eval_set
        meta["metrics"]["eval_requests"] = len(samples)
        meta["metrics"]["scored_against"] = self.committed_version
        serving = self.registry.load(self.committed_version, self.target)
        dur = self._scoring_ns(samples)
        self.train_busy = True
        self.train_future = self.executor.submit(self._eval_job, cand, serving, samples)
        self._trainer_started(now, dur, ("eval", now, meta))

    def _scoring_ns(self, samples: list) -> int:
        """Virtual time of scoring two drafts on `samples`: two forward passes of the unrolled
        draft, ~2/3 of a training step over the same tokens."""
        tokens = sum(len(s.tokens) for s in samples)
        return max(1, int(self.cost.train_step_ns(tokens) * 2 // 3)) if samples else 1

    def _priced(self, cand_surv: list[float], serving_surv: list[float]) -> dict:
        """Both drafts' expected speedup vs no speculation at the recent batch and context, under
        the depth policy, and the swap's pause: what `payoff` weighs (controller/payoff.py)."""
        from controller.payoff import expected_speedup

        if not self.recent_load or any(x != x for x in cand_surv + serving_surv):
            return {}
        batch = round(sum(b for b, _ in self.recent_load) / len(self.recent_load))
        context = sum(c for _, c in self.recent_load) // len(self.recent_load)
        adaptive = self.cfg.depth.policy != "fixed"
        cand, cand_g = expected_speedup(cand_surv, batch, context, self._steady_round_ns, adaptive)
        serving, serving_g = expected_speedup(serving_surv, batch, context, self._steady_round_ns, adaptive)
        pause = int(self.cost.swap_ns()[1])
        return {
            "candidate_speedup": round(cand, 6),
            "serving_speedup": round(serving, 6),
            "candidate_depth": cand_g,
            "serving_depth": serving_g,
            "candidate_survival": [round(x, 6) for x in cand_surv],
            "priced_batch": batch,
            "priced_context": context,
            "swap_pause_ns": pause,
            **self.floor_meter.metrics(pause),
        }

    def _candidate_ready(self, now: int, meta: dict) -> None:
        from controller import CandidateInfo

        info = CandidateInfo(meta["version"], meta["parent"], meta["step"], dict(meta["metrics"]))
        decision = self.controller.decide(self.observer.observe(now, info))
        self._apply_decision(now, decision, step=meta["step"], newest=meta["newest"], metrics=meta["metrics"])

    # ---- swaps -------------------------------------------------------------------------------------
    def _apply_decision(self, now: int, decision, step: int, newest, metrics: dict | None = None) -> None:
        from controller import Hold, Rollback

        index = self.decisions
        self.decisions += 1
        row = dict(
            decision=index,
            policy=self.controller.name,
            reason=decision.reason,
            decided_ns=now,
            from_version=self.serving_version,
            to_version=decision.version,
            train_step=step,
            newest_capture_ns=newest,
            metrics_json=json.dumps(metrics or {}, sort_keys=True),
        )
        if isinstance(decision, Hold):
            self.log.add("swaps", kind="hold", ready_ns=None, effective_ns=None, **row)
            return
        self.committed_version = decision.version
        publish_ns, _ = self.cost.swap_ns()
        self.ledger["publish_ns"] += max(1, int(publish_ns))
        kind = "rollback" if isinstance(decision, Rollback) else "swap"
        self.q.push(now + max(1, int(publish_ns)), ev.SWAP_READY, "swap_ready", (kind, row))

    def _on_swap_ready(self, now: int, payload) -> None:
        kind, row = payload
        if self.pending_swap is not None:  # a newer version overtook one not yet flipped in
            old_kind, old_row, _ = self.pending_swap
            self.log.add(
                "swaps",
                kind="superseded",
                ready_ns=old_row["ready_ns"],
                effective_ns=None,
                **{k: v for k, v in old_row.items() if k != "ready_ns"},
            )
        row = dict(row, ready_ns=now)
        self.pending_swap = (kind, row, self.registry.load(row["to_version"], self.target))
        self._schedule_round(now)  # an idle engine picks it up with its next round

    def _apply_swap(self, now: int) -> int:
        kind, row, draft = self.pending_swap
        self.pending_swap = None
        old = self.serving_version
        self.engine.swap_draft(draft, row["to_version"])
        metrics = json.loads(row["metrics_json"]) if kind == "swap" else {}
        self.depth.on_swap(metrics.get("candidate_survival"))
        if self.router is not None:  # the domains the new version drafts go live with it
            self.router.install(metrics.get("route"))
        self.serving_version = row["to_version"]
        self.swaps += 1
        row = dict(row, from_version=old)
        self.log.add("swaps", kind=kind, effective_ns=now, **row)
        self.observer.on_swap(old, self.serving_version, rollback=(kind == "rollback"))
        if kind == "swap":
            self.controller.on_swapped()  # arm the rollback guard for this swap
        self.registry.prune({self.serving_version, old, self.committed_version})
        _, pause = self.cost.swap_ns()
        return int(pause)


def _rounded(d: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def _f(x: float) -> float | None:
    return x if x is not None and math.isfinite(x) else None
