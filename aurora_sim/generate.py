"""`aurora generate`: decode a prompt file with a target and a draft, report acceptance and speed.

Prompts: a text file (one prompt per line) or JSONL with `prompt` (text) or `messages` (chat,
rendered with the tokenizer's chat template).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from aurora_sim.atomic import atomic_file
from aurora_sim.engine.protocol import GenRequest, RequestResult
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.errors import AuroraError
from aurora_sim.models.linear import set_weight_format
from aurora_sim.models.llama import Llama
from aurora_sim.models.registry import load_tokenizer, make_draft, resolve_model

AL_CONVENTION = "acceptance length = tokens per verify round, bonus token included (1.0 = nothing accepted)"


@dataclass(frozen=True)
class GenerateConfig:
    model: str = "tiny"
    draft: str = "eagle3"
    gamma: int = 4
    batch: int = 8
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    max_new_tokens: int = 64
    threads: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    weight_format: str = "fp32"  # CPU serving format of the weights (aurora_sim.models.linear)


def read_prompts(path: Path) -> list[str | list[dict]]:
    """Text lines, or JSONL objects with `prompt` or `messages`; a bad line names file:line."""
    if not path.is_file():
        raise AuroraError(f"{path}: prompts file not found")
    lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    as_jsonl = path.suffix in (".jsonl", ".json") or (lines and lines[0].lstrip().startswith("{"))
    prompts: list[str | list[dict]] = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not as_jsonl:
            prompts.append(line)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise AuroraError(f"{path}:{no}: not valid JSON") from None
        if isinstance(obj, dict) and isinstance(obj.get("prompt"), str) and obj["prompt"]:
            prompts.append(obj["prompt"])
        elif isinstance(obj, dict) and isinstance(obj.get("messages"), list) and obj["messages"]:
            prompts.append(obj["messages"])
        else:
            raise AuroraError(f"{path}:{no}: expected a non-empty `prompt` string or `messages` list")
    if not prompts:
        raise AuroraError(f"{path}: no prompts")
    return prompts


def encode(tokenizer, prompt: str | list[dict]) -> tuple[int, ...]:
    if isinstance(prompt, list):
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return tuple(int(i) for i in ids)
    return tuple(tokenizer(prompt, add_special_tokens=True)["input_ids"])


def stop_ids(tokenizer, model_dir: Path | None = None) -> tuple[int, ...]:
    """The tokenizer's EOS plus every `eos_token_id` of the model's generation_config.json
    (chat models end a turn with a token other than EOS, e.g. <|im_end|>)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    gen_cfg = Path(model_dir) / "generation_config.json" if model_dir else None
    if gen_cfg is not None and gen_cfg.is_file():
        eos = json.loads(gen_cfg.read_text()).get("eos_token_id")
        ids.update(eos if isinstance(eos, list) else [eos] if isinstance(eos, int) else [])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return tuple(sorted(ids))


def summarize(results: list[RequestResult], wall_s: float) -> dict:
    rounds = sum(r.rounds for r in results)
    tokens = sum(len(r.output_ids) for r in results)
    proposed = sum(r.proposed_tokens for r in results)
    return {
        "requests": len(results),
        "output_tokens": tokens,
        "verify_rounds": rounds,
        "spec_decode_acceptance_length": sum(r.round_tokens for r in results) / rounds if rounds else 0.0,
        "spec_decode_acceptance_rate": sum(r.accepted_tokens for r in results) / proposed if proposed else 0.0,
        "wall_s": wall_s,
        "tokens_per_s": tokens / wall_s if wall_s > 0 else 0.0,
        "acceptance_length_convention": AL_CONVENTION,
    }


def run_generate(
    cfg: GenerateConfig, prompts: list, target: Llama | None = None, tokenizer=None, on_round=None
) -> dict:
    torch.set_num_threads(cfg.threads)
    model_dir = resolve_model(cfg.model)
    dtype = getattr(torch, cfg.dtype)
    target = set_weight_format(
        target or Llama.from_pretrained(model_dir, dtype=dtype, device=cfg.device), cfg.weight_format
    )
    tokenizer = tokenizer or load_tokenizer(model_dir)
    draft = make_draft(cfg.draft, target, seed=cfg.seed)  # the engine serves it in the target's format
    stops = stop_ids(tokenizer, model_dir)
    requests = [
        GenRequest(f"p{i}", encode(tokenizer, p), cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.seed + i, stops)
        for i, p in enumerate(prompts)
    ]
    gamma = cfg.gamma if draft is not None else 0
    need = max(len(r.prompt_ids) for r in requests) + cfg.max_new_tokens + gamma + 1
    engine = TorchSpecEngine(target, draft, gamma=gamma, max_batch=cfg.batch, max_len=max(need, 64))
    t0 = time.perf_counter()
    results = engine.run(requests, on_round=on_round)
    wall = time.perf_counter() - t0
    return {
        "config": cfg.__dict__,
        "summary": summarize(results, wall),
        "results": [
            {
                "prompt": p,
                "output_text": tokenizer.decode(r.output_ids, skip_special_tokens=True),
                "output_ids": r.output_ids,
                "prompt_tokens": len(r.prompt_ids),
                "verify_rounds": r.rounds,
                "acceptance_length": r.acceptance_length,
                "finish_reason": r.finish_reason,
            }
            for p, r in zip(prompts, results)
        ],
    }


def write_json(report: dict, out: Path) -> None:
    with atomic_file(out, "w") as fh:
        json.dump(report, fh, indent=1)
