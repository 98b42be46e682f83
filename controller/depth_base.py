"""What a speculation-depth policy sees and answers: the contract every depth policy keeps.

Before each engine round the serving side asks `choose(batch, context_tokens)` for the round's
depth γ in 0..gamma_max (0 = a plain decode step); after it, `observe(DepthRound)` reports what
the round's verify found. That is all a policy sees: counts a live server has too (batch, KV
length, accepted drafts per request), never the trace. Policies are plain Python over those
counts, so the same observations give the same depths (deterministic replays).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DepthRound:
    """One engine round as the verify saw it."""

    batch: int  # requests in the round
    depth: int  # proposals per request (0 = a plain decode step)
    accepted: tuple[int, ...]  # accepted drafts per request (0..depth), bonus token not counted
    # Per row, when the server knows them (both do): the request it serves, so a policy can
    # follow each request across rounds (`cost` walks them, depth_walk.py), and the proposals it
    # made (fewer than `depth` where a chain stopped early) and the tokens it emitted (fewer than
    # accepted + 1 where the request ended in the round). Empty: row i is request i, `depth`
    # proposals, accepted + 1 tokens each.
    requests: tuple = ()
    proposed: tuple[int, ...] = ()
    emitted: tuple[int, ...] = ()


class DepthPolicy:
    name = "?"
    # A floor on the draft's top probability under which the engine stops a chain (the
    # `confidence` policy); None = chains run to the chosen depth.
    confidence_floor: float | None = None

    def __init__(self, cfg, gamma_max: int, round_time=None):
        """cfg: the run's DepthConfig; round_time(batch, gamma, context_per_row, accept_len) ->
        ns: the deployment's cost of one steady round (only the `cost` policy uses it)."""
        self.cfg, self.gamma_max, self.round_time = cfg, gamma_max, round_time

    def choose(self, batch: int, context_tokens: int) -> int:
        return self.gamma_max

    def observe(self, rnd: DepthRound) -> None:
        pass

    def on_swap(self, survival=None) -> None:
        """A new draft went live (a live server sees its own weight updates too); survival: its
        acceptance profile as the swap policy scored it (learner/evaluate.py), if there was one."""


class Fixed(DepthPolicy):
    """γ every round: what every engine did before depth policies (and the default)."""

    name = "fixed"
