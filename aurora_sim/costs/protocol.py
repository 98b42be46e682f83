"""What the replay asks of a cost model. Every time is int nanoseconds of virtual time."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from aurora_sim.costs.shapes import RoundShape


@runtime_checkable
class CostModel(Protocol):
    name: str

    def round_ns(self, shape: RoundShape) -> int:
        """One engine round: γ draft steps + one verify (or plain decode) forward, prefill included."""
        ...

    def train_step_ns(self, tokens: int) -> int:
        """One optimizer step of the draft over `tokens` tokens (forward + backward incl. TTT unroll)."""
        ...

    def swap_ns(self) -> tuple[int, int]:
        """(publish_ns, pause_ns): background write + load before a new draft can serve, and the
        serving stall at the round it goes live."""
        ...

    def describe(self) -> dict:
        """JSON-able: kind, hardware, deployment and every constant used."""
        ...
