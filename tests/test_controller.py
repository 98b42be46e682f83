"""The controller: policies decide from observations only, rollback guards a swap, the registry
publishes atomically and refuses tampered weights, and nothing here can reach trace content."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from aurora_sim.errors import AuroraError
from aurora_sim.replay.config import ControllerConfig
from controller import CandidateInfo, Hold, Observation, ObservationBuilder, Rollback, Swap, make_controller
from controller.registry import VersionRegistry

CONTROLLER_DIR = Path(__file__).resolve().parents[1] / "controller"


def _cand(cand_al, serving_al):
    return CandidateInfo(5, 4, 40, {"candidate_al": cand_al, "serving_al": serving_al})


def test_cadence_swaps_every_candidate_on_schedule():
    c = make_controller(ControllerConfig(policy="cadence", every=4))
    assert [s for s in range(1, 13) if c.candidate_due(s)] == [4, 8, 12]
    obs = ObservationBuilder(8).observe(0, _cand(1.0, 2.0))
    assert isinstance(c.decide(obs), Swap)


def test_lazy_swaps_only_when_the_candidate_wins_by_delta():
    c = make_controller(ControllerConfig(policy="lazy", delta=0.1))
    assert c.eval_set == "heldout"
    b = ObservationBuilder(8)
    assert isinstance(c.decide(b.observe(0, _cand(2.05, 2.0))), Hold)
    assert isinstance(c.decide(b.observe(0, _cand(2.11, 2.0))), Swap)
    assert isinstance(c.decide(b.observe(0, _cand(float("nan"), 2.0))), Hold)


def test_shadow_swaps_unless_the_candidate_is_worse_on_recent_traffic():
    c = make_controller(ControllerConfig(policy="shadow", tolerance=0.0))
    assert c.eval_set == "recent"
    b = ObservationBuilder(8)
    assert isinstance(c.decide(b.observe(0, _cand(2.0, 2.0))), Swap)
    assert isinstance(c.decide(b.observe(0, _cand(1.9, 2.0))), Hold)


def test_rollback_fires_once_when_live_acceptance_drops_after_a_swap():
    c = make_controller(ControllerConfig(policy="cadence", rollback=True, rollback_window=3, rollback_margin=0.1))
    b = ObservationBuilder(3)
    for _ in range(3):
        b.on_round(0, generated=30, rounds=10)  # AL 3.0 before the swap
    b.on_swap(0, 1, rollback=False)
    c.on_swapped()
    b.on_round(1, 20, 10)
    assert c.check(b.observe(1)) is None  # window not full yet
    b.on_round(1, 20, 10)
    b.on_round(1, 20, 10)
    d = c.check(b.observe(2))
    assert isinstance(d, Rollback) and d.version == 0
    assert c.check(b.observe(3)) is None  # one verdict per swap


def test_rollback_keeps_a_swap_that_holds_up():
    c = make_controller(ControllerConfig(rollback=True, rollback_window=2, rollback_margin=0.1))
    b = ObservationBuilder(2)
    b.on_round(0, 20, 10)
    b.on_swap(0, 1, rollback=False)
    c.on_swapped()
    b.on_round(1, 19, 10)
    b.on_round(1, 19, 10)
    assert c.check(b.observe(0)) is None


def test_rollback_disabled_by_default():
    c = make_controller(ControllerConfig())
    b = ObservationBuilder(1)
    b.on_round(0, 30, 10)
    b.on_swap(0, 1, False)
    c.on_swapped()
    b.on_round(1, 10, 10)
    assert c.check(b.observe(0)) is None


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(AuroraError, match="unknown policy"):
        make_controller(ControllerConfig.__new__(ControllerConfig)) if False else make_controller(
            dataclasses.replace(ControllerConfig(), policy="greedy")
        )


FORBIDDEN = ("prompt", "messages", "output", "domain", "segment", "trace", "request_id", "tokens")


def test_observation_carries_no_trace_content():
    for cls in (Observation, CandidateInfo):
        names = {f.name for f in dataclasses.fields(cls)}
        assert not {n for n in names for bad in FORBIDDEN if bad in n}, names


def test_controller_code_cannot_import_the_trace_or_the_engine():
    for path in CONTROLLER_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            for m in mods:
                assert not m.startswith(("traces", "aurora_sim.replay", "aurora_sim.engine")), (
                    f"{path.name} imports {m}"
                )


def test_registry_publishes_and_verifies_checksums(tmp_path, tiny_target):
    from aurora_sim.models.drafts import new_eagle3

    reg = VersionRegistry(tmp_path / "drafts", keep=1)
    for v in range(3):
        reg.publish(new_eagle3(tiny_target, seed=v), v, v - 1 if v else None, 10 * v, 1000 * v, {"m": v})
    assert reg.load(2, tiny_target) is not None
    assert not list((tmp_path / "drafts").glob(".*"))  # no temp leftovers
    reg.prune(protect={0})
    assert (tmp_path / "drafts" / "v00000").is_dir() and not (tmp_path / "drafts" / "v00001").exists()
    with pytest.raises(AuroraError, match="pruned"):
        reg.load(1, tiny_target)
    weights = tmp_path / "drafts" / "v00002" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(AuroraError, match="checksum"):
        reg.load(2, tiny_target)
