"""`aurora capture`: record a server's live traffic into the trace format, so a live period can
be replayed later deterministically (`aurora replay FILE`).

Reads our server's served feed (GET /aurora/served: prompts as token ids, sampling parameters,
arrival times, outcomes) until the duration or the request limit is reached. Rows carry
`prompt_token_ids` (the server's tokenizer; named in the config); arrival_ns is relative to the
first captured request; each row's metadata holds the outcome (output ids, finish reason,
rounds, accepted) for comparison after a replay. Validated before it is written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from aurora_sim.corpora import DOMAINS
from aurora_sim.errors import AuroraError


def records_to_frame(items: list[dict]):
    import polars as pl

    from traces.schema import COLUMNS

    t0 = min(r["arrival_ns"] for r in items)
    rows = []
    for r in sorted(items, key=lambda r: (r["arrival_ns"], r["seq"])):
        rounds = r.get("rounds") or []
        rows.append(
            {
                "request_id": r.get("rid") or r["request_id"],
                "arrival_ns": r["arrival_ns"] - t0,
                "domain": r.get("domain") if r.get("domain") in DOMAINS else "chat",
                "segment": 0,
                "prompt": None,
                "messages": None,
                "prompt_token_ids": r["prompt_ids"],
                "max_new_tokens": r["max_new_tokens"],
                "temperature": r["temperature"],
                "top_p": r["top_p"],
                "seed": r["seed"],
                "ignore_eos": r["ignore_eos"],
                "metadata": json.dumps(
                    {
                        "source": "aurora capture",
                        "output_ids": r["output_ids"],
                        "finish_reason": r["finish_reason"],
                        "verify_rounds": len(rounds),
                        "accepted": sum(x[2] for x in rounds),
                        "draft_versions": sorted({x[3] for x in rounds}),
                        "latency_ns": r["finish_ns"] - r["arrival_ns"],
                    },
                    sort_keys=True,
                ),
            }
        )
    return pl.DataFrame(rows, schema=COLUMNS)


def capture(
    server: str,
    out: Path | str,
    duration_s: float = 60.0,
    limit: int | None = None,
    since_start: bool = False,
    api_key: str | None = None,
    poll_s: float = 0.5,
) -> int:
    from controller.live_client import ServerClient
    from traces import write_trace

    client = ServerClient(server, api_key)
    try:
        client.wait_ready(30)
        info = client.model_info()
        if not (info.get("aurora") or {}).get("served_feed"):
            raise AuroraError(f"{server}: no served feed (capture needs `aurora serve`; SGLang has none)")
        after = -1 if since_start else client.served(-1, 1)["last_seq"]
        items: list[dict] = []
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline and (limit is None or len(items) < limit):
            page = client.served(after, 1024)
            items += page["items"]
            if page["items"]:
                after = page["items"][-1]["seq"]
                continue
            time.sleep(poll_s)
    finally:
        client.close()
    if limit is not None:
        items = items[:limit]
    if not items:
        raise AuroraError(f"{server}: no requests were served during the capture")
    config = {
        "source": "aurora capture",
        "server": server,
        "model": info.get("model_path"),
        "tokenizer": info.get("tokenizer_path"),
        "arrivals": {"kind": "captured"},
        "captured_at_unix": int(time.time()),
    }
    write_trace(records_to_frame(items), Path(out), config)
    return len(items)
