"""What every engine of ours shares: the waiting queue, slots, request validation, emitting
tokens up to max_new_tokens or a stop token, and swaps that take effect at the next round.

The round-by-round engine (`torch_engine`) and the replay's fast path (`fast_engine`) differ
only in how a round's tokens are found; keeping the bookkeeping in one place is what makes
their requests end at the same token and their rounds count the same way.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch

from aurora_sim.engine.protocol import GenRequest, RequestResult
from aurora_sim.errors import AuroraError


@dataclass
class RoundStats:
    """Shape of one engine step (what a CostModel charges for)."""

    batch: int = 0  # rows in the round (after admission)
    gamma: int = 0  # draft steps (0 = target-only); the round's depth unless a chain stopped early
    draft_tokens: int = 0  # catch-up + γ-1 single steps, summed over rows
    verify_tokens: int = 0
    prefill_tokens: int = 0
    prefill_max: int = 0  # the longest prompt admitted (the prefill is padded to it)
    context_tokens: int = 0  # KV length attended to, summed over rows
    admitted: tuple[str, ...] = ()
    draft_models: int = 1  # draft heads that ran this round (2: the two-draft arm's rows split)


@dataclass
class Live:
    req: GenRequest
    slot: int
    tokens: list[int]  # prompt + generated; tokens[-1] is x_n
    draft_len: int
    gen: torch.Generator | None
    result: RequestResult
    rounds: int = 0

    @property
    def n(self) -> int:
        return len(self.tokens) - 1


class SlotEngine:
    """Subclasses set target, gamma, max_len, draft, draft_version and implement step()."""

    def _init_slots(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._pending: tuple = None
        self.waiting: deque[GenRequest] = deque()
        self.live: dict[int, Live] = {}
        self.free_slots = list(range(max_batch))
        self.done: list[RequestResult] = []
        self.round_index = 0
        # What the last step did, for cost models: rows, draft steps and token counts.
        self.last_round = RoundStats()
        # The speculation depth of each round: depth_fn(batch, context_tokens) -> 0..gamma, asked
        # after admission (a depth policy sees the round it decides for); None = gamma always.
        # 0 makes the round a plain decode step. `gamma` stays the maximum: what a request must
        # fit in the context window and what the fast path's chains are computed at.
        self.depth_fn = None

    def add(self, req: GenRequest) -> None:
        self.check(req)
        self.waiting.append(req)

    def check(self, req: GenRequest) -> None:
        """Raise AuroraError if this engine cannot serve `req` (what add refuses)."""
        need = len(req.prompt_ids) + req.max_new_tokens + self.gamma + 1
        if not req.prompt_ids:
            raise AuroraError(f"request {req.request_id}: empty prompt")
        if need > self.max_len:
            raise AuroraError(
                f"request {req.request_id}: prompt of {len(req.prompt_ids)} tokens + {req.max_new_tokens} new "
                f"+ γ+1 = {need} exceeds the context window ({self.max_len})"
            )
        if max(req.prompt_ids) >= self.target.spec.vocab_size or min(req.prompt_ids) < 0:
            raise AuroraError(f"request {req.request_id}: token id outside the vocabulary")
        if req.max_new_tokens < 1:
            raise AuroraError(f"request {req.request_id}: max_new_tokens must be >= 1")

    def has_work(self) -> bool:
        return bool(self.waiting or self.live)

    def swap_draft(self, draft, version: int) -> None:
        """Queue a new draft; it serves from the next round on."""
        self._check_draft(draft)
        self._pending = (draft, version)

    def cancel(self, request_id: str) -> bool:
        """Drop a waiting or live request between rounds (client gone, stop string matched);
        its slot is free for the next admission. False if the engine does not hold it."""
        for i, req in enumerate(self.waiting):
            if req.request_id == request_id:
                del self.waiting[i]
                return True
        for _slot, row in list(self.live.items()):
            if row.req.request_id == request_id:
                self._release(row)
                return True
        return False

    def run(self, requests: list[GenRequest], on_round=None) -> list[RequestResult]:
        """Convenience loop: serve all requests with continuous batching; results in input order."""
        for r in requests:
            self.add(r)
        results: dict[str, RequestResult] = {}
        while self.has_work():
            outcomes = self.step()
            if on_round is not None:
                on_round(outcomes)
            for res in self.pop_finished():
                results[res.request_id] = res
        return [results[r.request_id] for r in requests]

    def pop_finished(self) -> list[RequestResult]:
        out, self.done = self.done, []
        return out

    def _check_draft(self, draft) -> None:
        if draft is None:
            return
        if draft.vocab_size != self.target.spec.vocab_size:
            raise AuroraError(
                f"draft vocabulary ({draft.vocab_size}) does not match the target's ({self.target.spec.vocab_size})"
            )
        if draft.uses_features and tuple(draft.target_layers) != getattr(self, "feature_layers", draft.target_layers):
            raise AuroraError(f"draft reads target layers {draft.target_layers}, engine captures {self.feature_layers}")

    def _start_round(self) -> tuple[list[Live], bool]:
        """A round's common first half: the pending draft goes live, waiting requests are
        admitted (subclasses' _admit: prefill), and the round's shape is recorded in last_round
        (what a cost model charges). Returns the rows in slot order and whether they speculate."""
        if self._pending is not None:
            self._install(*self._pending)
            self._pending = None
        stats = self.last_round = RoundStats()
        joining = self._admit()
        stats.admitted = tuple(r.req.request_id for r in joining)
        stats.prefill_tokens = sum(len(r.req.prompt_ids) for r in joining)
        stats.prefill_max = max((len(r.req.prompt_ids) for r in joining), default=0)
        rows = [self.live[s] for s in sorted(self.live)]
        self.depth = self._round_depth(rows)
        speculative = self.draft is not None and self.depth > 0
        if rows:
            stats.batch = len(rows)
            stats.context_tokens = sum(r.n + 1 for r in rows)
            if not speculative:
                stats.verify_tokens = len(rows)
            else:
                self._spec_shape(rows, self.depth, self.depth)
        return rows, speculative

    def _round_depth(self, rows: list[Live]) -> int:
        if self.draft is None or not rows:
            return 0
        if self.depth_fn is None:
            return self.gamma
        depth = self.depth_fn(len(rows), sum(r.n + 1 for r in rows))
        if not isinstance(depth, int) or not 0 <= depth <= self.gamma:
            raise AuroraError(f"depth policy chose {depth!r}; it must be an int in 0..gamma ({self.gamma})")
        return depth

    def _spec_shape(self, rows: list[Live], depth: int, draft_steps: int) -> None:
        """last_round's draft and verify counts for a speculative round of `depth` proposals that
        ran `draft_steps` draft forwards (one more than depth when a chain stopped early: the step
        that found the draft unsure was paid for). RoundShape.gamma counts draft steps."""
        stats = self.last_round
        stats.gamma = draft_steps
        stats.draft_tokens = sum(r.n + 1 - self._draft_cached(r) for r in rows) + (draft_steps - 1) * len(rows)
        stats.verify_tokens = (depth + 1) * len(rows)

    def _draft_cached(self, row: Live) -> int:
        """Tokens of `row` the drafting head has cached (its catch-up starts there)."""
        return row.draft_len

    def _take_waiting(self, make_row) -> list[Live]:
        """Move waiting requests into free slots (lowest slot first); make_row(req, slot)."""
        joining = []
        while self.waiting and self.free_slots:
            req = self.waiting.popleft()
            row = make_row(req, self.free_slots.pop(0))
            self.live[row.slot] = row
            joining.append(row)
        return joining

    def _release(self, row: Live) -> None:
        del self.live[row.slot]
        self.free_slots.append(row.slot)
        self.free_slots.sort()

    def _emit(
        self, row: Live, new: list[int], verify_round: bool, proposed: int = 0, accepted: int = 0
    ) -> tuple[int, ...]:
        """Append tokens up to max_new_tokens or a stop token; retire the row when done."""
        res, req = row.result, row.req
        kept: list[int] = []
        reason = ""
        for t in new:
            kept.append(t)
            if t in req.stop_ids:
                reason = "stop"
                break
            if len(res.output_ids) + len(kept) >= req.max_new_tokens:
                reason = "length"
                break
        row.tokens.extend(kept)
        res.output_ids.extend(kept)
        if verify_round:
            row.rounds += 1
            res.rounds += 1
            res.round_tokens += len(new)  # what the round generated (accepted + 1), before truncation
            res.proposed_tokens += proposed
            res.accepted_tokens += accepted
        if reason:
            res.finish_reason = reason
            self.done.append(res)
            self._release(row)
        return tuple(kept)
