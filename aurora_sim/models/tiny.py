"""The "tiny" tier: a byte-level BPE tokenizer and a small Llama trained here, on one CPU thread.

Everything comes from the offline corpora (:mod:`aurora_sim.corpora`), so the build needs no
network and is bit-for-bit reproducible on a given machine: same recipe and seed, same
``model.safetensors``.

Usage::

    from aurora_sim.models.tiny import build_tiny
    path = build_tiny()          # models_dir()/"tiny"; built once (a few minutes), then reused

    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}],
                                  add_generation_prompt=True, return_tensors="pt")

The directory holds ``config.json``, ``generation_config.json``, ``model.safetensors`` (float32),
``tokenizer.json``, ``tokenizer_config.json`` (+ chat template), ``train.log`` and
``provenance.json`` (recipe, recipe hash, corpus sources and licences, losses, sha256, timing).
It is rebuilt only when :func:`recipe_hash` changes (or with ``force=True``).

Tokens: ``<|bos|>`` is prepended by the tokenizer's post-processor (and by the chat template,
which is applied without special tokens); each training document is ``<|bos|> text <|eos|>``.
Chat turns are ``<|user|>\\n...\\n<|assistant|>\\n...\\n`` as in :func:`corpora.render_chat`;
``generation_config.eos_token_id`` lists both ``<|eos|>`` and ``<|user|>``, since after an
assistant turn the model writes either.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from aurora_sim import corpora
from aurora_sim.atomic import atomic_dir
from aurora_sim.errors import AuroraError
from aurora_sim.hashing import sha256_file
from aurora_sim.paths import models_dir

SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|system|>")

# The chat template renders exactly corpora.render_chat, after the BOS token.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown chat role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

# Everything the model bytes depend on (with the corpus recipe hash, added in recipe()).
#
# Sized by measurement for a ~6-7 min build on ONE thread of this project's 2-core machines
# (AMD EPYC with AVX512-BF16: ~5,500 train tok/s for this model with bf16 autocast, ~2x fp32).
# 1800 steps x 4 x 256 = 1.84M tokens, a third per domain (0.4-0.9 epoch of each). At equal wall
# time, held-out loss (mean of domains) was: 4x192 batch 4 lr 3.5e-3 5.07 (this); batch 8 with
# lr 5e-3 5.18, 3e-3 5.23, 8e-3 5.28; 6x192 5.43; 4x256 5.40; 6x384 6.18 -- at this budget a
# smaller model seeing more tokens, in more (smaller) steps, wins.
# Without native bf16 (AVX2-only CPUs) recipe() turns autocast off: ~0.56 s per step, ~17 min.
TINY_RECIPE: dict = {
    "recipe_version": 1,
    "seed": 1234,
    "tokenizer": {"vocab_size": 4096, "min_frequency": 2, "special_tokens": list(SPECIAL_TOKENS)},
    "model": {
        "hidden_size": 192,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 3,  # head_dim 64
        "num_key_value_heads": 1,  # grouped-query attention, like SmolLM2
        "max_position_embeddings": 1024,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
    },
    "train": {
        "steps": 1800,
        "batch_size": 4,
        "seq_len": 256,
        "lr": 3.5e-3,
        "min_lr_ratio": 0.1,
        "warmup_steps": 90,
        "weight_decay": 0.1,
        "betas": [0.9, 0.95],
        "grad_clip": 1.0,
        "autocast_bf16": True,
        # rows of each batch cycle through the domains, so each gets the same token share
        "domains": list(corpora.DOMAINS),
    },
    "eval": {"windows_per_domain": 16, "seq_len": 256},
}


# ---------------------------------------------------------------------------- recipe


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX). Without it torch emulates
    bf16 and autocast makes training ~8x slower instead of ~2x faster (measured on an AVX2-only
    EPYC: 4.5 s vs 0.56 s per step), turning a 7-minute build into over two hours.
    AURORA_BF16_AUTOCAST=1/0 forces the choice (to reproduce another machine's bytes)."""
    forced = os.environ.get("AURORA_BF16_AUTOCAST", "auto")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def recipe(steps: int | None = None) -> dict:
    """TINY_RECIPE plus the corpus recipe hash, with an optional step-count override. bf16
    autocast only where the CPU has it natively; it changes the bytes, so it is in the hash."""
    r = json.loads(json.dumps(TINY_RECIPE))
    r["train"]["autocast_bf16"] = bool(r["train"]["autocast_bf16"] and native_bf16())
    if steps is not None:
        r["train"]["steps"] = int(steps)
    r["corpus_recipe_hash"] = corpora.recipe_hash()
    return r


def recipe_hash(steps: int | None = None) -> str:
    return hashlib.sha256(json.dumps(recipe(steps), sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _deterministic_torch(seed: int) -> Iterator[None]:
    """One thread and a fixed seed, restoring the caller's thread count and RNG afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------- tokenizer


def train_tokenizer(texts: list[str], spec: dict):
    """Byte-level BPE on `texts`, wrapped as a transformers fast tokenizer."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    specials = spec["special_tokens"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        min_frequency=spec["min_frequency"],
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def without_specials() -> Iterator[str]:
        # role markers are single added tokens: keep them out of the merge statistics
        for t in texts:
            for s in specials:
                t = t.replace(s, "")
            yield t

    tok.train_from_iterator(without_specials(), trainer)
    bos = tok.token_to_id("<|bos|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B", special_tokens=[("<|bos|>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|user|>", "<|assistant|>", "<|system|>"],
        chat_template=CHAT_TEMPLATE,
        model_max_length=TINY_RECIPE["model"]["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
    )


def token_stream(tokenizer, docs: list[dict]) -> torch.Tensor:
    """All documents as one int64 stream: <|bos|> doc <|eos|> <|bos|> doc <|eos|> ..."""
    backend = tokenizer.backend_tokenizer
    encs = backend.encode_batch_fast([d["text"] for d in docs], add_special_tokens=False)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids: list[int] = []
    for e in encs:
        ids.append(bos)
        ids.extend(e.ids)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


# ---------------------------------------------------------------------------- model


def new_model(spec: dict, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec["hidden_size"],
        intermediate_size=spec["intermediate_size"],
        num_hidden_layers=spec["num_hidden_layers"],
        num_attention_heads=spec["num_attention_heads"],
        num_key_value_heads=spec["num_key_value_heads"],
        max_position_embeddings=spec["max_position_embeddings"],
        rope_parameters={"rope_type": "default", "rope_theta": spec["rope_theta"]},
        rms_norm_eps=spec["rms_norm_eps"],
        initializer_range=spec["initializer_range"],
        tie_word_embeddings=spec["tie_word_embeddings"],
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    config._attn_implementation = "sdpa"  # ~30% faster than eager on CPU, same math
    return LlamaForCausalLM(config)


def lr_at(step: int, train: dict) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio * lr at the last step."""
    if step < train["warmup_steps"]:
        return train["lr"] * (step + 1) / train["warmup_steps"]
    span = max(train["steps"] - train["warmup_steps"], 1)
    progress = min((step - train["warmup_steps"]) / span, 1.0)
    floor = train["min_lr_ratio"]
    return train["lr"] * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_batch(streams: dict[str, torch.Tensor], step: int, train: dict, gen: torch.Generator) -> torch.Tensor:
    """Random windows; row r of step s comes from domain (s * batch + r) % n_domains."""
    b, t, doms = train["batch_size"], train["seq_len"], train["domains"]
    rows = []
    for r in range(b):
        stream = streams[doms[(step * b + r) % len(doms)]]
        start = int(torch.randint(0, len(stream) - t, (1,), generator=gen))
        rows.append(stream[start : start + t])
    return torch.stack(rows)


@torch.no_grad()
def heldout_loss(model, streams: dict[str, torch.Tensor], spec: dict) -> dict[str, float]:
    """Mean next-token loss on the first K consecutive windows of each held-out stream."""
    model.eval()
    out = {}
    k, t = spec["windows_per_domain"], spec["seq_len"]
    for dom, stream in streams.items():
        n = min(k, len(stream) // t)
        x = stream[: n * t].view(n, t)
        losses = [float(model(input_ids=x[i : i + 4], labels=x[i : i + 4]).loss) for i in range(0, n, 4)]
        out[dom] = round(sum(losses) / len(losses), 4)
    model.train()
    return out


def sample_prompt(text: str, max_tokens: int, tokenizer) -> torch.Tensor:
    """A chat document's first user turn (through the assistant header), else its first tokens."""
    head = "<|assistant|>\n"
    if head in text:
        text = text[: text.index(head) + len(head)]
    return tokenizer(text, return_tensors="pt").input_ids[:, :max_tokens]


def greedy_samples(model, tokenizer, heldout: dict[str, list[dict]], new_tokens: int = 40) -> dict:
    """One greedy continuation per domain, from its first held-out document."""
    out = {}
    for dom, docs in heldout.items():
        ids = sample_prompt(docs[0]["text"], 48, tokenizer)
        gen = model.generate(ids, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        out[dom] = {
            "prompt": tokenizer.decode(ids[0], skip_special_tokens=False),
            "continuation": tokenizer.decode(gen[0, ids.shape[1] :], skip_special_tokens=False),
        }
    model.train()
    return out


def _train(model, streams, r: dict, log, progress: bool) -> float:
    """The training loop; returns the last smoothed training loss.

    With `progress`: a bar in a terminal, plain lines elsewhere (aurora_sim.progress)."""
    from aurora_sim.progress import TrainingProgress

    train = r["train"]
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": train["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=train["lr"],
        betas=tuple(train["betas"]),
    )
    gen = torch.Generator().manual_seed(r["seed"] + 1)
    smooth = float("nan")
    with TrainingProgress("tiny: training", train["steps"], progress) as bar:
        for step in range(train["steps"]):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, train)
            x = make_batch(streams, step, train, gen)
            # bf16 autocast: ~1.5-2.5x faster matmuls on CPUs with AVX512-BF16; weights stay fp32
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=train["autocast_bf16"]):
                loss = model(input_ids=x, labels=x).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train["grad_clip"])
            opt.step()
            opt.zero_grad(set_to_none=True)
            value = loss.item()
            smooth = value if math.isnan(smooth) else 0.95 * smooth + 0.05 * value
            bar.step(smooth)
            if step % 25 == 0 or step == train["steps"] - 1:
                log(f"step {step:5d}  loss {value:.4f}  smooth {smooth:.4f}  lr {lr_at(step, train):.2e}", echo=False)
    return smooth


# ---------------------------------------------------------------------------- build


def _is_current(path: Path, want: str) -> bool:
    try:
        prov = json.loads((path / "provenance.json").read_text())
    except (OSError, ValueError):
        return False
    return prov.get("recipe_hash") == want and (path / "model.safetensors").is_file()


def build_tiny(
    force: bool = False, progress: bool = True, steps: int | None = None, out_dir: Path | str | None = None
) -> Path:
    """Build the tiny tier into `out_dir` (default models_dir()/"tiny") and return the path.

    Reuses an existing build whose provenance has the same recipe hash, unless `force`.
    `steps` overrides the training step count (it is part of the recipe hash).
    """
    target = Path(out_dir) if out_dir is not None else models_dir() / "tiny"
    r, want = recipe(steps), recipe_hash(steps)
    if not force and _is_current(target, want):
        return target
    if r["train"]["steps"] < 1:
        raise AuroraError(f"tiny build: steps must be >= 1 (got {r['train']['steps']})")
    with atomic_dir(target) as tmp:
        _build_into(tmp, r, want, progress)
    return target


def _build_into(out: Path, r: dict, want: str, progress: bool) -> None:
    import transformers
    from transformers import GenerationConfig

    t0 = time.time()
    log_lines: list[str] = []

    def log(msg: str, echo: bool = True) -> None:
        log_lines.append(msg)
        if echo and progress:
            print(msg, flush=True)

    corpus_root = corpora.build_corpora()
    sources = json.loads((corpus_root / "sources.json").read_text())
    train_docs = {d: corpora.load_documents(d, "train") for d in corpora.DOMAINS}
    heldout_docs = {d: corpora.load_documents(d, "heldout") for d in corpora.DOMAINS}
    log(f"tiny: corpora ready ({time.time() - t0:.1f}s); training tokenizer")

    with _deterministic_torch(r["seed"]):
        tokenizer = train_tokenizer([x["text"] for d in corpora.DOMAINS for x in train_docs[d]], r["tokenizer"])
        streams = {d: token_stream(tokenizer, train_docs[d]) for d in corpora.DOMAINS}
        held = {d: token_stream(tokenizer, heldout_docs[d]) for d in corpora.DOMAINS}
        log(
            "tiny: train tokens "
            + ", ".join(f"{d} {len(s):,}" for d, s in streams.items())
            + f" ({time.time() - t0:.1f}s)"
        )

        model = new_model(r["model"], tokenizer)
        n_params = sum(p.numel() for p in model.parameters())
        log(
            f"tiny: {n_params:,} parameters, {r['train']['steps']} steps of "
            f"{r['train']['batch_size']}x{r['train']['seq_len']} tokens"
        )
        before = heldout_loss(model, held, r["eval"])
        log(f"tiny: held-out loss before: {before}")
        t_train = time.time()
        final_train_loss = _train(model, streams, r, log, progress)
        train_s = time.time() - t_train
        after = heldout_loss(model, held, r["eval"])
        log(f"tiny: held-out loss after:  {after}  (train loss {final_train_loss:.3f}, {train_s:.0f}s)")
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|user|>")],
        )
        samples = greedy_samples(model, tokenizer, heldout_docs)
        for dom, s in samples.items():
            log(f"tiny: sample [{dom}] {s['prompt']!r} -> {s['continuation']!r}", echo=False)

    # transformers 5 always writes safetensors (its save_pretrained has no safe_serialization)
    with _quiet_transformers(not progress):
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    tokens_seen = r["train"]["steps"] * r["train"]["batch_size"] * r["train"]["seq_len"]
    prov = {
        "tier": "tiny",
        "recipe": r,
        "recipe_hash": want,
        "seed": r["seed"],
        "steps": r["train"]["steps"],
        "parameters": n_params,
        "tokens_seen": tokens_seen,
        "train_tokens_per_s": round(tokens_seen / max(train_s, 1e-9)),
        "heldout_loss_before": before,
        "heldout_loss_after": after,
        "final_train_loss": round(final_train_loss, 4),
        "samples": samples,
        "model_sha256": sha256_file(out / "model.safetensors"),
        "corpus": {"recipe_hash": sources["recipe_hash"], "sources": sources["sources"]},
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": _version("tokenizers"),
        },
        "wall_s": round(time.time() - t0, 1),
    }
    log(f"tiny: built in {prov['wall_s']}s, model sha256 {prov['model_sha256'][:16]}")
    (out / "train.log").write_text("\n".join(log_lines) + "\n")
    (out / "provenance.json").write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def _quiet_transformers(quiet: bool) -> Iterator[None]:
    """Hide transformers' own progress bars (e.g. "Writing model shards") when asked."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _version(dist: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(dist)
