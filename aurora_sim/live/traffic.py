"""Closed-loop traffic: C client threads each send the next trace request to /generate as soon
as their previous one finished, and hand results (or a failure after retries) to the runner."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass


@dataclass
class Served:
    item: object  # the WorkItem
    sent_ns: int
    done_ns: int
    response: dict | None  # /generate's JSON
    error: str | None = None


def request_body(item, aurora: bool) -> dict:
    r = item.request
    body = {
        "input_ids": list(r.prompt_ids),
        "rid": r.request_id,
        "sampling_params": {
            "max_new_tokens": r.max_new_tokens,
            "temperature": r.temperature,
            "top_p": r.top_p,
            "sampling_seed": r.seed,
            "ignore_eos": not r.stop_ids,
        },
    }
    if aurora:  # our server's extensions; SGLang would reject unknown fields
        body.update(return_spec_details=True, domain=item.domain)
    return body


class Traffic:
    def __init__(self, client, items, concurrency: int, aurora: bool, clock):
        self.client, self.aurora, self.clock = client, aurora, clock
        self.todo: queue.Queue = queue.Queue()
        for it in items:
            self.todo.put(it)
        self.results: queue.Queue = queue.Queue()
        self.threads = [
            threading.Thread(target=self._worker, name=f"aurora-client-{i}", daemon=True)
            for i in range(max(1, min(concurrency, len(items))))
        ]
        self.stop = threading.Event()

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def done(self) -> bool:
        return not any(t.is_alive() for t in self.threads)

    def _worker(self) -> None:
        while not self.stop.is_set():
            try:
                item = self.todo.get_nowait()
            except queue.Empty:
                return
            sent = self.clock()
            try:
                resp = self.client.generate(request_body(item, self.aurora))
                self.results.put(Served(item, sent, self.clock(), resp))
            except Exception as exc:  # retries exhausted or refused: logged as a refused request
                self.results.put(Served(item, sent, self.clock(), None, str(exc)[:300]))
                time.sleep(0)  # let the others notice a dead server too
