"""Starting a server from Python: in this process (a uvicorn thread; tests and embedding) or as
a subprocess (what fault tests kill and restart). Both wait until /health answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

from aurora_sim.errors import AuroraError
from aurora_sim.serve.config import ServeConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 60.0, headers: dict | None = None, proc=None) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AuroraError(f"server exited with code {proc.returncode} before becoming healthy")
        try:
            if httpx.get(f"{url}/health", headers=headers, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AuroraError(f"{url}: not healthy after {timeout:.0f} s")


class InProcessServer:
    """`with InProcessServer(cfg, models) as srv: httpx.get(srv.url + "/health")`."""

    def __init__(self, cfg: ServeConfig, models=None):
        self.cfg = cfg
        self.models = models

    def __enter__(self):
        import uvicorn

        from aurora_sim.serve.app import make_app
        from aurora_sim.serve.cli import build_state

        self.state = build_state(self.cfg, self.models)
        config = uvicorn.Config(
            make_app(self.state),
            host=self.cfg.host,
            port=self.cfg.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="aurora-http", daemon=True)
        self.thread.start()
        host = "127.0.0.1" if self.cfg.host in ("0.0.0.0", "::") else self.cfg.host
        self.url = f"http://{host}:{self.cfg.port}"
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AuroraError(f"{self.url}: in-process server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.state.worker.stop()


def spawn(args: list[str], env: dict | None = None, log=None) -> subprocess.Popen:
    """`python -m aurora_sim.serve ARGS` as a child process (its own process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "aurora_sim.serve", *args],
        env={**os.environ, **(env or {})},
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
        start_new_session=True,
    )
