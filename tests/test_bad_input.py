"""Bad input: a clear one-line error naming the problem and the file; nothing half-written."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from aurora_sim.cli import app
from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.errors import AuroraError
from aurora_sim.models.drafts import load_draft, new_eagle3, save_draft
from aurora_sim.models.llama import Llama

runner = CliRunner()


def test_missing_model_dir(tmp_path):
    with pytest.raises(AuroraError, match="model directory not found"):
        Llama.from_pretrained(tmp_path / "nope")


def test_corrupt_config(tmp_path, tiny_dir):
    bad = tmp_path / "m"
    shutil.copytree(tiny_dir, bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(AuroraError, match=r"config.json: corrupt config"):
        Llama.from_pretrained(bad)


def test_corrupt_weights(tmp_path, tiny_dir):
    bad = tmp_path / "m"
    shutil.copytree(tiny_dir, bad)
    (bad / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(AuroraError, match="model.safetensors: corrupt safetensors"):
        Llama.from_pretrained(bad)


def test_draft_vocab_mismatch(tmp_path, tiny_target):
    save_draft(new_eagle3(tiny_target), tmp_path / "d")
    cfg = json.loads((tmp_path / "d" / "config.json").read_text())
    cfg["vocab_size"] += 1
    (tmp_path / "d" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AuroraError, match="vocabulary .* does not match"):
        load_draft(tmp_path / "d", tiny_target)


def test_prompt_longer_than_context(tiny_target):
    engine = TorchSpecEngine(tiny_target, None, gamma=4, max_batch=1)
    with pytest.raises(AuroraError, match="exceeds the context window"):
        engine.add(GenRequest("long", tuple([5] * tiny_target.spec.max_position), 8))


def test_cli_bad_jsonl_names_file_and_line_and_writes_nothing(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "def add(a, b):"}\nnot json\n')
    out = tmp_path / "out.json"
    res = runner.invoke(app, ["generate", "--prompts", str(prompts), "--json", str(out)])
    assert res.exit_code == 2
    assert f"{prompts}:2: not valid JSON" in res.output.replace("\n", "")
    assert not out.exists() and not list(tmp_path.glob(".out.json*"))


def test_cli_missing_model_dir(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("hello\n")
    res = runner.invoke(app, ["generate", "--prompts", str(prompts), "--model", str(tmp_path / "none")])
    assert res.exit_code == 2 and "no such model directory" in res.output
