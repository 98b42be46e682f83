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


def test_replay_prices_every_candidate_and_payoff_decides_on_the_price(tmp_path, tiny_dir):
    from aurora_sim.replay.eventlog import read_table
    from aurora_sim.replay.loop import Replay

    cfg = ReplayConfig(trace="shift-ci", limit=120, init="scratch", flush_every=8).with_(
        controller_policy="payoff", controller_every=4, depth_policy="cost"
    )
    Replay(cfg, tmp_path / "a").run()
    swaps = read_table(tmp_path / "a", "swaps")
    decided = swaps.filter(pl.col("kind").is_in(["swap", "hold", "not_applied", "superseded"]))
    assert decided.height >= 2
    for row in decided.iter_rows(named=True):
        m = json.loads(row["metrics_json"])
        assert row["reason"].startswith("payoff: expected speedup")
        assert {"candidate_speedup", "serving_speedup", "candidate_depth", "swap_pause_ns"} <= set(m)
        assert 0 <= m["candidate_depth"] <= cfg.gamma and m["candidate_speedup"] > 0
    Replay(cfg, tmp_path / "b").run()  # deterministic: the same log bytes
    for table in ("swaps", "rounds", "requests"):
        assert read_table(tmp_path / "a", table).equals(read_table(tmp_path / "b", table))


def test_live_payoff_without_round_times_is_refused_with_a_clear_error(tiny_target):
    from controller.live import LiveLoop

    with pytest.raises(AuroraError, match="payoff prices swaps in time: give --profile"):
        LiveLoop(None, tiny_target, None, None, ControllerConfig(policy="payoff"), None, None, lambda: 0, gamma=4)
