"""What every importer shares: the record it yields, chat-message normalisation, and turning
records into a validated trace frame.

Importers parse a source into :class:`Imported` records, raising AuroraError that names the
file and line (or row) for anything malformed; :func:`build_frame` then fills what the source
lacks from :class:`ImportOptions` (domain, lengths, sampling, arrivals, seeds) and returns a
frame that :func:`traces.io.write_trace` validates again before writing anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aurora_sim.errors import AuroraError

from .. import parse
from ..arrivals import Arrivals, Closed
from ..parse import jsonl_objects  # noqa: F401  (re-exported for importers)
from ..schema import COLUMNS, DOMAINS, ROLES
from ..seeding import stream

ROLE_ALIASES = {
    "developer": "system",
    "human": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
}
MAX_TOKEN_ID = 2**31 - 1


@dataclass
class Imported:
    where: str  # "FILE: line N" for messages
    prompt: str | None = None
    messages: list[tuple[str, str]] | None = None
    prompt_token_ids: list[int] | None = None
    request_id: str | None = None
    arrival_ns: int | None = None  # source time (any origin); made relative
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    ignore_eos: bool | None = None
    domain: str | None = None
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ImportOptions:
    domain: str = "chat"
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    arrivals: Arrivals = field(default_factory=Closed)
    use_source_times: bool = True  # False: `arrivals` even where the source has times
    limit: int | None = None

    def to_dict(self) -> dict:
        return {
            "domain": self.domain,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "limit": self.limit,
        }


def read_text(path: Path) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise AuroraError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise AuroraError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise AuroraError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise AuroraError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def content_text(content: Any, where: str) -> str:
    """OpenAI message content: a string, or a list of parts of which only text is supported."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif (
                isinstance(part, dict)
                and part.get("type") in ("text", "input_text")
                and isinstance(part.get("text"), str)
            ):
                texts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise AuroraError(f"{where}: content part of type {kind!r} is not supported (text only)")
        return "\n".join(texts)
    raise AuroraError(
        f"{where}: message content must be a string or a list of text parts, got {type(content).__name__}"
    )


def role_of(raw: Any, where: str) -> str:
    role = ROLE_ALIASES.get(raw, raw) if isinstance(raw, str) else raw
    if role not in ROLES:
        raise AuroraError(f"{where}: role {raw!r} is not supported (expected one of {', '.join(ROLES)})")
    return role


def split_reply(msgs: list[tuple[str, str]], where: str) -> tuple[list[tuple[str, str]], str | None]:
    """Drop trailing assistant turns (the recorded reply); the rest must end with a user turn."""
    reply = None
    while msgs and msgs[-1][0] == "assistant":
        reply = msgs.pop()[1]  # ends as the first reply after the last user turn
    if not msgs or msgs[-1][0] != "user":
        raise AuroraError(f"{where}: messages do not contain a user turn to answer")
    if not msgs[-1][1].strip():
        raise AuroraError(f"{where}: the last user message is empty")
    return msgs, reply


def chat_messages(raw: Any, where: str) -> tuple[list[tuple[str, str]], str | None]:
    """OpenAI-style [{"role", "content"}] -> (prompt messages, recorded reply or None)."""
    if not isinstance(raw, list) or not raw:
        raise AuroraError(f"{where}: 'messages' must be a non-empty list")
    msgs = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or "role" not in m:
            raise AuroraError(f"{where}: message {i} must be an object with 'role' and 'content'")
        msgs.append(
            (role_of(m["role"], f"{where}: message {i}"), content_text(m.get("content"), f"{where}: message {i}"))
        )
    return split_reply(msgs, where)


def opt_int(value: Any, where: str, lo: int, hi: int) -> int | None:
    return None if value is None else parse.integer(value, where, lo=lo, hi=hi)


def opt_float(value: Any, where: str, lo: float, hi: float, lo_open: bool = False) -> float | None:
    return None if value is None else parse.number(value, where, lo=lo, hi=hi, lo_open=lo_open)


def token_ids(value: Any, where: str) -> list[int]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_TOKEN_ID for x in value)
    ):
        raise AuroraError(f"{where}: input ids must be a non-empty list of token ids in [0, 2^31)")
    return value


def build_frame(records: list[Imported], opts: ImportOptions, prefix: str, where: str) -> tuple[pl.DataFrame, dict]:
    """(frame in arrival order, arrivals config used)."""
    if opts.limit is not None:
        records = records[: opts.limit]
    if not records:
        raise AuroraError(f"{where}: no requests to import")
    n = len(records)
    timed = [r.arrival_ns is not None for r in records]
    if opts.use_source_times and all(timed):
        t = np.array([r.arrival_ns for r in records], dtype=np.int64)
        arrivals = {"kind": "source", "note": "arrival times from the source, relative to the first"}
    else:
        t = opts.arrivals.times(n, stream(opts.seed, "arrivals"))
        arrivals = opts.arrivals.to_dict()
    order = np.argsort(t, kind="stable")
    t = t[order] - t[order].min()
    records = [records[k] for k in order]
    ids = [r.request_id for r in records]
    if any(i is None or i == "" for i in ids) or len(set(ids)) != n:
        width = max(6, len(str(n - 1)))
        for k, r in enumerate(records):
            if r.request_id:
                r.metadata["source_id"] = r.request_id
            r.request_id = f"{prefix}-{k:0{width}d}"
    seeds = stream(opts.seed, "sampling/seed").integers(0, 2**31, n, dtype=np.int64)
    for r in records:
        if r.domain is not None and r.domain not in DOMAINS:
            raise AuroraError(f"{r.where}: unknown domain {r.domain!r} (expected one of {', '.join(DOMAINS)})")
    frame = pl.DataFrame(
        {
            "request_id": [r.request_id for r in records],
            "arrival_ns": t,
            "domain": [r.domain or opts.domain for r in records],
            "segment": np.zeros(n, dtype=np.int32),
            "prompt": [r.prompt for r in records],
            "messages": [
                [{"role": a, "content": b} for a, b in r.messages] if r.messages is not None else None for r in records
            ],
            "prompt_token_ids": [r.prompt_token_ids for r in records],
            "max_new_tokens": [r.max_new_tokens or opts.max_new_tokens for r in records],
            "temperature": [opts.temperature if r.temperature is None else r.temperature for r in records],
            "top_p": [opts.top_p if r.top_p is None else r.top_p for r in records],
            "seed": [int(s) if r.seed is None else r.seed for r, s in zip(records, seeds)],
            "ignore_eos": [bool(r.ignore_eos) for r in records],
            "metadata": [
                json.dumps(r.metadata, sort_keys=True, ensure_ascii=False, default=str, allow_nan=False)
                if _finite(r.metadata)
                else "{}"
                for r in records
            ],
        },
        schema=COLUMNS,
    )
    return frame, arrivals


def _finite(meta: dict) -> bool:
    return all(not (isinstance(v, float) and not math.isfinite(v)) for v in meta.values())
