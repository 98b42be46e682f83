"""The virtual-time cost model: analytic roofline + overheads, measured profiles, calibration."""

import dataclasses
import json

import pytest
import typer
from typer.testing import CliRunner

from aurora_sim.costs import (
    DEPLOYMENTS,
    HARDWARE,
    CostModel,
    ModelShape,
    ProfiledCost,
    RoundShape,
    implied_speedup,
    make_cost_model,
)
from aurora_sim.costs.deployments import load_deployment
from aurora_sim.errors import AuroraError

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
GPUS = ("h100", "h200", "a100")


def steady(cost, b, g, ctx=512, al=3.5):
    return cost.round_ns(RoundShape.steady(b, g, ctx, min(al, g + 1)))


# ---- analytic: shape of the curves ------------------------------------------------------------
@pytest.mark.parametrize("hw", [*GPUS, "cpu"])
@pytest.mark.parametrize("dep", sorted(DEPLOYMENTS))
def test_more_work_is_never_cheaper(hw, dep):
    cost = make_cost_model(hw, dep)
    for g in (0, 1, 3, 5, 8):
        times = [steady(cost, b, g) for b in BATCHES]
        assert times == sorted(times), (g, times)
        by_ctx = [steady(cost, 8, g, ctx) for ctx in (0, 128, 1024, 8192)]
        assert by_ctx == sorted(by_ctx)
    for b in (1, 16, 128):
        by_gamma = [steady(cost, b, g) for g in range(9)]
        assert by_gamma == sorted(by_gamma), (b, by_gamma)
    # one field at a time, the others fixed
    base = RoundShape(
        batch=8, gamma=4, draft_tokens=60, verify_tokens=40, prefill_tokens=100, context_tokens=4000, prefill_requests=2
    )
    for field in ("draft_tokens", "verify_tokens", "prefill_tokens", "context_tokens"):
        values = [cost.round_ns(dataclasses.replace(base, **{field: getattr(base, field) * k})) for k in (1, 2, 4, 16)]
        assert values == sorted(values), (field, values)


def test_sglang_fit_holds_at_batch_1():
    """A speculative round ≈ 1.2 + 0.23·γ target-only rounds for an 8B target at batch 1."""
    for hw in GPUS:
        cost = make_cost_model(hw, "llama3-8b")
        for ctx in (256, 1024, 4096):
            base = steady(cost, 1, 0, ctx)
            for g in range(1, 9):
                ratio = steady(cost, 1, g, ctx, al=1 + g / 2) / base
                assert ratio == pytest.approx(1.2 + 0.23 * g, rel=0.10), (hw, ctx, g, ratio)
    assert make_cost_model("h100").describe()["overheads"]["source"].startswith("fitted")


def test_speedup_erodes_with_batch(capsys):
    """EAGLE-3 on SGLang/H100: 1.81x at batch 2 → 1.38x at batch 64 (ratio 0.76). Ours, AL 3.5 γ=5:
    bounded above at batch 1 by the fit (3.5 / 2.35 = 1.49x) and falling once b·(γ+1) passes the ridge."""
    cost = make_cost_model("h100", "llama3-8b")
    lines = [
        "batch "
        + " ".join(f"{'γ=' + str(g) + ' AL=' + str(al):>12}" for g, al in ((4, 3.5), (5, 3.5), (6, 3.5), (5, 4.0)))
    ]
    for b in BATCHES:
        lines.append(
            f"{b:5d} "
            + " ".join(
                f"{implied_speedup(cost, b, g, al):11.2f}x" for g, al in ((4, 3.5), (5, 3.5), (6, 3.5), (5, 4.0))
            )
        )
    with capsys.disabled():
        print("\nllama3-8b on h100, 512 cached tokens/row: implied speedup\n" + "\n".join(lines))
    s = {b: implied_speedup(cost, b, 5, 3.5) for b in BATCHES}
    assert s[1] == pytest.approx(3.5 / (1.2 + 0.23 * 5), rel=0.05)
    assert s[1] >= 1.4
    assert s[64] <= 1.3 and s[64] / s[1] <= 0.85
    assert s[128] < 1.0
    assert [s[b] for b in BATCHES] == sorted(s.values(), reverse=True)  # never recovers with batch
    for g, al in ((4, 3.5), (4, 4.0), (6, 3.5), (6, 4.0)):
        assert implied_speedup(cost, 128, g, al) < 0.75 * implied_speedup(cost, 1, g, al)
    # with target-only rounds priced in, a perfect draft at γ=3 and batch 1 clears 2x
    assert implied_speedup(cost, 1, 3, 4.0) >= 2.0


def test_faster_memory_decodes_faster():
    for dep in DEPLOYMENTS:
        t = {hw: steady(make_cost_model(hw, dep), 1, 0) for hw in GPUS}
        assert t["h200"] < t["h100"] < t["a100"], (dep, t)
    # a batch-1 decode of an 8B model is memory-bound: it scales with bandwidth, not FLOPs
    t100, t200 = steady(make_cost_model("h100"), 1, 0), steady(make_cost_model("h200"), 1, 0)
    assert t100 / t200 == pytest.approx(4.8 / 3.35, rel=0.1)


def test_decode_matches_public_numbers():
    # Llama-3.1-8B bf16, batch 1, H100: ~6 ms/token (SGLang/vLLM report ~150-170 tok/s)
    assert 5.5e6 < steady(make_cost_model("h100"), 1, 0) < 7e6
    # 70B on 4 H100s: a 141 GB read split four ways, ~13-20 ms/token
    assert 12e6 < steady(make_cost_model("h100", "llama3-70b"), 1, 0) < 20e6


def test_deterministic_ints():
    shapes = [RoundShape.steady(b, g, 700, 2.7) for b in (1, 3, 64) for g in (0, 2, 7)]
    shapes.append(RoundShape(5, 3, 17, 20, 300, 2000, 3))
    for hw in [*GPUS, "cpu"]:
        a, b = make_cost_model(hw), make_cost_model(hw)
        ra, rb = [a.round_ns(s) for s in shapes], [b.round_ns(s) for s in shapes]
        assert ra == rb and all(type(x) is int and x > 0 for x in ra)
        assert a.train_step_ns(4096) == b.train_step_ns(4096) and type(a.train_step_ns(4096)) is int
        assert a.swap_ns() == b.swap_ns() and all(type(x) is int for x in a.swap_ns())
    assert make_cost_model().round_ns(RoundShape(0, 0, 0, 0)) == 0


def test_recapture_is_priced_from_sglangs_logged_capture_time():
    from aurora_sim.costs.swap import RECAPTURE_NS_PER_SIZE, break_even_al_gain, sglang_spec_capture_sizes

    # SGLang's default sizes with speculative decoding: 1..8, 10..32 by 2, 40..160 by 16
    assert len(sglang_spec_capture_sizes()) == 28 and sglang_spec_capture_sizes(8) == list(range(1, 9))
    assert sglang_spec_capture_sizes(12) == [*range(1, 9), 10, 12] and sglang_spec_capture_sizes(9)[-1] == 9
    assert RECAPTURE_NS_PER_SIZE * 28 <= 62_670_000_000 < RECAPTURE_NS_PER_SIZE * 28 + 28
    at8 = make_cost_model("h100", swap="recapture", max_batch=8).swap_ns()
    at64 = make_cost_model("h100", swap="recapture", max_batch=64).swap_ns()
    assert at8[1] == 8 * RECAPTURE_NS_PER_SIZE and at64[1] == 23 * RECAPTURE_NS_PER_SIZE  # 17.9 s; 51.5 s (64 added)
    assert at8[0] == make_cost_model("h100").swap_ns()[0]  # publishing is the same either way
    assert make_cost_model("cpu", swap="recapture").swap_ns()[1] == 0  # no CUDA graphs
    # break-even: a 1 s pause every 11 s needs a 10 % longer AL; a pause that fills the interval never pays
    assert break_even_al_gain(2.0, 1.0, 11.0) == pytest.approx(0.2)
    assert break_even_al_gain(2.0, 5.0, 5.0) is None
    with pytest.raises(AuroraError, match="unknown swap mechanism"):
        make_cost_model("h100", swap="hot")


def test_train_and_swap_costs():
    cost = make_cost_model("h100", "llama3-8b", train_unroll=5)
    steps = [cost.train_step_ns(n) for n in (256, 1024, 4096, 16384)]
    assert steps == sorted(steps) and steps[-1] > 3 * steps[-2]  # compute-bound at scale
    assert make_cost_model("h100", train_unroll=7).train_step_ns(4096) > cost.train_step_ns(4096)
    assert 50e6 < cost.train_step_ns(4096) < 1e9  # 6·0.82B·4096·5 FLOPs ≈ 100 TFLOP at ~640 TFLOP/s
    publish, pause = cost.swap_ns()
    # Aurora: ~2 GB per sync; our head is 0.82B params = 1.6 GB bf16, written and read at 2 GB/s
    assert 1.2e9 < publish < 3e9
    # in-place (the default): one device copy of 1.6 GB, read and written at the achieved
    # 2.68 TB/s, and a sync: about a millisecond
    assert 0.5e6 < pause < 3e6
    assert make_cost_model("cpu").swap_ns()[1] == 0  # no CUDA graphs: serving never stalls
    with pytest.raises(AuroraError):
        make_cost_model("h100", train_unroll=0)


def test_describe_is_json_and_complete():
    for hw in [*GPUS, "cpu"]:
        d = json.loads(json.dumps(make_cost_model(hw, "qwen3-8b").describe()))
        assert d["kind"] == "analytic"
        assert set(d["hardware"]) == {f.name for f in dataclasses.fields(HARDWARE[hw])}
        assert d["deployment"]["name"] == "qwen3-8b" and d["deployment"]["target"]["params"] > 8e9
        for key in (
            "round_overhead_ns",
            "draft_step_overhead_ns",
            "decode_overhead_ns",
            "spec_row_overhead_ns",
            "source",
        ):
            assert key in d["overheads"]
        assert d["train"]["unroll"] == 5 and d["swap"]["draft_bytes"] > 0
        assert {"optimizer_bytes_per_param", "loss_bytes_per_logit"} <= set(d["constants"])


def test_cost_models_satisfy_the_protocol():
    assert isinstance(make_cost_model(), CostModel)
    assert isinstance(ProfiledCost(_table()), CostModel)


# ---- names and files ------------------------------------------------------------------------
def test_unknown_names_are_one_line_errors():
    with pytest.raises(AuroraError, match="h100, h200, a100, cpu"):
        make_cost_model("tpu-v9")
    with pytest.raises(AuroraError, match="llama3-8b"):
        make_cost_model("h100", "gpt-9")
    with pytest.raises(AuroraError, match="proxy"):
        make_cost_model("h100", "proxy")
    with pytest.raises(AuroraError, match="profile"):
        make_cost_model("profiled")
    with pytest.raises(AuroraError, match="eagle3, lm, same, none"):
        make_cost_model("cpu", "proxy", proxy_target=_tiny_spec(), proxy_draft_kind="tree")
    with pytest.raises(AuroraError, match="batch"):
        RoundShape(-1, 0, 0, 0)


def test_bad_profile_files_name_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(AuroraError, match=str(missing)):
        make_cost_model("profiled", profile_path=missing)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"kind": "profiled", "round_ns": ')
    with pytest.raises(AuroraError, match=rf"{corrupt}.*corrupt"):
        ProfiledCost.from_file(corrupt)
    for mutate, why in [
        (lambda t: t.pop("swap_pause_ns"), "missing"),
        (lambda t: t["round_ns"]["2"].update({"4": 1}), "decreases"),
        (lambda t: t["round_ns"].pop("4"), "no row for gamma 4"),
        (lambda t: t.update(kind="analytic"), "kind"),
        (lambda t: t.update(batch_grid=[4, 2]), "increasing"),
    ]:
        table = _table()
        mutate(table)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(table))
        with pytest.raises(AuroraError, match=rf"{bad}.*{why}"):
            make_cost_model("profiled", profile_path=bad)


def test_deployment_json_file(tmp_path):
    cfg = {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    }
    path = tmp_path / "dep.json"
    path.write_text(json.dumps({"name": "mine", "target": cfg, "draft": {"kind": "eagle3"}}))
    dep = load_deployment(path)
    assert dep.target == DEPLOYMENTS["llama3-8b"].target and dep.draft == DEPLOYMENTS["llama3-8b"].draft
    assert make_cost_model("h100", str(path)).round_ns(RoundShape.steady(4, 3, 100, 2)) == make_cost_model(
        "h100", "llama3-8b"
    ).round_ns(RoundShape.steady(4, 3, 100, 2))
    # a trimmed draft vocabulary (the released EAGLE-3 heads use 32k) makes a cheaper head
    path.write_text(json.dumps({"target": cfg, "draft": {"kind": "eagle3", "draft_vocab_size": 32000}}))
    assert load_deployment(path).draft.params < DEPLOYMENTS["llama3-8b"].draft.params - 3e8
    path.write_text(json.dumps({"target": {"hidden_size": 4096}}))
    with pytest.raises(AuroraError, match=rf"{path}.*bad deployment"):
        make_cost_model("h100", str(path))


# ---- shapes -------------------------------------------------------------------------------------
def test_public_parameter_counts():
    assert DEPLOYMENTS["llama3-8b"].target.params == pytest.approx(8.03e9, rel=0.005)
    assert DEPLOYMENTS["qwen3-8b"].target.params == pytest.approx(8.19e9, rel=0.005)
    assert DEPLOYMENTS["llama3-70b"].target.params == pytest.approx(70.55e9, rel=0.005)
    moe = DEPLOYMENTS["qwen3-coder-30b-a3b"].target
    assert moe.params == pytest.approx(30.5e9, rel=0.01)
    assert moe.active_params + moe.embedding_params == pytest.approx(3.3e9, rel=0.03)
    # one token reads its experts; a big batch reads them all
    assert moe.weights_read(1) == pytest.approx(moe.active_params)
    assert moe.weights_read(4096) == pytest.approx(moe.matmul_params, rel=1e-3)
    head = DEPLOYMENTS["llama3-8b"].draft  # one layer (2H-wide attention input) + fc 3H→H + lm_head H×V
    assert head.params == pytest.approx(0.819e9, rel=0.005) and head.layers == 1


def test_model_shape_matches_the_real_models(tiny_target):
    from aurora_sim.models.registry import make_draft

    shape = ModelShape.from_spec(tiny_target.spec)
    assert shape.params == sum(p.numel() for p in tiny_target.parameters())
    for kind in ("eagle3", "lm"):
        draft = make_draft(kind, tiny_target)
        dep = make_cost_model("cpu", "proxy", proxy_target=tiny_target.spec, proxy_draft_kind=kind).dep
        assert dep.draft.params == sum(p.numel() for p in draft.parameters()), kind
    same = make_cost_model("cpu", "proxy", proxy_target=tiny_target.spec, proxy_draft_kind="same")
    assert same.dep.draft == same.dep.target
    eagle = make_cost_model("cpu", "proxy", proxy_target=tiny_target.spec).dep.draft
    none = make_cost_model("cpu", "proxy", proxy_target=tiny_target.spec, proxy_draft_kind="none")
    assert none.dep.draft == eagle and none.dep.draft_kind.startswith("none")


def test_proxy_draft_from_a_saved_directory(tiny_target, tmp_path):
    from aurora_sim.models.drafts import new_lm_draft, save_draft

    saved = save_draft(new_lm_draft(tiny_target), tmp_path / "lm")
    cost = make_cost_model("cpu", "proxy", proxy_target=tiny_target.spec, proxy_draft_kind=str(saved))
    assert cost.dep.draft_kind.startswith("lm (")
    assert (
        cost.dep.draft
        == make_cost_model("cpu", "proxy", proxy_target=tiny_target.spec, proxy_draft_kind="lm").dep.draft
    )


# ---- profiled ----------------------------------------------------------------------------------
def _table():
    return {
        "kind": "profiled",
        "device": "cpu",
        "model": "test",
        "draft": "eagle3",
        "gamma_grid": [0, 2, 4],
        "batch_grid": [1, 2, 4, 8],
        "round_ns": {
            "0": {"1": 1000, "2": 1200, "4": 1600, "8": 2400},
            "2": {"1": 2000, "2": 2400, "4": 3200, "8": 4800},
            "4": {"1": 3000, "2": 3600, "4": 4800, "8": 7200},
        },
        "prefill_ns_per_token": 10,
        "train_step_ns_per_token": 100,
        "train_step_fixed_ns": 5000,
        "train_unroll": 5,
        "swap_publish_ns": 7000,
        "swap_pause_ns": 0,
        "measured_at": "2026-01-01T00:00:00+00:00",
        "torch": "x",
    }


def test_profiled_lookup_interpolates(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_table()))
    cost = make_cost_model("profiled", profile_path=path, train_unroll=10)

    def r(b, g, prefill=0):
        return cost.round_ns(RoundShape(b, g, 0, b * (g + 1), prefill, 0))

    assert r(4, 2) == 3200 and r(1, 0) == 1000  # grid points exactly
    assert r(3, 2) == 2800  # halfway between batch 2 and 4
    assert r(6, 0) == 2000
    assert r(16, 4) == 7200 + 8 * 600  # past the grid: the last segment's slope
    assert r(2, 3) == 3000  # γ between rows
    assert r(2, 6) == 4800  # γ past the grid: extrapolated along the last two rows
    assert r(4, 2, prefill=50) == 3200 + 500
    for g in range(8):
        values = [r(b, g) for b in range(1, 40)]
        assert values == sorted(values), g
    assert cost.train_step_ns(1000) == 5000 + 1000 * 100 * 2  # measured at unroll 5, asked for 10
    assert cost.swap_ns() == (7000, 0)
    d = json.loads(json.dumps(cost.describe()))
    assert d["kind"] == "profiled" and d["path"] == str(path) and d["table_measured_at"].startswith("2026")


def test_calibrate_tiny_writes_a_loadable_profile(tiny_dir, tmp_path):
    from aurora_sim.costs.calibrate import calibrate

    out = calibrate(
        model="tiny",
        draft="eagle3",
        batches=(1, 2),
        gammas=(0, 2),
        rounds=3,
        warmup=1,
        out=tmp_path / "cal" / "tiny-cpu.json",
        progress=False,
    )
    table = json.loads(out.read_text())
    assert table["gamma_grid"] == [0, 2] and table["batch_grid"] == [1, 2]
    assert table["torch"] and table["measured_at"] and table["context_per_row"] >= 64
    cost = ProfiledCost.from_file(out)
    for b in (1, 2):
        # wall-clock medians of a few rounds: ordering them would make the test flaky on a busy
        # machine (timings belong in benchmarks); check they are measured and of a sane scale
        spec, plain = cost.round_ns(RoundShape.steady(b, 2, 70, 1.0)), cost.round_ns(RoundShape.steady(b, 0, 70))
        assert 0.3 < spec / plain < 50
    assert cost.round_ns(RoundShape.steady(1, 0, 70)) > 100_000  # a real forward, not a stub
    assert table["prefill_ns_per_token"] > 0 and table["train_step_ns_per_token"] > 0
    assert cost.train_step_ns(256) > 0 and cost.swap_ns()[0] > 0
    assert not list(out.parent.glob(".*.tmp"))  # written atomically: no temp file left behind
    # the axes a validation meets: context per row and admissions (prompt length, 1 or `batch` prompts)
    assert table["context_grid"] == [32, 128, 512] and table["prefill_grid"] == [16, 64, 256]
    assert sorted(table["round_ns_by_context"]) == ["128", "32", "512"]
    assert table["round_ns"] == table["round_ns_by_context"]["128"]
    assert set(table["admit_ns"]["2"]["2"]) == {"1", "2"} and set(table["admit_ns"]["0"]["1"]) == {"1"}
    steady = RoundShape.steady(2, 2, 64)
    admitting = RoundShape(2, 2, 70, 6, 256, 2 * 64, 2, 128)  # two 128-token prompts join
    assert cost.round_ns(admitting) > cost.round_ns(steady)  # a real prefill costs something
    assert cost.coverage()["outside"] == 0


# ---- CLI functions (registered as `aurora costs` / `aurora calibrate` by aurora_sim.cli) -------
def _app():
    from aurora_sim.costs.cli import calibrate_command, costs_command

    app = typer.Typer()
    app.command("costs")(costs_command)
    app.command("calibrate")(calibrate_command)
    return app


def test_costs_command_prints_table_and_json():
    runner = CliRunner()
    res = runner.invoke(_app(), ["costs", "--batches", "1,64", "--gammas", "0,5"])
    assert res.exit_code == 0, res.output
    assert "analytic:h100:llama3-8b" in res.output and "x)" in res.output
    res = runner.invoke(
        _app(),
        ["costs", "--hardware", "h200", "--deployment", "qwen3-8b", "--json", "--batches", "1", "--gammas", "0,3"],
    )
    doc = json.loads(res.output)
    assert doc["model"]["hardware"]["name"] == "h200" and len(doc["table"]) == 2
    res = runner.invoke(_app(), ["costs", "--hardware", "tpu"])
    assert res.exit_code == 2 and "unknown hardware" in res.output
    res = runner.invoke(_app(), ["costs", "--batches", "1,x"])
    assert res.exit_code == 2 and "--batches" in res.output


def _tiny_spec():
    from aurora_sim.models.llama import LlamaSpec

    return LlamaSpec(4096, 192, 512, 4, 3, 1, 64, 1e4, 1e-5, 1024, True)


def test_calibrate_command_and_default_path(tiny_dir, tmp_path, monkeypatch):
    from aurora_sim.costs.calibrate import default_out

    out = tmp_path / "p.json"
    res = CliRunner().invoke(
        _app(), ["calibrate", "--batches", "1", "--gammas", "0", "--rounds", "1", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "round time" in res.output and ProfiledCost.from_file(out).round_ns(RoundShape.steady(1, 0, 64)) > 0
    res = CliRunner().invoke(_app(), ["calibrate", "--draft", "none", "--gammas", "0,2", "--out", str(out)])
    assert res.exit_code == 2 and "gammas 0" in res.output
    monkeypatch.setenv("AURORA_CACHE", str(tmp_path / "cache"))
    assert default_out("tiny", "cuda:0") == tmp_path / "cache" / "calibration" / "tiny-cuda0.json"
