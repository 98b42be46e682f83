"""What the learner captures from one served request: the sequence the target verified (the
'accepted' trajectory) and the draft's rejected branches (the 'discarded' proposals).

A verify round at position n proposed d_1..d_γ and kept k of them. If k < γ the proposals
d_{k+1}..d_γ were discarded: the rejected branch starts at sequence index n+k+1 after the
accepted context tokens[:n+k+1]. Discard sampling trains the draft, on that branch, towards
the target's distribution (the target's verify pass scored those positions too).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Branch:
    start: int  # sequence index of the first discarded token
    tokens: tuple[int, ...]  # the discarded proposals d_{k+1}..d_γ
    # k: the draft step (0-based) that proposed tokens[0], so the rejection happened at state
    # start - 1 on the served sequence, step k of the chain from start - 1 - k (-1 = unknown)
    step: int = field(default=-1, compare=False)


@dataclass
class Sample:
    uid: int  # capture order (0, 1, ...)
    tokens: tuple[int, ...]  # prompt + output, as served
    prompt_len: int
    branches: tuple[Branch, ...]
    draft_version: int  # oldest draft version that proposed in this request
    capture_ns: int
    seen: int = field(default=0)  # optimizer steps that used it
    # The target's features and last-layer outputs for `tokens` (a learner.teacher.Teacher, from
    # serving) so a trainer step need not run the target; None = the batch recomputes them.
    teacher: object = field(default=None, repr=False, compare=False)
    # The request's sampling (0 = greedy): what `reach-weighted` prices a rejected branch with
    # (the target's probability, sampling so, of having emitted it).
    temperature: float = field(default=0.0, compare=False)
    top_p: float = field(default=1.0, compare=False)

    @property
    def generated(self) -> int:
        return len(self.tokens) - self.prompt_len


def rejected_branches(tokens_len: int, rounds: list[tuple[int, tuple[int, ...], int]]) -> list[Branch]:
    """rounds: (position n, proposals, accepted k). Branches whose context the request actually
    reached (a request cut by max_new_tokens may end inside an accepted run)."""
    out = []
    for n, props, k in rounds:
        if k < len(props) and n + k + 1 <= tokens_len:
            out.append(Branch(n + k + 1, tuple(props[k:]), k))
    return out


def served_sample(
    uid: int,
    prompt_ids,
    output_ids,
    rounds: list[tuple[int, tuple[int, ...], int]],
    keep: int,
    rng,
    draft_version: int,
    capture_ns: int,
    teacher=None,
    temperature: float = 0.0,
    top_p: float = 1.0,
) -> Sample:
    """The sample a finished request gives the learner, with at most `keep` of its rejected
    branches (drawn by `rng`, the learner's stream, so the choice is reproducible)."""
    tokens = tuple(prompt_ids) + tuple(output_ids)
    branches = rejected_branches(len(tokens), rounds)
    if len(branches) > keep:
        picks = sorted(rng.sample(range(len(branches)), keep))
        branches = [branches[i] for i in picks]
    return Sample(
        uid,
        tokens,
        len(prompt_ids),
        tuple(branches),
        draft_version,
        capture_ns,
        teacher=teacher,
        temperature=temperature,
        top_p=top_p,
    )
