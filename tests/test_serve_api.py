"""`aurora serve` over real HTTP on loopback with the tiny tier: greedy outputs equal
target-only decoding, streaming, OpenAI and SGLang shapes, batching across clients, and a draft
swap through /update_weights_from_disk in the middle of load."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from aurora_sim.serve.config import ServeConfig
from aurora_sim.serve.launch import InProcessServer, free_port


@pytest.fixture(scope="module")
def models(tiny_dir):
    from aurora_sim.serve.cli import load_models

    return load_models(ServeConfig(model="tiny", draft="static"))


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights")
    cfg = ServeConfig(port=free_port(), weights_dir=weights, batch=8, max_tokens_limit=64)
    with InProcessServer(cfg, models) as srv:
        srv.weights = weights
        yield srv


def target_only(models, prompts, max_new, stops):
    from aurora_sim.engine.protocol import GenRequest
    from aurora_sim.engine.torch_engine import TorchSpecEngine

    target = models[0]
    eng = TorchSpecEngine(target, None, gamma=0, max_batch=8, max_len=256)
    return [
        r.output_ids
        for r in eng.run([GenRequest(f"r{i}", tuple(p), max_new, stop_ids=stops) for i, p in enumerate(prompts)])
    ]


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f"aurora:{name} "):
            return float(line.split()[-1])
    raise KeyError(name)


def gen(url, ids, n=24, **extra):
    r = httpx.post(
        f"{url}/generate",
        json={
            "input_ids": list(ids),
            "return_spec_details": True,
            "sampling_params": {"max_new_tokens": n, "temperature": 0},
            **extra,
        },
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_greedy_concurrent_requests_equal_target_only_and_share_rounds(server, models, heldout_prompts):
    prompts = [ids for _, ids in heldout_prompts[::25]][:6]
    steps0, rows0 = metric(server.url, "engine_steps_total"), metric(server.url, "engine_step_rows_total")
    with ThreadPoolExecutor(6) as pool:
        outs = list(pool.map(lambda p: gen(server.url, p), prompts))
    expect = target_only(models, prompts, 24, server.state.stop_ids)
    assert [o["output_ids"] for o in outs] == expect
    m = outs[0]["meta_info"]
    assert m["completion_tokens"] == len(outs[0]["output_ids"]) and m["spec_verify_ct"] >= 1
    assert len(m["spec_accept_per_position"]) == 4 and m["draft_version"] == 0
    assert m["spec_accept_length"] == pytest.approx(
        (m["spec_accept_token_num"] + m["spec_verify_ct"]) / m["spec_verify_ct"]
    )
    assert len(m["spec_rounds"]) == m["spec_verify_ct"]
    # continuous batching: several requests shared engine steps
    steps = metric(server.url, "engine_steps_total") - steps0
    rows = metric(server.url, "engine_step_rows_total") - rows0
    assert rows / steps > 1.5 and metric(server.url, "max_batch_observed") > 1


def test_openai_completions_stream_equals_non_stream(server):
    body = {"model": "tiny", "prompt": "def add(a, b):", "max_tokens": 20, "temperature": 0}
    whole = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60).json()
    assert whole["object"] == "text_completion" and whole["usage"]["completion_tokens"] == 20
    assert whole["choices"][0]["finish_reason"] == "length" and "spec_verify_ct" in whole["meta_info"]
    text, final = "", None
    with httpx.stream("POST", f"{server.url}/v1/completions", json={**body, "stream": True}, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and len(lines) >= 3  # streamed in pieces
    for ln in lines[:-1]:
        chunk = json.loads(ln[6:])
        text += chunk["choices"][0]["text"]
        final = chunk
    assert text == whole["choices"][0]["text"] and final["meta_info"]["completion_tokens"] == 20


def test_chat_completions_and_stop_string(server):
    msgs = [{"role": "user", "content": "What is a bond?"}]
    r = httpx.post(
        f"{server.url}/v1/chat/completions", json={"messages": msgs, "max_tokens": 16, "temperature": 0}, timeout=60
    ).json()
    text = r["choices"][0]["message"]["content"]
    assert r["object"] == "chat.completion" and r["choices"][0]["message"]["role"] == "assistant" and text
    deltas = []
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        json={"messages": msgs, "max_tokens": 16, "temperature": 0, "stream": True},
        timeout=60,
    ) as s:
        for ln in s.iter_lines():
            if ln.startswith("data: {"):
                deltas.append(json.loads(ln[6:])["choices"][0]["delta"].get("content", ""))
    assert "".join(deltas) == text
    stop = text.strip()[:3]
    r2 = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"messages": msgs, "max_tokens": 16, "temperature": 0, "stop": stop},
        timeout=60,
    ).json()
    assert r2["choices"][0]["finish_reason"] == "stop" and stop not in r2["choices"][0]["message"]["content"]
    assert r2["meta_info"]["finish_reason"] == {"type": "stop", "matched": stop}


def test_swap_mid_load_changes_version_and_keeps_greedy_outputs(server, models, heldout_prompts):
    from aurora_sim.models.drafts import new_eagle3
    from controller.registry import VersionRegistry

    reg = VersionRegistry(server.weights)  # a different (day-0) head: outputs must not change anyway
    v = reg.publish(new_eagle3(models[0], seed=1), 1, 0, 0, 0)
    prompts = [ids for _, ids in heldout_prompts[1::10]][:12]
    swaps0 = metric(server.url, "swaps_total")
    with ThreadPoolExecutor(6) as pool:
        futs = [pool.submit(gen, server.url, p, 32) for p in prompts[:6]]
        r = httpx.post(
            f"{server.url}/update_weights_from_disk",
            json={"model_path": v.path.name, "version": 1, "sha256": v.sha256},
            timeout=60,
        )
        futs += [pool.submit(gen, server.url, p, 32) for p in prompts[6:]]
        outs = [f.result() for f in futs]
    assert r.status_code == 200 and r.json()["success"], r.text
    assert [o["output_ids"] for o in outs] == target_only(models, prompts, 32, server.state.stop_ids)
    assert metric(server.url, "draft_version") == 1 and metric(server.url, "swaps_total") == swaps0 + 1
    assert gen(server.url, prompts[0])["meta_info"]["draft_version"] == 1
    info = httpx.get(f"{server.url}/get_model_info").json()
    assert info["aurora"]["draft_version"] == 1


def test_served_feed_has_tokens_and_rounds(server, heldout_prompts):
    before = httpx.get(f"{server.url}/aurora/served", params={"after": -1, "limit": 1}).json()["last_seq"]
    out = gen(server.url, heldout_prompts[3][1], 12, rid="feed-1", domain="code")
    feed = httpx.get(f"{server.url}/aurora/served", params={"after": before}).json()
    item = next(i for i in feed["items"] if i["rid"] == "feed-1")
    assert item["output_ids"] == out["output_ids"] and item["domain"] == "code"
    assert item["prompt_ids"] == list(heldout_prompts[3][1])
    assert len(item["rounds"]) == out["meta_info"]["spec_verify_ct"]
    pos, props, acc, ver = item["rounds"][0]
    assert len(props) == 4 and 0 <= acc <= 4 and pos == len(item["prompt_ids"])


def test_health_model_info_metrics(server):
    assert httpx.get(f"{server.url}/health").status_code == 200
    info = httpx.get(f"{server.url}/get_model_info").json()
    assert info["is_generation"] and info["aurora"]["gamma"] == 4
    text = httpx.get(f"{server.url}/metrics").text
    assert "# TYPE aurora:generation_tokens_total counter" in text and "aurora:draft_version " in text


@pytest.mark.parametrize("depth", ["ema", "confidence"])
def test_a_depth_policy_varies_the_rounds_and_keeps_greedy_outputs(models, heldout_prompts, depth):
    prompts = [ids for _, ids in heldout_prompts[::40]][:4]
    cfg = ServeConfig(port=free_port(), batch=4, max_tokens_limit=64, depth=depth, depth_threshold=0.6)
    with InProcessServer(cfg, models) as srv:
        with ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda p: gen(srv.url, p, 24), prompts))
        want = target_only(models, prompts, 24, srv.state.stop_ids)
    assert [o["output_ids"] for o in outs] == want  # lossless at any depth
    depths = set()
    for out in outs:
        depths |= {len(r["proposals"]) for r in out["meta_info"]["spec_rounds"]}
        m = out["meta_info"]
        assert m["spec_draft_token_num"] == sum(len(r["proposals"]) for r in m["spec_rounds"])
    assert depths <= set(range(5)) and depths != {4}, depths  # the policy chose, not γ every round


def test_cost_depth_in_serve_needs_a_profile(models):
    from aurora_sim.errors import AuroraError
    from aurora_sim.serve.cli import build_state

    with pytest.raises(AuroraError, match="--depth cost needs --profile"):
        build_state(ServeConfig(depth="cost"), models)
