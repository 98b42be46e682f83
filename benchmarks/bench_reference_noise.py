"""What another machine could add to `aurora regress`'s numbers with the reference build's bytes fixed.

    python3 benchmarks/bench_reference_noise.py [--variants base,threads1,...] [--limit N]

The reference build fixes the weights; what is left between machines is arithmetic: the kernels a
CPU kind takes (ATen's vector width, MKL's and oneDNN's code paths), the thread count (how a
product is split, so how its sums are ordered) and the learner's precision. Each variant replays
the regress scenario's four arms in a fresh process under one such change, on this machine as a
stand-in for the others; the table is each metric's largest deviation from the base run, per
metric family, which is what the regress tolerances (analysis/regress.py) must absorb.
-> benchmarks/results/reference-noise.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]

# name -> (environment changes, extra `aurora regress --set` items, what it stands in for)
VARIANTS: dict[str, tuple[dict, list[str], str]] = {
    "base": ({}, [], "this machine, its native kernels, default threads"),
    "threads1": ({"OMP_NUM_THREADS": "1"}, [], "one intra-op thread (sums split differently)"),
    "aten-avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, [], "ATen's AVX2 kernels (an AVX2-only CPU)"),
    "aten-default": ({"ATEN_CPU_CAPABILITY": "default"}, [], "ATen's scalar kernels"),
    "mkl-avx2": (
        {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
        [],
        "MKL's and oneDNN's AVX2 code paths",
    ),
    "no-onednn": ({"AURORA_ONEDNN_LINEAR": "0"}, [], "MKL for every serving product (no oneDNN)"),
    "learner-bf16": ({}, ["learner_precision=bf16"], "the learner under bf16 autocast (the opt-in)"),
}


def _family(metric: str) -> str:
    return metric.split("/")[1]


def run_variant(name: str, limit: int | None, workdir: Path) -> tuple[dict, float]:
    env_changes, sets, _ = VARIANTS[name]
    env = {**os.environ, **env_changes}
    base_dir = workdir / name
    cmd = [sys.executable, "-m", "aurora_sim", "regress", "--update", "--reason", f"noise {name}"]
    cmd += ["--baselines", str(base_dir), "-o", str(workdir / f"runs-{name}")]
    for s in sets:
        cmd += ["--set", s]
    if limit:
        cmd += ["--limit", str(limit)]
    t0 = time.time()
    subprocess.run(cmd, env=env, cwd=REPO, check=True, capture_output=True)
    return json.loads((base_dir / "shift-mini.json").read_text())["metrics"], time.time() - t0


def deviations(base: dict, other: dict) -> dict[str, dict]:
    """Per family: the largest relative (AL, speedup, loss) or absolute (recovery) deviation."""
    out: dict[str, dict] = {}
    for metric, b in base.items():
        n = other.get(metric)
        fam = _family(metric)
        if b is None or n is None:
            if (b is None) != (n is None):
                out.setdefault(fam, {"max": 0.0, "metric": None, "changed_none": []})
                out[fam].setdefault("changed_none", []).append(metric)
            continue
        dev = abs(n - b) if fam == "recovery_requests" else abs(n - b) / max(abs(b), 1e-12)
        cur = out.setdefault(fam, {"max": 0.0, "metric": None})
        if dev >= cur["max"]:
            cur.update(max=round(dev, 5), metric=metric, base=b, now=n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown} (choose from {', '.join(VARIANTS)})")
    if names[0] != "base":
        names = ["base", *[n for n in names if n != "base"]]
    results = {}
    with tempfile.TemporaryDirectory(prefix="aurora-noise-") as tmp:
        for name in names:
            metrics, wall = run_variant(name, args.limit, Path(tmp))
            results[name] = {"metrics": metrics, "wall_s": round(wall, 1), "what": VARIANTS[name][2]}
            print(f"{name}: {wall:.0f}s", flush=True)
    base = results["base"]["metrics"]
    for name in names[1:]:
        results[name]["deviation"] = deviations(base, results[name]["metrics"])
        print(name, json.dumps({f: d["max"] for f, d in results[name]["deviation"].items()}))
    worst: dict[str, float] = {}
    for name in names[1:]:
        if name == "learner-bf16":  # an opt-in: reported, not what the tolerances must absorb
            continue
        for fam, d in results[name]["deviation"].items():
            worst[fam] = max(worst.get(fam, 0.0), d["max"])
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = {
        "benchmark": "reference-noise",
        "scenario": "shift-mini",
        "limit": args.limit,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "variants": results,
        "worst_default_precision": worst,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "reference-noise.json"
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print("worst (fp32 learner):", json.dumps(worst), "->", path)


if __name__ == "__main__":
    main()
