"""Tokens per round at every depth, from the rounds actually served: the served requests walked again.

Why not per-position acceptance: a policy that multiplies conditional acceptances a_1·a_2···
measured at the served depth prices other depths at the positions *that* depth starts rounds at.
Deep rounds start at harder positions (after a rejection far more often than after a full
accept), so from γ 6 rounds of a strong draft E_1 and E_2 read 1.71 and 2.26 where depths 1 and 2
serve 1.81 and 2.42, and `cost` ran γ 6 where γ 3 was best (5.7-6.8 % behind it; docs/depth.md).

What serving tells, per request: a row at depth γ that accepted k proposals verified k positions
as accepted and, if k < γ, the next as rejected; after a full accept the bonus position was
never proposed (unknown). Under greedy verification whether the draft's token matches at a
position is (nearly) a property of the position, so these labels can be walked at any depth g,
as learner/evaluate.py walks held-out requests: a round at n accepts the run of accepted labels
from n capped at g, emits it + 1 (never past the request's end: a deep round's last tokens are
wasted there, 10 % of γ 5's on 32-token outputs), and the next round starts after. Offline, on
the batch-8 sweep's runs (static draft, 512 requests), rounds served at depth 3-6 predicted the
tokens per round served at every depth 1-6 within -0.4..+2.7 %; from depths 1-2, where bonus
positions are a third of the labels, deeper depths read up to 6 % high, which probes then
measure (the old product: E_1 6 % low from γ 6).

An unknown label (a bonus position, or beyond the last label when a request's speculation
stops) is accepted with probability q(s), the acceptance measured at positions that followed s
accepted-or-unknown labels (easy stretches stay easy: 0.56 after a rejection, 0.9+ after 5); an
s never measured takes the nearest measured above, else below, else 1.0 (optimistic: untried is
tried). The walk runs in expectation (a forward pass over round-start probabilities), per
request, incrementally: a round is walked as soon as its labels decide it. A plain decode round
(depth 0) breaks a request's labels, and so does its leaving the batch (its end). Every
estimate is a decayed sum (weight 1 - alpha per verified position), so it follows a shift in
traffic within ≈ 1/alpha positions.
"""

from __future__ import annotations

STREAK_CAP = 8  # q(s) for s >= 8 is pooled: acceptance has flattened well before (0.9+ at 5)


class _Stream:
    """One request's labels since its last break: 1 accepted, 0 rejected, None unknown."""

    __slots__ = ("labels", "streaks", "pending", "done", "streak")

    def __init__(self, gamma_max: int) -> None:
        self.labels: list[int | None] = []
        self.streaks: list[int] = []  # s before each label (accepted-or-unknown run, capped)
        self.pending = [dict() for _ in range(gamma_max)]  # per depth: round start -> probability
        for p in self.pending:
            p[0] = 1.0
        self.done = [0] * gamma_max  # per depth: round starts below this are walked
        self.streak = 0

    def add(self, label: int | None) -> None:
        self.labels.append(label)
        self.streaks.append(self.streak)
        self.streak = 0 if label == 0 else min(self.streak + 1, STREAK_CAP)


class AcceptanceWalk:
    def __init__(self, gamma_max: int, alpha: float) -> None:
        self.gamma_max, self.keep = gamma_max, 1.0 - alpha
        self.reset()

    def reset(self, prior: list[float] | None = None, weight: float = 0.0) -> None:
        """Forget everything (a new draft); prior[g-1] = E_g counted as `weight` rounds."""
        g_max = self.gamma_max
        self.streams: dict = {}
        self.hits, self.tries = [0.0] * (STREAK_CAP + 1), [0.0] * (STREAK_CAP + 1)
        self.q = [1.0] * (STREAK_CAP + 1)
        prior = prior or [g + 1.0 for g in range(1, g_max + 1)]
        self.tokens = [weight * e for e in prior[:g_max]]
        self.rounds = [float(weight)] * g_max

    def expected_tokens(self, depth: int) -> float:
        """E[accepted + 1] per row for a round of `depth` proposals (1 at depth 0)."""
        if depth == 0:
            return 1.0
        r = self.rounds[depth - 1]
        return self.tokens[depth - 1] / r if r > 0 else depth + 1.0

    def observe(self, requests, proposed, accepted, emitted=()) -> None:
        """One engine round: per row its request, the proposals made (0 = a decode step), how
        many were accepted and how many tokens it emitted (fewer than accepted + 1 where the
        request ended inside the round; empty = accepted + 1 each)."""
        emitted = emitted or [k + 1 for k in accepted]
        verified = sum(min(k + 1, e) for p, k, e in zip(proposed, accepted, emitted) if p)
        if verified:
            f = self.keep**verified
            for acc in (self.tokens, self.rounds, self.hits, self.tries):
                acc[:] = [x * f for x in acc]
        touched, breaks = [], []  # breaks: (stream, ended)
        for rid, p, k, e in zip(requests, proposed, accepted, emitted):
            st = self.streams.get(rid)
            if not p:  # a decode step: nothing proposed, the labels stop here
                if st is not None:
                    breaks.append((self.streams.pop(rid), False))
                continue
            if st is None:
                st = self.streams[rid] = _Stream(self.gamma_max)
            labels = [1] * k + [0 if k < p else None]
            for label in labels[:e]:  # a request's last round: its tokens past the end never count
                if label is not None:
                    s = st.streak
                    self.tries[s] += 1.0
                    self.hits[s] += label
                st.add(label)
            if e < len(labels):
                breaks.append((self.streams.pop(rid), True))
            else:
                touched.append(st)
        present = set(requests)
        breaks += [(self.streams.pop(rid), True) for rid in [r for r in self.streams if r not in present]]
        self._refill()
        for st in touched:
            self._advance(st)
        for st, ended in breaks:
            self._advance(st, final=True, ended=ended)

    def _refill(self) -> None:
        seen = [s for s in range(STREAK_CAP + 1) if self.tries[s] > 0]
        for s in range(STREAK_CAP + 1):
            above = [t for t in seen if t >= s]
            t = above[0] if above else (seen[-1] if seen else None)
            self.q[s] = 1.0 if t is None else self.hits[t] / self.tries[t]

    def _advance(self, st: _Stream, final: bool = False, ended: bool = False) -> None:
        """Walk every round start whose outcome the labels now decide: all of a round's positions
        are labelled, or a rejection among them ends it (a poor draft's rounds of γ 6 add one
        label each: waiting for six would keep a swapped-in draft at its optimistic prior for six
        rounds). When final, all of them (past the last label: unknown after a decode step,
        nothing when the request ended, as serving's last round stops at the request's end) and
        rounds starting past it are dropped."""
        labels, n = st.labels, len(st.labels)
        for gi in range(self.gamma_max):
            pending, g = st.pending[gi], gi + 1
            start = st.done[gi]
            while start < n:
                if not final and start + g > n and 0 not in labels[start:n]:
                    break  # the round runs past what is labelled: decided by later rounds
                mass = pending.pop(start, 0.0)
                if mass:
                    self._round(st, pending, start, g, mass, ended)
                start += 1
            st.done[gi] = start

    def _round(self, st: _Stream, pending: dict, start: int, g: int, mass: float, ended: bool) -> None:
        labels, n = st.labels, len(st.labels)
        tokens, reach = 0.0, 1.0
        for k in range(g):
            j = start + k
            if j >= n and ended:  # the request ends inside this round: it emits what is left
                tokens += reach * (n - start)
                reach = 0.0
                break
            if j < n:
                label = labels[j]
                p = self.q[st.streaks[j]] if label is None else label
            else:  # past the last label after a decode step: the run so far continues unknown
                p = self.q[min(st.streak + j - n, STREAK_CAP)]
            stop = reach * (1.0 - p)
            if stop:
                tokens += stop * (k + 1)
                pending[j + 1] = pending.get(j + 1, 0.0) + mass * stop
            reach *= p
            if not reach:
                break
        if reach:  # all g accepted: + the bonus token, unless the request ended at the last one
            tokens += reach * (g if ended and start + g >= n else g + 1)
            pending[start + g + 1] = pending.get(start + g + 1, 0.0) + mass * reach
        self.tokens[g - 1] += mass * tokens
        self.rounds[g - 1] += mass
