"""The two-draft arm (controller/router.py): a frozen floor head beside the online one, chosen per
domain from held-out acceptance; its rounds, costs and guarantees on real replays."""

from __future__ import annotations

import polars as pl
import pytest

from aurora_sim.costs import RoundShape, make_cost_model
from aurora_sim.engine.fast_engine import FLOOR_VERSION
from aurora_sim.errors import AuroraError
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.eventlog import read_table
from aurora_sim.replay.loop import Replay
from aurora_sim.replay.summary import summarize
from controller.router import DomainRouter

LIMIT = 64


def test_the_router_moves_a_domain_only_when_the_online_head_beats_the_floor():
    r = DomainRouter(margin=0.02, min_requests=8)
    assert r.use_floor("code")  # nothing scored yet: the floor
    r.install(
        {
            "code": {"online_al": 3.10, "floor_al": 3.00, "requests": 8},  # +3.3 %: online
            "finance": {"online_al": 3.05, "floor_al": 3.00, "requests": 30},  # +1.7 %: not enough
            "chat": {"online_al": 4.00, "floor_al": 3.00, "requests": 7},  # too few requests
        }
    )
    assert not r.use_floor("code") and r.use_floor("finance") and r.use_floor("chat")
    r.install(None)  # a rollback: everything back on the floor
    assert r.use_floor("code")


def test_a_round_with_both_heads_pays_for_both():
    cost = make_cost_model("h100", "llama3-8b")
    one = RoundShape.steady(8, 4, 256, 3.0)
    two = RoundShape(**{**one.__dict__, "draft_models": 2})
    assert cost.round_ns(two) == cost.round_ns(one) + cost.draft_ns(one) and cost.draft_ns(one) > 0


def _cfg(**changes) -> ReplayConfig:
    base = ReplayConfig(trace="shift-ci", limit=LIMIT, deployment="proxy", engine="fast", flush_every=16)
    return base.with_(learner_batch_requests=4, learner_min_new=4, controller_every=2, **changes)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_dir):
    root = tmp_path_factory.mktemp("two-draft")
    out = {}
    for name, cfg in {
        "static": _cfg(init="static", learner_enabled=False),
        # an untrained online head never beats the static floor: every round stays on the floor
        "scratch_beside_static": _cfg(init="scratch", floor_draft="static"),
        "again": _cfg(init="scratch", floor_draft="static"),
    }.items():
        Replay(cfg, root / name).run()
        out[name] = root / name
    return out


def test_the_floor_holds_while_the_online_head_is_worse(runs):
    two, static = runs["scratch_beside_static"], runs["static"]
    rounds = read_table(two, "rounds").filter(pl.col("proposed") > 0)
    assert rounds.height and (rounds["draft_version"] == FLOOR_VERSION).all()
    swaps = read_table(two, "swaps").filter(pl.col("kind") == "swap")
    assert swaps.height > 0  # the online head was learning and swapping all along
    a, b = summarize(two), summarize(static)
    assert a["acceptance_length"] == b["acceptance_length"]  # the same proposals, round for round
    assert [s["acceptance_length"] for s in a["segments"]] == [s["acceptance_length"] for s in b["segments"]]
    req = lambda d: read_table(d, "requests").sort("request_index")["output_ids"].to_list()  # noqa: E731
    assert req(two) == req(static)  # lossless either way


def test_the_two_draft_arm_is_deterministic(runs):
    for table in ("rounds", "swaps", "train_steps"):
        a = read_table(runs["scratch_beside_static"], table)
        b = read_table(runs["again"], table)
        assert a.equals(b), table


def test_the_two_draft_arm_needs_the_fast_path_and_an_online_eagle3_head(tiny_dir, tmp_path):
    with pytest.raises(AuroraError, match="fast path"):
        _cfg(floor_draft="static", engine="exact")  # refused with the config, before any run
    with pytest.raises(AuroraError, match="needs an online EAGLE-3 draft"):
        _cfg(floor_draft="static", learner_enabled=False)
    assert _cfg(floor_draft="static").arm == "two-draft"


def test_a_bad_floor_draft_is_one_line_before_anything_runs(tiny_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from aurora_sim.cli import app

    monkeypatch.chdir(tmp_path)
    for args, msg in (
        (["--floor-draft", "static", "--engine", "exact"], "fast path"),
        (["--floor-draft", str(tmp_path / "missing")], "floor draft not found"),
        (["--swap", "hot"], "unknown swap mechanism 'hot'"),
    ):
        res = CliRunner().invoke(app, ["replay", "--limit", "8", *args])
        assert res.exit_code != 0 and msg in res.output, res.output
        assert not (tmp_path / "runs").exists()  # not even the frozen twin
