"""OpenAI-style JSONL, chat or completions: one request per line.

Accepted line shapes (a file may mix them):

- a chat-completions request body, or a fine-tuning example:
  ``{"messages": [{"role": "user", "content": "..."}], "max_tokens": 128, "temperature": 0.7}``
- a (legacy) completions request body: ``{"prompt": "...", "max_tokens": 64}``; ``prompt`` is a
  string or a list of one string (a batch of several prompts, or token ids, are refused)
- a Batch API line of either: ``{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
  "body": {"model": "...", "messages": [...], "max_completion_tokens": 128}}`` (or
  ``"url": "/v1/completions", "body": {"prompt": ...}``)

A line has ``messages`` or ``prompt``, not both. ``content`` may be a string or a list of text
parts (other part types are refused). Roles: system, developer (as system), user, assistant;
trailing assistant turns are the recorded reply and are dropped (their length is kept in the
row's metadata as ``reply_chars``). A completions prompt becomes the row's ``prompt`` (raw text,
no chat template). ``max_completion_tokens`` (else ``max_tokens``), ``temperature``, ``top_p``
and ``seed`` are used when present; ``custom_id`` (else ``id``) becomes the request id when ids
are unique. An optional ``domain`` key (one of the project's domains) overrides ``--domain`` for
its line.
"""

from __future__ import annotations

from pathlib import Path

from aurora_sim.errors import AuroraError

from .common import Imported, chat_messages, jsonl_objects, opt_float, opt_int, read_text

FORMAT = "openai-jsonl"


def read(src: Path) -> tuple[list[Imported], dict]:
    out = []
    for no, obj in jsonl_objects(src, read_text(src)):
        where = f"{src}: line {no}"
        body = obj.get("body") if isinstance(obj.get("body"), dict) else obj
        if "messages" in body and "prompt" in body:
            raise AuroraError(
                f"{where}: both 'messages' and 'prompt' (a chat request has messages, a completions request a prompt)"
            )
        if "messages" in body:
            msgs, reply = chat_messages(body["messages"], where)
            prompt = None
        elif "prompt" in body:
            msgs, reply = None, None
            prompt = completion_prompt(body["prompt"], where)
        else:
            raise AuroraError(
                f"{where}: no 'messages' or 'prompt' (expected a chat or completions request, or a Batch API line)"
            )
        rid = obj.get("custom_id", obj.get("id"))
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        meta = {"source_format": FORMAT, "line": no}
        if reply is not None:
            meta["reply_chars"] = len(reply)
        if isinstance(body.get("model"), str):
            meta["model"] = body["model"]
        domain = obj.get("domain")
        if domain is not None and not isinstance(domain, str):
            raise AuroraError(f"{where}: domain must be a string")
        out.append(
            Imported(
                where,
                prompt=prompt,
                messages=msgs,
                request_id=str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None,
                max_new_tokens=opt_int(max_tokens, f"{where}: max_tokens", 1, 1_000_000),
                temperature=opt_float(body.get("temperature"), f"{where}: temperature", 0.0, 100.0),
                top_p=opt_float(body.get("top_p"), f"{where}: top_p", 0.0, 1.0, lo_open=True),
                seed=opt_int(body.get("seed"), f"{where}: seed", 0, 2**63 - 1),
                domain=domain,
                metadata=meta,
            )
        )
    if not out:
        raise AuroraError(f"{src}: no requests (empty file)")
    return out, {}


def completion_prompt(raw, where: str) -> str:
    """A completions request's prompt: a string, or a list holding one string."""
    if isinstance(raw, list):
        if len(raw) == 1 and isinstance(raw[0], str):
            raw = raw[0]
        elif raw and all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
            raise AuroraError(f"{where}: 'prompt' is a list of token ids (not supported: give the prompt as text)")
        elif len(raw) > 1 and all(isinstance(x, str) for x in raw):
            raise AuroraError(
                f"{where}: 'prompt' is a batch of {len(raw)} prompts (one request per line is "
                "supported: write one line per prompt)"
            )
        else:
            raise AuroraError(f"{where}: 'prompt' must be a string or a list of one string")
    if not isinstance(raw, str):
        raise AuroraError(f"{where}: 'prompt' must be a string or a list of one string, got {type(raw).__name__}")
    if not raw.strip():
        raise AuroraError(f"{where}: 'prompt' is empty")
    return raw
