"""A from-source tiny build beside the reference: held-out loss and static AL per domain, both
measured here, on the same held-out data, so the two columns differ only by the builds.

Held-out loss: the build's own yardstick (`tiny.heldout_loss`: the first windows of each domain's
held-out split). Static AL: a static EAGLE-3 head on its own target, decoding held-out prompts
greedily through the real engine (γ 4, batch 8), tokens per verify round, bonus included. A
from-source target gets its own from-source head: a head reads its target's features, so the
reference head on another target says nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch

from aurora_sim.corpora import DOMAINS, load_documents

GAMMA, PER_DOMAIN, NEW_TOKENS = 4, 24, 48


@torch.no_grad()
def heldout_losses(model_dir: Path) -> dict[str, float]:
    from transformers import AutoModelForCausalLM

    from aurora_sim.models.registry import load_tokenizer
    from aurora_sim.models.tiny import TINY_RECIPE, heldout_loss, token_stream

    tok = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    held = {d: token_stream(tok, load_documents(d, "heldout")) for d in DOMAINS}
    out = heldout_loss(model, held, TINY_RECIPE["eval"])
    return {d: round(v, 4) for d, v in out.items()}


@torch.no_grad()
def static_al(model_dir: Path, draft_dir: Path, per_domain: int = PER_DOMAIN) -> dict[str, float]:
    from aurora_sim.demo import heldout_prompts
    from aurora_sim.engine.protocol import GenRequest
    from aurora_sim.engine.torch_engine import TorchSpecEngine
    from aurora_sim.generate import stop_ids
    from aurora_sim.models.drafts import load_draft
    from aurora_sim.models.llama import Llama
    from aurora_sim.models.registry import load_tokenizer

    target = Llama.from_pretrained(model_dir)
    draft = load_draft(draft_dir, target)
    tok = load_tokenizer(model_dir)
    stops = stop_ids(tok, model_dir)
    out = {}
    for domain in DOMAINS:
        prompts = [ids for d, ids in heldout_prompts(tok, per_domain) if d == domain]
        reqs = [GenRequest(f"{domain}-{i}", ids, NEW_TOKENS, stop_ids=stops) for i, ids in enumerate(prompts)]
        results = TorchSpecEngine(target, draft, gamma=GAMMA, max_batch=8).run(reqs)
        rounds = sum(r.rounds for r in results)
        out[domain] = round(sum(r.round_tokens for r in results) / rounds, 4) if rounds else 0.0
    return out


def compare(source_dir: Path, source_draft: Path | None = None, reference_draft: Path | None = None) -> list[dict]:
    """Rows (measure, domain, reference, source, source - reference); AL rows only when both
    heads are given."""
    from aurora_sim import reference

    ref_dir = reference.target_dir()
    rows = []
    measures = [("held-out loss", heldout_losses(ref_dir), heldout_losses(source_dir))]
    if source_draft is not None and reference_draft is not None:
        measures.append(
            (f"static AL (γ {GAMMA})", static_al(ref_dir, reference_draft), static_al(source_dir, source_draft))
        )
    for name, ref, src in measures:
        for d in DOMAINS:
            rows.append({"measure": name, "domain": d, "reference": ref[d], "source": src[d], "delta": src[d] - ref[d]})
    return rows
