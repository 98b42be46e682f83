"""`aurora figures --paper` (analysis.paper): real replays on a test-size plan draw figures 5 and 6
as PNG + SVG with their commands and an index; a second call re-runs nothing; a changed setting
re-runs only the run it changes; the commands written reproduce the planned configs exactly."""

from __future__ import annotations

import json
import shlex
import xml.etree.ElementTree as ET

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from analysis.paper import make_paper_figures
from analysis.paper_cli import figures_command
from analysis.paper_plan import Plan, Trace, all_runs, parse_only, plan
from analysis.paper_runs import replay_command, run_config
from aurora_sim.errors import AuroraError
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.eventlog import AL_CONVENTION
from aurora_sim.replay.summary import summarize

runner = CliRunner()


def _trace(name: str, schedule: dict) -> Trace:
    return Trace(
        name,
        config={
            "name": name,
            "seed": 0,
            "schedule": schedule,
            "arrivals": {"kind": "closed", "concurrency": 4},
            "prompts": {"max_chars": 160, "min_chars": 16},
            "sampling": {"max_new_tokens": 16},
        },
    )


def test_plan(static_dir, **changes) -> Plan:
    """24 code then 24 chat requests, 16 new tokens; the proxy deployment's small draft swaps often."""
    two = _trace(
        "t-two",
        {"kind": "ordered", "segments": [{"domain": "code", "requests": 24}, {"domain": "chat", "requests": 24}]},
    )
    mixed = _trace("t-mixed", {"kind": "mixed", "requests": 32, "mix": {"code": 0.5, "chat": 0.5}})
    base = ReplayConfig(deployment="proxy", flush_every=16).with_(
        learner_batch_requests=4, learner_min_new=4, controller_every=2
    )
    kw = {
        "ordered": two,
        "shifts": two,
        "mixed": mixed,
        "base": base,
        "batches": (1, 4),
        "batch_arms_online": (4,),
        "discard_arms": ("online-scratch",),
        "discard_variants": ("lk",),
        "discard_seeds": (0, 1),
        "discard_head": 8,
        "static": str(static_dir),
        "window": 8,
    }
    return Plan("test", **(kw | changes))


test_plan.__test__ = False  # a helper, not a test


def _files(run_dir):
    return {p: p.stat().st_mtime_ns for p in sorted(run_dir.rglob("*.parquet"))}


def test_figures_5_6_draw_resume_and_rerun_only_what_changed(tmp_path, trained_head_dir):
    out = tmp_path / "figs"
    p = test_plan(trained_head_dir)
    # the runs go through the sweep machinery on local Ray (2 workers), as `aurora figures` does
    res = make_paper_figures(out, p, [5, 6], log=lambda m: None, backend="ray", workers=2)
    # figure 5 needs no-spec, static, online-scratch; figure 6 shares online-scratch (λ = 0) and adds
    # λ = 0.5, then the variant (lk) and the served KL alone on a second seed's own traffic
    assert sorted(r.split("/runs/")[1] for r in res["made"]) == [
        "t-two-s1/online-scratch-lambda0.5-lk-s1",
        "t-two-s1/online-scratch-s1",
        "t-two/no-spec",
        "t-two/online-scratch",
        "t-two/online-scratch-lambda0.5",
        "t-two/online-scratch-lambda0.5-lk",
        "t-two/static",
    ]
    for name in ("fig5_day0", "fig6_discard"):
        with Image.open(out / f"{name}.png") as im:
            assert im.width > 800 and im.height > 400
        assert ET.parse(out / f"{name}.svg").getroot().tag.endswith("svg")
        page = (out / f"{name}.md").read_text()
        assert AL_CONVENTION in page and "aurora replay" in page and "aurora trace gen --config" in page
    fig5 = (out / "fig5_day0.md").read_text()
    for init in ("--init none --no-learn", f"--init {trained_head_dir} --no-learn", "--init scratch"):
        assert init in fig5
    assert "--lambda-discard 0.5" in (out / "fig6_discard.md").read_text()
    for f in ("INDEX.md", "index.html"):
        text = (out / f).read_text()
        assert "fig5_day0.png" in text and "fig6_discard.png" in text and AL_CONVENTION in text
    assert (out / "COMMANDS.md").read_text().count("aurora replay") == 8  # fig 5: 3 runs; fig 6: 2 + 4 variants

    # the numbers are the runs' own (AL overall as summarize computes it)
    rec6 = json.loads((out / "fig6_discard.json").read_text())
    by_label = rec6["numbers"]
    lam0 = summarize(out / "runs" / "t-two" / "online-scratch")
    assert by_label["online, from scratch, λ = 0"]["al"] == pytest.approx(lam0["acceptance_length"], abs=1e-4)
    assert [s["shift_at"] for s in by_label["online, from scratch, λ = 0.5"]["shifts"]] == [24]
    # the variants panel: lk minus the served KL alone, paired over the two seeds
    runs = out / "runs"
    diffs = [
        summarize(runs / t / f"online-scratch-lambda0.5-lk{s}")["acceptance_length"]
        - summarize(runs / t / f"online-scratch{s}")["acceptance_length"]
        for t, s in (("t-two", ""), ("t-two-s1", "-s1"))
    ]
    lk = by_label["variants"]["lk"]["al_minus_none"]
    assert lk["n"] == 2 and lk["mean"] == pytest.approx(sum(diffs) / 2, abs=2e-4) and "ci95" in lk
    assert "--discard lk" in (out / "fig6_discard.md").read_text()
    rec5 = json.loads((out / "fig5_day0.json").read_text())["numbers"]
    assert rec5["first_segment_requests"] == 24 and rec5["swaps_in_first_segment"] >= 1
    assert 1.0 <= rec5["scratch_al_first_n"]["8"] < rec5["static_al_first_n"]["8"]  # day 0 starts below static

    # resume: nothing re-run, event logs untouched
    before = {d: _files(d) for d in (out / "runs" / "t-two").iterdir()}
    res2 = make_paper_figures(out, p, [5, 6], log=lambda m: None)
    assert res2["made"] == [] and len(res2["skipped"]) == 7
    assert {d: _files(d) for d in (out / "runs" / "t-two").iterdir()} == before

    # a changed setting re-runs only the run it changes (a new λ: a new run beside the old ones)
    res3 = make_paper_figures(out, test_plan(trained_head_dir, lambda_discard=0.25), [6], log=lambda m: None)
    assert sorted(r.split("/runs/")[1] for r in res3["made"]) == [
        "t-two-s1/online-scratch-lambda0.25-lk-s1",
        "t-two/online-scratch-lambda0.25",
        "t-two/online-scratch-lambda0.25-lk",
    ]
    assert all(_files(d) == files for d, files in before.items())
    # an unfinished run (status not complete) is made again
    runs_file = out / "runs" / "t-two" / "static" / "runs.parquet"
    import polars as pl

    pl.read_parquet(runs_file).with_columns(status=pl.lit("running")).write_parquet(runs_file)
    res4 = make_paper_figures(out, p, [5], log=lambda m: None)
    assert [r.split("/runs/")[1] for r in res4["made"]] == ["t-two/static"]


def test_commands_reproduce_the_planned_configs(tmp_path, monkeypatch):
    """Every replay of the quick and full sets, run through `aurora replay` with the command written
    beside its figure, builds exactly the planned config (the replay itself is intercepted)."""
    import aurora_sim.replay.cli as rcli

    captured = []

    class Stop(Exception):
        pass

    def fake_run(cfg, out, label, **kw):
        captured.append(cfg)
        raise Stop

    monkeypatch.setattr(rcli, "run_with_progress", fake_run)
    app = typer.Typer()
    app.command("replay")(rcli.replay_command)
    app.command("other")(lambda: None)
    # quick: 32 + the discard variants' 24 runs on three seeds, less the two figure 6 shares;
    # full: 29 (figure 3's mixed traffic is batch 8's) + 40 on shift-ci's five seeds
    for mode, n in (("quick", 54), ("full", 69)):
        p = plan(mode, seed=3)
        specs = all_runs(p, parse_only(None))
        assert len(specs) == n
        for s in specs:
            cfg = run_config(p, tmp_path, s)
            line, extra = replay_command(cfg, tmp_path / "r")
            assert extra == [], (s.variant, extra)  # the figure sets need no option the CLI lacks
            captured.clear()
            res = runner.invoke(app, ["replay", *shlex.split(line)[2:]])
            assert isinstance(res.exception, Stop), res.output
            assert captured[0].to_json() == cfg.to_json(), (mode, s.variant)


def test_cli_bad_input_is_one_line(tmp_path):
    app = typer.Typer()
    app.command("figures")(figures_command)
    app.command("other")(lambda: None)
    cases = [
        (["figures", "-o", str(tmp_path / "a")], "--paper"),
        (["figures", "--paper", "-o", str(tmp_path / "a"), "--only", "1,9"], "not a figure number"),
        (["figures", "--paper", "-o", str(tmp_path / "a"), "--seed", "-1"], "--seed"),
    ]
    (tmp_path / "file").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    cases += [
        (["figures", "--paper", "-o", str(tmp_path / "file")], "not a directory"),
        (["figures", "--paper", "-o", str(tmp_path / "busy"), "--only", "5"], "not a figures directory"),
    ]
    for args, words in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.output.startswith("error:") and words in res.output and res.output.count("\n") == 1, res.output
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_parse_only():
    assert parse_only(None) == [1, 2, 3, 4, 5, 6, 7]
    assert parse_only("6, 5,5") == [5, 6]
    with pytest.raises(AuroraError):
        parse_only("x")
