"""Model names users type (`tiny`, `tiny-source`, `smollm2`, or a directory) and drafts (`none`,
`eagle3`, `lm`, `same`, or a directory), resolved to artefacts.

`tiny` is the reference build shipped with the package (`aurora_sim.reference`: verified, the same
bytes everywhere); `tiny-source` is the same recipe rebuilt on this machine (`aurora models build
tiny --from-source`; its bytes depend on the CPU); `smollm2` builds on first use and is cached."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from aurora_sim.errors import AuroraError
from aurora_sim.models import drafts
from aurora_sim.models.llama import Llama
from aurora_sim.paths import models_dir

TIERS = ("tiny", "tiny-source", "smollm2")
# a tier rebuilt here from another tier's recipe -> that tier (recipes and draft recipes are its)
SOURCE_BUILDS = {"tiny-source": "tiny"}
DRAFT_KINDS = ("none", "eagle3", "lm", "same")


def recipe_tier(model: str | Path) -> str:
    """The tier whose recipes apply to `model`: a tier name, its from-source build, or a directory
    whose provenance names a tier (a from-source build addressed by path); else the name itself."""
    name = str(model)
    if name in SOURCE_BUILDS:
        return SOURCE_BUILDS[name]
    if name in TIERS:
        return name
    try:
        tier = json.loads((Path(name).expanduser() / "provenance.json").read_text()).get("tier")
    except (OSError, ValueError, AttributeError):
        return name
    return tier if tier in TIERS else name


def build_tier(name: str, force: bool = False, progress: bool = True, from_source: bool = False) -> Path:
    """`tiny`: the shipped reference (verified; nothing to build) unless `from_source`, which
    rebuilds it from its recipe as `tiny-source`."""
    if name == "tiny" and not from_source:
        from aurora_sim import reference

        return reference.target_dir()
    if name in ("tiny", "tiny-source"):
        from aurora_sim.models.tiny import build_tiny

        return build_tiny(force=force, progress=progress, out_dir=models_dir() / "tiny-source")
    if name == "smollm2":
        from aurora_sim.models.smollm2 import build_smollm2

        return build_smollm2(force=force, progress=progress)
    raise AuroraError(f"unknown model tier {name!r} (choose from {', '.join(TIERS)} or give a directory)")


def resolve_model(name: str, build: bool = True) -> Path:
    """`tiny` is the verified reference; another tier name builds (once) and returns its directory;
    anything else must be a directory."""
    if name == "tiny":
        from aurora_sim import reference

        return reference.target_dir()
    if name in TIERS:
        path = models_dir() / name
        if not (path / "provenance.json").is_file():
            if not build:
                raise AuroraError(f"{path}: model {name!r} is not built (run `aurora models build {name}`)")
            return build_tier(name)
        return path
    path = Path(name).expanduser()
    if not path.is_dir():
        raise AuroraError(f"{name}: no such model directory (tiers: {', '.join(TIERS)})")
    return path


def load_target(name: str, dtype: torch.dtype = torch.float32, device: str = "cpu") -> Llama:
    return Llama.from_pretrained(resolve_model(name), dtype=dtype, device=device)


def load_tokenizer(path: Path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # corpora documents exceed model_max_length on purpose (we window them)

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # transformers raises OSError/ValueError variants for broken dirs
        raise AuroraError(f"{path}: cannot load tokenizer ({exc.__class__.__name__})") from None


def make_draft(spec: str, target: Llama, seed: int = 0):
    """`none` -> no speculation; `eagle3`/`lm` -> random day-0 draft from `seed`;
    `same` -> an exact copy of the target (sanity anchor); otherwise a saved draft directory."""
    if spec == "none":
        return None
    if spec == "eagle3":
        return drafts.new_eagle3(target, seed=seed)
    if spec == "lm":
        return drafts.new_lm_draft(target, seed=seed)
    if spec == "same":
        return drafts.lm_draft_from_target(target)
    return drafts.load_draft(spec, target)


def list_models() -> list[dict]:
    from aurora_sim import reference

    rows = []
    for name in TIERS:
        path = reference.ROOT / reference.TARGET if name == "tiny" else models_dir() / name
        prov_file = path / "provenance.json"
        row = {"name": name, "path": str(path), "built": prov_file.is_file()}
        if row["built"]:
            prov = json.loads(prov_file.read_text())
            cfg = json.loads((path / "config.json").read_text())
            row.update(
                layers=cfg.get("num_hidden_layers"),
                hidden=cfg.get("hidden_size"),
                vocab=cfg.get("vocab_size"),
                recipe=str(prov.get("recipe_hash", ""))[:12],
                source=f"reference {reference.version()}" if name == "tiny" else "built here",
                size_mb=round(sum(f.stat().st_size for f in path.glob("*.safetensors")) / 2**20, 1),
            )
        rows.append(row)
    return rows
