"""Request bodies (OpenAI completions/chat, SGLang /generate) -> one `Parsed` request.

Every problem is a `BadRequest` with a message naming the field: the handler answers 400 and
the server goes on. Limits (prompt length, max_tokens) are checked here, before the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from aurora_sim.serve.config import ServeConfig


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Parsed:
    prompt_ids: tuple[int, ...]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: tuple[str, ...]
    stop_token_ids: tuple[int, ...]
    ignore_eos: bool
    stream: bool
    spec_details: bool
    rid: str | None = None
    meta: dict = field(default_factory=dict)


def _num(d: dict, key: str, default, kind=float, lo=None, hi=None, lo_open=False):
    v = d.get(key, default)
    if v is None:
        v = default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
        raise BadRequest(f"`{key}` must be {'an integer' if kind is int else 'a number'}")
    v = kind(v)
    if isinstance(v, float) and not math.isfinite(v):
        raise BadRequest(f"`{key}` must be finite")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise BadRequest(f"`{key}` must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise BadRequest(f"`{key}` must be <= {hi}, got {v}")
    return v


def _stop(d: dict) -> tuple[str, ...]:
    s = d.get("stop")
    if s is None:
        return ()
    if isinstance(s, str):
        s = [s]
    if not isinstance(s, list) or not all(isinstance(x, str) and x for x in s) or len(s) > 16:
        raise BadRequest("`stop` must be a non-empty string or a list of at most 16 of them")
    return tuple(s)


def _ids(v, key: str, vocab: int) -> tuple[int, ...]:
    if not isinstance(v, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in v):
        raise BadRequest(f"`{key}` must be a list of token ids")
    if any(t < 0 or t >= vocab for t in v):
        raise BadRequest(f"`{key}` has a token id outside the vocabulary (0..{vocab - 1})")
    return tuple(v)


def _sampling(d: dict, cfg: ServeConfig, max_key: str, default_max: int, vocab: int) -> dict:
    out = dict(
        max_new_tokens=_num(d, max_key, default_max, int, lo=1),
        temperature=_num(d, "temperature", 1.0, float, lo=0.0),
        top_p=_num(d, "top_p", 1.0, float, lo=0.0, hi=1.0, lo_open=True),
        seed=_num(d, "seed", d.get("sampling_seed", 0), int, lo=0, hi=2**63 - 1),
        stop=_stop(d),
        stop_token_ids=_ids(d.get("stop_token_ids") or [], "stop_token_ids", vocab),
        ignore_eos=bool(d.get("ignore_eos", False)),
    )
    if out["max_new_tokens"] > cfg.max_tokens_limit:
        raise BadRequest(f"`{max_key}` = {out['max_new_tokens']} exceeds this server's limit of {cfg.max_tokens_limit}")
    return out


def _check_prompt(ids: tuple[int, ...], cfg: ServeConfig) -> tuple[int, ...]:
    if not ids:
        raise BadRequest("the prompt is empty")
    if len(ids) > cfg.max_prompt_tokens:
        raise BadRequest(f"the prompt has {len(ids)} tokens, more than this server's limit of {cfg.max_prompt_tokens}")
    return ids


def _obj(body) -> dict:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _n_one(body: dict) -> None:
    if body.get("n", 1) not in (1, None) or body.get("best_of", 1) not in (1, None):
        raise BadRequest("only n = 1 is supported")


def parse_completion(body, cfg: ServeConfig, tok, vocab: int) -> Parsed:
    body = _obj(body)
    _n_one(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        ids = tuple(tok(prompt, add_special_tokens=True)["input_ids"])
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        ids = _ids(prompt, "prompt", vocab)
    else:
        raise BadRequest("`prompt` must be a string or a list of token ids (batched prompts are not supported)")
    s = _sampling(body, cfg, "max_tokens", 16, vocab)
    return Parsed(
        _check_prompt(ids, cfg),
        stream=bool(body.get("stream", False)),
        spec_details=bool(body.get("return_spec_details", False)),
        **s,
    )


def parse_chat(body, cfg: ServeConfig, tok, vocab: int) -> Parsed:
    from aurora_sim.generate import encode

    body = _obj(body)
    _n_one(body)
    msgs = body.get("messages")
    if (
        not isinstance(msgs, list)
        or not msgs
        or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in msgs
        )
    ):
        raise BadRequest("`messages` must be a non-empty list of {role, content} objects with string content")
    try:
        ids = encode(tok, [{"role": m["role"], "content": m["content"]} for m in msgs])
    except Exception as exc:  # a template that rejects the roles says so
        raise BadRequest(f"cannot apply the chat template: {exc}") from None
    s = _sampling(body, cfg, "max_tokens", min(128, cfg.max_tokens_limit), vocab)
    if body.get("max_completion_tokens") is not None:
        s["max_new_tokens"] = _sampling(
            {**body, "max_tokens": body["max_completion_tokens"]}, cfg, "max_tokens", 1, vocab
        )["max_new_tokens"]
    return Parsed(
        _check_prompt(ids, cfg),
        stream=bool(body.get("stream", False)),
        spec_details=bool(body.get("return_spec_details", False)),
        **s,
    )


def parse_generate(body, cfg: ServeConfig, tok, vocab: int) -> Parsed:
    """SGLang's native /generate: `text` or `input_ids`, `sampling_params`, `stream`, `rid`."""
    body = _obj(body)
    text, input_ids = body.get("text"), body.get("input_ids")
    if (text is None) == (input_ids is None):
        raise BadRequest("give exactly one of `text` or `input_ids`")
    if text is not None:
        if not isinstance(text, str):
            raise BadRequest("`text` must be a string (batched requests are not supported)")
        ids = tuple(tok(text, add_special_tokens=True)["input_ids"])
    else:
        ids = _ids(input_ids, "input_ids", vocab)
    sp = body.get("sampling_params") or {}
    if not isinstance(sp, dict):
        raise BadRequest("`sampling_params` must be an object")
    s = _sampling(sp, cfg, "max_new_tokens", min(128, cfg.max_tokens_limit), vocab)
    rid = body.get("rid")
    if rid is not None and (not isinstance(rid, str) or not 0 < len(rid) <= 128):
        raise BadRequest("`rid` must be a string of 1..128 characters")
    meta = {}
    if isinstance(body.get("domain"), str):  # aurora extension: recorded in the served feed
        meta["domain"] = body["domain"][:32]
    return Parsed(
        _check_prompt(ids, cfg),
        stream=bool(body.get("stream", False)),
        spec_details=bool(body.get("return_spec_details", False)),
        rid=rid,
        meta=meta,
        **s,
    )
