"""DESIGN.md's invariants, each a test against real replays (tiny tier, short traces).

One module-scoped set of runs keeps the suite fast: an online-from-scratch run with frequent
swaps (run twice for determinism), a no-speculation run of the same requests, and a run whose
rollback guard is rigged to fire.
"""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.eventlog import PART_TABLES, read_table
from aurora_sim.replay.loop import Replay

LIMIT = 48


def small(**changes) -> ReplayConfig:
    # the proxy deployment: its small draft publishes in milliseconds, so a short run swaps often
    base = ReplayConfig(trace="shift-ci", limit=LIMIT, init="scratch", flush_every=16, deployment="proxy")
    return base.with_(learner_batch_requests=4, learner_min_new=4, controller_every=2, **changes)


@pytest.fixture(scope="module", params=["fast", "exact"])
def runs(request, tmp_path_factory, tiny_dir):
    """The same runs on the fast path (greedy: rounds by bookkeeping over cached trajectories)
    and on the round-by-round engine: every invariant holds for both."""
    engine = request.param
    root = tmp_path_factory.mktemp(f"replays-{engine}")
    out = {"engine": engine}
    for name, cfg in {
        "online": small(),
        "online_again": small(),
        "nospec": small(init="none"),
        "rollback": small(controller_rollback=True, controller_rollback_window=4, controller_rollback_margin=-1.0),
    }.items():
        Replay(cfg.with_(engine=engine), root / name).run()
        out[name] = root / name
    return out


def _files(run_dir):
    return sorted(p.relative_to(run_dir) for p in run_dir.rglob("*") if p.is_file() and p.name != "wall.json")


def test_same_seed_gives_byte_identical_event_log(runs):
    a, b = runs["online"], runs["online_again"]
    files = _files(a)
    assert files == _files(b)
    assert any(str(f).startswith("rounds/") for f in files)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f"{f} differs between two runs with one seed"


def test_different_seed_changes_the_log(tmp_path, runs):
    Replay(small(seed=1, engine=runs["engine"]), tmp_path / "s1").run()
    assert (tmp_path / "s1" / "runs.parquet").read_bytes() != (runs["online"] / "runs.parquet").read_bytes()


def test_conservation_of_requests_and_tokens(runs):
    for name in ("online", "nospec"):
        req = read_table(runs[name], "requests")
        rounds = read_table(runs[name], "rounds")
        assert sorted(req["request_index"].to_list()) == list(range(LIMIT))  # each exactly once
        assert set(req["status"]) == {"completed"} and req["finish_reason"].is_in(["length", "stop"]).all()
        emitted = rounds.group_by("request_index").agg(pl.col("emitted").sum())
        joined = req.join(emitted, on="request_index")
        # the first token comes from prefill; every later one from a verify round
        assert (joined["output_tokens"] == joined["emitted"] + 1).all()
        assert (req["output_ids"].list.len() == req["output_tokens"]).all()
        assert (rounds["accepted"] <= rounds["proposed"]).all()
        assert (rounds["emitted"] <= rounds["accepted"] + rounds["bonus"]).all()
        assert (rounds["bonus"] == 1).all()
        per_req = rounds.group_by("request_index").agg(pl.len().alias("n"), pl.col("accepted").sum().alias("acc"))
        j = req.join(per_req, on="request_index")
        assert (j["rounds"] == j["n"]).all() and (j["accepted"] == j["acc"]).all()


def test_clock_is_monotonic(runs):
    for name in ("online", "rollback"):
        rounds = read_table(runs[name], "rounds").unique("round").sort("round")
        assert (rounds["t_end_ns"] > rounds["t_start_ns"]).all()
        assert rounds["t_start_ns"].is_sorted() and rounds["t_end_ns"].is_sorted()
        # rounds do not overlap: one engine
        assert (rounds["t_start_ns"][1:] >= rounds["t_end_ns"][:-1]).all()
        steps = read_table(runs[name], "train_steps").sort("step")
        assert steps.height > 0 and (steps["t_end_ns"] > steps["t_start_ns"]).all()
        assert (steps["t_start_ns"][1:] >= steps["t_end_ns"][:-1]).all()  # one trainer
        swaps = read_table(runs[name], "swaps").filter(pl.col("kind").is_in(["swap", "rollback"]))
        assert swaps.height > 0
        assert (swaps["ready_ns"] > swaps["decided_ns"]).all() and (swaps["effective_ns"] >= swaps["ready_ns"]).all()


def test_causality_arrival_first_token_finish(runs):
    req = read_table(runs["online"], "requests")
    assert (req["arrival_ns"] <= req["admit_ns"]).all()
    assert (req["admit_ns"] < req["first_token_ns"]).all()
    assert (req["first_token_ns"] <= req["finish_ns"]).all()
    rounds = read_table(runs["online"], "rounds").join(
        req.select("request_index", "first_token_ns", "finish_ns"), on="request_index"
    )
    assert (rounds["t_start_ns"] >= rounds["first_token_ns"] - (rounds["t_end_ns"] - rounds["t_start_ns"])).all()
    assert (rounds["t_end_ns"] <= rounds["finish_ns"]).all()
    # a trainer step only uses requests captured before it started
    steps = read_table(runs["online"], "train_steps")
    assert (steps["newest_capture_ns"] <= steps["t_start_ns"]).all()


def test_greedy_outputs_in_replay_equal_target_only(runs):
    online = read_table(runs["online"], "requests").sort("request_index")
    nospec = read_table(runs["nospec"], "requests").sort("request_index")
    swaps = read_table(runs["online"], "swaps").filter(pl.col("kind") == "swap")
    assert swaps.height >= 2, "the run should have swapped drafts mid-stream"
    assert online["output_ids"].to_list() == nospec["output_ids"].to_list()
    assert read_table(runs["nospec"], "rounds")["proposed"].sum() == 0


def test_swaps_take_effect_at_round_boundaries(runs):
    rounds = read_table(runs["online"], "rounds")
    swaps = read_table(runs["online"], "swaps").filter(pl.col("kind") == "swap").sort("effective_ns")
    for row in swaps.iter_rows(named=True):
        at = rounds.filter(pl.col("t_start_ns") == row["effective_ns"])
        assert at.height > 0, "a swap must coincide with the start of a round"
        assert set(at["draft_version"]) == {row["to_version"]}
        before = rounds.filter(pl.col("t_end_ns") <= row["effective_ns"])
        assert row["to_version"] not in set(before["draft_version"].drop_nulls())


def test_rollback_restores_the_previous_version(runs):
    run = runs["rollback"]
    swaps = read_table(run, "swaps").sort("decision")
    rb = swaps.filter(pl.col("kind") == "rollback")
    assert rb.height >= 1
    first = rb.row(0, named=True)
    # the rollback returns to what served before the swap it reverts
    prior = swaps.filter((pl.col("kind") == "swap") & (pl.col("effective_ns") < first["effective_ns"])).tail(1)
    assert first["to_version"] == prior["from_version"][0]
    assert first["from_version"] == prior["to_version"][0]
    rounds = read_table(run, "rounds").filter(pl.col("t_start_ns") == first["effective_ns"])
    assert set(rounds["draft_version"]) == {first["to_version"]}
    versions = read_table(run, "versions")
    assert first["to_version"] in versions["version"].to_list()


def test_resume_after_a_kill_equals_uninterrupted(tmp_path, runs):
    done = runs["online"]
    killed = tmp_path / "killed"
    shutil.copytree(done, killed)
    # what a kill after the second flush leaves: whole parts 0-1, no later ones, status running
    for table in PART_TABLES:
        for part in (killed / table).glob("part-*.parquet"):
            if int(part.stem.split("-")[1]) >= 2:
                part.unlink()
    (killed / "progress.json").write_text(json.dumps({"parts": 2, "schema_version": 1}))
    (killed / "runs.parquet").unlink()
    cfg = small(engine=runs["engine"])
    Replay(cfg, killed, resume=True).run()
    assert _files(killed) == _files(done)
    for f in _files(done):
        assert (killed / f).read_bytes() == (done / f).read_bytes(), f
    wall = json.loads((killed / "wall.json").read_text())
    assert wall["resumed_parts_checked"] == 2 and wall["resume_mismatch"] is None


def test_run_metadata_carries_schema_and_config(runs):
    import pyarrow.parquet as pq

    meta = pq.read_metadata(runs["online"] / "rounds" / "part-00000.parquet").metadata
    assert meta[b"aurora.eventlog.schema_version"] == b"1"
    cfg = json.loads(meta[b"aurora.eventlog.config"])
    assert cfg["limit"] == LIMIT and cfg["learner"]["batch_requests"] == 4
    runs_row = read_table(runs["online"], "runs").row(0, named=True)
    assert runs_row["status"] == "complete" and runs_row["requests"] == LIMIT
    assert json.loads(runs_row["cost_model_json"])  # the cost model describes itself
    for table in PART_TABLES:
        assert (read_table(runs["online"], table)["run_id"] == runs_row["run_id"]).all()


def test_the_time_ledger_adds_up_and_prices_each_swap_by_its_mechanism(runs, tmp_path):
    from aurora_sim.costs.swap import RECAPTURE_NS_PER_SIZE
    from aurora_sim.replay.summary import summarize

    in_place = summarize(runs["online"])["time"]
    assert in_place["mechanism"] == "in-place" and in_place["swaps"] > 0
    assert in_place["pause_s"] == pytest.approx(in_place["swaps"] * in_place["pause_per_swap_s"], abs=1e-3)
    parts = in_place["serving_s"] + in_place["pause_s"] + in_place["idle_s"]
    assert parts == pytest.approx(in_place["makespan_s"], abs=1e-3)
    assert 0 < in_place["drafting_s"] < in_place["serving_s"] and in_place["publish_s"] > 0
    nospec = summarize(runs["nospec"])["time"]
    assert nospec["drafting_s"] == 0 and nospec["pause_s"] == 0 and nospec["swaps"] == 0
    if runs["engine"] != "fast":
        return
    Replay(small(swap="recapture", engine="fast"), tmp_path / "recapture").run()
    rec = summarize(tmp_path / "recapture")["time"]
    assert rec["mechanism"] == "recapture" and rec["swaps"] > 0
    assert rec["pause_per_swap_s"] == pytest.approx(8 * RECAPTURE_NS_PER_SIZE / 1e9, abs=1e-3)  # batch 8: 8 graphs
    assert rec["pause_s"] == pytest.approx(rec["swaps"] * rec["pause_per_swap_s"], abs=1e-3)
    assert rec["break_even_al_gain"] is None or rec["break_even_al_gain"] > in_place["break_even_al_gain"]
