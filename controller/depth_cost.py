"""`cost`: the depth that maximises expected tokens per unit time at this batch and context.

E[g], the tokens a round of depth g emits per row, comes from walking the requests served so far
again at every depth g (depth_walk.py): rounds at the served depth reveal which positions the
draft gets right, and a round of another depth would start at other positions. The deployment's
cost model says how long a round takes (a steady round: this batch, the mean context, a catch-up
of E[g] tokens). The policy picks argmax_g E[g] / round_time(g) over 0..γ_max, the smallest g on
a tie; g = 0 (E = 1, a plain decode step) wins wherever drafting costs more than it gains, which
is what keeps a day-0 draft from ever being a cost.

Why a walk and not per-position acceptance (what this policy multiplied until 2026-12): rounds at
depth γ start after rejections far more often than rounds at a shallower depth, and positions
after a rejection are hard (acceptance 0.52-0.55 there against 0.94+ after a full accept), so
the product a_1·a_2··· measured at γ 6 priced depths 1-2 5-7 % low and `cost` ran γ 6 where γ 3
was best: 5.7-6.8 % behind the best fixed γ at batch 1-16 (depth-batch-shift-ci.json, before).

Why the prior is optimistic (E[g] = g + 1, as PRIOR_ROUNDS rows' rounds): an untried depth is tried
before it is written off, so the first round runs at γ_max (today's behaviour) and the estimates
come from data within a round or two. Unless the swap comes with the candidate's acceptance
profile (what `payoff`, lazy and shadow scored it on): then that profile is the prior, as
SEED_ROUNDS rows' rounds, so the new draft starts at the depth it was priced at instead of γ max
(on shift-ci a day-0 candidate's first rounds at γ 6 cost more than its pause). A swap otherwise
resets to the optimistic prior: a new draft's acceptance is unknown.

Why it probes: at depth 0 nothing is verified, so a draft that improves (online learning, a swap)
would never be noticed; and depths past the served one are priced from acceptance extrapolated
past the bonus position. Every `probe_every` rounds one round runs one step deeper than the best
(as SGLang's rule probes one step past the observed acceptance): from 0 a probe costs one draft
step, ≈1.5 % of the time when drafting never pays on H100 / Llama-3-8B at 32. While probes leave
the best depth unchanged the interval doubles, up to PROBE_BACKOFF x probe_every (≈0.2 % from
depth 0: probes every 32 rounds held a day-0 draft at 0.978-0.982x of no-spec in every 200-request
window of shift-ci); a new best depth or a swap resets it.
"""

from __future__ import annotations

from controller.depth_base import DepthPolicy, DepthRound
from controller.depth_walk import AcceptanceWalk

PRIOR_ROUNDS = 8  # the optimistic prior counts as this many rows' rounds
SEED_ROUNDS = 64  # a swapped-in draft's measured profile counts as this many
PROBE_BACKOFF = 8  # a probe that changes nothing doubles the interval, up to this x probe_every


class Cost(DepthPolicy):
    name = "cost"

    def __init__(self, cfg, gamma_max: int, round_time=None):
        super().__init__(cfg, gamma_max, round_time)
        if round_time is None:
            from aurora_sim.errors import AuroraError

            raise AuroraError("the cost depth policy needs the deployment's round times (a cost model)")
        self.probe_every = cfg.probe_every
        self.walk = AcceptanceWalk(gamma_max, cfg.alpha)
        self.walk.reset(weight=PRIOR_ROUNDS)
        self.rounds = 0
        self._reset_probes()

    def _reset_probes(self) -> None:
        self.interval = self.probe_every
        self.next_probe = self.rounds + self.probe_every
        self.probed_best: int | None = None

    def observe(self, rnd: DepthRound) -> None:
        requests = rnd.requests or tuple(range(rnd.batch))
        proposed = rnd.proposed or (rnd.depth,) * len(rnd.accepted)
        self.walk.observe(requests, proposed, rnd.accepted, rnd.emitted)

    def on_swap(self, survival=None) -> None:
        self._reset_probes()
        if not survival:
            self.walk.reset(weight=PRIOR_ROUNDS)
            return
        # survival[j] = E_{j+1} - E_j (learner/evaluate.py): E_g = 1 + survival[0] + ... + survival[g-1]
        prior, total = [], 1.0
        for g in range(self.gamma_max):
            total += max(survival[g], 0.0) if g < len(survival) else 0.0
            prior.append(total)
        self.walk.reset(prior, weight=SEED_ROUNDS)

    def expected_tokens(self, depth: int) -> float:
        """E[accepted + 1] per row for a round of `depth` proposals."""
        return self.walk.expected_tokens(depth)

    def best(self, batch: int, context_tokens: int) -> int:
        context = context_tokens // max(batch, 1)
        best, best_rate = 0, -1.0
        for g in range(self.gamma_max + 1):
            tokens = self.expected_tokens(g)
            rate = tokens / max(self.round_time(batch, g, context, tokens), 1e-9)
            if rate > best_rate:
                best, best_rate = g, rate
        return best

    def choose(self, batch: int, context_tokens: int) -> int:
        self.rounds += 1
        best = self.best(batch, context_tokens)
        if not self.probe_every or self.rounds < self.next_probe:
            return best
        # back off while probes change nothing: at depth 0 a probe every 32 rounds cost a day-0
        # draft 1.5-2 % of serving for good (200-request windows at 0.978-0.982x of no-spec on
        # shift-ci); a swap or a new best depth brings the interval back to probe_every
        same = best == self.probed_best
        self.interval = min(self.interval * 2, self.probe_every * PROBE_BACKOFF) if same else self.probe_every
        self.probed_best, self.next_probe = best, self.rounds + self.interval
        return min(best + 1, self.gamma_max)
