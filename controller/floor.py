"""The speedup serving has had over its last W completed requests, against no speculation, as a
live server can estimate it: what `payoff`'s floor guard weighs before it pauses serving.

Each completion reports its finish time, its output tokens and what those tokens would have cost
without speculation (tokens / batch plain decode rounds at the batch and context serving ran at:
the cost model's or the calibrated table's round time). Over the window the estimate is
    Σ no-spec time of the window's tokens / (last finish - the finish before the window)
(the run's start for the first W), the same window `bench_depth` measures against a real no-spec
replay. A swap adds its pause to that span, so the window that ends just after a swap runs at
    no-spec / (span + pause),
and `payoff` swaps only if that stays at or above the floor.

Why a guard and not a better price: with short requests a window is short. On shift-ci at batch
8 (32-token outputs, 6 ms rounds) 200 requests take ≈4.7 s, so a 0.3 s pause alone is 6 % of a
window: a draft serving at 1.0x (a day-0 head at depth 0) cannot swap without a window near 0.94x,
however good the candidate. A draft already ahead banks the slack a pause spends.
"""

from __future__ import annotations

from collections import deque


class FloorMeter:
    def __init__(self, window: int):
        self.window = max(int(window), 1)
        self.done: deque[tuple[int, float]] = deque(maxlen=self.window + 1)  # (finish ns, no-spec ns)

    def completed(self, finish_ns: int, nospec_ns: float) -> None:
        self.done.append((int(finish_ns), float(nospec_ns)))

    def trailing(self) -> tuple[float, float] | None:
        """(no-spec ns, actual ns) of the last W completions; None before the first."""
        if not self.done:
            return None
        items = list(self.done)
        if len(items) > self.window:
            start, items = items[0][0], items[1:]
        else:
            start = 0
        span = items[-1][0] - start
        return sum(n for _, n in items), float(max(span, 1))

    def metrics(self, pause_ns: int) -> dict:
        """What the floor guard decides on, as a swap's metrics record it."""
        t = self.trailing()
        if t is None:
            return {}
        nospec, span = t
        return {
            "window_requests": min(len(self.done), self.window),
            "window_speedup": round(nospec / span, 6),
            "window_speedup_after_pause": round(nospec / (span + pause_ns), 6),
        }
