"""Depth policies (controller/depth*.py) on synthetic observations: no models needed.

`cost` against the real H100 / Llama-3-8B cost model; `ema` (the SGLang model) against
sequences computed by hand from SGLang's rule; the config's default leaves old runs' identity
alone.
"""

from __future__ import annotations

import pytest

from aurora_sim.costs import RoundShape, make_cost_model
from aurora_sim.errors import AuroraError
from aurora_sim.replay.config import DepthConfig, ReplayConfig
from controller.depth import DepthRound, make_depth_policy


@pytest.fixture(scope="module")
def round_time():
    cost = make_cost_model("h100", "llama3-8b")
    return lambda b, g, c, a: cost.round_ns(RoundShape.steady(b, g, c, a))


def _cost(round_time, gamma=4, **cfg):
    return make_depth_policy(DepthConfig(policy="cost", **cfg), gamma, round_time)


def test_cost_starts_at_gamma_max_before_any_observation(round_time):
    assert _cost(round_time).choose(8, 8 * 300) == 4


@pytest.mark.parametrize("batch", [1, 8, 64])
def test_cost_picks_zero_when_nothing_is_accepted(round_time, batch):
    # drafting is a loss here: every γ > 0 costs more than a decode step and emits the same one token
    assert round_time(batch, 1, 300, 1.0) > round_time(batch, 0, 300, 1.0)
    p = _cost(round_time, probe_every=0)
    for _ in range(200):
        p.observe(DepthRound(batch, 4, (0,) * batch))
    assert p.expected_tokens(1) < 1.05
    assert p.choose(batch, batch * 300) == 0


@pytest.mark.parametrize("batch", [1, 8])
def test_cost_picks_gamma_max_when_everything_is_accepted(round_time, batch):
    p = _cost(round_time, probe_every=0)
    for _ in range(50):
        p.observe(DepthRound(batch, 4, (4,) * batch))
    assert p.expected_tokens(4) == pytest.approx(5.0)
    assert p.choose(batch, batch * 300) == 4


def test_cost_prices_each_depth_where_its_rounds_would_start(round_time):
    """Every 4th token is hard (the draft misses it). Rounds of 6 accept 3 and stop on it; a
    product of per-position acceptance (1, 1, 1, 0) priced depth 2 at 3 tokens, but rounds of 2
    go 0-1 (+ bonus at 2), then 3: the hard one, then 4-5 ...: 2 tokens a round, no better than
    depth 1 (0, then 2, then 4, ...), and depth 3 emits 4: the walk prices what each depth serves."""
    p = _cost(round_time, gamma=6, probe_every=0)
    for _ in range(100):
        p.observe(DepthRound(4, 6, (3,) * 4, requests=("a", "b", "c", "d")))
    # (the optimistic prior, 8 rows' rounds, is all but gone after 400)
    assert [p.expected_tokens(g) for g in range(7)] == pytest.approx([1, 2, 2, 4, 4, 4, 4], abs=0.05)
    assert p.choose(4, 4 * 300) == 3


def test_cost_prices_a_swapped_in_draft_optimistically_again(round_time):
    p = _cost(round_time, probe_every=0)
    for _ in range(50):
        p.observe(DepthRound(8, 4, (0,) * 8))
    assert p.choose(8, 8 * 300) == 0
    p.on_swap()
    assert p.choose(8, 8 * 300) == 4  # unknown again: measured at depth 4 in the next round
    p.observe(DepthRound(8, 4, (4,) * 4 + (0,) * 4))
    p.observe(DepthRound(8, 4, (0,) * 8))  # rounds are walked once their positions are verified
    assert 1.0 < p.expected_tokens(1) < 2.0


def test_cost_starts_a_swapped_in_draft_at_the_depth_its_profile_was_priced_at(round_time):
    """With the candidate's scored profile the prior is that profile: the policy's first choice is
    the depth payoff priced it at, not γ max (and its estimates then move from there)."""
    from controller.payoff import expected_speedup

    for survival in ([0.6, 0.3, 0.1, 0.02], [0.9, 0.8, 0.7, 0.6], [0.1, 0.0, 0.0, 0.0]):
        p = _cost(round_time, probe_every=0)
        p.on_swap(survival)
        _, priced = expected_speedup(survival, 8, 300, round_time, adaptive=True)
        assert p.choose(8, 8 * 300) == priced, survival
        assert p.expected_tokens(4) == pytest.approx(1 + sum(survival))
    for _ in range(3):  # observations move the estimates from the profile
        p.observe(DepthRound(8, 1, (1,) * 8))
    assert p.expected_tokens(1) > 1 + 0.1


def test_cost_probes_one_step_deeper_and_backs_off_while_nothing_changes(round_time):
    p = _cost(round_time, probe_every=4)
    for _ in range(200):
        p.observe(DepthRound(8, 4, (0,) * 8))
    depths = [p.choose(8, 8 * 300) for _ in range(16)]
    # probes at rounds 4, 8 and 16: each one that leaves the best depth at 0 doubles the interval
    assert [i + 1 for i, d in enumerate(depths) if d] == [4, 8, 16] and max(depths) == 1
    for _ in range(200):  # the draft got good at position 1 only: the next probe goes one further
        p.observe(DepthRound(8, 2, (1,) * 8))
    assert p.best(8, 8 * 300) == 1
    depths = [p.choose(8, 8 * 300) for _ in range(20)]  # rounds 17..36
    assert [i + 17 for i, d in enumerate(depths) if d != 1] == [32, 36] and depths[15] == 2
    for _ in range(400):  # capped at PROBE_BACKOFF x probe_every = 32 rounds apart
        p.choose(8, 8 * 300)
    gaps = [i for i in range(64) if p.choose(8, 8 * 300) == 2]
    assert gaps[1] - gaps[0] == 32
    p.on_swap()  # a new draft: probed at the base interval again (after its γ max rounds)
    assert p.interval == 4 and p.next_probe == p.rounds + 4
    perfect = _cost(round_time, probe_every=4)  # at γ_max a probe cannot go deeper
    assert [perfect.choose(8, 8 * 300) for _ in range(4)] == [4, 4, 4, 4]


def _ema(gamma):
    return make_depth_policy(DepthConfig(policy="ema"), gamma)


def test_ema_tiers_and_initial_steps():
    p = _ema(4)
    # SGLang's tiers by batch size; candidates above γ dropped (batch-1 tier [1,3,5,7] -> [1,3])
    assert {k: s.candidate_steps for k, s in p.slots.items()} == {1: [1, 3], 8: [0, 1, 3], 32: [0, 1], 64: [0]}
    # γ is not a candidate anywhere: each slot starts at its middle candidate
    assert [p.choose(b, 0) for b in (1, 7, 8, 31, 32, 63, 64, 200)] == [3, 3, 1, 1, 1, 1, 0, 0]
    assert _ema(7).choose(1, 0) == 7  # γ = 7 is a batch-1 candidate: it starts there


def test_ema_switches_down_then_up_as_sglang_does():
    p = _ema(7)  # batch-1 tier [1, 3, 5, 7], starts at 7 with EMA 6
    slot = p.slot(1)
    chosen = []
    for _ in range(15):
        chosen.append(p.choose(1, 0))
        p.observe(DepthRound(1, chosen[-1], (0,)))
    # no switch during the 10 warm-up batches nor before the 5th after them; at batch 15 the EMA
    # is 6·0.8^15 = 0.211 <= every drop threshold (4.25, 2.25, 0.25): straight down to 1
    assert chosen == [7] * 15
    assert slot.ema_accept_len == pytest.approx(6 * 0.8**15)
    assert p.choose(1, 0) == 1
    for _ in range(5):  # every draft accepted at steps 1
        p.observe(DepthRound(1, 1, (1,)))
    # EMA = 1 - (1 - 0.211)·0.8^5 = 0.741 > 1 - 0.5, and <= 3 - 0.5: one tier up, to 3
    assert slot.ema_accept_len == pytest.approx(1 - (1 - 6 * 0.8**15) * 0.8**5)
    assert p.choose(1, 0) == 3


def test_ema_zero_step_tier_probes_up_after_an_interval():
    p = _ema(4)  # batch-8 tier [0, 1, 3] starts at 1 with EMA 0
    for _ in range(15):
        p.observe(DepthRound(8, 1, (0,) * 8))
    assert p.choose(8, 0) == 0  # EMA 0 <= 0.5 + 0: drafting off
    for _ in range(4):
        p.observe(DepthRound(8, 0, (0,) * 8))
        assert p.choose(8, 0) == 0
    p.observe(DepthRound(8, 0, (0,) * 8))  # the next recompute probes the smallest positive step
    assert p.choose(8, 0) == 1
    assert p.choose(64, 0) == 0  # the batch-64 tier never speculates


def test_fixed_and_confidence_always_ask_for_gamma_max():
    fixed = make_depth_policy(DepthConfig(), 4)
    conf = make_depth_policy(DepthConfig(policy="confidence", threshold=0.3), 4)
    assert fixed.choose(8, 100) == conf.choose(8, 100) == 4
    assert fixed.confidence_floor is None and conf.confidence_floor == 0.3


def test_default_depth_leaves_the_recorded_config_as_before():
    cfg = ReplayConfig()
    assert "depth" not in cfg.to_dict()  # same config JSON, run id and log bytes as before depth policies
    cost = cfg.with_(depth_policy="cost")
    assert cost.to_dict()["depth"]["policy"] == "cost" and cost.config_hash() != cfg.config_hash()
    assert ReplayConfig.from_dict(cost.to_dict()) == cost and ReplayConfig.from_dict(cfg.to_dict()) == cfg


def test_bad_depth_settings_are_one_line_errors():
    with pytest.raises(AuroraError, match="unknown depth policy 'deep'"):
        ReplayConfig().with_(depth_policy="deep")
    with pytest.raises(AuroraError, match="threshold"):
        ReplayConfig().with_(depth_policy="confidence", depth_threshold=1.5)
    with pytest.raises(AuroraError, match="round times"):
        make_depth_policy(DepthConfig(policy="cost"), 4)


def test_confidence_resolves_to_the_exact_engine():
    from aurora_sim.replay.resolve import resolve_engine

    cfg = ReplayConfig().with_(depth_policy="confidence")
    assert resolve_engine(cfg, [0.0]) == "exact"
    with pytest.raises(AuroraError, match="--depth confidence needs the draft's probability"):
        resolve_engine(cfg.with_(engine="fast"), [0.0])
