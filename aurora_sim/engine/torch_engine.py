"""The PyTorch speculative-decoding engine: batched, continuous, lossless.

State per live request (index n = its last committed token, whose target KV is not cached yet):
    target KV   positions 0..n-1           (a verify writes n..n+γ; rejected ones are dropped
                                             by not advancing past them)
    draft KV    positions 0..draft_len-1    (catch-up recomputes draft_len..n each round)
    features    target hidden states (three layers) at every committed position, for the
                EAGLE-3 head's catch-up and for the learner.
One round, for the whole batch at once:
    1. admit waiting requests into free slots and prefill them (their first token comes from
       the prefill logits);
    2. draft: one catch-up forward over draft_len..n (ragged, padded), then γ-1 single steps;
    3. verify: one target forward over [x_n, d_1..d_γ] per row;
    4. per row, `verify_chain` accepts a prefix and draws the next token from the row's own
       generator, so a request's tokens never depend on its batch-mates.
`swap_draft` takes effect at the next round boundary: the new draft re-reads each live
request's context in its catch-up forward, so nothing in flight is lost.
"""

from __future__ import annotations

import torch

from aurora_sim.engine.protocol import RequestResult, RoundOutcome
from aurora_sim.engine.sampling import sample, target_probs, verify_chain
from aurora_sim.engine.slots import Live, SlotEngine
from aurora_sim.errors import AuroraError
from aurora_sim.models.drafts import Draft, default_target_layers
from aurora_sim.models.linear import set_weight_format, weight_format_of
from aurora_sim.models.llama import Llama

DEFAULT_MAX_LEN = 1024


class TorchSpecEngine(SlotEngine):
    def __init__(
        self,
        target: Llama,
        draft: Draft | None = None,
        gamma: int = 4,
        max_batch: int = 8,
        max_len: int | None = None,
        draft_version: int = 0,
        keep_logits: bool = False,
    ):
        if gamma < 0:
            raise AuroraError(f"gamma must be >= 0, got {gamma}")
        self.target = target
        self.gamma = gamma
        self._init_slots(max_batch)
        # KV memory is slots x max_len per layer, allocated up front: size it to the traffic
        # (smollm2's 8192-token window would cost ~380 MB per slot), not to the model's limit.
        self.max_len = min(max_len or DEFAULT_MAX_LEN, target.spec.max_position)
        self.keep_logits = keep_logits
        # Stop a round's chain at the first draft step where no row's top draft probability
        # reaches this (SpecDec++/AdaEDL-style; the `confidence` depth policy); None = never.
        self.confidence_floor: float | None = None
        p = target.lm_head.weight
        self.device, self.dtype = p.device, p.dtype
        self.cache = target.new_cache(max_batch, self.max_len)
        # Features are captured even with no draft, so a day-0 head can be swapped in later.
        self.feature_layers = (
            tuple(draft.target_layers)
            if draft is not None and draft.uses_features
            else default_target_layers(target.spec.num_layers)
        )
        width = len(self.feature_layers) * target.spec.hidden_size
        self.features = torch.zeros(max_batch, self.max_len, width, dtype=self.dtype, device=self.device)
        self.draft: Draft | None = None
        self.draft_version = draft_version
        self._install(draft, draft_version)

    # ---- public interface (add, has_work, swap_draft, cancel, pop_finished: SlotEngine) ------
    @torch.inference_mode()
    def step(self) -> list[RoundOutcome]:
        rows, speculative = self._start_round()
        if not rows:
            return []
        outcomes = self._spec_round(rows) if speculative else self._plain_round(rows)
        self.round_index += 1
        return outcomes

    # ---- draft installation -------------------------------------------------------------------
    def _install(self, draft: Draft | None, version: int) -> None:
        self._check_draft(draft)
        if draft is not None:  # one serving precision per engine: the draft follows the target's
            set_weight_format(draft, weight_format_of(self.target))
        self.draft, self.draft_version = draft, version
        self.draft_cache = draft.new_cache(self.max_batch, self.max_len) if draft is not None else None
        for row in self.live.values():
            row.draft_len = 0  # the new draft re-reads the whole context in its catch-up

    # ---- prefill ------------------------------------------------------------------------------
    def _admit(self) -> list[Live]:
        def make_row(req, slot):
            gen = torch.Generator().manual_seed(req.seed)
            return Live(req, slot, list(req.prompt_ids), 0, gen, RequestResult(req.request_id, req.prompt_ids, []))

        joining = self._take_waiting(make_row)
        if not joining:
            return joining
        lengths = [len(r.req.prompt_ids) for r in joining]
        tokens = self._pad([list(r.req.prompt_ids) for r in joining], max(lengths))
        slots = self._ids([r.slot for r in joining])
        logits, feats = self.target(
            tokens,
            slots,
            self._ids([0] * len(joining)),
            self.cache,
            self.feature_layers,
            logits_at=self._ids([n - 1 for n in lengths]),
        )
        for i, row in enumerate(joining):
            length = lengths[i]
            self.features[row.slot, :length] = feats[i, :length]
            p = target_probs(logits[i, 0], row.req.temperature, row.req.top_p)
            self._emit(row, [sample(p, row.gen)], verify_round=False)
        return joining

    # ---- rounds ---------------------------------------------------------------------------------
    def _plain_round(self, rows: list[Live]) -> list[RoundOutcome]:
        """Target-only decoding: one token per request per round."""
        tokens = self._ids([[r.tokens[-1]] for r in rows])
        start = self._ids([r.n for r in rows])
        slots = self._ids([r.slot for r in rows])
        logits, feats = self.target(tokens, slots, start, self.cache, self.feature_layers)
        self.features[slots, start] = feats[:, 0]
        greedy = logits[:, 0].argmax(-1).tolist()  # one batched argmax serves every greedy row
        outcomes = []
        for i, row in enumerate(rows):
            n = row.n
            if row.req.temperature <= 0.0:
                nxt = greedy[i]
            else:
                nxt = sample(target_probs(logits[i, 0], row.req.temperature, row.req.top_p), row.gen)
            emitted = self._emit(row, [nxt], verify_round=True, proposed=0, accepted=0)
            outcomes.append(self._outcome(row, n, (), 0, nxt, emitted, (), (), feats[i, :1], logits[i]))
        return outcomes

    def _spec_round(self, rows: list[Live]) -> list[RoundOutcome]:
        gamma, draft = self.depth, self.draft  # this round's depth (1..self.gamma)
        slots = self._ids([r.slot for r in rows])
        q_rows: list[list[torch.Tensor]] = [[] for _ in rows]
        props: list[list[int]] = [[] for _ in rows]

        # Draft step 1: catch up on draft_len..n (true target features), predict d_1.
        spans = [list(range(r.draft_len, r.n + 1)) for r in rows]
        width = max(len(s) for s in spans)
        tok = self._pad([[r.tokens[p] for p in s] for r, s in zip(rows, spans)], width)
        feat = self._catchup_features(rows, spans, width) if draft.uses_features else None
        last = self._ids([len(s) - 1 for s in spans])
        logits, hidden = draft(
            tok, feat, slots, self._ids([r.draft_len for r in rows]), self.draft_cache, logits_at=last
        )
        ar = torch.arange(len(rows), device=self.device)
        step_logits = logits[:, 0]
        prev_hidden = hidden[ar, last][:, None] if hidden is not None else None
        steps = 1
        if self._unsure(step_logits):
            gamma = 0
        else:
            self._draw(rows, step_logits, q_rows, props)
        # Draft steps 2..γ: each consumes the previous proposal (and the draft's own hidden state).
        for i in range(1, gamma):
            tok = self._ids([[p[-1]] for p in props])
            start = self._ids([r.n + i for r in rows])
            logits, hidden = draft(tok, prev_hidden, slots, start, self.draft_cache)
            prev_hidden = hidden
            steps += 1
            if self._unsure(logits[:, 0]):
                gamma = i  # d_{i+1} is not proposed: the chain ends with i proposals
                break
            self._draw(rows, logits[:, 0], q_rows, props)
        if steps != gamma:  # stopped early: the round's shape is what actually ran
            self._spec_shape(rows, gamma, steps)

        # Verify: one target forward over [x_n, d_1..d_γ] for every row.
        tok = self._ids([[r.tokens[-1]] + p for r, p in zip(rows, props)])
        start = self._ids([r.n for r in rows])
        logits, feats = self.target(tok, slots, start, self.cache, self.feature_layers)
        greedy = logits.argmax(-1).tolist()  # [B][γ+1]
        outcomes = []
        for i, row in enumerate(rows):
            n = row.n
            self.features[row.slot, n : n + gamma + 1] = feats[i]
            if row.req.temperature <= 0.0:
                # verify_chain with one-hot p and q, without building them: accept the longest
                # prefix that matches the target's argmax, then take the argmax after it
                k = 0
                while k < gamma and props[i][k] == greedy[i][k]:
                    k += 1
                nxt = greedy[i][k]
                q_tok = (1.0,) * gamma
                p_tok = tuple(1.0 if t == greedy[i][j] else 0.0 for j, t in enumerate(props[i]))
            else:
                p = target_probs(logits[i], row.req.temperature, row.req.top_p)
                q = torch.stack(q_rows[i]) if q_rows[i] else None  # a chain stopped before d_1
                k, nxt = verify_chain(props[i], q, p, row.gen)
                q_tok = tuple(float(q[j, t]) for j, t in enumerate(props[i]))
                p_tok = tuple(float(p[j, t]) for j, t in enumerate(props[i]))
            # Draft KV stays valid where its inputs were true: the LM draft's entries for
            # accepted proposals; the EAGLE head's only up to x_n (later ones used its own features).
            row.draft_len = n + 1 + (0 if draft.uses_features else min(k, max(gamma - 1, 0)))
            emitted = self._emit(row, props[i][:k] + [nxt], verify_round=True, proposed=gamma, accepted=k)
            outcomes.append(
                self._outcome(row, n, tuple(props[i]), k, nxt, emitted, q_tok, p_tok, feats[i, : k + 1], logits[i])
            )
        return outcomes

    def _unsure(self, step_logits: torch.Tensor) -> bool:
        """True when a confidence floor is set and no row's top draft probability reaches it
        (the batch verifies one chain length, so it stops only when no row would gain)."""
        if self.confidence_floor is None:
            return False
        top = torch.softmax(step_logits.float(), dim=-1).max(dim=-1).values
        return bool((top < self.confidence_floor).all())

    def _draw(self, rows, step_logits, q_rows, props) -> None:
        greedy = step_logits.argmax(-1).tolist()
        for i, row in enumerate(rows):
            if row.req.temperature <= 0.0:  # a greedy draft proposes its argmax (q is one-hot)
                props[i].append(greedy[i])
                continue
            q = target_probs(step_logits[i], row.req.temperature, row.req.top_p)
            q_rows[i].append(q)
            props[i].append(sample(q, row.gen))

    def _catchup_features(self, rows, spans, width) -> torch.Tensor:
        """Fused target features h_{p-1} for each catch-up position p (zeros for p = 0)."""
        raw = torch.zeros(len(rows), width, self.features.shape[-1], dtype=self.dtype, device=self.device)
        for i, (row, span) in enumerate(zip(rows, spans)):
            lo, hi = span[0], span[-1]
            if lo == 0:
                raw[i, 1 : hi + 1] = self.features[row.slot, 0:hi]
            else:
                raw[i, : hi - lo + 1] = self.features[row.slot, lo - 1 : hi]
        return self.draft.fuse(raw)

    # ---- bookkeeping ----------------------------------------------------------------------------
    def _outcome(self, row, n, proposals, k, nxt, emitted, q_tok, p_tok, feats, logits) -> RoundOutcome:
        return RoundOutcome(
            request_id=row.req.request_id,
            round_index=self.round_index,
            draft_version=self.draft_version,
            position=n,
            proposals=proposals,
            accepted=k,
            next_token=nxt,
            emitted=emitted,
            draft_probs=q_tok,
            target_probs=p_tok,
            finished=row.slot not in self.live or self.live[row.slot] is not row,
            target_features=feats.clone(),
            target_logits=logits.clone() if self.keep_logits else None,
        )

    def _ids(self, values) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=self.device)

    def _pad(self, seqs: list[list[int]], width: int) -> torch.Tensor:
        return self._ids([s + [0] * (width - len(s)) for s in seqs])
