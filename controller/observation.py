"""The controller's whole view of the world: what a live deployment could see.

`ObservationBuilder` folds serving-side events (round acceptance per draft version, swaps that
took effect, trainer steps, candidate metrics) into an `Observation`. Neither holds prompts,
outputs, domains, segments or anything about requests not yet served: the controller cannot
peek at the trace (no oracle), by construction of these types.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CandidateInfo:
    version: int
    parent: int
    train_step: int
    metrics: dict = field(default_factory=dict)  # e.g. {"eval_set": "heldout", "candidate_al": .., "serving_al": ..}


@dataclass(frozen=True)
class Observation:
    now_ns: int
    serving_version: int
    previous_version: int | None  # what served before the last swap (the rollback target)
    train_steps: int  # optimizer updates applied so far
    last_loss: float | None
    candidate: CandidateInfo | None
    rounds_since_swap: int  # engine rounds served by the current version since it took effect (capped at the window)
    live_al_since_swap: float | None  # AL over (up to) the window's rounds since the swap
    pre_swap_al: float | None  # AL of the previous version over its last window rounds
    rolled_back: frozenset[int] = frozenset()


class ObservationBuilder:
    def __init__(self, window: int, initial_version: int = 0):
        self.window = window
        self.serving = initial_version
        self.previous: int | None = None
        self.train_steps = 0
        self.last_loss: float | None = None
        self.recent: deque[tuple[int, int]] = deque(maxlen=window)  # (generated, rounds) per engine round
        self.pre_swap_al: float | None = None
        self.since_swap: list[tuple[int, int]] = []
        self.rolled_back: set[int] = set()

    # ---- events -----------------------------------------------------------------------------------
    def on_round(self, version: int, generated: int, rounds: int) -> None:
        """One engine round's verify results (summed over its requests) under `version`."""
        if version != self.serving or rounds == 0:
            return
        self.recent.append((generated, rounds))
        if len(self.since_swap) < self.window:
            self.since_swap.append((generated, rounds))

    def on_swap(self, from_version: int, to_version: int, rollback: bool) -> None:
        self.pre_swap_al = _al(self.recent)
        # After a rollback there is nothing to roll back to: the restored version is the known
        # good one (otherwise the guard could undo its own rollback and ping-pong).
        self.previous, self.serving = (None if rollback else from_version), to_version
        self.recent.clear()
        self.since_swap = []
        if rollback:
            self.rolled_back.add(from_version)

    def on_train_step(self, ok: bool, loss: float) -> None:
        if ok:
            self.train_steps += 1
            self.last_loss = loss

    def observe(self, now_ns: int, candidate: CandidateInfo | None = None) -> Observation:
        return Observation(
            now_ns=now_ns,
            serving_version=self.serving,
            previous_version=self.previous,
            train_steps=self.train_steps,
            last_loss=self.last_loss,
            candidate=candidate,
            rounds_since_swap=len(self.since_swap),
            live_al_since_swap=_al(self.since_swap),
            pre_swap_al=self.pre_swap_al,
            rolled_back=frozenset(self.rolled_back),
        )


def _al(pairs) -> float | None:
    rounds = sum(r for _, r in pairs)
    return sum(g for g, _ in pairs) / rounds if rounds else None
