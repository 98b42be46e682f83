"""The `aurora` CLI end to end on the real tiny tier."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from aurora_sim.cli import app

runner = CliRunner()


def test_console_script_help():
    res = subprocess.run([sys.executable, "-m", "aurora_sim", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "generate" in res.stdout and "models" in res.stdout


def test_generate_writes_json(tmp_path, tiny_dir):
    prompts = tmp_path / "p.txt"
    prompts.write_text("def fibonacci(n):\nShares of the bank rose\n")
    out = tmp_path / "o.json"
    res = runner.invoke(
        app,
        [
            "generate",
            "--prompts",
            str(prompts),
            "--draft",
            "same",
            "--gamma",
            "3",
            "--max-new-tokens",
            "10",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    assert len(report["results"]) == 2
    assert report["summary"]["spec_decode_acceptance_length"] > 3.0  # identical draft: γ+1 but the last round
    for r in report["results"]:
        assert r["output_ids"] and isinstance(r["output_text"], str) and r["verify_rounds"] >= 1
    assert "bonus token included" in report["summary"]["acceptance_length_convention"]


def test_models_list(tiny_dir):
    res = runner.invoke(app, ["models", "list", "--json"])
    assert res.exit_code == 0
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["tiny"]["built"] and rows["tiny"]["vocab"] > 0
