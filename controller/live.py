"""The live loop: the same learner, controller and version registry as a replay, driven by
what a running server served, in wall-clock time.

What it needs from a server is what SGLang gives: prompt and output token ids and the request's
speculative stats (verify rounds, accepted tokens, draft version). The learner recomputes the
target's features with its own copy of the target, so nothing else is required. Where the
server also returns per-round proposals (ours, with `return_spec_details`), the rejected
branches feed the discard loss too.

It applies decisions through the server's /update_weights_from_disk: candidates are published
atomically to the weights directory the server loads from (VersionRegistry, sha256 checked on
both sides); a refused swap leaves the old draft serving and is logged; a server that restarted
(connection failures seen, then its reported draft version differs) is re-synced to the serving
version. A trainer step that dies is logged, and the learner restarts from the last published
version (serving never waits for it). Rows go to an injected log (the replay's EventLog), so the
tables are the replay's; times are wall-clock ns since the run started.
"""

from __future__ import annotations

import json
import math
import random
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from controller.decisions import Hold, Rollback
from controller.observation import CandidateInfo, ObservationBuilder
from controller.policies import make_controller


class LiveLoop:
    def __init__(
        self,
        client,
        target,
        draft0,
        learner_cfg,
        controller_cfg,
        registry,
        log,
        clock,
        gamma: int,
        seed: int = 0,
        learning: bool = True,
        fault=None,
        pricing=None,
    ):
        self.client, self.target, self.registry, self.log, self.clock = client, target, registry, log, clock
        self.lcfg, self.gamma, self.seed, self.learning = learner_cfg, gamma, seed, learning
        # pricing (controller.payoff.LivePricing): this machine's round times, for `payoff`
        self.pricing = pricing
        if controller_cfg.policy == "payoff" and pricing is None:
            from aurora_sim.errors import AuroraError

            raise AuroraError(
                "--policy payoff prices swaps in time: give --profile P.json (this machine's round times, "
                "from `aurora calibrate`)"
            )
        self.controller = make_controller(controller_cfg)
        self.observer = ObservationBuilder(controller_cfg.rollback_window)
        self.fault = fault  # tests: a callable run at the start of each trainer job (may raise)
        self.rng = random.Random(seed)
        self.learner = self._new_learner(draft0) if learning else None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aurora-live-trainer")
        self.job: tuple[str, Future, dict] | None = None
        self.serving_version = 0
        self.next_version = 1
        self.decisions = 0
        self.swaps = 0
        self.rejected = 0
        self.trainer_restarts = 0
        self.steps_done = 0
        self.failures_seen = 0

    def _new_learner(self, draft):
        from aurora_sim.learner.online import OnlineLearner

        return OnlineLearner(self.target, draft, self.lcfg, self.rng, self.gamma)

    # ---- start: the server serves exactly what the learner starts from ---------------------------------
    def start(self, draft0) -> None:
        self._publish(draft0, 0, None, 0, {"init": "initial"})
        self._flip(0, "sync", "initial sync: serve the learner's starting draft", step=0, metrics={})
        self.failures_seen = self.client.transport_failures

    # ---- served traffic -------------------------------------------------------------------------------
    def on_served(
        self,
        prompt_ids,
        output_ids,
        rounds,
        verify_ct: int,
        accepted: int,
        version,
        temperature: float = 0.0,
        top_p: float = 1.0,
    ) -> None:
        """One finished request. rounds: [(position, proposals, accepted, version)] or None;
        temperature, top_p: the request's sampling (reach-weighted discard prices with it)."""
        if rounds:
            per: dict[int, list[int]] = {}
            for _, _props, k, v in rounds:
                g = per.setdefault(v, [0, 0])
                g[0] += k + 1
                g[1] += 1
            for v, (gen, n) in per.items():
                self.observer.on_round(v, gen, n)
        elif verify_ct and version is not None:
            self.observer.on_round(version, accepted + verify_ct, verify_ct)
        decision = self.controller.check(self.observer.observe(self.clock()))
        if decision is not None:
            self._apply(decision, step=self.steps_done, metrics={})
        if self.pricing is not None:
            self.pricing.served(len(prompt_ids), len(output_ids), self.clock())
        if self.learner is None or not (verify_ct or rounds or len(output_ids) > 1):
            return  # a request served at depth 0 still teaches: its tokens are the target's
        from aurora_sim.learner.samples import served_sample

        versions = [v for *_, v in rounds] if rounds else [version if version is not None else self.serving_version]
        self.learner.capture(
            served_sample(
                self.learner.captured,
                prompt_ids,
                output_ids,
                [(p, tuple(d), k) for p, d, k, _ in rounds or ()],
                self.lcfg.discard_per_request,
                self.rng,
                min(versions),
                self.clock(),
                temperature=temperature,
                top_p=top_p,
            )
        )

    # ---- called often from the runner's main loop ------------------------------------------------------
    def pump(self) -> None:
        self._resync_if_restarted()
        if self.job is not None and self.job[1].done():
            self._job_done()
        if self.job is None:
            self._maybe_train()

    def drain(self) -> None:
        """End of traffic: wait for the running job and log it; no new steps."""
        if self.job is not None:
            self.job[1].exception()  # waits
            self._job_done(final=True)
        self.executor.shutdown(wait=True)

    # ---- trainer ------------------------------------------------------------------------------------
    def _maybe_train(self) -> None:
        lr = self.learner
        if lr is None or not lr.ready(self.serving_version):
            return
        samples, new = lr.buffer.take(self.lcfg.batch_requests)
        meta = {
            "samples": len(samples),
            "new": new,
            "tokens": sum(len(s.tokens) for s in samples),
            "newest": max(s.capture_ns for s in samples),
            "oldest": min(s.capture_ns for s in samples),
            "base_version": min(s.draft_version for s in samples),
            "t_start_ns": self.clock(),
        }
        self.job = ("step", self.executor.submit(self._step_job, lr, samples), meta)

    def _step_job(self, lr, samples):
        torch.set_num_threads(1)
        if self.fault is not None:
            self.fault()
        batch = lr.batch(samples)  # the replay's batch: the same discard variant
        return lr.compute(batch), batch.discard_positions

    def _job_done(self, final: bool = False) -> None:
        kind, fut, meta = self.job
        self.job = None
        now = self.clock()
        if kind == "eval":
            try:
                (cand_al, cand_surv), (serving_al, serving_surv) = fut.result()
                meta["metrics"].update(candidate_al=round(cand_al, 6), serving_al=round(serving_al, 6))
                if self.pricing is not None:
                    meta["metrics"].update(self.pricing.price(cand_surv, serving_surv))
            except Exception as exc:  # scoring failed: the policy sees no numbers and holds
                meta["metrics"]["eval_error"] = str(exc)[:200]
            if not final:
                self._decide(meta)
            return
        exc = fut.exception()
        if exc is not None:
            self._trainer_died(meta, now, exc)
            return
        result, disc = fut.result()
        step = self.steps_done
        self.steps_done += 1
        self.log.add(
            "train_steps",
            step=step,
            status=result.status,
            t_start_ns=meta["t_start_ns"],
            t_end_ns=now,
            requests=meta["samples"],
            new_requests=meta["new"],
            tokens=meta["tokens"],
            discard_tokens=disc,
            loss=_f(result.loss),
            loss_accepted=_f(result.loss_accepted),
            loss_discard=_f(result.loss_discard),
            grad_norm=_f(result.grad_norm),
            newest_capture_ns=meta["newest"],
            oldest_capture_ns=meta["oldest"],
            base_version=meta["base_version"],
        )
        self.observer.on_train_step(result.status == "ok", result.loss)
        if not final and self.controller.candidate_due(self.steps_done):
            self._make_candidate(meta["newest"])

    def _trainer_died(self, meta: dict, now: int, exc: BaseException) -> None:
        """Serving is unaffected; the learner restarts from the newest published weights and
        keeps the data it had captured."""
        self.log.add(
            "train_steps",
            step=self.steps_done,
            status=f"failed: {exc.__class__.__name__}",
            t_start_ns=meta["t_start_ns"],
            t_end_ns=now,
            requests=meta["samples"],
            new_requests=meta["new"],
            tokens=meta["tokens"],
            discard_tokens=0,
            loss=None,
            loss_accepted=None,
            loss_discard=None,
            grad_norm=None,
            newest_capture_ns=meta["newest"],
            oldest_capture_ns=meta["oldest"],
            base_version=meta["base_version"],
        )
        self.steps_done += 1
        self.trainer_restarts += 1
        old = self.learner
        latest = max(v for v, info in self.registry.versions.items() if info.path.exists())
        fresh = self._new_learner(self.registry.load(latest, self.target))
        fresh.buffer, fresh.heldout, fresh.recent, fresh.captured = old.buffer, old.heldout, old.recent, old.captured
        self.learner = fresh
        self.resumed_from = latest

    def _make_candidate(self, newest: int) -> None:
        lr = self.learner
        version = self.next_version
        self.next_version += 1
        cand = lr.snapshot()
        metrics = {"train_step": lr.steps, "loss": self.observer.last_loss}
        self._publish(cand, version, self.serving_version, lr.steps, metrics)
        meta = {
            "version": version,
            "parent": self.serving_version,
            "step": lr.steps,
            "newest": newest,
            "metrics": metrics,
        }
        eval_set = self.controller.eval_set
        if eval_set is None:
            self._decide(meta)
            return
        samples = lr.eval_set(eval_set)
        metrics.update(eval_set=eval_set, eval_requests=len(samples))
        serving = self.registry.load(self.serving_version, self.target)
        self.job = ("eval", self.executor.submit(self._eval_job, lr, cand, serving, samples), meta)

    def _eval_job(self, lr, cand, serving, samples):
        torch.set_num_threads(1)
        return lr.profile(cand, samples), lr.profile(serving, samples)

    # ---- decisions -------------------------------------------------------------------------------------
    def _decide(self, meta: dict) -> None:
        info = CandidateInfo(meta["version"], meta["parent"], meta["step"], dict(meta["metrics"]))
        decision = self.controller.decide(self.observer.observe(self.clock(), info))
        self._apply(decision, step=meta["step"], newest=meta["newest"], metrics=meta["metrics"])

    def _apply(self, decision, step: int, newest=None, metrics: dict | None = None) -> None:
        if isinstance(decision, Hold):
            now = self.clock()
            self._row("hold", decision.version, decision.reason, step, newest, metrics, now, None, None)
            return
        kind = "rollback" if isinstance(decision, Rollback) else "swap"
        self._flip(decision.version, kind, decision.reason, step, metrics, newest)

    def _flip(self, version: int, kind: str, reason: str, step: int, metrics, newest=None) -> bool:
        """Ask the server to serve `version`. Only a server's yes changes what we believe serves."""
        decided = self.clock()
        v = self.registry.versions[version]
        try:
            ok, message = self.client.update_weights(v.path.name, version, v.sha256)
        except Exception as exc:  # retries exhausted: the server is down; it keeps (or restarts with) its draft
            ok, message = False, str(exc)
        now = self.clock()
        if ok and self.pricing is not None:
            self.pricing.flipped(now - decided)
        if not ok:
            self.rejected += 1
            self._row(
                "rejected", version, f"{reason}; server: {message}"[:500], step, newest, metrics, decided, now, None
            )
            return False
        old = self.serving_version
        self._row(kind, version, reason, step, newest, metrics, decided, now, now)
        if kind in ("swap", "rollback"):
            self.swaps += 1
            self.observer.on_swap(old, version, rollback=(kind == "rollback"))
            if kind == "swap":
                self.controller.on_swapped()
        self.serving_version = version
        self.registry.prune({version, old})
        return True

    def _resync_if_restarted(self) -> None:
        failures = self.client.transport_failures
        if failures == self.failures_seen:
            return
        try:
            info = self.client.model_info()
        except Exception:
            return  # still down: look again next time
        self.failures_seen = failures
        served = (info.get("aurora") or {}).get("draft_version")
        if served != self.serving_version:
            self._flip(
                self.serving_version, "resync", f"server reports draft {served} after reconnecting", self.steps_done, {}
            )

    # ---- log rows --------------------------------------------------------------------------------------
    def _publish(self, draft, version, parent, step, metrics) -> None:
        now = self.clock()
        v = self.registry.publish(draft, version, parent, step, now, metrics)
        self.log.add(
            "versions",
            version=version,
            parent=parent,
            train_step=step,
            created_ns=now,
            sha256=v.sha256,
            path=v.path.name,
            metrics_json=json.dumps(metrics, sort_keys=True),
        )

    def _row(self, kind, to_version, reason, step, newest, metrics, decided, ready, effective) -> None:
        self.log.add(
            "swaps",
            decision=self.decisions,
            kind=kind,
            policy=self.controller.name,
            reason=reason,
            decided_ns=decided,
            ready_ns=ready,
            effective_ns=effective,
            from_version=self.serving_version,
            to_version=to_version,
            train_step=step,
            newest_capture_ns=newest,
            metrics_json=json.dumps(metrics or {}, sort_keys=True),
        )
        self.decisions += 1


def _f(x):
    return x if x is not None and math.isfinite(x) else None
