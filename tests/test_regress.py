"""`aurora regress` catches a deliberate regression and passes an unchanged run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from analysis.regress import Verdict, baseline_path, check_reference, describe_tolerances, judge
from aurora_sim import reference
from aurora_sim.cli import app

runner = CliRunner()


def test_judge_flags_only_changes_for_the_worse():
    base = {
        "a/acceptance_length/seg0_code": 2.0,
        "a/speedup/vs_static": 1.2,
        "a/recovery_requests/shift@800": 100,
        "a/final_loss": 0.5,
        "a/recovery_requests/shift@1600": 60,
    }
    now = {
        "a/acceptance_length/seg0_code": 1.97,  # -1.5 %: beyond the 1 % tolerance
        "a/speedup/vs_static": 1.5,
        "a/recovery_requests/shift@800": 108,  # within the 10 requests
        "a/final_loss": 0.7,
        "a/recovery_requests/shift@1600": None,
    }
    got = {v.metric: v.verdict for v in judge(base, now)}
    assert got == {
        "a/acceptance_length/seg0_code": "REGRESSION",
        "a/speedup/vs_static": "improved",
        "a/recovery_requests/shift@800": "ok",
        "a/final_loss": "REGRESSION",
        "a/recovery_requests/shift@1600": "REGRESSION",
    }
    assert judge({"x/final_loss": 0.5}, {}) == [Verdict("x/final_loss", 0.5, None, "missing")]
    assert describe_tolerances() == ("AL -1 % rel, speedup -1 % rel, recovery +10 requests, final loss +5 % rel")


def test_one_baseline_and_it_names_its_reference(tmp_path):
    from aurora_sim.errors import AuroraError

    path = baseline_path(tmp_path, "shift-mini")
    assert path.name == "shift-mini.json"
    check_reference({"reference": reference.version()}, path)
    with pytest.raises(AuroraError, match=r"shift-mini.json: baseline was recorded on reference build tiny-ref-0"):
        check_reference({"reference": "tiny-ref-0"}, path)


def test_the_committed_baseline_is_for_the_shipped_reference():
    from pathlib import Path

    committed = Path(__file__).resolve().parents[1] / "baselines"
    assert sorted(p.name for p in committed.glob("*.json")) == ["shift-mini.json"]
    check_reference(json.loads((committed / "shift-mini.json").read_text()), committed / "shift-mini.json")


def test_regress_passes_unchanged_and_catches_a_broken_learner(tmp_path, trained_head_dir):
    common = [
        "regress",
        "--limit",
        "40",
        "--baselines",
        str(tmp_path / "b"),
        "--static-draft",
        str(trained_head_dir),
        "--set",
        'deployment="proxy"',
        "--set",
        "learner_min_new=4",
        "--set",
        "learner_batch_requests=4",
        "--set",
        "controller_every=2",
        "-o",
        str(tmp_path / "runs"),
    ]
    res = runner.invoke(app, [*common, "--update"])
    assert res.exit_code == 2 and "--reason" in res.output
    res = runner.invoke(app, [*common, "--update", "--reason", "test baseline"])
    assert res.exit_code == 0, res.output
    from analysis.regress import baseline_path

    baseline = json.loads(baseline_path(tmp_path / "b", "shift-mini").read_text())
    assert baseline["history"][-1]["reason"] == "test baseline"
    assert baseline["reference"] == reference.version()
    assert "online-scratch/final_loss" in baseline["metrics"]

    res = runner.invoke(app, common)
    assert res.exit_code == 0, res.output
    assert "no regression" in res.output and "REGRESSION" not in res.output

    # a deliberate regression: the learner's updates are zeroed (lr = 0), so the online arms
    # stop improving on their starting drafts
    res = runner.invoke(app, [*common, "--set", "learner_lr=0"])
    assert res.exit_code == 1, res.output
    assert "REGRESSION" in res.output and "online-scratch/acceptance_length" in res.output
