"""`aurora replay` end to end through the CLI: the table, --json, --compare, and bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from aurora_sim.cli import app

runner = CliRunner()
QUICK = ["--limit", "16", "--deployment", "proxy", "--every", "1"]


def test_replay_prints_a_summary_and_writes_json(tmp_path, tiny_dir):
    out, js = tmp_path / "run", tmp_path / "s.json"
    res = runner.invoke(app, ["replay", "shift-ci", "--init", "scratch", *QUICK, "-o", str(out), "--json", str(js)])
    assert res.exit_code == 0, res.output
    assert "acceptance length" in res.output and "bonus" in res.output
    s = json.loads(js.read_text())
    assert s["requests"] == s["completed"] == 16 and s["acceptance_length"] >= 1.0
    assert s["train_steps"] > 0 and (out / "runs.parquet").is_file()
    # an existing run directory is not overwritten by accident
    again = runner.invoke(app, ["replay", "shift-ci", "--init", "scratch", *QUICK, "-o", str(out)])
    assert again.exit_code == 2 and "--resume" in again.output and "--force" in again.output


def test_compare_runs_four_arms_with_speedups(tmp_path, trained_head_dir):
    out = tmp_path / "cmp"
    res = runner.invoke(
        app, ["replay", "shift-ci", "--compare", "--static-draft", str(trained_head_dir), *QUICK, "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    result = json.loads((out / "compare.json").read_text())
    arms = result["arms"]
    assert set(arms) == {"no-spec", "static", "online-static", "online-scratch"}
    assert arms["no-spec"]["acceptance_length"] == 1.0 and arms["no-spec"]["swaps"] == 0
    assert arms["static"]["swaps"] == 0 and arms["static"]["train_steps"] == 0
    assert arms["online-static"]["train_steps"] > 0
    assert arms["static"]["acceptance_length"] > 1.1  # even a 40-step head accepts tokens
    assert "speedup_vs_no-spec" in arms["static"] and "speedup_vs_static" in arms["online-static"]
    # every arm served the same requests
    assert len({a["output_tokens"] for a in arms.values()}) == 1


def test_bad_inputs_are_one_line_errors(tmp_path, tiny_dir):
    res = runner.invoke(app, ["replay", str(tmp_path / "missing.parquet"), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "neither a scenario" in res.output
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    res = runner.invoke(app, ["replay", str(bad), "-o", str(tmp_path / "y")])
    assert res.exit_code == 2 and "bad.parquet" in res.output
    res = runner.invoke(app, ["replay", "--resume", str(tmp_path)])
    assert res.exit_code == 2 and "not a run directory" in res.output
    res = runner.invoke(app, ["replay", "--policy", "greedy", "--limit", "2", "-o", str(tmp_path / "z")])
    assert res.exit_code == 2 and "unknown policy" in res.output
    res = runner.invoke(
        app, ["replay", "--hardware", "tpu", "--limit", "2", "--init", "scratch", "-o", str(tmp_path / "w")]
    )
    assert res.exit_code == 2 and "tpu" in res.output
    assert not (tmp_path / "w").exists()  # nothing half-written


def test_default_directory_names_the_config_and_a_rerun_shows_the_result(tmp_path, monkeypatch, tiny_dir):
    monkeypatch.chdir(tmp_path)
    args = ["replay", "--limit", "8", "--init", "scratch", "--deployment", "proxy"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    # a learning run comes with its starting draft frozen on the same traffic, and the answer
    run, frozen = sorted((tmp_path / "runs").iterdir(), key=lambda p: "frozen" in p.name)
    assert run.name.startswith("shift-ci-scratch-cadence-s0-") and frozen.name.startswith("shift-ci-scratch-frozen-s0-")
    assert "speedup vs frozen" in first.output and "the frozen draft" in first.output
    stamps = [(d / "runs.parquet").stat().st_mtime_ns for d in (run, frozen)]
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already holds this run" in again.output
    assert [(d / "runs.parquet").stat().st_mtime_ns for d in (run, frozen)] == stamps  # shown, not replayed
    other = runner.invoke(app, [*args, "--seed", "1", "--alone"])
    assert other.exit_code == 0 and len(list((tmp_path / "runs").iterdir())) == 3  # --alone: no frozen twin


def test_recipe_option_sets_the_run_config_and_options_override_it(tmp_path, tiny_dir):
    from aurora_sim.replay.eventlog import read_table

    out = tmp_path / "paper"
    res = runner.invoke(
        app,
        [
            "replay",
            "shift-ci",
            "--init",
            "scratch",
            "--recipe",
            "paper",
            "--limit",
            "16",
            "--deployment",
            "proxy",
            "--every",
            "2",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    cfg = json.loads(read_table(out, "runs")["config_json"][0])
    assert cfg["recipe"] == "paper" and cfg["gamma"] == 5 and cfg["learner"]["lr"] == 1e-4
    assert cfg["controller"]["every"] == 2  # the explicit option wins over the recipe's 50
    res = runner.invoke(app, ["replay", "--recipe", "slow", "--limit", "2", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "unknown learner recipe 'slow'" in res.output
    assert not (tmp_path / "x").exists()
