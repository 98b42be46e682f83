"""The virtual-time event queue: int64 nanoseconds, ordered by (time, priority, sequence).

The sequence number makes ties deterministic (first pushed, first served) and the priority
says what happens first at one instant: a swap that became ready is applied before the round
that starts at the same time, a finished trainer step is seen before new work is scheduled.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from aurora_sim.errors import AuroraError

# priorities at equal time (lower first)
SWAP_READY = 0
TRAIN_DONE = 1
ROUND_END = 2
ARRIVAL = 3
ROUND = 4


@dataclass(order=True)
class Event:
    time_ns: int
    priority: int
    seq: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


class EventQueue:
    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0
        self.now_ns = 0

    def push(self, time_ns: int, priority: int, kind: str, payload: Any = None) -> None:
        time_ns = int(time_ns)
        if time_ns < self.now_ns:
            raise AuroraError(f"event {kind} scheduled in the past ({time_ns} < {self.now_ns} ns)")
        heapq.heappush(self._heap, Event(time_ns, priority, self._seq, kind, payload))
        self._seq += 1

    def pop(self) -> Event:
        ev = heapq.heappop(self._heap)
        self.now_ns = ev.time_ns  # never decreases: push refuses the past
        return ev

    def peek(self) -> Event:
        """The next event, left in the queue (a wall-clock drain waits for its time)."""
        return self._heap[0]

    def __bool__(self) -> bool:
        return bool(self._heap)

    def pending(self, kind: str) -> bool:
        return any(e.kind == kind for e in self._heap)
