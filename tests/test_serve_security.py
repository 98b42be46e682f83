"""Each security rule of `aurora serve`, against real servers on loopback: loopback by default,
the API key on every endpoint, no weight updates beyond loopback without a key, safetensors only
from the weights directory (no traversal, no symlinks out, sha256 must match), limits answered
with 4xx/429, malformed JSON answered 400, and the server keeps serving after all of it."""

from __future__ import annotations

import inspect
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from aurora_sim.serve.config import ServeConfig
from aurora_sim.serve.launch import InProcessServer, free_port

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def models(tiny_dir):
    from aurora_sim.serve.cli import load_models

    return load_models(ServeConfig(model="tiny", draft="static"))


@pytest.fixture(scope="module")
def keyed(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("sec")
    weights = root / "weights"
    weights.mkdir()
    cfg = ServeConfig(
        port=free_port(),
        api_key=KEY,
        weights_dir=weights,
        max_body_bytes=4096,
        max_prompt_tokens=64,
        max_tokens_limit=32,
        max_concurrent=2,
        batch=2,
    )
    with InProcessServer(cfg, models) as srv:
        srv.weights, srv.root = weights, root
        yield srv


def post(srv, path, json=None, content=None, headers=AUTH, **kw):
    return httpx.post(f"{srv.url}{path}", json=json, content=content, headers=headers, timeout=60, **kw)


def ok_generate(srv):
    r = post(srv, "/generate", {"input_ids": [1, 5, 9], "sampling_params": {"max_new_tokens": 4, "temperature": 0}})
    assert r.status_code == 200, r.text
    return r.json()


def test_binds_loopback_unless_told():
    from aurora_sim.serve.cli import serve_command

    assert ServeConfig().host == "127.0.0.1" and ServeConfig().loopback_only
    assert inspect.signature(serve_command).parameters["host"].default.default == "127.0.0.1"
    assert not ServeConfig(host="0.0.0.0").loopback_only and ServeConfig(host="::1").loopback_only


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/get_model_info"),
        ("GET", "/aurora/served"),
        ("POST", "/generate"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/update_weights_from_disk"),
    ],
)
def test_api_key_protects_every_endpoint(keyed, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = httpx.request(method, f"{keyed.url}{path}", headers=headers, json={}, timeout=30)
        assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
    r = httpx.request(method, f"{keyed.url}{path}", headers=AUTH, json={}, timeout=30)
    assert r.status_code != 401


def test_weight_updates_refused_beyond_loopback_without_key(models, tmp_path):
    cfg = ServeConfig(host="0.0.0.0", port=free_port(), weights_dir=tmp_path)
    with InProcessServer(cfg, models) as srv:
        r = httpx.post(
            f"{srv.url}/update_weights_from_disk",
            json={"model_path": "v00001", "version": 1, "sha256": "0" * 64},
            timeout=30,
        )
        assert r.status_code == 403 and "api-key" in r.json()["error"]["message"]
        assert ok_generate_nokey(srv)


def ok_generate_nokey(srv):
    r = httpx.post(
        f"{srv.url}/generate", json={"input_ids": [1, 2], "sampling_params": {"max_new_tokens": 2}}, timeout=30
    )
    return r.status_code == 200


@pytest.fixture(scope="module")
def published(keyed, models):
    from aurora_sim.models.drafts import new_eagle3
    from controller.registry import VersionRegistry

    return VersionRegistry(keyed.weights).publish(new_eagle3(models[0], seed=3), 7, 0, 0, 0)


def update(srv, model_path, sha, version=7):
    return post(srv, "/update_weights_from_disk", {"model_path": model_path, "version": version, "sha256": sha})


def serving_version(srv):
    return httpx.get(f"{srv.url}/get_model_info", headers=AUTH).json()["aurora"]["draft_version"]


def test_weights_path_traversal_and_symlinks_refused(keyed, published):
    outside = keyed.root / "outside"
    import shutil

    shutil.copytree(published.path, outside)
    os.symlink(outside, keyed.weights / "link-dir")
    inner = keyed.weights / "inner"
    inner.mkdir()
    (inner / "config.json").write_bytes((published.path / "config.json").read_bytes())
    os.symlink(outside / "model.safetensors", inner / "model.safetensors")
    for path in ("../outside", str(outside), "link-dir", "inner", "nope", "/etc", "v00007/../../outside"):
        r = update(keyed, path, published.sha256)
        assert r.status_code == 400 and not r.json()["success"], (path, r.text)
    assert serving_version(keyed) == 0
    ok_generate(keyed)


def test_sha256_must_match_and_pickle_never_loaded(keyed, published):
    r = update(keyed, published.path.name, "f" * 64)
    assert r.status_code == 400 and "sha256 does not match" in r.json()["message"]
    r = update(keyed, published.path.name, None)
    assert r.status_code == 400 and "sha256" in r.json()["message"]
    pickled = keyed.weights / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_bytes((published.path / "config.json").read_bytes())
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    r = update(keyed, "pickled", published.sha256)
    assert r.status_code == 400 and "model.safetensors is missing" in r.json()["message"]
    assert serving_version(keyed) == 0
    r = update(keyed, published.path.name, published.sha256)  # the real thing works
    assert r.status_code == 200 and r.json()["success"] and serving_version(keyed) == 7
    assert ok_generate(keyed)["meta_info"]["draft_version"] == 7


def test_limits_answer_4xx_with_a_reason(keyed):
    r = post(
        keyed,
        "/generate",
        content=b'{"text": "' + b"a" * 5000 + b'"}',
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(10):
            yield b" " * 1000

    r = post(keyed, "/generate", content=chunks())
    assert r.status_code == 413
    r = post(keyed, "/generate", {"input_ids": list(range(1, 100)), "sampling_params": {"max_new_tokens": 2}})
    assert r.status_code == 400 and "limit of 64" in r.json()["error"]["message"]
    r = post(keyed, "/v1/completions", {"prompt": "hi", "max_tokens": 1000})
    assert r.status_code == 400 and "limit of 32" in r.json()["error"]["message"]
    ok_generate(keyed)


def test_concurrency_limit_answers_429(keyed):
    body = {"input_ids": [1, 5, 9], "sampling_params": {"max_new_tokens": 32, "ignore_eos": True}}
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: post(keyed, "/generate", body).status_code, range(8)))
    assert codes.count(200) >= 2 and codes.count(429) >= 1 and set(codes) <= {200, 429}
    ok_generate(keyed)


@pytest.mark.parametrize(
    "path,content,want",
    [
        ("/generate", b"{not json", "not valid JSON"),
        ("/generate", b"[1, 2]", "JSON object"),
        ("/generate", b'{"text": "a", "input_ids": [1]}', "exactly one"),
        ("/generate", b'{"input_ids": [1, 99999]}', "vocabulary"),
        ("/generate", b'{"input_ids": []}', "empty"),
        ("/generate", b'{"text": "a", "sampling_params": {"temperature": "hot"}}', "temperature"),
        ("/generate", b'{"text": "a", "sampling_params": {"top_p": 0}}', "top_p"),
        ("/v1/completions", b'{"prompt": 5}', "prompt"),
        ("/v1/completions", b'{"prompt": "a", "n": 3}', "n = 1"),
        ("/v1/completions", b'{"prompt": "a", "max_tokens": -1}', "max_tokens"),
        ("/v1/chat/completions", b'{"messages": "hi"}', "messages"),
        ("/update_weights_from_disk", b'{"model_path": 3}', "model_path"),
        ("/update_weights_from_disk", b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_requests_answer_400_and_server_keeps_serving(keyed, path, content, want):
    r = post(keyed, path, content=content, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert want in r.json()["error"]["message"]
    ok_generate(keyed)
