"""Make the reference build from a from-source build: copy the tiny target and its static drafts
out of a build cache into aurora_sim/reference/, add the hot-vocabulary tables, write the manifest.

    AURORA_CACHE=/tmp/ref AURORA_BF16_AUTOCAST=0 aurora models build tiny --from-source --static-draft ci
    AURORA_CACHE=/tmp/ref AURORA_BF16_AUTOCAST=0 aurora models build tiny --from-source --static-draft full
    python3 scripts/ship_reference.py --target /tmp/ref/models/tiny-source \
        --draft ci=/tmp/ref/models/drafts/tiny-source-eagle3-static \
        --draft full=/tmp/ref/models/drafts/tiny-source-eagle3-static-full \
        --version tiny-ref-1 --built "the machine and the settings"

Run only when the reference changes (a new recipe, a new draft flavour): every documented number and
the regress baseline are measured on it, so a new version means re-measuring them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aurora_sim.hashing import sha256_file  # noqa: E402
from aurora_sim.reference import MANIFEST, ROOT, TARGET, draft_name  # noqa: E402

DRAFT_FILES = ("config.json", "model.safetensors", "provenance.json")
HOT_SIZES = (1024,)  # the size the docs and benchmarks use (others are counted and cached on first use)


def _copy_target(src: Path, dst: Path) -> None:
    # every file the build wrote (weights, config, tokenizer and its chat template, provenance, log)
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            shutil.copyfile(f, dst / f.name)


def _copy_draft(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for name in DRAFT_FILES:
        shutil.copyfile(src / name, dst / name)
    prov = json.loads((dst / "provenance.json").read_text())
    prov["target"] = f"{TARGET} (reference)"  # the build machine's cache path means nothing elsewhere
    (dst / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")


def _hot_vocab(target: Path, out: Path) -> None:
    from safetensors.torch import save_file

    from aurora_sim.learner.offline import hot_vocabulary
    from aurora_sim.models.llama import read_config
    from aurora_sim.models.registry import load_tokenizer

    tok = load_tokenizer(target)
    vocab = read_config(target)["vocab_size"]
    out.mkdir(parents=True)
    for size in HOT_SIZES:
        ids = hot_vocabulary(tok, size, vocab)
        path = out / f"{TARGET}-{size}.safetensors"
        save_file({"d2t": ids.contiguous()}, str(path))
        path.chmod(0o644)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", type=Path, required=True, help="the from-source tiny target's directory")
    ap.add_argument("--draft", action="append", required=True, help="FLAVOUR=DIR of a static EAGLE-3 head")
    ap.add_argument("--version", required=True)
    ap.add_argument("--built", required=True, help="the machine and settings it was built with")
    args = ap.parse_args()

    staging = ROOT.parent / ".reference.new"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    _copy_target(args.target, staging / TARGET)
    for item in args.draft:
        flavour, _, src = item.partition("=")
        _copy_draft(Path(src), staging / "drafts" / draft_name("eagle3", flavour))
    _hot_vocab(staging / TARGET, staging / "hot-vocab")

    import torch
    import transformers

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    files = {
        str(p.relative_to(staging)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(staging.rglob("*"))
        if p.is_file()
    }
    manifest = {
        "version": args.version,
        "built": {
            "how": args.built,
            "date": datetime.now(UTC).date().isoformat(),
            "commit": commit,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "files": files,
    }
    # swap the shipped data in; the package's code (__init__.py) stays
    for rel in ("tiny", "drafts", "hot-vocab"):
        if (ROOT / rel).exists():
            shutil.rmtree(ROOT / rel)
        shutil.move(str(staging / rel), str(ROOT / rel))
    shutil.rmtree(staging)
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(f["bytes"] for f in files.values())
    print(f"reference {args.version}: {len(files)} files, {total / 2**20:.1f} MiB -> {ROOT}")


if __name__ == "__main__":
    main()
