"""The learner's sample buffer: bounded (FIFO or reservoir), staleness-limited by draft version.

New samples are handed out first (each served request trains at least once, as Aurora streams
them), then the batch is filled with replayed older samples drawn by the learner's own RNG.
"""

from __future__ import annotations

import random

from aurora_sim.learner.samples import Sample


class SampleBuffer:
    def __init__(self, capacity: int, policy: str, max_staleness: int, rng: random.Random):
        self.capacity = capacity
        self.policy = policy
        self.max_staleness = max_staleness
        self.rng = rng
        self.items: list[Sample] = []
        self.offered = 0  # samples ever offered (reservoir's n)
        self.dropped_stale = 0
        self.dropped_full = 0

    def add(self, sample: Sample) -> None:
        self.offered += 1
        if len(self.items) < self.capacity:
            self.items.append(sample)
            return
        self.dropped_full += 1
        if self.policy == "fifo":
            self.items.pop(0)
            self.items.append(sample)
            return
        # reservoir (Algorithm R): keep the new sample with probability capacity / offered
        j = self.rng.randrange(self.offered)
        if j < self.capacity:
            self.items[j] = sample

    def new_count(self) -> int:
        return sum(1 for s in self.items if s.seen == 0)

    def drop_stale(self, serving_version: int) -> None:
        keep = [s for s in self.items if serving_version - s.draft_version <= self.max_staleness]
        self.dropped_stale += len(self.items) - len(keep)
        self.items = keep

    def take(self, size: int) -> tuple[list[Sample], int]:
        """A batch: unseen samples oldest first, then random replays. Returns (batch, new)."""
        fresh = [s for s in self.items if s.seen == 0][:size]
        old = [s for s in self.items if s.seen > 0]
        replay = self.rng.sample(old, min(len(old), size - len(fresh)))
        batch = fresh + sorted(replay, key=lambda s: s.uid)
        for s in batch:
            s.seen += 1
        return batch, len(fresh)
