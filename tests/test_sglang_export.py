"""`aurora draft export` (aurora_sim/sglang/): files, names, exactness of the fc re-layout, run
registry resolution and errors. CPU only, no SGLang needed; the checks against SGLang's own
loader code are in test_sglang_contract.py."""

import json

import polars as pl
import pytest
import torch
from safetensors.torch import load_file
from sglang_helpers import save_target, small_head, small_target
from typer.testing import CliRunner

from aurora_sim.errors import AuroraError
from aurora_sim.models.drafts import lm_draft_from_target, new_eagle3, save_draft
from aurora_sim.sglang import names
from aurora_sim.sglang.export import export_draft
from aurora_sim.sglang.source import resolve


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("sgl")
    target = small_target(layers=6)
    save_target(target, root / "target")
    return root, target


def test_eagle3_export_files(tiny_target, tmp_path):
    head = new_eagle3(tiny_target, seed=3)
    save_draft(head, tmp_path / "d")
    r = export_draft(tmp_path / "d", "sglang-eagle3", tmp_path / "out", model="tiny")
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLMEagle3"] and cfg["num_hidden_layers"] == 1
    assert cfg["tie_word_embeddings"] is False and cfg["draft_vocab_size"] == cfg["vocab_size"] == 4096
    assert cfg["eagle_config"]["eagle_aux_hidden_state_layer_ids"] == [0, 1, 2] == r["eagle_aux_hidden_state_layer_ids"]
    assert cfg["hidden_size"] == 192 and "target_hidden_size" not in cfg  # equal widths: SGLang shares the embedding
    assert cfg["rope_parameters"]["rope_theta"] == 10000.0 and "rope_theta" not in cfg  # the target's spelling
    assert cfg["dtype"] == "float32" and cfg["aurora_export"]["aurora_sha256"] == r["aurora_sha256"]
    state = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert set(state) == set(names.EAGLE3_NAMES.values())  # no embedding, no d2t/t2d (full vocabulary)
    ours = head.state_dict()
    for k, v in names.EAGLE3_NAMES.items():
        assert torch.equal(state[v], ours[k]), k  # sorted distinct layers: fc unchanged
    # transformers parses it as a LlamaConfig with the fields SGLang reads
    from transformers import AutoConfig

    hf = AutoConfig.from_pretrained(tmp_path / "out")
    assert hf.model_type == "llama" and hf.draft_vocab_size == 4096 and hf.tie_word_embeddings is False
    assert hf.eagle_config["eagle_aux_hidden_state_layer_ids"] == [0, 1, 2]


def test_export_dtype_and_atomic_replace(tiny_target, tmp_path):
    save_draft(new_eagle3(tiny_target, seed=1), tmp_path / "d")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.bin").write_text("x")
    export_draft(tmp_path / "d", "sglang-eagle3", tmp_path / "out", model="tiny", dtype="bfloat16")
    state = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert {v.dtype for v in state.values()} == {torch.bfloat16}
    assert json.loads((tmp_path / "out" / "config.json").read_text())["dtype"] == "bfloat16"
    assert not (tmp_path / "out" / "stale.bin").exists()  # replaced whole, not merged
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temp dirs left


@pytest.mark.parametrize("layers", [(4, 0, 2), (2, 2, 0), (1, 3)])
def test_fc_relayout_is_exact(small, tmp_path, layers):
    """SGLang concatenates captures in ascending layer order, de-duplicated: the exported fc on
    that concatenation equals our fc on ours, for shuffled and repeated layer lists."""
    root, target = small
    head = small_head(target, layers)
    save_draft(head, tmp_path / "d")
    r = export_draft(tmp_path / "d", "sglang-eagle3", tmp_path / "out", model=str(root / "target"))
    ids = r["eagle_aux_hidden_state_layer_ids"]
    assert ids == sorted(set(layers))
    fc = load_file(str(tmp_path / "out" / "model.safetensors"))["fc.weight"]
    assert fc.shape == (32, 32 * len(ids))
    tokens = torch.randint(0, 96, (2, 10))
    cache = target.new_cache(2, 16)
    slots, start = torch.arange(2), torch.zeros(2, dtype=torch.long)
    _, ours_in = target(tokens, slots, start, cache, hidden_layers=tuple(layers))
    _, sgl_in = target(tokens, slots, start, target.new_cache(2, 16), hidden_layers=tuple(ids))
    torch.testing.assert_close(sgl_in @ fc.T, head.fuse(ours_in), rtol=1e-5, atol=1e-5)
    if len(set(layers)) < len(layers) or list(layers) != sorted(layers):
        assert not torch.equal(fc, head.fc.weight.detach()[:, : fc.shape[1]])  # the re-layout did something


def test_uncapturable_last_layer_is_refused(small, tmp_path):
    root, target = small
    save_draft(small_head(target, (0, 2, 5)), tmp_path / "d")  # 5 = the last of 6 layers
    with pytest.raises(AuroraError, match=r"layer\(s\) \[5\].*0\.\.4"):
        export_draft(tmp_path / "d", "sglang-eagle3", tmp_path / "out", model=str(root / "target"))
    assert not (tmp_path / "out").exists()


def test_standalone_export_is_an_hf_llama(small, tmp_path):
    root, target = small
    draft = lm_draft_from_target(target)
    save_draft(draft, tmp_path / "d")
    export_draft(tmp_path / "d", "sglang-standalone", tmp_path / "out", model=str(root / "target"))
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["num_hidden_layers"] == 6
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    tokens = torch.randint(0, 96, (1, 12))
    ours, _ = target(tokens, torch.arange(1), torch.zeros(1, dtype=torch.long), target.new_cache(1, 16))
    with torch.no_grad():
        theirs = hf(tokens).logits
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)


def test_standalone_copies_the_tokenizer(tiny_target, tmp_path):
    save_draft(lm_draft_from_target(tiny_target), tmp_path / "d")
    export_draft(tmp_path / "d", "sglang-standalone", tmp_path / "out", model="tiny")
    # SGLang's STANDALONE worker compares the draft's tokenizer vocabulary with the target's
    assert (tmp_path / "out" / "tokenizer.json").is_file() and (tmp_path / "out" / "tokenizer_config.json").is_file()


def test_kind_and_format_mismatch(tiny_target, tmp_path):
    save_draft(new_eagle3(tiny_target), tmp_path / "d")
    with pytest.raises(AuroraError, match="exports as sglang-eagle3"):
        export_draft(tmp_path / "d", "sglang-standalone", tmp_path / "o", model="tiny")
    with pytest.raises(AuroraError, match="unknown export format"):
        export_draft(tmp_path / "d", "gguf", tmp_path / "o", model="tiny")


# ---- a replay run directory as the source -------------------------------------------------------
def _fake_run(root, target, swaps):
    """A run directory as the replay writes it: registry versions, versions and swaps tables."""
    from aurora_sim.replay.eventlog import parquet_bytes
    from controller.registry import VersionRegistry

    reg = VersionRegistry(root / "drafts", keep=10)
    rows = []
    for v in range(4):
        ver = reg.publish(new_eagle3(target, seed=v), v, v - 1 if v else None, v, v)
        rows.append(
            dict(
                run_id="r",
                version=v,
                parent=None,
                train_step=v,
                created_ns=v,
                sha256=ver.sha256,
                path=str(ver.path.relative_to(root)),
                metrics_json="{}",
            )
        )
    for table, data in (("versions", rows), ("swaps", swaps)):
        (root / table).mkdir(parents=True, exist_ok=True)
        (root / table / "part-00000.parquet").write_bytes(parquet_bytes(table, data, "{}"))
    pl.DataFrame({"run_id": ["r"], "model": ["tiny"]}).write_parquet(root / "runs.parquet")
    return reg


def _swap(decision, kind, to, eff):
    return dict(
        run_id="r",
        decision=decision,
        kind=kind,
        policy="cadence",
        reason="",
        decided_ns=eff - 1,
        ready_ns=eff,
        effective_ns=eff,
        from_version=None,
        to_version=to,
        train_step=0,
        newest_capture_ns=None,
        metrics_json="{}",
    )


def test_run_dir_resolution(tiny_target, tmp_path):
    swaps = [
        _swap(0, "swap", 1, 10),
        _swap(1, "swap", 3, 20),
        _swap(2, "rollback", 1, 30),
        dict(_swap(3, "swap", 2, 40), effective_ns=None, kind="not_applied"),
        _swap(4, "hold", 3, 50),
    ]
    reg = _fake_run(tmp_path, tiny_target, swaps)
    assert resolve(tmp_path).version == 1  # the rollback at t=30 is the last applied change
    assert resolve(tmp_path, "latest").version == 3
    assert resolve(tmp_path, "v2").version == 2 and resolve(tmp_path, "2").model == "tiny"
    r = export_draft(tmp_path, "sglang-eagle3", tmp_path / "out")  # model taken from the run
    assert r["version"] == 1 and r["aurora_sha256"] == reg.versions[1].sha256
    # tampered weights are refused, as the replay refuses to serve them
    w = tmp_path / "drafts" / "v00001" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(AuroraError, match="checksum"):
        resolve(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "drafts" / "v00003")
    assert resolve(tmp_path, "latest").version == 2  # pruned versions are skipped
    with pytest.raises(AuroraError, match="pruned"):
        resolve(tmp_path, "3")
    with pytest.raises(AuroraError, match="not in the run's registry"):
        resolve(tmp_path, "9")


def test_run_without_applied_swap_serves_version_0(tiny_target, tmp_path):
    _fake_run(tmp_path, tiny_target, [_swap(0, "hold", 2, 5)])
    assert resolve(tmp_path).version == 0


def test_cli_one_line_errors(tmp_path):
    from aurora_sim.cli import app

    res = CliRunner().invoke(app, ["draft", "export", str(tmp_path), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "neither a replay run directory" in res.output and "Traceback" not in res.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is what a machine without CUDA prints")
def test_replay_engine_sglang_refused_without_cuda():
    from aurora_sim.cli import app

    res = CliRunner().invoke(app, ["replay", "--engine", "sglang", "--limit", "2"])
    assert res.exit_code == 2 and "needs a CUDA GPU" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["replay", "--engine", "vllm", "--limit", "2"])
    assert res.exit_code == 2 and "unknown engine" in res.output
