"""`aurora validate`: the simulator's prediction against the machine's clock, on the real tiny tier.

Timing accuracy is not asserted here (a shared machine's clock moves; benchmarks/bench_validate.py
measures it); what is: the report has every number, the two clocks serve the same rounds and
tokens for a frozen draft, the wall clock's bookkeeping adds up, arrivals are released at their
real offsets, out-of-table look-ups are counted, and bad input is one line naming the file.
"""

import json
import math

import polars as pl
import pytest
from typer.testing import CliRunner

from aurora_sim.cli import app
from aurora_sim.costs import RoundShape
from aurora_sim.costs.profiled import ProfiledCost
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.eventlog import read_table
from aurora_sim.validate import store
from aurora_sim.validate.metrics import ERROR_KEYS
from aurora_sim.validate.run import validate

runner = CliRunner()


@pytest.fixture(scope="module")
def narrow_profile(tmp_path_factory, tiny_dir):
    """A quick calibration whose batch grid stops at 1 (the validation below runs batch 2)."""
    from aurora_sim.costs.calibrate import calibrate

    return calibrate(
        batches=(1,),
        gammas=(0, 4),
        contexts=(16, 64),
        prefills=(8, 32),
        rounds=2,
        warmup=1,
        out=tmp_path_factory.mktemp("profile") / "p.json",
        progress=False,
    )


@pytest.fixture(scope="module")
def validated(tmp_path_factory, narrow_profile):
    """no-spec and static (the offline static draft, as `aurora replay --init static`) on 6 requests."""
    out = tmp_path_factory.mktemp("val") / "v"
    base = ReplayConfig(trace="shift-ci", limit=6, batch=2).with_recipe("fast", gamma=4, learner_enabled=True)
    return out, validate(base, out, ("no-spec", "static"), profile=narrow_profile, progress=False)


def test_validate_reports_every_number_for_both_clocks(validated, narrow_profile):
    out, doc = validated
    assert doc["status"] == "complete" and json.loads((out / "validate.json").read_text()) == doc
    for arm in ("no-spec", "static"):  # a copy of --profile beside each arm's runs
        assert json.loads((out / arm / "profile.json").read_text()) == json.loads(narrow_profile.read_text())
        assert doc["arms"][arm]["profile"]["calibrated_here"] is False
    for arm in ("no-spec", "static"):
        s = doc["arms"][arm]
        assert s["gamma"] == (0 if arm == "no-spec" else 4) and s["batch"] == 2
        for clock in ("predicted", "measured"):
            c = s[clock]
            assert c["requests"] == 6 and c["output_tokens"] > 0 and c["throughput_tok_s"] > 0
            for section in ("latency_ms", "ttft_ms", "round_ms"):
                d = c[section]
                assert 0 < d["p50"] <= d["p99"] <= d["max"] and d["mean"] > 0, (arm, clock, section)
            assert c["ttft_ms"]["mean"] <= c["latency_ms"]["mean"]
        for section, key in ERROR_KEYS:
            name = key if section is None else f"{section}.{key}"
            assert math.isfinite(s["relative_error"][name]), (arm, name)
        assert s["relative_error"]["throughput_tok_s"] == pytest.approx(
            s["predicted"]["throughput_tok_s"] / s["measured"]["throughput_tok_s"] - 1
        )
        # contention made visible: CPU share of the serving thread, reference rounds, load average
        assert 0 < s["breakdown"]["serving_cpu_share"] <= 1.2
        ref = s["machine"]["reference"]
        assert ref["before_ns"] > 0 and ref["after_ns"] > 0 and ref["profile_ns"] > 0 and math.isfinite(ref["drift"])
        assert len(s["machine"]["loadavg_before"]) == 3 and s["goal"]["limit"] == 0.05


def test_frozen_draft_serves_the_same_rounds_on_both_clocks(validated):
    out, doc = validated
    for arm in ("no-spec", "static"):
        s = doc["arms"][arm]
        assert s["predicted"]["rounds"] == s["measured"]["rounds"] > 0
        assert s["breakdown"]["same_rounds"] and s["breakdown"]["makespan_error_parts"]["schedule"] == pytest.approx(0)
        assert s["per_request"]["same_output_tokens"] and s["per_request"]["same_rounds"]
        pred, meas = read_table(out / arm / "predicted", "requests"), read_table(out / arm / "measured", "requests")
        assert pred.sort("request_index")["output_ids"].to_list() == meas.sort("request_index")["output_ids"].to_list()
        assert read_table(out / arm / "measured", "runs")["run_id"][0].endswith("-wall")
        assert s["predicted"]["acceptance_length"] == s["measured"]["acceptance_length"]
    assert doc["arms"]["static"]["measured"]["acceptance_length"] > 1.0  # a trained draft: proposals accepted


def test_wall_clock_bookkeeping_adds_up(validated):
    out, doc = validated
    for arm in ("no-spec", "static"):
        s = doc["arms"][arm]
        summary, rounds, requests = store.read_arm(out / arm / "measured")
        assert summary == s
        meas = rounds.filter(pl.col("clock") == "measured").sort("round")
        pred = rounds.filter(pl.col("clock") == "predicted").sort("round")
        assert meas.height == pred.height == s["measured"]["rounds"]
        assert (pred["dur_ns"] == pred["model_ns"]).all()  # virtual time is the cost model
        assert (meas["dur_ns"] > 0).all() and (meas["cpu_ns"] >= 0).all() and (meas["model_ns"] > 0).all()
        # rounds never overlap on the wall clock; the last one ends the makespan
        ends = (meas["start_ns"] + meas["dur_ns"]).to_list()
        assert all(b >= a for a, b in zip(ends, meas["start_ns"].to_list()[1:]))
        assert ends[-1] == pytest.approx(s["measured"]["makespan_s"] * 1e9, abs=1)
        parts = s["breakdown"]["makespan_error_parts"]
        assert sum(parts.values()) == pytest.approx(s["relative_error"]["makespan_s"], abs=1e-6)
        assert parts["server_loop"] <= 0  # gaps between rounds only add measured time
        m = requests.filter(pl.col("clock") == "measured")
        assert (m["first_token_ns"] >= m["arrival_ns"]).all() and (m["finish_ns"] >= m["first_token_ns"]).all()
        assert sorted(requests["clock"].unique().to_list()) == ["measured", "predicted"]


def test_lookups_outside_the_table_are_counted(validated):
    _, doc = validated
    for arm in ("no-spec", "static"):
        cov = doc["arms"][arm]["lookups_outside"]["predicted"]
        # the profile's batch grid is [1], the engine runs 2 rows: every 2-row round left the table
        assert cov["lookups"] == doc["arms"][arm]["predicted"]["rounds"]
        assert 0 < cov["by_axis"]["batch"] <= cov["outside"] <= cov["lookups"]
        batch = [e for e in cov["examples"] if e["axis"] == "batch"]
        assert batch and batch[0]["value"] == 2 and "above the grid (1..1)" in batch[0]["why"]


def test_profile_coverage_inside_and_outside():
    table = {
        "kind": "profiled",
        "gamma_grid": [0, 4],
        "batch_grid": [1, 4],
        "round_ns": {"0": {"1": 100, "4": 200}, "4": {"1": 300, "4": 600}},
        "context_grid": [10, 100],
        "round_ns_by_context": {
            "10": {"0": {"1": 100, "4": 200}, "4": {"1": 300, "4": 600}},
            "100": {"0": {"1": 200, "4": 400}, "4": {"1": 600, "4": 1200}},
        },
        "prefill_grid": [8, 64],
        "admit_ns": {
            g: {"1": {"1": {"8": 50, "64": 150}}, "4": {"1": {"8": 60, "64": 160}, "4": {"8": 90, "64": 390}}}
            for g in ("0", "4")
        },
        "prefill_ns_per_token": 1,
        "train_step_ns_per_token": 1,
        "swap_publish_ns": 1,
        "swap_pause_ns": 0,
    }
    cost = ProfiledCost(table)
    inside = RoundShape(4, 4, 8, 20, 0, 4 * 55)
    assert cost.round_ns(inside) == 900  # halfway between the context layers
    # 2 prompts join, the longest 36 tokens: k = 1 costs 110 there, k = batch = 4 costs 240; k = 2 a third of the way
    assert cost.round_ns(RoundShape(4, 4, 8, 20, 32, 4 * 55, 2, 36)) == round(900 + 110 + (240 - 110) / 3)
    assert cost.coverage()["outside"] == 0 and cost.coverage()["lookups"] == 2
    cost.round_ns(RoundShape(8, 4, 16, 40, 0, 8 * 55))  # batch above the grid
    cost.round_ns(RoundShape(1, 0, 0, 1, 0, 5))  # context below the grid
    cost.round_ns(RoundShape(1, 0, 0, 1, 100, 50, 1, 100))  # prompt above the grid
    cov = cost.coverage()
    assert cov["lookups"] == 5 and cov["outside"] == 3
    assert cov["by_axis"] == {"batch": 1, "context": 1, "prefill_length": 1}
    assert {e["axis"] for e in cov["examples"]} == {"batch", "context", "prefill_length"}
    old = {k: v for k, v in table.items() if k not in ("round_ns_by_context", "context_grid", "admit_ns")}
    legacy = ProfiledCost(old)  # a table without those axes: every look-up says so
    legacy.round_ns(inside)
    assert legacy.coverage()["by_axis"] == {"context": 1}
    assert "not an axis" in legacy.coverage()["examples"][0]["why"]


def test_report_draws_predicted_against_measured(validated, tmp_path):
    out, _ = validated
    rep = tmp_path / "rep"
    res = runner.invoke(
        app, ["report", str(out / "no-spec" / "measured"), str(out / "static" / "measured"), "-o", str(rep)]
    )
    assert res.exit_code == 0, res.output
    page = (rep / "report.html").read_text()
    assert (rep / "figures" / "validation.png").stat().st_size > 10_000 and 'data-figure="validation"' in page
    assert 'data-table="validation"' in page and "Simulator vs real clock" in (rep / "REPORT.md").read_text()
    # a run without validation data: no such figure
    plain = runner.invoke(app, ["report", str(out / "static" / "predicted"), "-o", str(tmp_path / "rep2")])
    assert plain.exit_code == 0, plain.output
    assert not (tmp_path / "rep2" / "figures" / "validation.png").exists()


def test_open_loop_arrivals_are_released_at_their_offsets(tmp_path, narrow_profile):
    """`ordered` is a Poisson trace: a measured request cannot arrive, or start, before its offset."""
    import traces

    frame, _ = traces.generate_trace(traces.scenario("ordered", seed=0))
    offsets = frame.head(3)["arrival_ns"].to_list()
    assert offsets[-1] > 50_000_000  # the third arrives well after the start
    base = ReplayConfig(trace="ordered", limit=3, batch=2).with_recipe("fast", gamma=4)
    doc = validate(base, tmp_path / "v", ("no-spec",), profile=narrow_profile, progress=False)
    meas = read_table(tmp_path / "v" / "no-spec" / "measured", "requests").sort("request_index")
    assert meas["arrival_ns"].to_list() == offsets
    assert (meas["admit_ns"] >= meas["arrival_ns"]).all()
    assert doc["arms"]["no-spec"]["measured"]["makespan_s"] * 1e9 > offsets[-1]


def test_bad_input_is_one_line_naming_the_problem(tmp_path, narrow_profile):
    def fails(*args, expect=()):
        res = runner.invoke(app, ["validate", "--quiet", *args])
        assert res.exit_code == 2, res.output
        assert len([ln for ln in res.output.splitlines() if ln.strip()]) == 1, res.output
        for text in expect:
            assert text in res.output, (text, res.output)

    missing = tmp_path / "nope.json"
    fails("--profile", str(missing), "-o", str(tmp_path / "a"), expect=(str(missing), "profile not found"))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{")
    fails("--profile", str(corrupt), "-o", str(tmp_path / "b"), expect=(str(corrupt), "corrupt profile"))
    fails("--arms", "static,bogus", "--profile", str(narrow_profile), expect=("unknown arm bogus",))
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    fails("--profile", str(narrow_profile), "-o", str(other), expect=(str(other), "not a validation directory"))
    assert (other / "keep.txt").read_text() == "mine"
    fails("no-such-trace", "--profile", str(narrow_profile), "-o", str(tmp_path / "c"), expect=("no-such-trace",))
    assert not (tmp_path / "c").exists()  # nothing written for a trace that cannot be read
    fails("--static-draft", str(tmp_path), "-o", str(tmp_path / "d"), expect=("not a draft directory",))
