"""The replay's fast path for greedy traffic: engine rounds by bookkeeping over known trajectories.

Under greedy verification a request's output is fixed by the target alone (the engine is
lossless), so it is decoded once, at a large batch, into the trajectory cache
(`aurora_sim.replay.trajectories`). What the draft changes is only how many rounds the output
takes. So this engine runs the models only when the draft's view of a request changes:
    admission  one target pass over prompt + output (the features the EAGLE head reads, and the
               learner's teacher), then the serving draft's chain at every possible round start
               (`aurora_sim.engine.proposals`);
    swap       the new draft's chains for the rest of every live request (the round-by-round
               engine's new draft re-reads the whole context too);
and a round is a table look-up: the row at n accepts accepted[n] proposals and emits
x_{n+1}..x_{n+k+1}. Slots, admission order, max_new_tokens/stop handling and the round's shape
(what the cost model charges) are the round-by-round engine's own (`aurora_sim.engine.slots`),
and so is a round's speculation depth (`depth_fn`: 0..γ, read off the chains computed at γ),
so the two give the same tokens, the same rounds and the same virtual time up to float-order
noise in the draft (measured in tests/test_fast_replay.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from aurora_sim.engine.proposals import greedy_chains
from aurora_sim.engine.protocol import RequestResult, RoundOutcome
from aurora_sim.engine.slots import Live, SlotEngine
from aurora_sim.errors import AuroraError
from aurora_sim.learner.teacher import Teacher, teacher_pass
from aurora_sim.models.drafts import default_target_layers
from aurora_sim.models.linear import set_weight_format, weight_format_of

DEFAULT_MAX_LEN = 1024
FLOOR_VERSION = -1  # the draft_version of rounds the two-draft arm's floor head drafted
TARGET_BATCH = 4  # rows per target pass: batching saves per-call cost, padding wastes arithmetic
CHAIN_BATCH = 16  # rows per draft chain pass (the same trade-off)


@dataclass(eq=False)  # rows are compared by identity (they hold tensors)
class FastRow(Live):
    ext: list[int] = field(default_factory=list)  # prompt + output + overhang (the truth)
    end: int = 0  # len(prompt + output)
    features: torch.Tensor | None = None  # [end, F]
    final: torch.Tensor | None = None  # the teacher's last-layer outputs (learning only)
    chain_lo: int = 0  # accepted[i] / proposals[i] belong to the round starting at chain_lo + i
    accepted: list[int] = field(default_factory=list)
    proposals: list[list[int]] = field(default_factory=list)
    chains_version: int | None = None  # the draft version accepted/proposals come from
    # the two-draft arm's frozen floor head: its chains (computed once) and its cache length
    floor_lo: int = 0
    floor_accepted: list[int] = field(default_factory=list)
    floor_proposals: list[list[int]] = field(default_factory=list)
    floor_len: int = 0
    floor_ready: bool = False
    on_floor: bool = False  # this round drafts with the floor head


class FastEngine(SlotEngine):
    def __init__(
        self,
        target,
        draft,
        gamma: int,
        max_batch: int,
        trajectories: dict,
        max_len: int | None = None,
        draft_version: int = 0,
        teacher: bool = False,
        full_chains: bool = False,
        floor=None,
    ):
        """trajectories: request_id -> Trajectory (the trajectory cache's, for these requests).
        teacher: keep each request's Teacher on its RequestResult (online learning).
        full_chains: compute every proposal of every round, not just up to the first rejection
        (the discard loss trains on rejected tails).
        floor: the two-draft arm's frozen head. Each round, `route_fn(request)` says per row
        whether the floor head drafts it (True) or the serving draft does; a round whose rows
        use both heads runs both (RoundStats.draft_models = 2, both paid). Rounds the floor
        drafts report draft_version FLOOR_VERSION."""
        if gamma < 0:
            raise AuroraError(f"gamma must be >= 0, got {gamma}")
        self.target, self.gamma = target, gamma
        self._init_slots(max_batch)
        self.max_len = min(max_len or DEFAULT_MAX_LEN, target.spec.max_position)
        self.trajectories = trajectories
        self.teacher, self.full_chains = teacher, full_chains
        self.feature_layers = (
            tuple(draft.target_layers)
            if draft is not None and draft.uses_features
            else default_target_layers(target.spec.num_layers)
        )
        self.draft, self.draft_version = None, draft_version
        self.floor, self.route_fn = None, None
        if floor is not None:
            self._check_draft(floor)
            if not floor.uses_features or draft is None or not draft.uses_features:
                raise AuroraError("the two-draft arm needs two EAGLE-3 heads (a floor and a serving draft)")
            set_weight_format(floor, weight_format_of(target))
            self.floor = floor
        self.timings = {"target_s": 0.0, "draft_s": 0.0, "target_requests": 0, "draft_passes": 0}
        self.lookahead = 1
        self._order: list = []  # requests in the order they are expected (plan)
        self._cursor = 0
        self._ready: dict[str, FastRow] = {}  # scratch rows at n = prompt length, computed ahead
        self._index: dict[str, int] = {}
        self._install(draft, draft_version)

    def plan(self, requests: list, lookahead: int = 16) -> None:
        """The order requests will arrive in (a trace's). Their target passes and the serving
        draft's chains are then computed `lookahead` requests at a time, in one batch (the models
        cost little more for 16 rows than for one); chains computed ahead are recomputed if a
        swap lands before their request is admitted."""
        self._order, self._cursor, self.lookahead = list(requests), 0, max(1, lookahead)
        self._index = {r.request_id: i for i, r in enumerate(self._order)}

    # ---- the round ---------------------------------------------------------------------------
    @torch.inference_mode()
    def step(self) -> list[RoundOutcome]:
        rows, speculative = self._start_round()
        if not rows:
            return []
        outcomes = [self._round(row, speculative) for row in rows]
        self.round_index += 1
        return outcomes

    def _round(self, row: FastRow, speculative: bool) -> RoundOutcome:
        n, gamma = row.n, self.depth
        version = self.draft_version
        if not speculative:
            props, k = (), 0
        elif row.on_floor:
            i = n - row.floor_lo
            props, k = tuple(row.floor_proposals[i][:gamma]), min(row.floor_accepted[i], gamma)
            row.floor_len, version = n + 1, FLOOR_VERSION
        else:
            # Chains are computed at the maximum γ; a greedy round of depth g <= γ proposes the
            # chain's first g tokens (the draft's steps do not depend on how many follow) and so
            # accepts min(accepted, g) of them.
            i = n - row.chain_lo
            props, k = tuple(row.proposals[i][:gamma]), min(row.accepted[i], gamma)
            # the EAGLE head's cache stays valid up to x_n; an LM draft's also over accepted ones
            row.draft_len = n + 1 + (0 if self.draft.uses_features else min(k, gamma - 1))
        new = row.ext[n + 1 : n + k + 2]
        emitted = self._emit(row, new, verify_round=True, proposed=len(props), accepted=k)
        truth = row.ext[n + 1 : n + 1 + len(props)]
        return RoundOutcome(
            request_id=row.req.request_id,
            round_index=self.round_index,
            draft_version=version,
            position=n,
            proposals=props,
            accepted=k,
            next_token=new[-1],
            emitted=emitted,
            draft_probs=(1.0,) * len(props),
            target_probs=tuple(1.0 if t == x else 0.0 for t, x in zip(props, truth)),
            finished=self.live.get(row.slot) is not row,
        )

    # ---- admission ---------------------------------------------------------------------------
    def _admit(self) -> list[FastRow]:
        joining = self._take_waiting(self._make_row)
        if not joining:
            return joining
        for row in joining:  # the prefill's token
            self._emit(row, [row.ext[row.n + 1]], verify_round=False)
        alive = [r for r in joining if self.live.get(r.slot) is r]
        for row in joining:
            if row not in alive:  # finished at its first token: nothing computed is needed
                self._ready.pop(row.req.request_id, None)
        if self._ready and self._order:
            # requests the plan expected long before these ones were refused or cancelled
            first = min(self._index.get(r.req.request_id, 0) for r in joining)
            for rid in [rid for rid in self._ready if self._index.get(rid, first) < first - 4 * self.lookahead]:
                del self._ready[rid]
        if alive and (self.draft is not None or self.teacher):  # no-spec: nothing to compute
            self._prepare([r.req for r in alive])
            for row in alive:
                pre = self._ready.pop(row.req.request_id)
                row.features, row.final = pre.features, pre.final
                row.chain_lo, row.accepted, row.proposals = pre.chain_lo, pre.accepted, pre.proposals
                row.floor_lo, row.floor_accepted, row.floor_proposals = (
                    pre.floor_lo,
                    pre.floor_accepted,
                    pre.floor_proposals,
                )
                row.floor_ready = pre.floor_ready
                if self.teacher:
                    row.result.teacher = Teacher(pre.features, pre.final)
        return joining

    def _prepare(self, reqs: list) -> None:
        """Target pass and current chains for `reqs` (rows just admitted, at n = prompt length),
        plus the next requests of the plan, in one batch each."""
        need = [r for r in reqs if r.request_id not in self._ready]
        if need and self._order:
            wanted = {r.request_id for r in reqs}
            while self._cursor < len(self._order) and len(need) < self.lookahead + len(reqs):
                r = self._order[self._cursor]
                self._cursor += 1
                if r.request_id not in wanted and r.request_id not in self._ready and r.request_id in self.trajectories:
                    need.append(r)
        if need:
            # similar lengths together: a padded batch costs its longest row times its rows
            need.sort(key=lambda r: len(r.prompt_ids) + len(self.trajectories[r.request_id].output_ids))
            for i in range(0, len(need), TARGET_BATCH):
                rows = [self._make_row(r, -1) for r in need[i : i + TARGET_BATCH]]
                for row in rows:  # as after the prefill: the chains start at n = prompt length
                    row.tokens.append(row.ext[row.n + 1])
                self._target_pass(rows)
                self._ready.update({r.req.request_id: r for r in rows})
        if any(self._ready[r.request_id].chains_version != self.draft_version for r in reqs):
            self._chains([r for r in self._ready.values() if r.chains_version != self.draft_version])
        if self.floor is not None and any(not self._ready[r.request_id].floor_ready for r in reqs):
            # the floor never changes: its chains are computed once, from the prompt on
            waiting = sorted((r for r in self._ready.values() if not r.floor_ready), key=lambda r: r.end)
            for i in range(0, len(waiting), CHAIN_BATCH):
                self._chain_batch(waiting[i : i + CHAIN_BATCH], floor=True)

    def _make_row(self, req, slot: int) -> FastRow:
        traj = self.trajectories.get(req.request_id)
        if traj is None:
            raise AuroraError(f"request {req.request_id}: no trajectory (the fast path needs one per request)")
        if req.temperature > 0:
            raise AuroraError(
                f"request {req.request_id}: temperature {req.temperature} > 0 (the fast path is greedy only)"
            )
        ext = list(req.prompt_ids) + list(traj.output_ids) + list(traj.overhang)
        if len(traj.overhang) + 1 < self.gamma:
            raise AuroraError(f"request {req.request_id}: trajectory overhang {len(traj.overhang)} < γ-1")
        return FastRow(
            req,
            slot,
            list(req.prompt_ids),
            0,
            None,
            RequestResult(req.request_id, req.prompt_ids, []),
            ext=ext,
            end=len(req.prompt_ids) + len(traj.output_ids),
        )

    def _target_pass(self, rows: list[FastRow]) -> None:
        """Target features (and the learner's last-layer outputs) of each row's whole request.
        When learning, one request at a time through `teacher_pass`, exactly as the round-by-round
        engine's replay computes its teacher, so both engines' learners see the same numbers."""
        t0 = time.perf_counter()
        if self.teacher:
            for row in rows:
                t = teacher_pass(self.target, row.ext[: row.end], len(row.req.prompt_ids), self.feature_layers)
                row.features, row.final = t.features, t.final
        else:
            width, b = max(r.end for r in rows), len(rows)
            tokens = _ids([r.ext[: r.end] + [0] * (width - r.end) for r in rows])
            _, feats = self.target.trunk(
                tokens, torch.arange(b), torch.zeros(b, dtype=torch.long), None, self.feature_layers, last=False
            )
            for i, row in enumerate(rows):
                row.features = feats[i, : row.end].clone()
        self.timings["target_s"] += time.perf_counter() - t0
        self.timings["target_requests"] += len(rows)

    # ---- the draft's view --------------------------------------------------------------------
    def _install(self, draft, version: int) -> None:
        self._check_draft(draft)
        if draft is not None:
            set_weight_format(draft, weight_format_of(self.target))
        self.draft, self.draft_version = draft, version
        rows = [self.live[s] for s in sorted(self.live)]
        for row in rows:
            row.draft_len = 0  # the new draft re-reads the whole context, as in the engine
        if rows:
            self._chains(rows)

    def _chains(self, rows: list[FastRow]) -> None:
        """The serving draft's chain at every round start n >= row.n of each row."""
        if self.draft is None or self.gamma == 0:
            return
        missing = [r for r in rows if r.features is None]  # admitted while no draft served
        for i in range(0, len(missing), TARGET_BATCH):
            self._target_pass(missing[i : i + TARGET_BATCH])
        rows = sorted(rows, key=lambda r: r.end)  # similar lengths share a padded batch
        for i in range(0, len(rows), CHAIN_BATCH):
            self._chain_batch(rows[i : i + CHAIN_BATCH])

    def _spec_shape(self, rows, depth: int, draft_steps: int) -> None:
        """With a floor head, each row is routed first: its catch-up is counted against the
        cache of the head that drafts it, and a round using both heads pays for both."""
        if self.floor is not None:
            for r in rows:
                r.on_floor = bool(self.route_fn(r.req)) if self.route_fn is not None else True
        super()._spec_shape(rows, depth, draft_steps)
        if self.floor is not None:
            self.last_round.draft_models = len({r.on_floor for r in rows})

    def _draft_cached(self, row: FastRow) -> int:
        return row.floor_len if row.on_floor else row.draft_len

    def _chain_batch(self, rows: list[FastRow], floor: bool = False) -> None:
        t0 = time.perf_counter()
        draft = self.floor if floor else self.draft
        width = max(r.end - 1 for r in rows)  # chains start at most at end-2: positions 0..end-2
        tokens = _ids([r.ext[: r.end - 1] + [0] * (width - r.end + 1) for r in rows])
        feats = None
        if draft.uses_features:
            feats = torch.zeros(len(rows), width, rows[0].features.shape[-1], dtype=rows[0].features.dtype)
            for i, r in enumerate(rows):
                feats[i, : r.end - 1] = r.features[: r.end - 1]
        t_width = max(len(r.ext) for r in rows)
        truth = _ids([r.ext + [-2] * (t_width - len(r.ext)) for r in rows])
        lo = _ids([r.n for r in rows])
        count = _ids([r.end - 1 - r.n for r in rows])
        ch = greedy_chains(draft, tokens, feats, truth, lo, count, self.gamma, full=self.full_chains)
        acc, props = ch.accepted.tolist(), ch.proposals.tolist()
        for i, r in enumerate(rows):
            c = r.end - 1 - r.n
            if floor:
                r.floor_lo, r.floor_accepted, r.floor_proposals = r.n, acc[i][:c], props[i][:c]
                r.floor_ready = True
            else:
                r.chain_lo, r.accepted, r.proposals = r.n, acc[i][:c], props[i][:c]
                r.chains_version = self.draft_version
        self.timings["draft_s"] += time.perf_counter() - t0
        self.timings["draft_passes"] += 1


def _ids(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)
