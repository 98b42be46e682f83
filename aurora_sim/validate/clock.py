"""The replay on two clocks: the cost model's virtual time, and this machine's own.

`PredictedReplay` is the ordinary replay (aurora_sim.replay.loop) under a profiled cost model,
keeping one record per round. `MeasuredReplay` serves the same requests with the same arrivals,
batch and γ through the round-by-round engine on the real clock: t = 0 when serving starts (after
the models are loaded and the engine warmed up), an arrival is released at its offset (a closed
loop's next request when one finishes, as in virtual time), a round starts when the server loop
reaches it and lasts what engine.step() took (time.perf_counter_ns), a trainer step ends when
the trainer thread finishes it, and a swap's write and load take what they take on the serving
thread. Both write an ordinary event log, so every view and report works on either; the measured
run's run_id ends in `-wall`. Before serving starts and after it ends, the measured run times one
steady calibration cell (`reference`): against the profile's value for that cell it says how much
slower or faster the machine is now than when it was calibrated (other load, clock speed).

Only the loop's clock hooks are overridden (`_drain`, `_round_ns`, `_trainer_started`, and the
cost model's swap times): admission, batching, the learner, the controller and the swaps are the
replay's own code on both clocks.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass, replace

from aurora_sim.costs.profiled import ProfiledCost
from aurora_sim.costs.shapes import RoundShape
from aurora_sim.errors import AuroraError
from aurora_sim.replay import events as ev
from aurora_sim.replay.loop import Replay

WARMUP_TOKENS = 8  # new tokens per warm-up request (a few rounds of every kind before t = 0)


@dataclass
class RoundRecord:
    """One round on one clock."""

    round: int  # order of the round in the run (0, 1, ...)
    start_ns: int  # the clock's time the round started at
    dur_ns: int  # how long it lasted on this clock: predicted (virtual) or measured (wall)
    model_ns: int  # the cost model's charge for this round's shape (= dur_ns in virtual time)
    outside: bool  # the cost model's look-up for this shape left the profiled table
    shape: RoundShape
    cpu_ns: int = -1  # wall only: CPU time of the serving thread during the round (< dur_ns: it waited)


class _Recording:
    """Keeps a RoundRecord per round; `profile` is the profiled cost model the prediction uses."""

    profile: ProfiledCost
    records: list[RoundRecord]

    def _record(self, now: int, shape: RoundShape, dur_ns: int, model_ns: int = -1, outside: bool = False) -> int:
        self.records.append(RoundRecord(len(self.records), now, dur_ns, model_ns, outside, shape))
        return dur_ns

    def _price(self, shape: RoundShape) -> tuple[int, bool]:
        """(the cost model's ns for this shape, whether the look-up left the table)."""
        before = self.profile.lookups_outside
        model = max(1, int(self.profile.round_ns(shape)))
        return model, self.profile.lookups_outside > before


def _profiled(cost) -> ProfiledCost:
    if not isinstance(cost, ProfiledCost):
        raise AuroraError(f"validation needs a profiled cost model (--profile), got {getattr(cost, 'name', cost)}")
    return cost


class PredictedReplay(_Recording, Replay):
    """The replay in virtual time under a profiled cost model, with a record per round."""

    def _setup(self) -> None:
        super()._setup()
        self.profile = _profiled(self.cost)
        self.profile.reset_coverage()
        self.records = []

    def _round_ns(self, now: int, shape, step_ns: int) -> int:
        model, outside = self._price(shape)
        return self._record(now, shape, model, model, outside)


class WallClock:
    """The cost model a measured run records (runs.cost_model_json): rounds take what they take,
    a trainer step ends when the trainer thread finishes it, a swap's publish and load happen on
    the serving thread (so no modelled publish delay or pause). `predicted_by` is the profile the
    twin run was charged with."""

    name = "wall-clock"

    def __init__(self, profile: ProfiledCost):
        self.profile = profile

    def round_ns(self, shape: RoundShape) -> int:  # a round's prediction (the run itself uses its wall time)
        return self.profile.round_ns(shape)

    def train_step_ns(self, tokens: int) -> int:  # unused for time: the trainer's real end is
        return self.profile.train_step_ns(tokens)

    def swap_ns(self) -> tuple[int, int]:
        return 0, 0

    def describe(self) -> dict:
        return {
            "kind": "wall-clock",
            "name": self.name,
            "units": "ns (int), time.perf_counter_ns from the start of serving",
            "predicted_by": self.profile.describe(),
        }


@dataclass
class _TrainerJob:
    future: concurrent.futures.Future
    payload: tuple
    done_ns: int | None = None


class MeasuredReplay(_Recording, Replay):
    """The same replay served on the real clock by the round-by-round torch engine."""

    run_id_suffix = "-wall"

    def _setup(self) -> None:
        if self.cfg.engine != "exact":
            raise AuroraError(f"a measured run needs the round-by-round engine (engine exact), got {self.cfg.engine!r}")
        super()._setup()
        self.profile = _profiled(self.cost)
        self.profile.reset_coverage()
        self.cost = WallClock(self.profile)
        self.records = []
        self._job: _TrainerJob | None = None
        self._t0 = time.perf_counter_ns()
        self._warm_up()
        self.reference = self._reference_cell()
        self.reference["before_ns"] = self._reference_rounds()
        step, self._step_cpu_ns = self.engine.step, -1

        def step_on_cpu():  # the serving thread's CPU time in the step: below its wall time, it waited
            cpu0 = time.thread_time_ns()
            outcomes = step()
            self._step_cpu_ns = time.thread_time_ns() - cpu0
            return outcomes

        self.engine.step = step_on_cpu

    def _reference_cell(self) -> dict:
        e, contexts = self.engine, self.profile.contexts
        context = contexts[len(contexts) // 2] if contexts else int(self.profile.table.get("context_per_row") or 64)
        shape = RoundShape.steady(e.max_batch, e.gamma if e.draft is not None else 0, context)
        self._reference_args = (self.target, e.draft, shape.gamma, shape.batch, context)
        return {
            "gamma": shape.gamma,
            "batch": shape.batch,
            "context": context,
            "profile_ns": self.profile.steady_ns(shape),
        }

    def _reference_rounds(self) -> int:
        from aurora_sim.costs.calibrate import reference_rounds

        return reference_rounds(*self._reference_args, rounds=24)

    def run(self) -> dict:
        out = super().run()
        self.reference["after_ns"] = self._reference_rounds()
        now = (self.reference["before_ns"] + self.reference["after_ns"]) / 2
        self.reference["drift"] = now / self.reference["profile_ns"] - 1 if self.reference["profile_ns"] else None
        # priced after the run, not between rounds: the look-up is not the server's work
        for r in self.records:
            r.model_ns, r.outside = self._price(r.shape)
        return out

    def _warm_up(self) -> None:
        """Serve a couple of batches of the trace's own prompts (a few tokens each) through a
        throwaway engine of the same shape, so no first-call cost (allocations, packed weights)
        lands in a measured round."""
        from aurora_sim.engine.torch_engine import TorchSpecEngine

        e = self.engine
        warm = TorchSpecEngine(self.target, e.draft, gamma=e.gamma, max_batch=e.max_batch, max_len=e.max_len)
        reqs = []
        for i, it in enumerate(self.workload.items[: 2 * e.max_batch]):
            req = replace(it.request, request_id=f"warm-up-{i}", max_new_tokens=WARMUP_TOKENS)
            try:
                warm.check(req)
            except AuroraError:
                continue
            reqs.append(req)
        warm.run(reqs)

    def _wall(self) -> int:
        return time.perf_counter_ns() - self._t0

    def _drain(self) -> None:
        """Handle events as the real clock reaches them: wait for an arrival's offset, start a
        round when the loop gets to it, and see a trainer job end when its thread finishes it."""
        q = self.q
        self._t0 = time.perf_counter_ns()
        while True:
            job = self._job
            if job is not None and job.future.done():
                self._job = None
                done = job.done_ns if job.done_ns is not None else self._wall()
                q.push(max(q.now_ns, done), ev.TRAIN_DONE, "train_done", job.payload)
                continue
            if not q:
                if job is None:
                    return
                concurrent.futures.wait([job.future])
                continue
            e = q.peek()
            wait_ns = e.time_ns - self._wall()
            if wait_ns > 0:  # an open-loop arrival still to come (or a swap being loaded)
                if job is None:
                    time.sleep(wait_ns / 1e9)
                else:
                    concurrent.futures.wait([job.future], timeout=wait_ns / 1e9)
                continue
            q.pop()
            # a round starts when the server gets to it; everything else happens at its own time
            # (an arrival at its offset, a round's end when its step returned)
            now = max(e.time_ns, self._wall()) if e.kind == "round" else e.time_ns
            getattr(self, f"_on_{e.kind}")(now, e.payload)

    def _round_ns(self, now: int, shape, step_ns: int) -> int:
        dur = self._record(now, shape, max(1, step_ns))
        self.records[-1].cpu_ns = self._step_cpu_ns
        return dur

    def _trainer_started(self, now: int, dur_ns: int, payload) -> None:
        job = _TrainerJob(self.train_future, payload)

        def stamp(_future, job=job):
            job.done_ns = self._wall()

        job.future.add_done_callback(stamp)
        self._job = job
