"""Offline distillation of a static draft: the 'well-trained static draft' the paper compares
against, and the demo's trained draft. Teacher forcing on the target's *training* corpora (never
the held-out split that traffic prompts come from); the target supplies features and logits.

The EAGLE-3 head starts from the target's final norm and LM head (as EAGLE does), so a few
hundred CPU steps already give a useful draft. Deterministic: one thread, seeded, fixed steps.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from aurora_sim.errors import AuroraError
from aurora_sim.hashing import sha256_file
from aurora_sim.learner.losses import eagle3_ttt_loss, lm_draft_loss
from aurora_sim.models import drafts
from aurora_sim.models.llama import Llama
from aurora_sim.models.registry import TIERS, load_tokenizer, resolve_model
from aurora_sim.paths import models_dir

RECIPE = {
    "version": 3,  # 3: the TTT loss unrolls the exact serving chain (aurora_sim.models.chain)
    "lr": 2e-3,
    "warmup": 20,
    "unroll": 3,
    "decay": 0.8,
    # Per target: steps and shapes sized to a few CPU minutes. The big-vocabulary target keeps
    # the LM head it copied from the target frozen (as EAGLE-1 does): its gradient is the
    # dominant cost there.
    "tiers": {
        "tiny": {"steps": 300, "batch": 8, "seq_len": 128, "freeze_lm_head": False},
        "smollm2": {"steps": 150, "batch": 4, "seq_len": 64, "freeze_lm_head": True},
    },
    "default": {"steps": 200, "batch": 4, "seq_len": 64, "freeze_lm_head": True},
}
# EAGLE-3 heads over a hot vocabulary (its `d2t`), per tier; these override the tier's recipe and
# are kept out of RECIPE so drafts built without one keep their cache keys. SmolLM2's 49k-token LM
# head made a full-vocabulary draft step cost about a quarter of a target step (so speculation
# could not pay at AL 1.25); over its 8,192 most frequent tokens the head is 6x cheaper, and cheap
# enough to train rather than freeze.
HOT_VOCAB = {"smollm2": {"draft_vocab": 8192, "freeze_lm_head": False, "steps": 400}}




def _streams(tokenizer) -> list[torch.Tensor]:
    """Each domain's training split as one token stream (bounded: tokenizing is the cost)."""
    from aurora_sim.corpora import DOMAINS, load_documents

    streams = []
    for domain in DOMAINS:
        ids: list[int] = []
        for doc in load_documents(domain, "train"):
            ids.extend(tokenizer(doc["text"], add_special_tokens=False)["input_ids"])
            if tokenizer.eos_token_id is not None:
                ids.append(tokenizer.eos_token_id)
            if len(ids) > 400_000:  # plenty of distinct windows; bounds tokenization time
                break
        streams.append(torch.tensor(ids, dtype=torch.long))
    return streams


def token_windows(tokenizer, seq_len: int, count: int, seed: int) -> torch.Tensor:
    """`count` windows of `seq_len` tokens, domains in turn, from the training split."""
    gen = torch.Generator().manual_seed(seed)
    streams = _streams(tokenizer)
    out = torch.empty(count, seq_len, dtype=torch.long)
    for i in range(count):
        stream = streams[i % len(streams)]
        start = int(torch.randint(0, len(stream) - seq_len, (1,), generator=gen))
        out[i] = stream[start : start + seq_len]
    return out


def hot_vocabulary(tokenizer, size: int, vocab_size: int) -> torch.Tensor:
    """EAGLE-3's draft vocabulary: the `size` most frequent target tokens of the training split
    (ties by id; the special tokens always in), ascending ids."""
    counts = torch.zeros(vocab_size, dtype=torch.long)
    for stream in _streams(tokenizer):
        counts += torch.bincount(stream, minlength=vocab_size)[:vocab_size]
    special = [i for i in (tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.pad_token_id)
               if i is not None and 0 <= i < vocab_size]
    counts[special] = counts.max() + 1
    # stable sort on -count keeps ascending ids among ties: deterministic
    order = torch.sort(-counts, stable=True).indices[: min(size, vocab_size)]
    return torch.sort(order).values


def default_out(model: str, kind: str) -> Path:
    return models_dir() / "drafts" / f"{model}-{kind}-static"


def train_static_draft(
    model: str = "tiny", kind: str = "eagle3", out: Path | None = None, steps: int | None = None,
    seed: int = 0, progress: bool = True,
) -> Path:
    if kind not in ("eagle3", "lm"):
        raise AuroraError(f"unknown draft kind {kind!r} (eagle3 or lm)")
    model_dir = resolve_model(model)
    tier = RECIPE["tiers"].get(model, RECIPE["default"])
    hot = HOT_VOCAB.get(model) if kind == "eagle3" else None
    tier = {**tier, **(hot or {})}
    steps = steps or tier["steps"]
    out = Path(out) if out else default_out(model if model in TIERS else Path(model).name, kind)
    target_sha = sha256_file(next(iter(sorted(model_dir.glob("*.safetensors")))))
    key = hashlib.sha256(json.dumps([RECIPE, kind, steps, seed, target_sha] + ([hot] if hot else []),
                                    sort_keys=True).encode()).hexdigest()
    prov_file = out / "provenance.json"
    if prov_file.is_file() and json.loads(prov_file.read_text()).get("recipe_hash") == key:
        return out

    torch.set_num_threads(1)  # bit-reproducible; and on 2 cores, leaves one for serving
    torch.manual_seed(seed)
    target = Llama.from_pretrained(model_dir)
    target.requires_grad_(False)
    tokenizer = load_tokenizer(model_dir)
    if kind == "eagle3":
        d2t = hot_vocabulary(tokenizer, hot["draft_vocab"], target.spec.vocab_size) if hot else None
        draft = drafts.new_eagle3(target, seed=seed, draft_vocab=d2t)
        draft.lm_head.weight.data.copy_(target.lm_head.weight if d2t is None else target.lm_head.weight[d2t])
        draft.norm.weight.data.copy_(target.model.norm.weight)
        draft.lm_head.weight.requires_grad_(not tier["freeze_lm_head"])
    else:
        draft = drafts.new_lm_draft(target, seed=seed)
        draft.lm.model.embed_tokens.weight.data.copy_(target.model.embed_tokens.weight)
        draft.lm.lm_head.weight.data.copy_(target.lm_head.weight)
        if not draft.spec.tie_embeddings:
            draft.lm.lm_head.weight.requires_grad_(not tier["freeze_lm_head"])
    draft.train()
    params = [p for p in draft.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=RECIPE["lr"], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / RECIPE["warmup"]) * max(0.05, 1 - s / steps)
    )
    b, s = tier["batch"], tier["seq_len"]
    windows = token_windows(tokenizer, s, steps * b, seed)
    layers = draft.target_layers if kind == "eagle3" else ()
    losses: list[float] = []
    t0 = time.perf_counter()
    with Progress(TextColumn("draft {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(), disable=not progress) as bar:
        task = bar.add_task(f"{model}/{kind}", total=steps, loss=float("nan"))
        for step in range(steps):
            tokens = windows[step * b : (step + 1) * b]
            with torch.no_grad():
                cache = target.new_cache(b, s)
                logits, feats = target(tokens, torch.arange(b), torch.zeros(b, dtype=torch.long), cache, layers)
            if kind == "eagle3":
                loss, _ = eagle3_ttt_loss(draft, tokens, feats, logits, RECIPE["unroll"], RECIPE["decay"])
            else:
                loss, _ = lm_draft_loss(draft, tokens, logits)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.update(task, advance=1, loss=losses[-1])
    draft.eval()
    drafts.save_draft(draft, out, seed=seed)
    prov = {
        "recipe": RECIPE, "tier_recipe": tier, "recipe_hash": key, "kind": kind, "steps": steps, "seed": seed,
        "target": str(model_dir), "target_sha256": target_sha,
        "loss_first10": sum(losses[:10]) / max(1, len(losses[:10])),
        "loss_last10": sum(losses[-10:]) / max(1, len(losses[-10:])),
        "wall_s": round(time.perf_counter() - t0, 1),
        "data": "training split of the project's corpora (never the held-out split)",
    }
    (out / "provenance.json").write_text(json.dumps(prov, indent=2))
    return out
