"""The draft a replay starts from: none, the offline static draft (static: the default recipe;
static-full: its longer flavour), a from-scratch one, or a path.

From scratch means an untrained draft layer whose LM head (and final norm / embedding) starts
from the target's, as EAGLE heads do: day-0 acceptance is still ≈1.0 (the random layer feeds
that head garbage), but the learner does not have to relearn the vocabulary projection.
"""

from __future__ import annotations

from pathlib import Path

import torch

from aurora_sim.errors import AuroraError
from aurora_sim.models import drafts
from aurora_sim.replay.config import STATIC_INITS
from aurora_sim.replay.rng import stream_seed


def hot_vocab(model: str, size: int, vocab_size: int) -> torch.Tensor:
    """EAGLE-3's hot vocabulary of `model` (learner.offline.hot_vocabulary): the reference build's
    shipped table where it has one of this size, else counted here and cached beside the model
    cache per (model build, size): counting the training split takes seconds."""
    from aurora_sim import reference
    from aurora_sim.atomic import atomic_file
    from aurora_sim.learner.offline import hot_vocabulary
    from aurora_sim.models.registry import load_tokenizer, resolve_model
    from aurora_sim.paths import models_dir
    from aurora_sim.replay.trajectories import model_identity

    if size > vocab_size:
        raise AuroraError(f"draft vocabulary {size} is larger than {model}'s vocabulary ({vocab_size})")
    if model == reference.TARGET and (shipped := reference.hot_vocab_file(size)) is not None:
        from safetensors.torch import load_file

        return load_file(str(shipped))["d2t"]
    model_dir = resolve_model(model)
    path = models_dir() / "hot-vocab" / f"{model}-{model_identity(model_dir)[:16]}-{size}.pt"
    if path.is_file():
        try:
            ids = torch.load(path, weights_only=True)
            if ids.ndim == 1 and len(ids) == size:
                return ids
        except Exception:  # a damaged cache entry is recomputed, never used
            pass
    ids = hot_vocabulary(load_tokenizer(model_dir), size, vocab_size)
    with atomic_file(path) as fh:
        torch.save(ids, fh)
    return ids


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
                d2t = hot_vocab(cfg.model, cfg.draft_vocab, target.spec.vocab_size) if cfg.draft_vocab else None
                d = drafts.new_eagle3(target, seed=seed, intermediate_size=width, draft_vocab=d2t)
                d.lm_head.weight.copy_(target.lm_head.weight if d2t is None else target.lm_head.weight[d2t])
                d.norm.weight.copy_(target.model.norm.weight)
            else:
                d = drafts.new_lm_draft(target, seed=seed)
                d.lm.model.embed_tokens.weight.copy_(target.model.embed_tokens.weight)
                d.lm.lm_head.weight.copy_(target.lm_head.weight)
        return d
    return drafts.load_draft(Path(cfg.init), target)


def load_floor_draft(cfg, target):
    """The two-draft arm's frozen floor head (`cfg.floor_draft`: a static init name or a draft
    directory), in eval mode and never trained."""
    from aurora_sim.learner.offline import train_static_draft

    if cfg.floor_draft in STATIC_INITS:
        path = train_static_draft(cfg.model, "eagle3", progress=True, flavour=STATIC_INITS[cfg.floor_draft])
    else:
        path = Path(cfg.floor_draft)
    draft = drafts.load_draft(path, target)
    draft.requires_grad_(False)
    return draft.eval()
