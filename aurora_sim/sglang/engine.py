"""SGLangEngine: the SpecEngine protocol over an in-process `sglang.Engine` (GPU only).

Written against the 0.5.17 and 0.5.23 sources (keyword names checked by
tests/test_sglang_contract.py), **not yet run**: this machine has no GPU. What it does:
- `add` queues requests; `step` submits up to `max_batch` of them in one `Engine.generate` call
  (SGLang batches them continuously inside) and turns each response into a RequestResult whose
  rounds / accepted / proposed come from `meta_info` through meta.py.
- `swap_draft` pushes the new draft's tensors to SGLang's draft model only (weights.py); it
  takes effect for requests submitted afterwards (a step runs its requests to completion).
- SGLang reports per-request totals, not rounds: `step` returns no RoundOutcome. So it serves
  `aurora generate`-style decoding and the GPU checks; the replay loop, whose virtual clock,
  event log and learner consume per-round outcomes (and features, which the learner recomputes
  with its own copy of the target), refuses it for now (see docs/sglang.md, "What remains").

    eng = SGLangEngine(target_dir, exported_draft_dir, algorithm="EAGLE3", gamma=4, max_batch=8)
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from aurora_sim.engine.protocol import GenRequest, RequestResult, RoundOutcome
from aurora_sim.sglang.meta import spec_stats
from aurora_sim.sglang.runtime import require_sglang


def engine_kwargs(
    target_dir: Path,
    draft_dir: Path | None,
    algorithm: str,
    gamma: int,
    max_batch: int,
    dtype: str = "float32",
    attention_backend: str = "triton",
    seed: int = 0,
    deterministic: bool = True,
    **extra,
) -> dict:
    """Keyword arguments of `sglang.Engine` (= ServerArgs fields) for a chain draft of length γ."""
    kw = {
        "model_path": str(target_dir),
        "dtype": dtype,
        "max_running_requests": max_batch,
        # triton attention avoids flashinfer's large kernel packages on the GPU host and supports
        # EAGLE with topk 1 and deterministic inference (docs/sglang.md)
        "attention_backend": attention_backend,
        "sampling_backend": "pytorch",
        "random_seed": seed,
        "enable_deterministic_inference": deterministic,
        "log_level": "error",
    }
    if draft_dir is not None:
        kw.update(
            {
                "speculative_algorithm": algorithm,
                "speculative_draft_model_path": str(draft_dir),
                # SGLang wants all three or none; a chain: topk 1, verify width γ + 1
                "speculative_num_steps": gamma,
                "speculative_eagle_topk": 1,
                "speculative_num_draft_tokens": gamma + 1,
            }
        )
    kw.update(extra)
    return kw


def sampling_params(req: GenRequest) -> dict:
    p = {
        "max_new_tokens": req.max_new_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "sampling_seed": req.seed,
    }
    if req.stop_ids:
        p["stop_token_ids"] = list(req.stop_ids)
    return p


def to_result(req: GenRequest, out: dict) -> RequestResult:
    """One `Engine.generate` output (dict with output_ids and meta_info) as our RequestResult."""
    meta = out["meta_info"]
    s = spec_stats(meta)
    reason = meta.get("finish_reason")
    reason = reason.get("type", "") if isinstance(reason, dict) else str(reason or "")
    return RequestResult(
        req.request_id,
        req.prompt_ids,
        list(out["output_ids"]),
        rounds=s.verify_rounds,
        round_tokens=s.round_tokens,
        accepted_tokens=s.accepted_drafts,
        proposed_tokens=s.proposed_drafts,
        finish_reason=reason,
    )


class SGLangEngine:
    def __init__(
        self,
        target_dir: Path,
        draft_dir: Path | None,
        *,
        algorithm: str = "EAGLE3",
        gamma: int = 4,
        max_batch: int = 8,
        draft_version: int = 0,
        target_spec=None,
        **engine_extra,
    ):
        self.version = require_sglang()
        import sglang

        self.engine = sglang.Engine(**engine_kwargs(target_dir, draft_dir, algorithm, gamma, max_batch, **engine_extra))
        self.gamma = gamma if draft_dir is not None else 0
        self.max_batch = max_batch
        self.draft_version = draft_version
        self.round_index = 0  # one step = one submitted wave
        self.waiting: deque[GenRequest] = deque()
        self._finished: list[RequestResult] = []
        # what a <= 0.5.17 draft update would also reach in the target (weights.py); with no spec
        # given, read the target's config so the guard is never skipped
        if target_spec is None:
            from aurora_sim.models.llama import LlamaSpec, read_config

            target_spec = LlamaSpec.from_hf(read_config(Path(target_dir)))
        self._target_spec = target_spec

    def add(self, request: GenRequest) -> None:
        self.waiting.append(request)

    def has_work(self) -> bool:
        return bool(self.waiting)

    def step(self) -> list[RoundOutcome]:
        wave = [self.waiting.popleft() for _ in range(min(self.max_batch, len(self.waiting)))]
        if not wave:
            return []
        outs = self.engine.generate(
            input_ids=[list(r.prompt_ids) for r in wave], sampling_params=[sampling_params(r) for r in wave]
        )
        self._finished.extend(to_result(r, o) for r, o in zip(wave, outs))
        self.round_index += 1
        return []  # SGLang reports per-request totals, not rounds

    def swap_draft(self, draft, version: int) -> str:
        from aurora_sim.sglang.weights import push_draft, target_param_names

        spec = self._target_spec
        api = push_draft(self.engine, draft, target_param_names(spec), spec.tie_embeddings)
        self.draft_version = version
        return api

    def pop_finished(self) -> list[RequestResult]:
        done, self._finished = self._finished, []
        return done

    def shutdown(self) -> None:
        self.engine.shutdown()
