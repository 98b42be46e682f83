"""The `payoff` swap policy and the pricing it uses (controller/payoff.py): a draft's acceptance
profile priced by the real H100 / Llama-3-8B cost model; the policy on synthetic observations;
a replay that prices every candidate; live refuses it with a clear error."""

from __future__ import annotations

import json

import polars as pl
import pytest

from aurora_sim.costs import RoundShape, make_cost_model
from aurora_sim.errors import AuroraError
from aurora_sim.replay.config import ControllerConfig, ReplayConfig
from controller import CandidateInfo, Hold, ObservationBuilder, Swap, make_controller
from controller.payoff import expected_speedup, expected_tokens, time_saved_ns


@pytest.fixture(scope="module")
def round_time():
    cost = make_cost_model("h100", "llama3-8b")
    return lambda b, g, c, a: cost.round_ns(RoundShape.steady(b, g, c, a))


def test_expected_tokens_sum_the_survival_up_to_the_depth():
    assert expected_tokens([0.8, 0.5, 0.2], 0) == 1.0
    assert expected_tokens([0.8, 0.5, 0.2], 2) == pytest.approx(2.3)


def test_a_useless_draft_is_a_slowdown_at_fixed_depth_and_free_when_adaptive(round_time):
    fixed, g_fixed = expected_speedup([0.0] * 4, 8, 300, round_time, adaptive=False)
    adaptive, g_adaptive = expected_speedup([0.0] * 4, 8, 300, round_time, adaptive=True)
    assert g_fixed == 4 and fixed < 0.9  # four draft steps and a 5-token verify for one token
    assert g_adaptive == 0 and adaptive == pytest.approx(1.0)


def test_a_perfect_draft_speeds_up_and_picks_the_deepest_chain(round_time):
    s, g = expected_speedup([1.0] * 4, 8, 300, round_time, adaptive=True)
    assert g == 4 and s > 2.0
    better, _ = expected_speedup([0.9, 0.8, 0.7, 0.6], 8, 300, round_time, adaptive=True)
    worse, _ = expected_speedup([0.6, 0.4, 0.2, 0.1], 8, 300, round_time, adaptive=True)
    assert s > better > worse


def test_time_saved_is_the_horizon_times_the_relative_gain():
    assert time_saved_ns(1.0, 2.0, 10e9) == pytest.approx(5e9)
    assert time_saved_ns(2.0, 1.0, 10e9) == pytest.approx(-10e9)


def _cand(cand, serving, pause=300_000_000):
    return CandidateInfo(5, 4, 40, {"candidate_speedup": cand, "serving_speedup": serving, "swap_pause_ns": pause})


def test_payoff_swaps_only_when_the_saving_until_the_next_candidate_beats_the_pause():
    c = make_controller(ControllerConfig(policy="payoff"))
    assert c.eval_set == "heldout"
    b = ObservationBuilder(8)
    # 10 s since the start: 1.10 vs 1.00 saves 0.91 s > 0.3 s
    assert isinstance(c.decide(b.observe(10_000_000_000, _cand(1.10, 1.00))), Swap)
    # 1 s later (the horizon is the time since the last candidate): saves 0.09 s < 0.3 s
    d = c.decide(b.observe(11_000_000_000, _cand(1.10, 1.00)))
    assert isinstance(d, Hold) and "<= swap pause 0.300 s" in d.reason
    assert isinstance(c.decide(b.observe(30_000_000_000, _cand(0.95, 1.00))), Hold)  # slower: never
    assert isinstance(c.decide(b.observe(40_000_000_000, _cand(float("nan"), 1.0))), Hold)
    assert isinstance(c.decide(b.observe(50_000_000_000, CandidateInfo(6, 5, 48, {}))), Hold)


def test_payoff_holds_a_paying_swap_whose_pause_would_break_the_floor():
    """The floor guard: a candidate that pays is still held while the last window of requests,
    the pause added, would run below floor x no-spec; floor 0 turns the guard off."""
    m = {"window_requests": 200, "window_speedup": 1.0, "window_speedup_after_pause": 0.94}
    cand = CandidateInfo(5, 4, 40, {**_cand(1.5, 1.0).metrics, **m})
    d = make_controller(ControllerConfig(policy="payoff")).decide(ObservationBuilder(8).observe(10**10, cand))
    assert isinstance(d, Hold) and "0.940x with the pause < floor 0.98" in d.reason
    off = make_controller(ControllerConfig(policy="payoff", floor=0.0))
    assert isinstance(off.decide(ObservationBuilder(8).observe(10**10, cand)), Swap)
    banked = CandidateInfo(5, 4, 40, {**cand.metrics, "window_speedup": 1.1, "window_speedup_after_pause": 1.03})
    c = make_controller(ControllerConfig(policy="payoff"))
    assert isinstance(c.decide(ObservationBuilder(8).observe(10**10, banked)), Swap)
    for bad in (dict(controller_floor=-1.0), dict(controller_floor_window=0)):
        with pytest.raises(AuroraError, match="payoff floor must be in"):
            ReplayConfig().with_(**bad)
    # the defaults leave a run's recorded config (and id) as before the guard existed
    assert "floor" not in ReplayConfig().to_dict()["controller"]
    assert ReplayConfig().with_(controller_floor=0.9).to_dict()["controller"]["floor"] == 0.9


def test_floor_meter_measures_the_trailing_window_against_no_spec():
    from controller.floor import FloorMeter

    f = FloorMeter(window=3)
    assert f.metrics(300) == {}
    for i in range(1, 6):  # a completion every 100 ns, each worth 120 ns without speculation
        f.completed(100 * i, 120.0)
    m = f.metrics(pause_ns=60)
    # the last 3 completions span 200..500: 360 ns of no-spec work in 300 ns
    assert m["window_requests"] == 3 and m["window_speedup"] == pytest.approx(1.2)
    assert m["window_speedup_after_pause"] == pytest.approx(360 / 360)
    g = FloorMeter(window=10)  # fewer than a window: measured from the start
    g.completed(100, 80.0)
    assert g.metrics(0)["window_speedup"] == pytest.approx(0.8)


def test_replay_prices_every_candidate_and_payoff_decides_on_the_price(tmp_path, tiny_dir):
    from aurora_sim.replay.eventlog import read_table
    from aurora_sim.replay.loop import Replay

    cfg = ReplayConfig(trace="shift-ci", limit=120, init="scratch", flush_every=8).with_(
        controller_policy="payoff", controller_every=4, depth_policy="cost"
    )
    Replay(cfg, tmp_path / "a").run()
    swaps = read_table(tmp_path / "a", "swaps")
    decided = swaps.filter(pl.col("kind").is_in(["swap", "hold", "not_applied", "superseded"])).sort("decision")
    assert decided.height >= 2
    committed = 0
    for row in decided.iter_rows(named=True):
        m = json.loads(row["metrics_json"])
        assert row["reason"].startswith("payoff: expected speedup")
        assert {"candidate_speedup", "serving_speedup", "candidate_depth", "swap_pause_ns"} <= set(m)
        assert {"window_speedup", "window_speedup_after_pause", "candidate_survival"} <= set(m)
        assert 0 <= m["candidate_depth"] <= cfg.gamma and m["candidate_speedup"] > 0
        # scored against the draft that serves once the swaps already decided have landed
        assert m["scored_against"] == committed, (row["decision"], m["scored_against"], committed)
        if row["kind"] in ("swap", "superseded", "not_applied"):
            committed = row["to_version"]
    Replay(cfg, tmp_path / "b").run()  # deterministic: the same log bytes
    for table in ("swaps", "rounds", "requests"):
        assert read_table(tmp_path / "a", table).equals(read_table(tmp_path / "b", table))


def test_a_candidate_is_scored_against_the_draft_a_swap_in_flight_will_serve(tmp_path, tiny_dir):
    """Publishing a draft (≈1.7 s on H100 / Llama-3-8B) outlasts the candidate cadence here, so a
    candidate is decided while the last swap is still in flight: it is scored against that
    swap's draft, not the one serving now (else two swaps land in a row, each pausing serving)."""
    from aurora_sim.replay.eventlog import read_table
    from aurora_sim.replay.loop import Replay

    cfg = ReplayConfig(trace="shift-ci", limit=120, init="scratch", flush_every=8).with_(
        controller_policy="lazy", controller_every=4, controller_delta=-10.0
    )
    Replay(cfg, tmp_path / "run").run()
    swaps = read_table(tmp_path / "run", "swaps")
    decided = swaps.filter(pl.col("kind") != "rollback").sort("decision")
    in_flight, committed, landed_ns = 0, 0, 0
    for row in decided.iter_rows(named=True):
        assert json.loads(row["metrics_json"])["scored_against"] == committed
        in_flight += committed != 0 and (landed_ns is None or row["decided_ns"] < landed_ns)
        committed, landed_ns = row["to_version"], row["effective_ns"]
    assert decided.height >= 3 and in_flight >= 1, decided.select("kind", "decided_ns", "effective_ns")


def test_live_payoff_without_round_times_is_refused_with_a_clear_error(tiny_target):
    from controller.live import LiveLoop

    with pytest.raises(AuroraError, match="payoff prices swaps in time: give --profile"):
        LiveLoop(None, tiny_target, None, None, ControllerConfig(policy="payoff"), None, None, lambda: 0, gamma=4)
