"""`aurora serve --weights-dir DIR` on a first run: DIR does not exist yet (`aurora live` publishes
draft versions into it later), so the server creates it, empty, and says so; a path that exists
but is not a directory is still refused, before any model is loaded."""

from __future__ import annotations

import httpx
import pytest

from aurora_sim.errors import AuroraError
from aurora_sim.serve.cli import build_state, ensure_weights_dir
from aurora_sim.serve.config import ServeConfig
from aurora_sim.serve.launch import InProcessServer, free_port


def test_creates_a_missing_weights_dir_and_says_so(tmp_path, capsys):
    path = tmp_path / "runs" / "live" / "weights"
    ensure_weights_dir(path)
    assert path.is_dir() and not any(path.iterdir())
    err = capsys.readouterr().err
    assert f"created the weights directory {path}" in err and "aurora live" in err and err.count("\n") == 1
    ensure_weights_dir(path)  # existing: nothing said, nothing changed
    assert capsys.readouterr().err == "" and path.is_dir()


@pytest.mark.parametrize("kind", ["file", "dangling symlink"])
def test_refuses_a_path_that_is_not_a_directory(tmp_path, kind):
    path = tmp_path / "weights"
    if kind == "file":
        path.write_text("not a directory")
    else:
        path.symlink_to(tmp_path / "nowhere")
    with pytest.raises(AuroraError, match=r"weights: --weights-dir exists and is not a directory"):
        build_state(ServeConfig(weights_dir=path))  # refused before loading any model
    assert not (tmp_path / "nowhere").exists()


@pytest.fixture(scope="module")
def models(tiny_dir):
    from aurora_sim.serve.cli import load_models

    return load_models(ServeConfig(model="tiny", draft="none"))


def test_server_starts_with_a_missing_weights_dir(models, tmp_path, capsys):
    weights = tmp_path / "runs" / "live" / "weights"
    with InProcessServer(ServeConfig(port=free_port(), weights_dir=weights, draft="none"), models) as srv:
        assert weights.is_dir()
        assert "created the weights directory" in capsys.readouterr().err
        r = httpx.post(
            f"{srv.url}/update_weights_from_disk",
            json={"model_path": "v00001", "version": 1, "sha256": "0" * 64},
            timeout=30,
        )
        assert r.status_code == 400 and "no such draft directory" in r.json()["message"]
        r = httpx.post(
            f"{srv.url}/generate", json={"input_ids": [1, 2], "sampling_params": {"max_new_tokens": 2}}, timeout=30
        )
        assert r.status_code == 200, r.text
