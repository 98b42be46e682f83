"""`aurora regress` catches a deliberate regression and passes an unchanged run."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from analysis.regress import Verdict, baseline_path, current_build, judge
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
        "a/acceptance_length/seg0_code": 1.9,
        "a/speedup/vs_static": 1.5,
        "a/recovery_requests/shift@800": 120,
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


def test_a_baseline_recorded_for_this_build_is_preferred(tmp_path, tiny_dir):
    build = current_build()
    assert build is not None and len(build) == 16
    generic = baseline_path(tmp_path, "shift-mini", build)
    assert generic.name in ("shift-mini.json", "shift-mini.tiny-fp32.json")  # none for this build yet
    own = tmp_path / f"shift-mini.{build}.json"
    own.write_text("{}")
    assert baseline_path(tmp_path, "shift-mini", build) == own
    assert baseline_path(tmp_path, "shift-mini", "0" * 16) == generic  # another build: the generic one
    assert baseline_path(tmp_path, "shift-mini", None) == generic


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
    assert "online-scratch/final_loss" in baseline["metrics"]

    res = runner.invoke(app, common)
    assert res.exit_code == 0, res.output
    assert "no regression" in res.output and "REGRESSION" not in res.output

    # a deliberate regression: the learner's updates are zeroed (lr = 0), so the online arms
    # stop improving on their starting drafts
    res = runner.invoke(app, [*common, "--set", "learner_lr=0"])
    assert res.exit_code == 1, res.output
    assert "REGRESSION" in res.output and "online-scratch/acceptance_length" in res.output
