"""`aurora demo`: the main job on embedded defaults, until `aurora replay` lands.

Builds the tiny tier and its static EAGLE-3 draft (cached after the first run), then decodes
held-out prompts from every domain three ways — target only, a random day-0 head, the trained
static head — and prints acceptance length, tokens/s and whether outputs stayed identical.
"""

from __future__ import annotations

import torch
from rich.console import Console
from rich.table import Table

from aurora_sim.corpora import DOMAINS, load_documents
from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.generate import AL_CONVENTION, stop_ids, summarize
from aurora_sim.learner.offline import train_static_draft
from aurora_sim.models import drafts
from aurora_sim.models.llama import Llama
from aurora_sim.models.registry import load_tokenizer, resolve_model


def heldout_prompts(tokenizer, per_domain: int, prompt_tokens: int = 32) -> list[tuple[str, tuple[int, ...]]]:
    """The first `prompt_tokens` tokens of held-out documents, domains interleaved."""
    out = []
    for domain in DOMAINS:
        docs = load_documents(domain, "heldout")[:per_domain]
        for d in docs:
            ids = tokenizer(d["text"], add_special_tokens=False)["input_ids"][:prompt_tokens]
            out.append((domain, tuple(ids)))
    return out


def run_demo(model: str, per_domain: int, max_new_tokens: int, gamma: int, batch: int) -> None:
    import time

    console = Console()
    torch.set_num_threads(1)
    model_dir = resolve_model(model)
    static_dir = train_static_draft(model, "eagle3")
    target = Llama.from_pretrained(model_dir)
    tokenizer = load_tokenizer(model_dir)
    prompts = heldout_prompts(tokenizer, per_domain)
    stops = stop_ids(tokenizer, model_dir)
    reqs = [GenRequest(f"{d}-{i}", ids, max_new_tokens, stop_ids=stops) for i, (d, ids) in enumerate(prompts)]
    arms = [
        ("target only", None, 0),
        ("day-0 EAGLE-3 (random)", drafts.new_eagle3(target, seed=0), gamma),
        ("static EAGLE-3 (distilled)", drafts.load_draft(static_dir, target), gamma),
    ]
    table = Table(
        title=f"{model}: {len(reqs)} held-out prompts ({', '.join(DOMAINS)}), batch {batch}, γ={gamma}, greedy"
    )
    for col in ("arm", "acceptance length", "tokens/s", "speedup (wall)", "output = target's"):
        table.add_column(col)
    reference = None
    base_tps = None
    for name, draft, g in arms:
        engine = TorchSpecEngine(target, draft, gamma=g, max_batch=batch)
        t0 = time.perf_counter()
        results = engine.run(reqs)
        s = summarize(results, time.perf_counter() - t0)
        outputs = [r.output_ids for r in results]
        reference = reference or outputs
        base_tps = base_tps or s["tokens_per_s"]
        table.add_row(
            name,
            f"{s['spec_decode_acceptance_length']:.2f}",
            f"{s['tokens_per_s']:.0f}",
            f"{s['tokens_per_s'] / base_tps:.2f}x",
            "yes" if outputs == reference else "NO",
        )
    console.print(table)
    console.print(f"[dim]{AL_CONVENTION}; wall-clock on this machine, 1 thread.[/dim]")
    console.print(
        "[dim]On a proxy this small a draft forward costs about as much as a target forward, so wall-clock "
        "speedup here says nothing about a real deployment; acceptance length does. Replays model time "
        "with a deployment cost model instead.[/dim]"
    )
