"""`aurora trace gen|show|validate|import` end to end (the sub-app mounted as the main CLI mounts it)."""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from traces.cli import trace_app

FIX = Path(__file__).parent / "fixtures" / "traces"
app = typer.Typer()
app.add_typer(trace_app, name="trace")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["trace", *map(str, args)])


@pytest.fixture(scope="module")
def ci_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "ci.parquet"
    res = run("gen", "shift-ci", "-o", out, "--seed", "3")
    assert res.exit_code == 0, res.output
    assert "2,400 requests (shift-ci, seed 3)" in res.output
    return out


def test_gen_from_config_and_dump(tmp_path, ci_file):
    res = run("gen", "shift-ci", "--seed", "3", "--dump-config")
    assert res.exit_code == 0
    cfg = json.loads(res.output)
    assert cfg["seed"] == 3 and cfg["schedule"]["kind"] == "ordered"
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    res = run("gen", "--config", tmp_path / "c.json", "-o", tmp_path / "c.parquet")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.parquet").read_bytes() == ci_file.read_bytes()
    toml = tmp_path / "c.toml"
    toml.write_text(
        'name = "tiny"\n[schedule]\nkind = "sharp"\nrequests = 40\n[arrivals]\nkind = "poisson"\nrate_per_s = 2.0\n'
    )
    assert run("gen", "--config", toml, "-o", tmp_path / "t.parquet").exit_code == 0
    assert pl.read_parquet(tmp_path / "t.parquet").height == 40


def test_gen_errors_are_one_line(tmp_path):
    for args, msg in [
        (("gen", "-o", tmp_path / "x.parquet"), "give a scenario NAME or --config FILE"),
        (("gen", "warp", "-o", tmp_path / "x.parquet"), "unknown scenario 'warp'"),
        (("gen", "shift-ci"), "missing -o OUT.parquet"),
    ]:
        res = run(*args)
        assert res.exit_code == 2 and res.output.startswith("error: ") and msg in res.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"schedule": {"kind": "mixed", "requests": 0}}')
    res = run("gen", "--config", bad, "-o", tmp_path / "x.parquet")
    assert res.exit_code == 2 and "schedule.requests: 0 is below the minimum 1" in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_show_and_plot(tmp_path, ci_file):
    res = run("show", ci_file)
    assert res.exit_code == 0, res.output
    assert "2,400 requests" in res.output and "closed loop, concurrency 8" in res.output
    assert "requests per segment and domain" in res.output and "prompt chars" in res.output
    res = run("show", ci_file, "--json")
    s = json.loads(res.output)
    assert [seg["domains"] for seg in s["segments"]] == [
        {"code": 800, "finance": 0, "chat": 0},
        {"code": 0, "finance": 800, "chat": 0},
        {"code": 0, "finance": 0, "chat": 800},
    ]
    assert s["domains"]["code"]["max_new_tokens"]["p50"] == 32 and s["domains"]["chat"]["prompt_chars"]["max"] <= 160
    png = tmp_path / "mix.png"
    res = run("show", ci_file, "--plot", "--plot-out", png)
    assert res.exit_code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_validate_good_and_broken(tmp_path, ci_file):
    res = run("validate", ci_file)
    assert res.exit_code == 0 and "ok" in res.output
    f = pl.read_parquet(ci_file)
    f = f.with_columns(
        pl.when(pl.int_range(pl.len()) == 10).then(pl.lit("legal")).otherwise(pl.col("domain")).alias("domain"),
        pl.when(pl.int_range(pl.len()) == 20)
        .then(pl.lit("shift-ci-000000"))
        .otherwise(pl.col("request_id"))
        .alias("request_id"),
    )
    broken = tmp_path / "broken.parquet"
    f.write_parquet(broken, metadata=pl.read_parquet_metadata(ci_file))
    res = run("validate", broken)
    assert res.exit_code == 1
    assert f"{broken}: row 10 (request_id 'shift-ci-000010'): unknown domain" in res.output
    assert f"{broken}: row 20 (request_id 'shift-ci-000000'): duplicate request_id: first at row 0" in res.output
    (tmp_path / "half.parquet").write_bytes(ci_file.read_bytes()[:5000])
    res = run("validate", tmp_path / "half.parquet")
    assert res.exit_code == 1 and "not a Parquet file: truncated" in res.output
    res = run("show", tmp_path / "half.parquet")
    assert res.exit_code == 2 and res.output.startswith("error: ")


def test_validate_warns_on_repeated_prompts_and_show_reports_them(tmp_path, ci_file):
    res = run("validate", ci_file)
    assert "warning" not in res.output
    f = pl.read_parquet(ci_file)
    # the chat segment (rows 1,600-2,399) serves its first 100 conversations eight times each
    chat = f["messages"].to_list()[1600:1700] * 8
    f = f.with_columns(pl.Series("messages", f["messages"].to_list()[:1600] + chat, dtype=f.schema["messages"]))
    rep = tmp_path / "repeats.parquet"
    f.write_parquet(rep, metadata=pl.read_parquet_metadata(ci_file))
    res = run("validate", rep)
    assert res.exit_code == 0 and "ok" in res.output
    assert f"{rep}: warning: segment 2 repeats 87.5% of its 800 prompts (100 distinct" in res.output
    res = run("show", rep)
    assert res.exit_code == 0 and "87.5%" in res.output


@pytest.mark.parametrize(
    "args, n",
    [
        (("openai-jsonl", FIX / "openai_chat.jsonl"), 3),
        (("sharegpt", FIX / "sharegpt.json", "--turns", "all"), 3),
        (("sglang-log", FIX / "sglang_text.log"), 3),
        (("sglang-log", FIX / "sglang_json.log", "--rate", "5"), 2),
        (("length-only", FIX / "mooncake.jsonl", "--domain", "code", "--max-prompt-chars", "200"), 4),
        (("length-only", FIX / "azure.csv", "--domain", "finance"), 3),
    ],
)
def test_import_formats(tmp_path, args, n):
    out = tmp_path / "imp.parquet"
    res = run("import", *args, "-o", out)
    assert res.exit_code == 0, res.output
    assert f"wrote {out}: {n} requests" in res.output
    assert run("validate", out).exit_code == 0


def test_import_hf_dataset(tmp_path):
    datasets = pytest.importorskip(
        "datasets", reason="the hf-datasets importer needs `datasets` (pip install datasets)"
    )
    datasets.Dataset.from_dict({"text": ["Shares rose on Monday", "def mean(xs):"]}).save_to_disk(str(tmp_path / "ds"))
    res = run("import", "hf-datasets", tmp_path / "ds", "-o", tmp_path / "h.parquet", "--domain", "finance")
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(tmp_path / "h.parquet")["prompt"].to_list() == ["Shares rose on Monday", "def mean(xs):"]


def test_import_bad_line_is_named_and_nothing_written(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    res = run("import", "openai-jsonl", bad, "-o", tmp_path / "o.parquet")
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {bad}: line 2: not valid JSON (Expecting value at column 1)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]
    res = run("import", "csv", bad, "-o", tmp_path / "o.parquet")
    assert res.exit_code == 2 and "unknown import format 'csv'" in res.output


def test_cli_module_does_not_import_the_main_cli():
    code = "import sys, traces.cli; assert 'aurora_sim.cli' not in sys.modules; assert 'polars' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).returncode == 0
