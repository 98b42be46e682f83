"""The draft a replay starts from: none, the offline static draft (static: the default recipe;
static-full: its longer flavour), a from-scratch one, or a path.

From scratch means an untrained draft layer whose LM head (and final norm / embedding) starts
from the target's, as EAGLE heads do: day-0 acceptance is still ≈1.0 (the random layer feeds
that head garbage), but the learner does not have to relearn the vocabulary projection.
"""

from __future__ import annotations

from pathlib import Path

import torch

from aurora_sim.models import drafts
from aurora_sim.replay.config import STATIC_INITS
from aurora_sim.replay.rng import stream_seed


def initial_draft(cfg, target):
    if cfg.init == "none":
        return None
    if cfg.init in STATIC_INITS:
        from aurora_sim.learner.offline import train_static_draft

        path = train_static_draft(cfg.model, cfg.draft, progress=True, flavour=STATIC_INITS[cfg.init])
        return drafts.load_draft(path, target)
    if cfg.init == "scratch":
        seed = stream_seed(cfg.seed, "draft-init")
        with torch.no_grad():
            if cfg.draft == "eagle3":
                width = round(target.spec.intermediate_size * cfg.draft_width)
                d = drafts.new_eagle3(target, seed=seed, intermediate_size=width)
                d.lm_head.weight.copy_(target.lm_head.weight)
                d.norm.weight.copy_(target.model.norm.weight)
            else:
                d = drafts.new_lm_draft(target, seed=seed)
                d.lm.model.embed_tokens.weight.copy_(target.model.embed_tokens.weight)
                d.lm.lm_head.weight.copy_(target.lm_head.weight)
        return d
    return drafts.load_draft(Path(cfg.init), target)
