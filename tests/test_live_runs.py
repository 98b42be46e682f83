"""`aurora live` against a real server on loopback: learns, publishes and swaps; writes the
replay's event-log tables (analysis views read them); a swap the server refuses leaves the old
draft serving and is logged; a dying trainer does not stop serving and resumes from the last
published version; `aurora capture` records a replayable trace."""

from __future__ import annotations

import json
import threading
import time

import httpx
import polars as pl
import pytest

from aurora_sim.replay.config import ControllerConfig, LearnerConfig
from aurora_sim.serve.config import ServeConfig
from aurora_sim.serve.launch import InProcessServer, free_port

FAST_LEARNER = LearnerConfig(min_new=4, batch_requests=4, unroll=2, heldout_every=0)


@pytest.fixture(scope="module")
def models(tiny_dir):
    from aurora_sim.serve.cli import load_models

    return load_models(ServeConfig(model="tiny", draft="static"))


@pytest.fixture()
def server(models, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    with InProcessServer(ServeConfig(port=free_port(), weights_dir=weights, max_tokens_limit=64), models) as srv:
        srv.weights = weights
        yield srv


def live_cfg(srv, weights, **kw):
    from aurora_sim.live.config import LiveConfig

    base = dict(
        server=srv.url,
        trace="shift-ci",
        limit=32,
        concurrency=8,
        weights_dir=str(weights),
        learner=FAST_LEARNER,
        controller=ControllerConfig(every=2),
        retries=2,
        backoff_s=0.05,
    )
    return LiveConfig(**{**base, **kw})


def test_live_run_learns_swaps_and_writes_the_replay_tables(server, tmp_path):
    from analysis.views import connect
    from aurora_sim.live.runner import LiveRunner
    from aurora_sim.replay.eventlog import read_table

    seen = []
    summary = LiveRunner(live_cfg(server, server.weights), tmp_path / "run", on_progress=seen.append).run()
    assert summary["requests"] == 32 and summary["failed"] == 0 and summary["swaps"] >= 1
    assert seen and seen[-1].finished == 32
    info = httpx.get(f"{server.url}/get_model_info").json()
    assert info["aurora"]["draft_version"] == summary["serving_version"] >= 1
    run = tmp_path / "run"
    runs = read_table(run, "runs").row(0, named=True)
    assert runs["status"] == "complete" and "wall-clock" in json.loads(runs["config_json"])["time_base"]
    reqs = read_table(run, "requests")
    assert reqs.height == 32 and set(reqs["status"]) == {"completed"}
    swaps = read_table(run, "swaps")
    assert swaps.filter(swaps["kind"] == "swap").height == summary["swaps"]
    assert read_table(run, "versions").height >= 2 and read_table(run, "train_steps").height >= 2
    rounds = read_table(run, "rounds")
    assert rounds.height > 32 and set(rounds["draft_version"].unique()) >= {0}
    con = connect([run])
    al = con.execute("SELECT spec_decode_acceptance_length FROM run_summary").fetchone()[0]
    assert 1.0 <= al <= 5.0


def test_swap_refused_by_the_server_keeps_the_old_draft_and_is_logged(server, tmp_path):
    from aurora_sim.live.runner import LiveRunner
    from aurora_sim.replay.eventlog import read_table

    elsewhere = tmp_path / "not-the-servers-weights"  # the server cannot see what we publish
    summary = LiveRunner(live_cfg(server, elsewhere, limit=20), tmp_path / "run").run()
    assert summary["failed"] == 0 and summary["swaps"] == 0 and summary["rejected_swaps"] >= 2
    assert httpx.get(f"{server.url}/get_model_info").json()["aurora"]["draft_version"] == 0
    swaps = read_table(tmp_path / "run", "swaps")
    rejected = swaps.filter(swaps["kind"] == "rejected")
    assert rejected.height == summary["rejected_swaps"] and "server:" in rejected["reason"][0]


def test_trainer_dying_does_not_stop_serving_and_resumes_from_last_published(server, tmp_path):
    from aurora_sim.live.runner import LiveRunner
    from aurora_sim.replay.eventlog import read_table

    calls = {"n": 0}

    def fault():
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("trainer killed")

    runner = LiveRunner(live_cfg(server, server.weights, limit=40), tmp_path / "run", fault=fault)
    summary = runner.run()
    assert summary["failed"] == 0 and summary["trainer_restarts"] == 1
    steps = read_table(tmp_path / "run", "train_steps")
    assert steps.filter(steps["status"].str.starts_with("failed")).height == 1
    assert steps.filter(steps["status"] == "ok").height >= 3  # it went on training
    assert runner.loop.resumed_from >= 1  # the candidate published before the failure


def test_capture_records_a_valid_replayable_trace(server, tmp_path, heldout_prompts, tiny_tokenizer):
    from aurora_sim.capture import capture
    from aurora_sim.replay.workload import build_workload
    from traces import read_trace

    out = tmp_path / "cap.parquet"
    result = {}
    t = threading.Thread(target=lambda: result.update(n=capture(server.url, out, duration_s=20, limit=5, poll_s=0.05)))
    t.start()
    time.sleep(0.5)
    sent = []
    for i, (domain, ids) in enumerate(heldout_prompts[:5]):
        r = httpx.post(
            f"{server.url}/generate",
            json={
                "input_ids": list(ids),
                "domain": domain,
                "rid": f"c{i}",
                "sampling_params": {"max_new_tokens": 6, "temperature": 0},
            },
            timeout=60,
        ).json()
        sent.append(r["output_ids"])
    t.join(30)
    assert result["n"] == 5
    trace = read_trace(out)
    assert trace.frame["request_id"].to_list() == [f"c{i}" for i in range(5)]
    assert trace.frame["domain"].to_list() == [d for d, _ in heldout_prompts[:5]]
    meta = [json.loads(m) for m in trace.frame["metadata"]]
    assert [m["output_ids"] for m in meta] == sent
    wl = build_workload(str(out), 0, tiny_tokenizer, (2,))
    assert [it.request.prompt_ids for it in wl.items] == [tuple(ids) for _, ids in heldout_prompts[:5]]


def test_live_sends_the_api_key_and_never_prints_or_logs_it(models, tmp_path, capsys):
    """Against a keyed server `aurora live` authenticates (the run completes and swaps), and the
    key appears nowhere: not on stdout/stderr, not in any file of the run or the weights dir."""
    from typer.testing import CliRunner

    from aurora_sim.cli import app

    key = "sk-aurora-test-7f3c9d1e5b"
    weights = tmp_path / "weights"
    weights.mkdir()
    cfg = ServeConfig(port=free_port(), weights_dir=weights, max_tokens_limit=64, api_key=key)
    with InProcessServer(cfg, models) as srv:
        assert httpx.post(f"{srv.url}/generate", json={"text": "hi"}).status_code == 401
        out = tmp_path / "run"
        res = CliRunner().invoke(
            app,
            [
                "live",
                "--server",
                srv.url,
                "--trace",
                "shift-ci",
                "--limit",
                "16",
                "--weights-dir",
                str(weights),
                "--api-key",
                key,
                "--every",
                "1",
                "-o",
                str(out),
                "--quiet",
            ],
        )
        assert res.exit_code == 0, res.output
    captured = capsys.readouterr()
    assert key not in res.output and key not in captured.out and key not in captured.err
    for path in [*out.rglob("*"), *weights.rglob("*")]:
        if path.is_file():
            assert key.encode() not in path.read_bytes(), f"API key leaked into {path}"
    from aurora_sim.replay.eventlog import read_table

    assert read_table(out, "requests").height == 16


def test_live_payoff_prices_swaps_with_this_machines_round_times(server, tmp_path):
    """`aurora live --policy payoff --profile P.json`: each candidate is priced (both drafts'
    expected speedup at the live batch and context, the last weight update's measured pause) and
    swapped exactly when the time it saves before the next candidate pays for that pause and the
    pause keeps the last requests above the floor."""
    from aurora_sim.costs.calibrate import calibrate
    from aurora_sim.errors import AuroraError
    from aurora_sim.live.runner import LiveRunner
    from aurora_sim.replay.eventlog import read_table

    profile = calibrate(
        model="tiny",
        draft="eagle3",
        batches=(1, 8),
        gammas=(0, 4),
        rounds=2,
        warmup=1,
        out=tmp_path / "tiny-cpu.json",
        progress=False,
    )
    learner = LearnerConfig(min_new=4, batch_requests=4, unroll=2, heldout_every=3)
    cfg = live_cfg(
        server,
        server.weights,
        learner=learner,
        controller=ControllerConfig(policy="payoff", every=2),
        profile=str(profile),
    )
    summary = LiveRunner(cfg, tmp_path / "run").run()
    assert summary["failed"] == 0
    rows = read_table(tmp_path / "run", "swaps").filter(pl.col("kind").is_in(["swap", "hold"]))
    assert rows.height >= 1
    for row in rows.iter_rows(named=True):
        m = json.loads(row["metrics_json"])
        assert m["priced_batch"] == 8 and m["priced_context"] > 0 and m["swap_pause_ns"] > 0
        # the rule as the policy applied it (its horizon is the clock at decision time)
        assert f"swap pause {m['swap_pause_ns'] / 1e9:.3f} s" in row["reason"]
        pays = " > swap pause" in row["reason"] and "< floor" not in row["reason"]
        assert row["kind"] == ("swap" if pays else "hold"), row["reason"]
        assert 0 < m["serving_speedup"] < 10 and 0 < m["candidate_speedup"] < 10
        # the floor guard's window, on the wall clock against this machine's plain decode rounds
        assert 0 < m["window_speedup_after_pause"] < m["window_speedup"] and m["window_requests"] >= 1
    with pytest.raises(AuroraError, match="give --profile"):
        LiveRunner(
            live_cfg(server, server.weights, controller=ControllerConfig(policy="payoff")), tmp_path / "r2"
        ).run()
