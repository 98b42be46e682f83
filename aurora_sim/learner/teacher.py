"""The learner's teacher for one served request: the target's features at every position and
its last layer's outputs where the loss is taken (logits = target.head(final)).

Both engines compute it with `teacher_pass`, one request at a time (batch 1, from position 0),
so the learner sees the same numbers whichever engine served the request: the fast path at
admission (it needs the features for the draft's chains anyway), the round-by-round engine's
replay when the request finishes. A trainer step then runs no target forward. Memory: (3H·L +
H·G) floats per request while it sits in the buffer (tiny: ≈0.9 MB for 400 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Teacher:
    features: torch.Tensor  # [L, F] (L = prompt + output)
    final: torch.Tensor | None  # [L - P, H] at positions P-1 .. L-2 (each predicts the next token)


@torch.inference_mode()
def teacher_pass(target, tokens: list[int], prompt_len: int, layers: tuple[int, ...], final: bool = True) -> Teacher:
    ids = torch.tensor([tokens], dtype=torch.long)
    last, feats = target.trunk(ids, torch.arange(1), torch.zeros(1, dtype=torch.long), None, layers, last=final)
    end = len(tokens)
    return Teacher(feats[0].clone(), last[0, prompt_len - 1 : end - 1].clone() if final else None)
