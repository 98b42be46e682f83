"""What every speculative-decoding backend (torch here, SGLang later) takes and returns.

Acceptance-length convention used throughout: AL = tokens emitted by verify rounds / verify
rounds, *including* the bonus token (SGLang/vLLM convention; 1.0 = no proposal accepted). The
first token, produced by prefill before any verify round, is not part of AL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch


@dataclass(frozen=True)
class GenRequest:
    request_id: str
    prompt_ids: tuple[int, ...]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class RoundOutcome:
    """One request's share of one engine round (γ draft steps + one verify forward).

    `proposals` are the draft's γ tokens; `accepted` how many the target kept (a prefix);
    `next_token` the target's own token after them (the bonus when all were accepted, the
    residual sample at the first rejection otherwise). Generated this round =
    accepted + 1 before truncation; `emitted` is what was appended after max_new_tokens / stop.
    """

    request_id: str
    round_index: int
    draft_version: int
    position: int  # index in the full sequence of the first verified token
    proposals: tuple[int, ...]
    accepted: int
    next_token: int
    emitted: tuple[int, ...]
    draft_probs: tuple[float, ...]  # q(proposal_i) under the draft
    target_probs: tuple[float, ...]  # p(proposal_i) under the target (same positions)
    finished: bool
    target_features: torch.Tensor | None = field(default=None, repr=False)  # [accepted+1, F]
    target_logits: torch.Tensor | None = field(default=None, repr=False)  # [γ+1, V] verified positions


@dataclass
class RequestResult:
    request_id: str
    prompt_ids: tuple[int, ...]
    output_ids: list[int]
    rounds: int = 0  # verify rounds (the prefill that yields the first token is not one)
    round_tokens: int = 0  # tokens emitted by verify rounds
    accepted_tokens: int = 0
    proposed_tokens: int = 0
    finish_reason: str = ""
    # The target's features/outputs for this request (a learner.teacher.Teacher), handed to the
    # learner so a trainer step runs no target forward; set by the fast path at admission, by
    # the replay for the round-by-round engine when the request finishes.
    teacher: object = field(default=None, repr=False)

    @property
    def acceptance_length(self) -> float:
        return self.round_tokens / self.rounds if self.rounds else 0.0


class SpecEngine(Protocol):
    """The narrow serving interface the replay scheduler and the controller drive."""

    def add(self, request: GenRequest) -> None: ...

    def step(self) -> list[RoundOutcome]: ...

    def has_work(self) -> bool: ...

    def swap_draft(self, draft, version: int) -> None: ...

    def pop_finished(self) -> list[RequestResult]: ...
