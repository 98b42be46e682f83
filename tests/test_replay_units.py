"""Virtual time's building blocks: the event queue's order, per-subsystem RNG streams, config."""

from __future__ import annotations

import pytest

from aurora_sim.errors import AuroraError
from aurora_sim.replay import events as ev
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.rng import py_stream, stream_seed, torch_stream


def test_events_pop_by_time_then_priority_then_insertion():
    q = ev.EventQueue()
    q.push(5, ev.ROUND, "a")
    q.push(5, ev.SWAP_READY, "b")
    q.push(3, ev.ROUND, "c")
    q.push(5, ev.SWAP_READY, "d")
    order = [q.pop().kind for _ in range(4)]
    assert order == ["c", "b", "d", "a"]
    assert q.now_ns == 5


def test_events_refuse_the_past():
    q = ev.EventQueue()
    q.push(10, ev.ROUND, "x")
    q.pop()
    with pytest.raises(AuroraError, match="past"):
        q.push(9, ev.ROUND, "y")


def test_rng_streams_are_seeded_and_independent():
    assert stream_seed(0, "learner") == stream_seed(0, "learner")
    assert stream_seed(0, "learner") != stream_seed(0, "policy") != stream_seed(1, "learner")
    a, b = py_stream(3, "arrivals"), py_stream(3, "arrivals")
    assert [a.random() for _ in range(3)] == [b.random() for _ in range(3)]
    import torch

    assert torch.equal(torch.rand(4, generator=torch_stream(3, "x")), torch.rand(4, generator=torch_stream(3, "x")))


def test_config_round_trips_and_rejects_nonsense():
    cfg = ReplayConfig(limit=10).with_(learner_lambda_discard=0.5, controller_policy="lazy")
    again = ReplayConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.config_hash() == cfg.config_hash()
    assert cfg.with_(seed=1).config_hash() != cfg.config_hash()
    with pytest.raises(AuroraError, match="policy"):
        cfg.with_(controller_policy="nope")
    with pytest.raises(AuroraError, match="lambda"):
        cfg.with_(learner_lambda_discard=-1.0)
    with pytest.raises(AuroraError, match="unknown replay config keys"):
        ReplayConfig.from_dict({"bogus": 1})


def test_recipes_set_the_learner_and_record_their_name():
    fast, paper = ReplayConfig(), ReplayConfig().with_recipe("paper")
    assert ReplayConfig().with_recipe("fast") == fast and fast.recipe == "fast"
    assert (paper.recipe, paper.gamma, paper.controller.every, paper.learner.unroll) == ("paper", 5, 50, 5)
    # the paper fine-tunes a trained draft at 1e-5 and trains one from scratch at 1e-4
    assert paper.learner_lr == 1e-5 and paper.with_(init="scratch").learner_lr == 1e-4
    # the fast recipe: 1e-4 from a trained draft (docs/when-online-pays.md), 1e-3 from scratch
    assert fast.learner_lr == 1e-4 and fast.with_(init="scratch").learner_lr == 1e-3
    # explicit settings override the recipe, and the config records what ran
    mine = ReplayConfig().with_recipe("paper", controller_every=10, learner_lr=3e-4, learner_lr_finetune=None)
    assert mine.recipe == "paper" and mine.controller.every == 10 and mine.learner_lr == 3e-4
    assert ReplayConfig.from_dict(paper.to_dict()) == paper and paper.config_hash() != fast.config_hash()
    with pytest.raises(AuroraError, match="unknown learner recipe 'slow'"):
        ReplayConfig().with_recipe("slow")
    with pytest.raises(AuroraError, match="unknown learner recipe"):
        ReplayConfig.from_dict({"recipe": "slow"})
