"""Decoding throughput: ours (target-only and speculative) vs transformers' `generate`.

Same prompts (held-out, exactly PROMPT_TOKENS each so `generate` needs no padding), same number
of new tokens (no early stop on either side), greedy, one torch thread, all in one run; ratios
are computed within the run. Ours runs in both CPU weight formats (aurora_sim/models/linear.py):
fp32, the model as built, which is what `generate` runs too; and fp16, where speculative and
target-only decoding are compared with each other (the served model is the fp16-rounded one).
Speculation runs at each γ of --gammas; the best is reported beside all of them.
Writes benchmarks/results/decode.json.

    python benchmarks/bench_decode.py [--tiers tiny smollm2] [--batches 1 8 32] [--gammas 1 2 3 4]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from aurora_sim.atomic import atomic_file
from aurora_sim.demo import heldout_prompts
from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.learner.offline import train_static_draft
from aurora_sim.models.drafts import load_draft
from aurora_sim.models.linear import set_weight_format
from aurora_sim.models.llama import Llama
from aurora_sim.models.registry import load_tokenizer, resolve_model

PROMPT_TOKENS = 32
NEW_TOKENS = {"tiny": 48, "smollm2": 32}
PROMPTS = {"tiny": 32, "smollm2": 16}
FORMATS = ("fp32", "fp16")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def hf_generate(hf, prompts, batch, new_tokens):
    for i in range(0, len(prompts), batch):
        x = torch.tensor([list(p) for p in prompts[i : i + batch]])
        hf.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
        )


def ours(target, draft, prompts, batch, new_tokens, gamma):
    reqs = [GenRequest(f"b{i}", p, new_tokens) for i, p in enumerate(prompts)]
    need = max(len(p) for p in prompts) + new_tokens + gamma + 1
    results = TorchSpecEngine(target, draft, gamma=gamma if draft else 0, max_batch=batch, max_len=need).run(reqs)
    rounds = sum(r.rounds for r in results)
    return sum(r.round_tokens for r in results) / rounds


def bench_tier(tier: str, batches: list[int], gammas: list[int]) -> dict:
    from transformers import AutoModelForCausalLM

    model_dir = resolve_model(tier)
    draft_dir = train_static_draft(tier, "eagle3")
    tok = load_tokenizer(model_dir)
    per_domain = PROMPTS[tier] // 3 + 1
    prompts = [ids for _, ids in heldout_prompts(tok, per_domain, PROMPT_TOKENS) if len(ids) == PROMPT_TOKENS]
    prompts = prompts[: PROMPTS[tier]]
    new = NEW_TOKENS[tier]
    target = Llama.from_pretrained(model_dir)
    draft = load_draft(draft_dir, target)
    hf = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    total = len(prompts) * new
    rows = []
    with torch.inference_mode():
        hf_generate(hf, prompts[:2], 2, 4)  # warm-up
        for b in batches:
            _, t_hf = timed(lambda b=b: hf_generate(hf, prompts, b, new))
            row = {"batch": b, "hf_generate_tok_s": total / t_hf}
            for fmt in FORMATS:
                set_weight_format(target, fmt)
                set_weight_format(draft, fmt)
                ours(target, draft, prompts[:2], 2, 4, 2)  # warm-up: packs this format's weights
                _, t_plain = timed(lambda b=b: ours(target, None, prompts, b, new, 0))
                spec = {}
                for g in gammas:
                    al, t_spec = timed(lambda b=b, g=g: ours(target, draft, prompts, b, new, g))
                    spec[str(g)] = {
                        "tok_s": total / t_spec,
                        "acceptance_length": al,
                        "ratio_vs_target_only": t_plain / t_spec,
                    }
                best = max(spec, key=lambda g: spec[g]["tok_s"])
                row[fmt] = {
                    "target_only_tok_s": total / t_plain,
                    "ratio_target_only_vs_hf": t_hf / t_plain,
                    "spec_by_gamma": spec,
                    "best_gamma": int(best),
                    "ratio_best_spec_vs_target_only": spec[best]["ratio_vs_target_only"],
                }
                print(
                    tier,
                    f"b{b}",
                    fmt,
                    json.dumps(
                        {
                            "hf": round(row["hf_generate_tok_s"], 2),
                            "target_only": round(total / t_plain, 2),
                            **{
                                f"g{g}": (round(v["tok_s"], 2), round(v["acceptance_length"], 3))
                                for g, v in spec.items()
                            },
                        }
                    ),
                    flush=True,
                )
            rows.append(row)
    return {
        "tier": tier,
        "prompts": len(prompts),
        "prompt_tokens": PROMPT_TOKENS,
        "new_tokens": new,
        "gammas": gammas,
        "draft": str(draft_dir),
        "rows": rows,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiers", nargs="+", default=["tiny", "smollm2"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--gammas", nargs="+", type=int, default=[1, 2, 3, 4])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--out", type=Path, default=Path(__file__).parent / "results" / "decode.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    report = {
        "machine": {"platform": platform.platform(), "cpu_count": torch.get_num_threads(), "torch": torch.__version__},
        "threads": args.threads,
        "greedy": True,
        "acceptance_length_convention": "tokens per verify round, bonus included",
        "tiers": [bench_tier(t, args.batches, args.gammas) for t in args.tiers],
    }
    with atomic_file(args.out, "w") as fh:
        json.dump(report, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
