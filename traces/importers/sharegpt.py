"""ShareGPT JSON: ``[{"id": "...", "conversations": [{"from": "human", "value": "..."},
{"from": "gpt", "value": "..."}, ...]}, ...]`` (a JSON array, or JSONL with one conversation
per line), as in ``ShareGPT_V3_unfiltered_cleaned_split.json``.

``from`` values: human/user, gpt/chatgpt/bard/bing/assistant/model, system. With ``turns =
"first"`` (the default, as serving benchmarks do) each conversation gives one request: its
first human turn (after any system turn); with ``"all"`` every human turn gives one, with the
conversation so far as history. The following gpt turn is the recorded reply (its length goes
in the row metadata as ``reply_chars``).

Malformed structure (not JSON, a conversation that is not an object, a turn without a string
``value``, an unknown ``from``) is an error naming the file and conversation; conversations
with no usable human turn (empty, or starting with the model and never asked) are skipped and
counted, as serving benchmarks do with the real dump.
"""

from __future__ import annotations

import json
from pathlib import Path

from aurora_sim.errors import AuroraError

from .common import Imported, read_text, role_of

FORMAT = "sharegpt"
TURNS = ("first", "all")


def _conversations(src: Path, text: str) -> list[tuple[str, object]]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AuroraError(f"{src}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        return [(f"{src}: conversation {i}", c) for i, c in enumerate(data)]
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((f"{src}: line {no}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise AuroraError(f"{src}: line {no}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not out and stripped:
        raise AuroraError(f"{src}: expected a JSON array or JSONL of conversations")
    return out


def read(src: Path, turns: str = "first") -> tuple[list[Imported], dict]:
    if turns not in TURNS:
        raise AuroraError(f"unknown --turns {turns!r} (expected one of {', '.join(TURNS)})")
    records, skipped = [], 0
    for where, conv in _conversations(src, read_text(src)):
        if not isinstance(conv, dict):
            raise AuroraError(f"{where}: expected an object with 'conversations', got {type(conv).__name__}")
        raw = conv.get("conversations", conv.get("conversation"))
        if not isinstance(raw, list):
            raise AuroraError(f"{where}: 'conversations' must be a list")
        msgs = []
        for k, turn in enumerate(raw):
            if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
                raise AuroraError(f"{where}: turn {k} must be an object with a string 'value'")
            msgs.append((role_of(turn.get("from"), f"{where}: turn {k}"), turn["value"]))
        cid = conv.get("id")
        made = 0
        for i, (role, value) in enumerate(msgs):
            if role != "user" or not value.strip():
                continue
            history = [m for m in msgs[: i + 1] if m[1].strip()]
            reply = msgs[i + 1][1] if i + 1 < len(msgs) and msgs[i + 1][0] == "assistant" else None
            meta = {"source_format": FORMAT, "conversation": str(cid) if cid is not None else where, "turn": i}
            if reply is not None:
                meta["reply_chars"] = len(reply)
            rid = f"{cid}:{i}" if isinstance(cid, (str, int)) and not isinstance(cid, bool) else None
            records.append(Imported(f"{where}: turn {i}", messages=history, request_id=rid, metadata=meta))
            made += 1
            if turns == "first":
                break
        skipped += made == 0
    if not records:
        raise AuroraError(f"{src}: no conversation has a human turn to import")
    return records, {"turns": turns, "skipped_conversations": skipped}
