"""An HTTP client for a running server (ours or SGLang): bounded retries with exponential
backoff, per-call timeouts, and a count of connection failures so the live runner can notice a
restarted server and re-sync its draft.

Retried: transport errors (refused, reset, timeout) and 429/5xx. Not retried: other 4xx (the
request itself is wrong; repeating it cannot help).
"""

from __future__ import annotations

import threading
import time

import httpx

from aurora_sim.errors import AuroraError


class ServerError(AuroraError):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ServerClient:
    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 4,
        backoff_s: float = 0.2,
        backoff_max_s: float = 5.0,
    ):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
        )
        self.lock = threading.Lock()
        self.transport_failures = 0  # ever: the runner compares it to notice a reconnect
        self.retried = 0

    def close(self) -> None:
        self.http.close()

    def delay(self, attempt: int) -> float:
        return min(self.backoff_max_s, self.backoff_s * 2**attempt)

    def call(self, method: str, path: str, json=None, params=None, retries: int | None = None, timeout=None):
        retries = self.retries if retries is None else retries
        last = ""
        for attempt in range(retries + 1):
            if attempt:
                with self.lock:
                    self.retried += 1
                time.sleep(self.delay(attempt - 1))
            try:
                r = self.http.request(method, path, json=json, params=params, timeout=timeout or self.timeout_s)
            except httpx.TransportError as exc:
                with self.lock:
                    self.transport_failures += 1
                last = f"{exc.__class__.__name__}: {exc}"
                continue
            if r.status_code == 429 or r.status_code >= 500:
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                continue
            return r
        raise ServerError(f"{self.url}{path}: no answer after {retries + 1} attempts ({last})")

    # ---- endpoints -----------------------------------------------------------------------------------
    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until /health answers 200 (a server still loading its model is not an error yet)."""
        deadline = time.monotonic() + timeout_s
        attempt = 0
        while True:
            try:
                if self.http.get("/health", timeout=min(5.0, self.timeout_s)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() + self.delay(attempt) > deadline:
                raise ServerError(f"{self.url}: server not ready after {timeout_s:.0f} s")
            time.sleep(self.delay(attempt))
            attempt += 1

    def model_info(self) -> dict:
        r = self.call("GET", "/get_model_info")
        self._check(r, "/get_model_info")
        return r.json()

    def generate(self, body: dict) -> dict:
        r = self.call("POST", "/generate", json=body)
        self._check(r, "/generate")
        return r.json()

    def served(self, after: int, limit: int = 256) -> dict:
        r = self.call("GET", "/aurora/served", params={"after": after, "limit": limit})
        self._check(r, "/aurora/served")
        return r.json()

    def update_weights(self, model_path: str, version: int, sha256: str) -> tuple[bool, str]:
        """(success, message). A refusal by the server is an answer, not an error."""
        r = self.call(
            "POST", "/update_weights_from_disk", json={"model_path": model_path, "version": version, "sha256": sha256}
        )
        try:
            body = r.json()
        except ValueError:
            return False, f"HTTP {r.status_code}: {r.text[:200]}"
        msg = body.get("message") or (body.get("error") or {}).get("message") or ""
        return bool(body.get("success")) and r.status_code == 200, msg

    def _check(self, r, path: str) -> None:
        if r.status_code != 200:
            try:
                msg = r.json()["error"]["message"]
            except Exception:
                msg = r.text[:200]
            raise ServerError(f"{self.url}{path}: HTTP {r.status_code}: {msg}", r.status_code)
