"""Faults, each against a real server on loopback: a server not up yet and restarted mid-run (a
subprocess, killed and started again), slow and failing responses (retries with bounded
backoff, timeouts), and a bounded load test with a swap in the middle: no request fails and
greedy outputs stay identical to target-only decoding."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from aurora_sim.errors import AuroraError
from aurora_sim.replay.config import ControllerConfig, LearnerConfig
from aurora_sim.serve.config import ServeConfig
from aurora_sim.serve.launch import InProcessServer, free_port, spawn, wait_healthy
from controller.live_client import ServerClient, ServerError


def _kill(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_live_waits_for_a_late_server_and_survives_a_restart(tmp_path, tiny_dir):
    from aurora_sim.live.config import LiveConfig
    from aurora_sim.live.runner import LiveRunner
    from aurora_sim.replay.eventlog import read_table

    port, weights = free_port(), tmp_path / "weights"
    weights.mkdir()
    args = ["--port", str(port), "--weights-dir", str(weights), "--max-tokens-limit", "64"]
    cfg = LiveConfig(
        server=f"http://127.0.0.1:{port}",
        trace="shift-ci",
        limit=64,
        concurrency=4,
        weights_dir=str(weights),
        retries=30,
        backoff_s=0.1,
        backoff_max_s=0.5,
        timeout_s=30,
        ready_timeout_s=60,
        learner=LearnerConfig(min_new=4, batch_requests=4, unroll=2, heldout_every=0),
        controller=ControllerConfig(every=1),
    )
    runner = LiveRunner(cfg, tmp_path / "run")
    out = {}
    t = threading.Thread(target=lambda: out.update(summary=runner.run()))
    t.start()  # nothing listens yet: the runner waits (bounded by ready_timeout_s)
    time.sleep(1.0)
    procs = [spawn(args)]
    try:
        deadline = time.monotonic() + 90
        while getattr(getattr(runner, "loop", None), "serving_version", 0) < 1:
            assert time.monotonic() < deadline and t.is_alive(), "no swap before the restart"
            time.sleep(0.05)
        _kill(procs[0])  # the server dies mid-run, with requests in flight
        procs.append(spawn(args))  # and comes back with its start-up draft
        t.join(120)
        assert not t.is_alive()
        s = out["summary"]
        assert s["failed"] == 0 and s["requests"] == 64 and s["client_retries"] > 0
        swaps = read_table(tmp_path / "run", "swaps")
        assert "resync" in set(swaps["kind"])  # the restarted server was brought back to the serving version
        info = httpx.get(f"http://127.0.0.1:{port}/get_model_info", timeout=10).json()
        assert info["aurora"]["draft_version"] == s["serving_version"]
    finally:
        for p in procs:
            _kill(p)


@pytest.fixture()
def flaky():
    """A stub on loopback: /generate fails twice with 503, then answers; /slow never answers in time."""
    calls = {"generate": 0}

    async def generate(request):
        calls["generate"] += 1
        if calls["generate"] <= 2:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        return JSONResponse({"text": "", "output_ids": [1], "meta_info": {}})

    async def slow(request):
        await asyncio.sleep(3)
        return PlainTextResponse("late")

    async def bad(request):
        return JSONResponse({"error": {"message": "bad body"}}, status_code=400)

    app = Starlette(
        routes=[
            Route("/generate", generate, methods=["POST"]),
            Route("/slow", slow),
            Route("/bad", bad, methods=["POST"]),
            Route("/health", lambda r: PlainTextResponse("")),
        ]
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off", timeout_graceful_shutdown=0)
    )
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", calls
    server.should_exit = True
    th.join(5)


def test_failing_responses_are_retried_with_backoff(flaky):
    url, calls = flaky
    c = ServerClient(url, retries=3, backoff_s=0.05)
    t0 = time.monotonic()
    assert c.generate({"input_ids": [1]})["output_ids"] == [1]
    assert calls["generate"] == 3 and c.retried == 2
    assert time.monotonic() - t0 >= 0.05 + 0.1  # backed off 0.05 then 0.1 s
    with pytest.raises(ServerError, match="HTTP 400"):  # a client error is not retried
        c._check(c.call("POST", "/bad"), "/bad")
    assert c.retried == 2


def test_slow_responses_time_out_and_give_up_within_a_bound(flaky):
    url, _ = flaky
    c = ServerClient(url, timeout_s=0.3, retries=2, backoff_s=0.05)
    t0 = time.monotonic()
    with pytest.raises(ServerError, match="no answer after 3 attempts"):
        c.call("GET", "/slow")
    assert (
        time.monotonic() - t0 < 2.9
    )  # three 0.3 s timeouts + backoff (~1.05 s), never the 3 s reply; slack for a busy CI
    assert c.transport_failures == 3


def test_waiting_for_a_server_that_never_comes_is_bounded():
    c = ServerClient(f"http://127.0.0.1:{free_port()}", backoff_s=0.05, backoff_max_s=0.2)
    t0 = time.monotonic()
    with pytest.raises(ServerError, match="not ready"):
        c.wait_ready(1.0)
    assert time.monotonic() - t0 < 3.0  # waits ~1 s, then gives up (slack for a busy CI)
    with pytest.raises(AuroraError):
        wait_healthy(c.url, timeout=0.5)


def test_load_with_a_swap_midway_no_failures_and_greedy_unchanged(tiny_dir, tmp_path, heldout_prompts):
    from aurora_sim.engine.protocol import GenRequest
    from aurora_sim.engine.torch_engine import TorchSpecEngine
    from aurora_sim.models.drafts import new_eagle3
    from aurora_sim.serve.cli import load_models
    from controller.registry import VersionRegistry

    models = load_models(ServeConfig(model="tiny", draft="static"))
    prompts = [tuple(ids[: 8 + i % 16]) for i, (_, ids) in enumerate(heldout_prompts * 2)][:300]
    cfg = ServeConfig(port=free_port(), weights_dir=tmp_path, batch=16, max_concurrent=512, max_tokens_limit=8)
    v = VersionRegistry(tmp_path).publish(new_eagle3(models[0], seed=5), 1, 0, 0, 0)
    with InProcessServer(cfg, models) as srv:

        async def drive():
            limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
            async with httpx.AsyncClient(base_url=srv.url, timeout=120, limits=limits) as client:

                async def one(ids):
                    return await client.post(
                        "/generate",
                        json={"input_ids": list(ids), "sampling_params": {"max_new_tokens": 4, "temperature": 0}},
                    )

                async def swap():
                    await asyncio.sleep(0.3)
                    return await client.post(
                        "/update_weights_from_disk", json={"model_path": v.path.name, "version": 1, "sha256": v.sha256}
                    )

                return await asyncio.gather(swap(), *(one(p) for p in prompts))

        swap, *responses = asyncio.run(drive())
        assert swap.status_code == 200 and swap.json()["success"]
        assert all(r.status_code == 200 for r in responses)
        got = [r.json() for r in responses]
        versions = {v for g in got for v in g["meta_info"]["draft_versions"]}
        stop = srv.state.stop_ids
    assert versions == {0, 1}  # the swap landed while requests were in flight
    eng = TorchSpecEngine(models[0], None, gamma=0, max_batch=32, max_len=64)
    expect = eng.run([GenRequest(f"r{i}", p, 4, stop_ids=stop) for i, p in enumerate(prompts)])
    assert [g["output_ids"] for g in got] == [r.output_ids for r in expect]
