"""The two-draft arm's choice: which head drafts a request, the frozen floor or the online one.

After ATLAS (Together AI, 2025; public descriptions only): a static speculator trained on broad
data is kept as a speed floor beside an adaptive one that learns from live traffic, and a
controller picks which one drafts as the adaptive one improves. Ours decides per domain, from
held-out served requests of that domain (never trained on): when a candidate is made, both heads'
acceptance is measured on the last `window` held-out requests of each domain, and from the
moment that candidate goes live a domain is drafted by the online head only if it beats the
floor there by `margin` on at least `min_requests` requests. Everything else, and every domain
after a rollback, stays on the floor. So a domain the online head has forgotten falls back to the
floor at the next candidate, and one it has learnt moves to it.

The choice is per request at each round (a round's rows may split between the heads; the cost
model then charges both heads' drafting).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MARGIN = 0.02  # the online head must beat the floor's held-out AL by 2 % on a domain
MIN_REQUESTS = 8  # held-out requests of a domain before it can move off the floor
WINDOW = 32  # held-out requests per domain each head is scored on


@dataclass
class DomainRouter:
    margin: float = MARGIN
    min_requests: int = MIN_REQUESTS
    online: set[str] = field(default_factory=set)  # domains the online head drafts

    def use_floor(self, domain: str) -> bool:
        return domain not in self.online

    def install(self, scores: dict | None) -> None:
        """The per-domain scores of the version going live ({domain: {online_al, floor_al,
        requests}}); None (a rollback, or nothing scored): every domain on the floor."""
        self.online = {d for d, s in (scores or {}).items() if self.prefers_online(s)}

    def prefers_online(self, s: dict) -> bool:
        return (
            s.get("requests", 0) >= self.min_requests
            and s.get("online_al") is not None
            and s.get("floor_al") is not None
            and s["online_al"] > s["floor_al"] * (1.0 + self.margin)
        )
