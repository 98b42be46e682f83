"""The reference build: shipped, verified on load, the default everywhere, and still the recipe's."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from aurora_sim import reference
from aurora_sim.cli import app
from aurora_sim.errors import AuroraError
from aurora_sim.hashing import sha256_file

runner = CliRunner()


def test_tiny_is_the_shipped_reference_and_matches_its_manifest(tiny_dir):
    assert tiny_dir == reference.ROOT / "tiny"
    files = reference.manifest()["files"]
    assert {"tiny/model.safetensors", "tiny/tokenizer.json", "tiny/config.json"} <= set(files)
    for rel, entry in files.items():
        path = reference.ROOT / rel
        assert path.stat().st_size == entry["bytes"] and sha256_file(path) == entry["sha256"], rel
    prov = json.loads((tiny_dir / "provenance.json").read_text())
    assert prov["model_sha256"] == files["tiny/model.safetensors"]["sha256"]


def test_the_static_drafts_are_shipped_for_every_flavour():
    from aurora_sim.learner.offline import FLAVOURS, train_static_draft

    for flavour in FLAVOURS:
        path = train_static_draft("tiny", "eagle3", flavour=flavour, progress=False)
        assert path == reference.draft_dir("eagle3", flavour) and path.is_relative_to(reference.ROOT)


def test_the_reference_is_the_current_recipe(monkeypatch):
    """A recipe change without a new reference would leave the shipped bytes describing another
    recipe: re-make it (scripts/ship_reference.py) and re-measure what the docs quote."""
    from aurora_sim.learner.offline import FLAVOURS, HOT_VOCAB, draft_key
    from aurora_sim.models import tiny

    monkeypatch.setenv("AURORA_BF16_AUTOCAST", "0")  # the reference is the fp32 recipe
    prov = json.loads((reference.ROOT / "tiny" / "provenance.json").read_text())
    assert prov["recipe_hash"] == tiny.recipe_hash(), "TINY_RECIPE changed: ship a new reference"
    target_sha = reference.manifest()["files"]["tiny/model.safetensors"]["sha256"]
    for flavour in FLAVOURS:
        head = json.loads((reference.draft_dir("eagle3", flavour) / "provenance.json").read_text())
        want = draft_key("eagle3", head["steps"], 0, target_sha, HOT_VOCAB.get("tiny"), flavour)
        assert head["recipe_hash"] == want, f"the {flavour} draft recipe changed: ship a new reference"


def test_the_shipped_hot_vocabulary_is_the_counted_one(tiny_tokenizer, tiny_target):
    from safetensors.torch import load_file

    from aurora_sim.learner.offline import hot_vocabulary
    from aurora_sim.replay.initial import hot_vocab

    shipped = reference.hot_vocab_file(1024)
    assert shipped is not None
    ids = load_file(str(shipped))["d2t"]
    assert ids.tolist() == hot_vocabulary(tiny_tokenizer, 1024, tiny_target.spec.vocab_size).tolist()
    assert hot_vocab("tiny", 1024, tiny_target.spec.vocab_size).tolist() == ids.tolist()


@pytest.fixture
def damaged_copy(tmp_path, monkeypatch):
    """The reference copied elsewhere and pointed at, so a test can damage it."""
    root = tmp_path / "reference"
    shutil.copytree(reference.ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.setattr(reference, "ROOT", root)
    monkeypatch.setattr(reference, "MANIFEST", root / "manifest.json")
    reference.manifest.cache_clear()
    yield root
    reference.manifest.cache_clear()


def test_a_damaged_file_is_a_one_line_error_naming_it(damaged_copy):
    from aurora_sim.models.registry import resolve_model

    assert resolve_model("tiny") == damaged_copy / "tiny"  # intact: verified and used
    weights = damaged_copy / "tiny" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, another sha256
    weights.write_bytes(bytes(data))
    with pytest.raises(AuroraError, match=r"tiny/model.safetensors: reference file damaged or modified"):
        resolve_model("tiny")
    prompts = damaged_copy.parent / "prompts.txt"
    prompts.write_text("def add(a, b):\n")
    res = runner.invoke(app, ["generate", "--prompts", str(prompts), "--model", "tiny", "--draft", "none"])
    assert res.exit_code == 2 and "reference file damaged or modified" in res.output.replace("\n", "")


def test_a_missing_file_is_an_error_and_the_cli_says_so_in_one_line(damaged_copy, tmp_path):
    (damaged_copy / "drafts" / "tiny-eagle3-static" / "model.safetensors").unlink()
    from aurora_sim.learner.offline import train_static_draft

    with pytest.raises(AuroraError, match="tiny-eagle3-static/model.safetensors: reference file missing"):
        train_static_draft("tiny", "eagle3", progress=False)
    res = runner.invoke(app, ["draft", "train", "--model", "tiny"])
    assert res.exit_code == 2
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "reference file missing" in lines[0], res.output


def test_models_list_and_build_say_where_tiny_comes_from():
    res = runner.invoke(app, ["models", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["tiny"]["built"] and rows["tiny"]["source"] == f"reference {reference.version()}"
    res = runner.invoke(app, ["models", "build", "tiny"])
    assert res.exit_code == 0 and "reference build" in res.output and "verified" in res.output


def test_recipe_tier_maps_source_builds_to_their_recipe(tmp_path):
    from aurora_sim.learner.offline import tier_recipe
    from aurora_sim.models.registry import recipe_tier

    assert recipe_tier("tiny-source") == recipe_tier("tiny") == "tiny"
    d = tmp_path / "m"
    d.mkdir()
    (d / "provenance.json").write_text(json.dumps({"tier": "tiny"}))
    assert recipe_tier(d) == "tiny" and tier_recipe(str(d), "eagle3") == tier_recipe("tiny", "eagle3")
    assert recipe_tier(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
