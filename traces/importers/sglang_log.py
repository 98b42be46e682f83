"""SGLang request logs: the output of ``python -m sglang.launch_server --log-requests``.

What was checked, and against what: the format below was read from SGLang's source
(``python/sglang/srt/utils/request_logger.py`` and ``managers/io_struct.py`` on the main
branch, plus ``configure_logger``), not from a log captured from a running server; the test
fixtures are written to match that code. Two formats exist:

- text (default, ``--log-requests-format text``): lines of the server log, prefixed by
  ``configure_logger``'s ``[%(asctime)s{prefix}] `` (``[2025-01-31 12:00:00 TP0] ``; date format
  ``%Y-%m-%d %H:%M:%S`` — one-second resolution — or ``%m-%d %H:%M:%S`` in some builds)::

      [..] Receive: obj=GenerateReqInput(rid='a1', text='Hello', input_ids=None, ...,
                                         sampling_params={'max_new_tokens': 32, ...}, ...)
      [..] Finish: obj=GenerateReqInput(...), out={'text': '...', 'meta_info': {'id': 'a1',
                                         'prompt_tokens': 5, 'completion_tokens': 32, ...}}

  The object is rendered by ``_dataclass_to_string_truncated``: field=value pairs with strings
  as Python reprs, so a record is one line.
- json (``--log-requests-format json``): one JSON object per line, ``{"timestamp": ISO time
  with microseconds, "event": "request.received" | "request.finished", "rid": ..., "obj":
  {field: value}, "out": {...}}``.

``--log-requests-level`` decides what is in a record: 0 and 1 drop ``text`` and ``input_ids``
(no prompt: refused), 2 truncates strings and lists longer than 2,048 to their two ends joined
by ``...`` (detected and refused: log at level 3, which keeps everything).

A request's records are joined by ``rid``: the prompt (``text`` and/or ``input_ids``) and
``sampling_params`` (``max_new_tokens``, ``temperature``, ``top_p``, ``sampling_seed``,
``ignore_eos``) come from either record, ``completion_tokens`` from the finish record goes to
the row metadata. Arrival time: the ``received_time`` field when every request has one that
looks like Unix seconds (which clock sets it was not verified), else the Receive line's
timestamp (or the Finish timestamp minus ``e2e_latency``). Batch requests (lists of texts) give
one row per item. Health checks (rid ``HEALTH_CHECK…``), embedding requests and every other
log line are skipped.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from aurora_sim.errors import AuroraError

from ..length_trace import datetime_ns
from .common import Imported, opt_float, opt_int, read_text, token_ids

FORMAT = "sglang-log"
TRUNCATED_HINT = "the log truncated it (--log-requests-level 2 cuts at 2048); log with --log-requests-level 3"
_TEXT_LINE = re.compile(
    r"^\[(?P<ts>(?:\d{4}-)?\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)?)[^\]]*\]\s+(?:[A-Z]+\s+\S+:\d+:\s+)?"
    r"(?P<event>Receive|Finish): obj=(?P<body>.*)$"
)
_META_INT = {k: re.compile(rf"'{k}': (\d+)") for k in ("completion_tokens", "prompt_tokens")}
_E2E = re.compile(r"'e2e_latency': ([0-9.eE+-]+)")
NS = 1_000_000_000


def _line_time(ts: str) -> int | None:
    ts = ts.replace(",", ".")
    return datetime_ns(ts if ts[4] == "-" else "2000-" + ts)  # no year in the format: any leap year


def scan_call(s: str) -> tuple[str, dict[str, str], str]:
    """'Name(k=v, k2=v2)rest' -> ('Name', {'k': 'v', ...} as source text, 'rest')."""
    m = re.match(r"\s*([A-Za-z_]\w*)\(", s)
    if not m:
        raise ValueError("not a dataclass rendering")
    parts, depth, quote, start, i = [], 0, None, m.end(), m.end()
    while i < len(s):
        ch = s[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                parts.append(s[start:i])
                fields = {}
                for p in parts:
                    key, eq, value = p.partition("=")
                    if eq and key.strip().isidentifier():
                        fields[key.strip()] = value.strip()
                return m.group(1), fields, s[i + 1 :]
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
        i += 1
    raise ValueError("unterminated")


def _literal(fields: dict[str, str], key: str, where: str):
    src = fields.get(key)
    if src is None:
        return None
    try:
        return ast.literal_eval(src)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        if re.search(r"['\"\]] \.\.\. ['\"\[]", src):
            raise AuroraError(f"{where}: {key} is incomplete: {TRUNCATED_HINT}") from None
        raise AuroraError(f"{where}: cannot parse {key}={src[:60]!r}") from None


def _truncated_json(value) -> bool:
    if isinstance(value, str):
        return len(value) == 2051 and value[1024:1027] == "..."
    return isinstance(value, list) and "..." in value


def _items(obj: dict, where: str) -> list[dict]:
    """A (possibly batch) request object -> one dict per request."""
    text, ids, params, rid = obj.get("text"), obj.get("input_ids"), obj.get("sampling_params"), obj.get("rid")
    batch_ids = isinstance(ids, list) and bool(ids) and isinstance(ids[0], list)
    if not isinstance(text, list) and not batch_ids:
        return [
            {
                "text": text,
                "input_ids": ids,
                "sampling_params": params,
                "rid": rid,
                "received_time": obj.get("received_time"),
            }
        ]
    n = len(text) if isinstance(text, list) else len(ids)

    def item(value, k):  # per-item value of a batch field (a shared value applies to all)
        return value[k] if isinstance(value, list) and len(value) == n else value

    return [
        {
            "text": item(text, k) if isinstance(text, list) else None,
            "input_ids": item(ids, k) if batch_ids else None,
            "sampling_params": item(params, k),
            "rid": item(rid, k) if isinstance(rid, list) else (f"{rid}_{k}" if rid is not None else None),
            "received_time": obj.get("received_time"),
        }
        for k in range(n)
    ]


def _parse_text_record(body: str, where: str) -> tuple[dict | None, dict]:
    try:
        name, fields, rest = scan_call(body)
    except ValueError:
        raise AuroraError(f"{where}: cannot parse the logged request object") from None
    if name != "GenerateReqInput":
        return None, {}
    obj = {k: _literal(fields, k, where) for k in ("text", "input_ids", "sampling_params", "rid", "received_time")}
    out = {}
    if "out=" in rest:
        for k, rx in _META_INT.items():
            m = rx.search(rest)
            if m:
                out[k] = int(m.group(1))
        m = _E2E.search(rest)
        if m:
            try:
                out["e2e_latency"] = float(m.group(1))
            except ValueError:
                pass
    return obj, out


def _records(src: Path, text: str):
    """(where, event, time_ns or None, obj, out) per logged generate request."""
    for no, line in enumerate(text.splitlines(), 1):
        where = f"{src}: line {no}"
        if line.lstrip().startswith("{"):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AuroraError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(rec, dict) or rec.get("event") not in ("request.received", "request.finished"):
                continue
            obj = rec.get("obj")
            if not isinstance(obj, dict):
                raise AuroraError(f"{where}: 'obj' must be an object")
            if "text" not in obj and "input_ids" not in obj and "input_embeds" in obj:
                continue  # an embedding request
            ts = rec.get("timestamp")
            t = datetime_ns(ts) if isinstance(ts, str) else None
            meta = (rec.get("out") or {}).get("meta_info") if isinstance(rec.get("out"), dict) else None
            out = {
                k: meta[k]
                for k in ("completion_tokens", "prompt_tokens", "e2e_latency")
                if isinstance(meta, dict)
                and isinstance(meta.get(k), (int, float))
                and not isinstance(meta.get(k), bool)
            }
            for key in ("text", "input_ids"):
                if _truncated_json(obj.get(key)):
                    raise AuroraError(f"{where}: {key} is incomplete: {TRUNCATED_HINT}")
            event = "receive" if rec["event"] == "request.received" else "finish"
            yield where, event, t, obj, out
            continue
        m = _TEXT_LINE.match(line)
        if not m:
            continue
        obj, out = _parse_text_record(m.group("body"), where)
        if obj is not None:
            yield where, m.group("event").lower(), _line_time(m.group("ts")), obj, out


def read(src: Path) -> tuple[list[Imported], dict]:
    merged: dict[str, dict] = {}
    order: list[str] = []
    for where, event, t, obj, out in _records(src, read_text(src)):
        for k, item in enumerate(_items(obj, where)):
            rid = item["rid"]
            if isinstance(rid, str) and rid.startswith("HEALTH_CHECK"):
                continue
            key = str(rid) if rid is not None else f"{where}#{k}"
            if key not in merged:
                merged[key] = {"where": where, "rid": rid}
                order.append(key)
            rec = merged[key]
            for f in ("text", "input_ids", "sampling_params", "received_time"):
                if rec.get(f) is None and item.get(f) is not None:
                    rec[f] = item[f]
            rec.update(out)
            if event == "receive" and t is not None:
                rec.setdefault("receive_ns", t)
            if event == "finish" and t is not None:
                rec.setdefault("finish_ns", t)
    if not order:
        raise AuroraError(
            f"{src}: no SGLang request records (expected `Receive: obj=GenerateReqInput(...)` "
            "lines or JSON `request.received` events from --log-requests)"
        )
    recs = [merged[k] for k in order]
    epoch = all(isinstance(r.get("received_time"), float) and 1e9 <= r["received_time"] <= 1e10 for r in recs)
    out = []
    for r in recs:
        where = r["where"]
        text, ids = r.get("text"), r.get("input_ids")
        if text is None and ids is None:
            raise AuroraError(
                f"{where}: request {r['rid']!r} has no logged prompt (text and input_ids absent: "
                "--log-requests-level 0 and 1 omit prompts; use 3)"
            )
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise AuroraError(f"{where}: request {r['rid']!r}: text must be a non-empty string")
        params = r.get("sampling_params") or {}
        if not isinstance(params, dict):
            raise AuroraError(f"{where}: sampling_params must be a dict")
        if epoch:
            t = round(r["received_time"] * NS)
        elif "receive_ns" in r:
            t = r["receive_ns"]
        elif "finish_ns" in r and isinstance(r.get("e2e_latency"), (int, float)):
            t = r["finish_ns"] - round(float(r["e2e_latency"]) * NS)
        else:
            t = r.get("finish_ns")
        meta = {"source_format": FORMAT}
        for k in ("completion_tokens", "prompt_tokens"):
            if isinstance(r.get(k), int):
                meta[k] = r[k]
        ignore_eos = params.get("ignore_eos")
        out.append(
            Imported(
                where,
                prompt=text,
                prompt_token_ids=token_ids(ids, where) if ids is not None else None,
                request_id=str(r["rid"]) if r["rid"] is not None else None,
                arrival_ns=t,
                max_new_tokens=opt_int(
                    params.get("max_new_tokens") or r.get("completion_tokens") or None,
                    f"{where}: max_new_tokens",
                    1,
                    1_000_000,
                ),
                temperature=opt_float(params.get("temperature"), f"{where}: temperature", 0.0, 100.0),
                top_p=opt_float(params.get("top_p"), f"{where}: top_p", 0.0, 1.0, lo_open=True),
                seed=opt_int(params.get("sampling_seed"), f"{where}: sampling_seed", 0, 2**63 - 1),
                ignore_eos=ignore_eos if isinstance(ignore_eos, bool) else None,
                metadata=meta,
            )
        )
    if not all(r.arrival_ns is not None for r in out):
        for r in out:
            r.arrival_ns = None  # no usable times for some: fall back to --rate/--concurrency
    clock = "received_time (Unix s)" if epoch else "log line timestamps"
    return out, {"arrival_clock": clock if out[0].arrival_ns is not None else "none"}
