"""Named learner recipes: the settings that decide how the online draft learns and swaps.

``fast`` is this project's default, sized for CPU replays of a few thousand requests: a swap
every 8 optimizer steps (≈64 requests) at lr 1e-3 from scratch and 1e-4 from a trained draft,
so short traces show adaptation.

``paper`` is Aurora's setup (arXiv 2602.06932, §5 and appendix), for paper-sized traces:

=====================  ======================  =========================================
setting                paper                   here
=====================  ======================  =========================================
draft steps            5 (top-k 1, 6 tokens)   γ = 5
samples per step       8                       8 requests per optimizer step, each used
                                               once (min_new = batch: no replay)
weight sync            every 50 steps          a candidate every 50 steps (≈400 requests)
learning rate          1e-4 from scratch,      lr 1e-4; lr_finetune 1e-5 for a draft that
                       1e-5 fine-tuning        starts trained (static or a directory)
optimizer              AdamW, no weight decay  the same (every recipe)
gradient clip          0.5–2.5                 1.0 (inferred: the range's lower middle)
TTT unroll             5–7, weights 0.8^i      5 (inferred: the range's cheapest end; it
                                               covers γ = 5), decay 0.8
swap                   reload + recapture      recapture (costs/swap.py: 17.9 s at batch 8)
                       the draft's CUDA graphs
=====================  ======================  =========================================

``fast`` swaps in place (the new weights copied into the buffers the graphs read, ≈1 ms) and
fine-tunes a trained starting draft at 1e-4 (1e-3 from scratch).

Inferred settings are marked; the rest are the paper's numbers. A recipe sets these fields of
:class:`ReplayConfig`; options given explicitly on the command line override them, and the
recipe's name is recorded in the run config (``recipe``) and shown by ``aurora report``.
"""

from __future__ import annotations

from aurora_sim.errors import AuroraError

RECIPES: dict[str, dict] = {
    "fast": {
        "gamma": 4,
        "learner_lr": 1e-3,
        # a draft that starts trained learns at 1e-4: on `unseen`, 3 seeds, it beat the frozen
        # draft on every seed from static-general (1.022x) and from static (1.034x), where 1e-3
        # lost from static-general (0.994x) (benchmarks/bench_online_pays.py, docs/when-online-pays.md)
        "learner_lr_finetune": 1e-4,
        "learner_unroll": 4,
        "learner_decay": 0.8,
        "learner_batch_requests": 8,
        "learner_min_new": 8,
        "learner_grad_clip": 1.0,
        "controller_every": 8,
        "swap": "in-place",
    },
    "paper": {
        "gamma": 5,
        "learner_lr": 1e-4,
        "learner_lr_finetune": 1e-5,
        "learner_unroll": 5,
        "learner_decay": 0.8,
        "learner_batch_requests": 8,
        "learner_min_new": 8,
        "learner_grad_clip": 1.0,
        "controller_every": 50,
        "swap": "recapture",
    },
}
INFERRED = {"paper": ("learner_grad_clip", "learner_unroll")}


def recipe_changes(name: str) -> dict:
    """The ReplayConfig.with_ changes of a named recipe (its name included)."""
    if name not in RECIPES:
        raise AuroraError(f"unknown learner recipe {name!r} (choose {', '.join(RECIPES)})")
    return {"recipe": name, **RECIPES[name]}
