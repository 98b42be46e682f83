"""Model names users type (`tiny`, `smollm2`, or a directory) and drafts (`none`, `eagle3`, `lm`,
`same`, or a directory), resolved to built artefacts. Tiers build on first use and are cached."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from aurora_sim.errors import AuroraError
from aurora_sim.models import drafts
from aurora_sim.models.llama import Llama
from aurora_sim.paths import models_dir

TIERS = ("tiny", "smollm2")
DRAFT_KINDS = ("none", "eagle3", "lm", "same")


def build_tier(name: str, force: bool = False, progress: bool = True) -> Path:
    if name == "tiny":
        from aurora_sim.models.tiny import build_tiny

        return build_tiny(force=force, progress=progress)
    if name == "smollm2":
        from aurora_sim.models.smollm2 import build_smollm2

        return build_smollm2(force=force, progress=progress)
    raise AuroraError(f"unknown model tier {name!r} (choose from {', '.join(TIERS)} or give a directory)")


def resolve_model(name: str, build: bool = True) -> Path:
    """A tier name builds (once) and returns its directory; anything else must be a directory."""
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
    rows = []
    for name in TIERS:
        path = models_dir() / name
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
                size_mb=round(sum(f.stat().st_size for f in path.glob("*.safetensors")) / 2**20, 1),
            )
        rows.append(row)
    return rows
