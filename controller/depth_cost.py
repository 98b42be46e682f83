"""`cost`: the depth that maximises expected tokens per unit time at this batch and context.

For each draft position j the policy keeps an EMA of the conditional acceptance a_j =
P(d_j accepted | d_1..d_{j-1} accepted), updated per request and round from the verify's
accepted counts (a row that accepted k of g proposals tried positions 1..min(k+1, g) and passed
1..k). A round of depth g then emits E[g] = 1 + a_1 + a_1·a_2 + ... + a_1···a_g tokens per row,
and the deployment's cost model says how long it takes (a steady round: this batch, the mean
context, a catch-up of E[g] tokens). The policy picks argmax_g E[g] / round_time(g) over
0..γ_max, the smallest g on a tie; g = 0 (E = 1, a plain decode step) wins wherever drafting
costs more than it gains, which is what keeps a day-0 draft from ever being a cost.

Why the prior is 1.0 (optimistic): an unobserved position is tried before it is written off,
so the first rounds run at γ_max (today's behaviour) and the estimates come from data.
Why it probes: positions beyond the chosen depth are never observed, and at depth 0 nothing is,
so a draft that improves (online learning, a swap) would never be noticed. Every `probe_every`
rounds one round runs one step deeper than the best depth (as SGLang's rule probes one step past
the observed acceptance): from 0 a probe costs one draft step, ≈1.5 % of the time when drafting
never pays on H100 / Llama-3-8B at 32 (a probe at γ_max cost ≈3.5 %: measured on shift-ci), and
a batch of 8 moves the probed position's EMA (alpha 0.02 per request) ~15 % of the way. If that
position pays, the next probe goes one further. While probes leave the best depth unchanged the
interval doubles, up to PROBE_BACKOFF x probe_every (≈0.2 % from depth 0); a new best depth or a
swap resets it.

Why a running mean first: each position's estimate is the mean of its observations, the
optimistic prior counting as PRIOR_TRIALS of them, until there are 1/alpha, then the EMA: the prior
costs a few rounds, not a slow decay (at alpha 0.05 the decay kept a static draft at γ 5-6 for ≈45
rounds of a 390-round run), yet one atypical first round (every row at its first token) cannot
send the depth to 0, where nothing more is observed until a probe. Why alpha 0.02 per request and
ROUND_CAP per round: at batch 1, alpha 0.05 let one request's run of rejections reach depth 0; at
batch 32, per-request alpha moved an estimate 48 % per round, and the depth swung between 0 and 4
(7.5 % behind the best fixed γ). Why a position's prior is the one before it: a deep position first reached by a probe, priced
at the optimistic 1.0, pulled the depth to 5-6 in stretches (batch 8: 2.0 % behind the best fixed
γ; 1.3 % with the inherited prior). Why a swap resets it: a new draft's acceptance is unknown, so it
is priced optimistically again and measured in the next rounds, instead of waiting for probes.
Unless the swap comes with the candidate's acceptance profile (what `payoff`, lazy and shadow
scored it on): then that profile is the prior, so the new draft starts at the depth it was priced
at instead of γ max (on shift-ci a day-0 candidate's first rounds at γ 6 cost more than its pause).
"""

from __future__ import annotations

from controller.depth_base import DepthPolicy, DepthRound

ROUND_CAP = 0.1
PRIOR_TRIALS = 8  # the optimistic prior counts as this many requests' observations
PROBE_BACKOFF = 8  # a probe that changes nothing doubles the interval, up to this x probe_every


class Cost(DepthPolicy):
    name = "cost"

    def __init__(self, cfg, gamma_max: int, round_time=None):
        super().__init__(cfg, gamma_max, round_time)
        if round_time is None:
            from aurora_sim.errors import AuroraError

            raise AuroraError("the cost depth policy needs the deployment's round times (a cost model)")
        self.alpha, self.probe_every = cfg.alpha, cfg.probe_every
        self.acceptance = [1.0] * gamma_max  # a_1..a_γmax
        self.seen = [0] * gamma_max  # observations per position
        self.known = [False] * gamma_max  # prior from a measured profile, not inherited
        self.rounds = 0
        self._reset_probes()

    def _reset_probes(self) -> None:
        self.interval = self.probe_every
        self.next_probe = self.rounds + self.probe_every
        self.probed_best: int | None = None

    def observe(self, rnd: DepthRound) -> None:
        for j in range(rnd.depth):
            trials = sum(1 for k in rnd.accepted if k >= j)  # rows that tried position j + 1
            if not trials:
                break
            hits = sum(1 for k in rnd.accepted if k > j)
            if self.seen[j] == 0 and j > 0 and not self.known[j]:  # first reached: prior = the one before
                self.acceptance[j] = self.acceptance[j - 1]
            self.seen[j] += trials
            # alpha per request, at most ROUND_CAP per round; a running mean (the prior counted as
            # PRIOR_TRIALS observations) until that is slower: why each, in the module docstring
            rate = min(1.0 - (1.0 - self.alpha) ** trials, ROUND_CAP)
            rate = max(rate, trials / (self.seen[j] + PRIOR_TRIALS))
            self.acceptance[j] += rate * (hits / trials - self.acceptance[j])

    def on_swap(self, survival=None) -> None:
        self._reset_probes()
        self.seen = [0] * self.gamma_max
        self.known = [False] * self.gamma_max
        self.acceptance = [1.0] * self.gamma_max
        if not survival:
            return
        # survival[j] = E_{j+1} - E_j = a_1···a_{j+1}: conditional a_{j+1} = survival[j] / survival[j-1]
        prev = 1.0
        for j, sj in enumerate(list(survival)[: self.gamma_max]):
            a = min(max(sj / prev, 0.0), 1.0) if prev > 0 else 0.0
            self.acceptance[j], self.known[j] = a, True
            prev = max(sj, 0.0)

    def expected_tokens(self, depth: int) -> float:
        """E[accepted + 1] for a round of `depth` proposals."""
        total, survive, prev = 1.0, 1.0, 1.0
        for a, seen, known in zip(self.acceptance[:depth], self.seen, self.known):
            a = a if seen or known else prev  # never observed: priced as the position before it
            survive *= a
            total += survive
            prev = a
        return total

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
