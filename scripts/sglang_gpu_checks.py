"""The GPU-side checks of issue 7 §3, ready for a session with a lent GPU and SGLang staged
(scripts/sglang_gpu_stage.sh). Not run yet. Each check writes its numbers (or its error) into
one JSON file, so a failure in one does not hide the others; `--only` runs a subset, to fit the
10-minute limit of one call.

    .sglang-venv/bin/python scripts/sglang_gpu_checks.py -o $OUT/sglang_checks.json
    .sglang-venv/bin/python scripts/sglang_gpu_checks.py --only parity,swap -o $OUT/part.json

Checks (prompts: held-out code/finance/chat prompts of the tiny tier; greedy; γ = --gamma):
  parity     SGLang target-only output == our TorchSpecEngine target-only output, per prompt
  al_same    STANDALONE draft = exact copy of the target: AL near its maximum γ + 1
  al_random  EAGLE3 day-0 (random) head: AL near 1
  swap       EAGLE3 engine started with the random head, hot-swapped to the static (trained) head
             and back, without a restart: AL before / after / after swapping back
  calibrate  wall time of a batch of requests vs batch size with SGLANG_SIMULATE_ACC_LEN forcing
             the acceptance length (one engine per forced value: the variable is read at start)
  replay     `aurora replay --engine sglang` on shift-ci: recorded as blocked (the replay loop
             needs per-round outcomes; docs/sglang.md)
AL here is ours (first token excluded); SGLang's own (completion / verify rounds) is kept beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import traceback
from pathlib import Path

import torch

CHECKS = ("parity", "al_same", "al_random", "swap", "calibrate", "replay")


def prompts(n: int, tokens: int):
    from aurora_sim.demo import heldout_prompts
    from aurora_sim.models.registry import load_tokenizer, resolve_model

    tok = load_tokenizer(resolve_model("tiny"))
    return [ids for _, ids in heldout_prompts(tok, per_domain=max(1, n // 3), prompt_tokens=tokens)][:n]


def requests(ps, max_new: int):
    from aurora_sim.engine.protocol import GenRequest

    return [GenRequest(f"r{i}", tuple(p), max_new) for i, p in enumerate(ps)]


def drive(engine, reqs):
    for r in reqs:
        engine.add(r)
    while engine.has_work():
        engine.step()
    return {r.request_id: r for r in engine.pop_finished()}


def al(results) -> dict:
    rounds = sum(r.rounds for r in results.values())
    toks = sum(r.round_tokens for r in results.values())
    comp = sum(len(r.output_ids) for r in results.values())
    return {
        "acceptance_length": toks / rounds if rounds else None,
        "sglang_accept_length": comp / rounds if rounds else None,
        "verify_rounds": rounds,
        "requests": len(results),
    }


def export(tmp: Path, name: str, draft, fmt: str) -> Path:
    from aurora_sim.models.drafts import save_draft
    from aurora_sim.sglang.export import export_draft

    save_draft(draft, tmp / f"{name}-aurora")
    export_draft(tmp / f"{name}-aurora", fmt, tmp / name, model="tiny")
    return tmp / name


def sglang_engine(draft_dir, algorithm, args, **kw):
    from aurora_sim.models.registry import resolve_model
    from aurora_sim.sglang.engine import SGLangEngine

    target = kw.pop("target")
    return SGLangEngine(
        resolve_model("tiny"),
        draft_dir,
        algorithm=algorithm,
        gamma=args.gamma,
        max_batch=args.batch,
        dtype=args.dtype,
        attention_backend=args.attention_backend,
        target_spec=target.spec,
        **kw,
    )


def check_parity(args, ctx):
    from aurora_sim.engine.torch_engine import TorchSpecEngine

    reqs = requests(ctx["prompts"], args.max_new)
    ours = drive(TorchSpecEngine(ctx["target"], None, gamma=0, max_batch=args.batch), reqs)
    eng = sglang_engine(None, "EAGLE3", args, target=ctx["target"])
    try:
        theirs = drive(eng, reqs)
    finally:
        eng.shutdown()
    same = [rid for rid in ours if ours[rid].output_ids == theirs[rid].output_ids]
    first_diff = {
        rid: next((i for i, (a, b) in enumerate(zip(ours[rid].output_ids, theirs[rid].output_ids)) if a != b), None)
        for rid in ours
        if rid not in same
    }
    return {"identical": len(same), "requests": len(ours), "first_divergence": first_diff, "dtype": args.dtype}


def check_al(args, ctx, which):
    from aurora_sim.models.drafts import lm_draft_from_target, new_eagle3

    if which == "same":
        d, algo = export(ctx["tmp"], "same", lm_draft_from_target(ctx["target"]), "sglang-standalone"), "STANDALONE"
    else:
        d, algo = export(ctx["tmp"], "random", new_eagle3(ctx["target"], seed=1), "sglang-eagle3"), "EAGLE3"
    eng = sglang_engine(d, algo, args, target=ctx["target"])
    try:
        return {**al(drive(eng, requests(ctx["prompts"], args.max_new))), "max": args.gamma + 1, "algorithm": algo}
    finally:
        eng.shutdown()


def check_swap(args, ctx):
    from aurora_sim.learner.offline import train_static_draft
    from aurora_sim.models.drafts import load_draft, new_eagle3

    target = ctx["target"].cpu()
    random_head = new_eagle3(target, seed=1)
    static = load_draft(train_static_draft("tiny", "eagle3", progress=False), target)
    eng = sglang_engine(export(ctx["tmp"], "swap-random", random_head, "sglang-eagle3"), "EAGLE3", args, target=target)
    out = {}
    try:
        reqs = requests(ctx["prompts"], args.max_new)
        out["random"] = al(drive(eng, reqs))
        t0 = time.perf_counter()
        out["api"] = eng.swap_draft(static, 1)
        out["swap_s"] = time.perf_counter() - t0
        out["static"] = al(drive(eng, reqs))
        eng.swap_draft(random_head, 2)
        out["random_again"] = al(drive(eng, reqs))
    finally:
        eng.shutdown()
    return out


def check_calibrate(args, ctx):
    from aurora_sim.learner.offline import train_static_draft
    from aurora_sim.models.drafts import load_draft

    d = export(
        ctx["tmp"],
        "calib",
        load_draft(train_static_draft("tiny", "eagle3", progress=False), ctx["target"].cpu()),
        "sglang-eagle3",
    )
    rows = []
    for acc in args.acc_lens:
        os.environ["SGLANG_SIMULATE_ACC_LEN"] = str(acc)
        eng = sglang_engine(d, "EAGLE3", args, target=ctx["target"])
        try:
            drive(eng, requests(ctx["prompts"][:2], 8))  # warm-up (CUDA graphs, JIT)
            for batch in args.batches:
                reqs = requests((ctx["prompts"] * batch)[:batch], args.max_new)
                t0 = time.perf_counter()
                res = drive(eng, reqs)
                rows.append({"forced_acc_len": acc, "batch": batch, "wall_s": time.perf_counter() - t0, **al(res)})
        finally:
            eng.shutdown()
            os.environ.pop("SGLANG_SIMULATE_ACC_LEN", None)
    return {
        "rows": rows,
        "note": "round time = wall_s / verify_rounds x batch-concurrency; feed into the profiled table",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--only", default=",".join(CHECKS))
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--prompt-tokens", type=int, default=24)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument(
        "--dtype", default="float32", help="float32 for exact parity with our fp32 engine; bfloat16 also works"
    )
    ap.add_argument("--attention-backend", default="triton")
    ap.add_argument("--acc-lens", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0, 5.0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16])
    args = ap.parse_args()

    from aurora_sim.models.registry import load_target
    from aurora_sim.sglang.runtime import require_sglang

    result = {
        "sglang": require_sglang("sglang_gpu_checks"),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    ctx = {
        "target": load_target("tiny", dtype=getattr(torch, args.dtype), device="cuda"),
        "prompts": prompts(args.prompts, args.prompt_tokens),
    }
    with tempfile.TemporaryDirectory() as tmp:
        ctx["tmp"] = Path(tmp)
        for name in args.only.split(","):
            t0 = time.perf_counter()
            try:
                if name == "parity":
                    r = check_parity(args, ctx)
                elif name in ("al_same", "al_random"):
                    r = check_al(args, ctx, name.removeprefix("al_"))
                elif name == "swap":
                    r = check_swap(args, ctx)
                elif name == "calibrate":
                    r = check_calibrate(args, ctx)
                elif name == "replay":
                    r = {"status": "blocked", "reason": "the replay loop needs per-round outcomes (docs/sglang.md)"}
                else:
                    raise ValueError(f"unknown check {name!r} (choose from {', '.join(CHECKS)})")
            except Exception as exc:  # record and go on: one broken check must not hide the rest
                r = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
            result[name] = {**r, "wall_s": round(time.perf_counter() - t0, 2)}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1, sort_keys=True, default=str))
            print(name, json.dumps(result[name], default=str)[:400], flush=True)


if __name__ == "__main__":
    main()
