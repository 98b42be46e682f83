"""Replay under other traffic: open-loop arrivals with overload (refusals are accounted), a
two-segment shift with recovery numbers, and the standalone-LM draft learning online."""

from __future__ import annotations

import polars as pl

from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.eventlog import read_table
from aurora_sim.replay.loop import Replay
from aurora_sim.replay.summary import summarize


def _trace(tmp_path, name, **changes):
    import traces
    from traces.config import TraceConfig

    spec = traces.scenario(name, seed=0).to_dict() | changes
    path = tmp_path / f"{name}.parquet"
    traces.generate_to_file(TraceConfig.from_dict(spec, where="test"), path)
    return path


def test_open_loop_overload_refuses_with_a_reason_and_conserves_requests(tmp_path, tiny_dir):
    # everything arrives within microseconds; two slots and a queue of four cannot take it all
    trace = _trace(tmp_path, "ordered", arrivals={"kind": "poisson", "rate_per_s": 1e6}, sampling={"max_new_tokens": 8})
    cfg = ReplayConfig(trace=str(trace), limit=24, init="none", batch=2, max_queue=4, deployment="proxy")
    Replay(cfg, tmp_path / "run").run()
    req = read_table(tmp_path / "run", "requests")
    assert sorted(req["request_index"].to_list()) == list(range(24))
    refused = req.filter(pl.col("status") == "refused")
    assert refused.height > 0 and (refused["finish_reason"] == "queue_full").all()
    done = req.filter(pl.col("status") == "completed")
    assert done.height > 0 and (done["output_tokens"] == 8).all()
    assert (done["arrival_ns"] <= done["admit_ns"]).all()
    # open loop: arrivals come from the trace, not from completions
    arrivals = pl.read_parquet(trace).head(24)["arrival_ns"].to_list()
    assert sorted(req["arrival_ns"].to_list()) == sorted(arrivals)


def test_shift_recovery_is_measured_per_shift(tmp_path, tiny_dir):
    trace = _trace(
        tmp_path,
        "shift-ci",
        schedule={
            "kind": "ordered",
            "segments": [{"domain": "code", "requests": 40}, {"domain": "chat", "requests": 40}],
        },
        sampling={"max_new_tokens": 16},
    )
    cfg = ReplayConfig(trace=str(trace), init="scratch", deployment="proxy").with_(
        learner_batch_requests=4, learner_min_new=4, controller_every=2
    )
    Replay(cfg, tmp_path / "run").run()
    s = summarize(tmp_path / "run")
    assert [g["domain"] for g in s["segments"]] == ["code", "chat"]
    assert [g["requests"] for g in s["segments"]] == [40, 40]
    (shift,) = s["shifts"]
    assert shift["shift_at"] == 40 and shift["to_domain"] == "chat" and shift["level_before"] >= 1.0
    # 40 requests after the shift are fewer than the window (W = 50): no recovery claim is made
    assert shift["window"] == 50 and shift["recovery_requests"] is None
    assert shift["al_after_head"] == s["segments"][1]["acceptance_length"]  # head (200) covers the segment
    assert s["swaps"] > 0 and s["train_steps_ok"] > 0


def test_lm_draft_learns_online_and_stays_lossless(tmp_path, tiny_dir):
    cfg = ReplayConfig(limit=32, draft="lm", init="scratch", deployment="proxy").with_(
        learner_batch_requests=4, learner_min_new=4, controller_every=2
    )
    Replay(cfg, tmp_path / "lm").run()
    Replay(cfg.with_(init="none"), tmp_path / "plain").run()
    steps = read_table(tmp_path / "lm", "train_steps")
    assert steps.height > 0 and (steps["status"] == "ok").all()
    assert steps["loss"].head(2).mean() > steps["loss"].tail(2).mean()
    a = read_table(tmp_path / "lm", "requests").sort("request_index")["output_ids"].to_list()
    b = read_table(tmp_path / "plain", "requests").sort("request_index")["output_ids"].to_list()
    assert a == b
    assert read_table(tmp_path / "lm", "swaps").filter(pl.col("kind") == "swap").height > 0
