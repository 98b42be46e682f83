"""Swap policies, configured by name, and the rollback guard.

    cadence  every N optimizer steps the candidate is swapped in (Aurora's released behaviour)
    lazy     the candidate is scored on held-out captured requests (never trained on) against
             the serving draft; swapped only if it wins by δ in estimated acceptance length
    shadow   the candidate is scored on the most recently captured traffic (what it would serve
             next) and swapped unless it does worse than the serving draft (tolerance)
    payoff   scored like lazy, priced in time: swapped when its expected speedup under the depth
             policy, over the time until the next candidate, saves more than the swap's pause,
             and the pause keeps the last `floor_window` requests at >= `floor` x no-spec
    rollback (a guard on any policy) once a swapped-in version has served `window` rounds,
             revert to the previous version if live AL fell below (1 - margin) x the AL the
             previous version had over its last `window` rounds

The controller answers two questions: "is a candidate due after this step, and scored how?"
(`candidate_due`) and "what now?" (`decide` on a candidate, `check` after rounds).
"""

from __future__ import annotations

from controller.decisions import Decision, Hold, Rollback, Swap
from controller.observation import Observation


class Controller:
    eval_set: str | None = None  # which captured requests a candidate is scored on

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg.policy
        self._checked_since_swap = True  # nothing to guard before the first swap

    def candidate_due(self, train_steps: int) -> bool:
        return train_steps > 0 and train_steps % self.cfg.every == 0

    def decide(self, obs: Observation) -> Decision:
        raise NotImplementedError

    def on_swapped(self) -> None:
        self._checked_since_swap = False

    def check(self, obs: Observation) -> Decision | None:
        """The rollback guard: called after rounds; at most one verdict per swap."""
        if not self.cfg.rollback or self._checked_since_swap or obs.previous_version is None:
            return None
        if obs.rounds_since_swap < self.cfg.rollback_window or obs.pre_swap_al is None:
            return None
        self._checked_since_swap = True
        floor = (1.0 - self.cfg.rollback_margin) * obs.pre_swap_al
        if obs.live_al_since_swap is not None and obs.live_al_since_swap < floor:
            return Rollback(
                obs.previous_version,
                f"live AL {obs.live_al_since_swap:.3f} < {floor:.3f} "
                f"= (1-{self.cfg.rollback_margin}) x pre-swap {obs.pre_swap_al:.3f}",
            )
        return None


class Cadence(Controller):
    def decide(self, obs: Observation) -> Decision:
        return Swap(obs.candidate.version, f"cadence: every {self.cfg.every} steps")


def _scores(obs: Observation) -> tuple[float, float] | None:
    """(candidate AL, serving AL) estimated on the same captured requests; None if unscored."""
    m = obs.candidate.metrics
    cand, serving = m.get("candidate_al"), m.get("serving_al")
    if cand is None or serving is None or cand != cand or serving != serving:  # NaN: nothing to score on
        return None
    return cand, serving


class Lazy(Controller):
    eval_set = "heldout"

    def decide(self, obs: Observation) -> Decision:
        scores = _scores(obs)
        if scores is None:
            return Hold(obs.candidate.version, "lazy: no held-out requests to score on")
        cand, serving = scores
        verdict = ">=" if cand >= serving + self.cfg.delta else "<"
        reason = f"lazy: held-out AL {cand:.3f} {verdict} {serving:.3f} + {self.cfg.delta}"
        return (Swap if verdict == ">=" else Hold)(obs.candidate.version, reason)


class Shadow(Controller):
    eval_set = "recent"

    def decide(self, obs: Observation) -> Decision:
        scores = _scores(obs)
        if scores is None:
            return Hold(obs.candidate.version, "shadow: no recent traffic to score on")
        cand, serving = scores
        ok = cand >= serving - self.cfg.tolerance
        reason = f"shadow: recent AL {cand:.3f} vs serving {serving:.3f} (tolerance {self.cfg.tolerance})"
        return (Swap if ok else Hold)(obs.candidate.version, reason)


class Payoff(Controller):
    """Swap when the candidate's expected speedup (controller/payoff.py: its acceptance profile on
    held-out captured requests, priced by the cost model under the run's depth policy) saves more
    serving time before the next candidate than the swap's pause costs, and the pause fits under
    the floor: the last `floor_window` requests, the pause added, still at >= `floor` x no
    speculation (controller/floor.py). The horizon is the time since the last candidate
    (candidates come at a steady cadence of trainer steps). Held-out, not recent: scored on the
    recent requests it had just trained on, a day-0 candidate priced 1.22x served below 1.0x
    after its swap (a 200-request window at 0.93x of no speculation)."""

    eval_set = "heldout"

    def __init__(self, cfg):
        super().__init__(cfg)
        self._last_candidate_ns = 0

    def decide(self, obs: Observation) -> Decision:
        from controller.payoff import time_saved_ns

        horizon = max(obs.now_ns - self._last_candidate_ns, 0)
        self._last_candidate_ns = obs.now_ns
        m = obs.candidate.metrics
        cand, serving, pause = m.get("candidate_speedup"), m.get("serving_speedup"), m.get("swap_pause_ns")
        if cand is None or serving is None or pause is None or cand != cand or serving != serving:
            return Hold(obs.candidate.version, "payoff: nothing to price the candidate on")
        saved = time_saved_ns(serving, cand, horizon)
        ok = saved > pause
        reason = (
            f"payoff: expected speedup {cand:.3f} vs serving {serving:.3f} over {horizon / 1e9:.2f} s "
            f"saves {saved / 1e9:.3f} s {'>' if ok else '<='} swap pause {pause / 1e9:.3f} s"
        )
        after = m.get("window_speedup_after_pause")
        if ok and self.cfg.floor > 0 and after is not None and after < self.cfg.floor:
            ok = False
            reason += (
                f"; but the last {m['window_requests']} requests ran at {m['window_speedup']:.3f}x no-spec, "
                f"{after:.3f}x with the pause < floor {self.cfg.floor}"
            )
        return (Swap if ok else Hold)(obs.candidate.version, reason)


POLICIES: dict[str, type[Controller]] = {"cadence": Cadence, "lazy": Lazy, "shadow": Shadow, "payoff": Payoff}


def make_controller(cfg) -> Controller:
    if cfg.policy not in POLICIES:
        from aurora_sim.errors import AuroraError

        raise AuroraError(f"unknown policy {cfg.policy!r} (choose {', '.join(POLICIES)})")
    return POLICIES[cfg.policy](cfg)
