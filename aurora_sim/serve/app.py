"""The routes: OpenAI /v1/completions and /v1/chat/completions, SGLang /generate, /health,
/get_model_info, /update_weights_from_disk (the draft), /metrics, and GET /aurora/served (the
capture feed a learner or `aurora capture` reads: completed requests with token ids and per
round (position, proposals, accepted, draft version)).

Each generation request becomes a `Job` for the engine thread; the handler awaits its rounds
on an asyncio queue, decodes text incrementally, applies stop strings, and answers (or
streams SSE). Responses carry SGLang-style `meta_info` with the request's speculative stats.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from aurora_sim.engine.protocol import GenRequest
from aurora_sim.errors import AuroraError
from aurora_sim.serve import metrics as prom
from aurora_sim.serve.config import ServeConfig
from aurora_sim.serve.guards import Guards, TooLarge
from aurora_sim.serve.params import BadRequest, Parsed, parse_chat, parse_completion, parse_generate
from aurora_sim.serve.weights import load_verified
from aurora_sim.serve.worker import EngineWorker, Job


@dataclass
class ServerState:
    cfg: ServeConfig
    worker: EngineWorker
    target: object
    tokenizer: object
    stop_ids: tuple[int, ...]
    model_name: str
    in_flight: int = 0

    def __post_init__(self):
        self.http = Counter()
        self.swap_lock = asyncio.Lock()


def error(status: int, message: str) -> JSONResponse:
    kind = "rate_limit_error" if status == 429 else "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


async def read_json(request: Request):
    try:
        raw = await request.body()
    except TooLarge:
        raise BadRequest("request body larger than this server's limit", 413) from None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON ({exc})") from None


# ---- one generation ---------------------------------------------------------------------------------
class Generation:
    """Drives one Job: incremental text, stop strings, spec stats; usable streaming or not."""

    def __init__(self, st: ServerState, p: Parsed):
        self.st, self.p = st, p
        self.rid = p.rid or uuid.uuid4().hex
        stops = () if p.ignore_eos else st.stop_ids
        self.req = GenRequest(
            self.rid,
            p.prompt_ids,
            p.max_new_tokens,
            p.temperature,
            p.top_p,
            p.seed,
            tuple(sorted(set(stops) | set(p.stop_token_ids))),
        )
        self.ids: list[int] = []
        self.text = ""
        self.rounds: list = []
        self.finish: dict | None = None
        self.result = None
        self.t0 = time.perf_counter()

    async def events(self):
        """Yields after each round that changed the text; ends when the request finished."""
        st = self.st
        loop = asyncio.get_running_loop()
        job = Job(self.req, loop, asyncio.Queue(), meta={"rid": self.rid, **self.p.meta})
        st.worker.submit(job)
        done = False
        try:
            while not done:
                kind, value = await job.events.get()
                if kind == "error":
                    raise BadRequest(value, 400 if "exceeds" in value or "vocabulary" in value else 500)
                if kind == "tokens":
                    outcome, new = value
                    if outcome is not None and outcome.proposals:
                        self.rounds.append(outcome)
                    self.ids.extend(new)
                    if self._decode():
                        st.worker.cancel(self.rid)
                        done = True
                else:
                    self.result = value
                    self._decode()
                    if self.finish is None:
                        last = self.ids[-1] if self.ids else None
                        self.finish = (
                            {"type": "stop", "matched": last}
                            if value.finish_reason == "stop"
                            else {"type": "length", "length": len(self.ids)}
                        )
                    done = True
                yield
        except (asyncio.CancelledError, GeneratorExit):
            st.worker.cancel(self.rid)  # the client went away: free the slot
            raise

    def _decode(self) -> bool:
        """Update self.text; True when a stop string matched (text cut before it)."""
        text = self.st.tokenizer.decode(self.ids, skip_special_tokens=True)
        for s in self.p.stop:
            i = text.find(s)
            if i >= 0:
                self.text = text[:i]
                self.finish = {"type": "stop", "matched": s}
                return True
        # hold back a possible stop-string prefix and an incomplete UTF-8 character
        hold = max((k for s in self.p.stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        text = text[: len(text) - hold] if hold else text
        self.text = text.rstrip("\ufffd") if self.finish is None else text
        return False

    def meta_info(self) -> dict:
        g = self.st.worker.engine.gamma
        n = len(self.rounds)
        accepted = sum(o.accepted for o in self.rounds)
        per_pos = [sum(1 for o in self.rounds if o.accepted > i) / n for i in range(g)] if n else []
        drafted = sum(len(o.proposals) for o in self.rounds)  # γ per round, or the depth policy's
        meta = {
            "id": self.rid,
            "finish_reason": self.finish,
            "prompt_tokens": len(self.p.prompt_ids),
            "completion_tokens": len(self.ids),
            "cached_tokens": 0,
            "spec_verify_ct": n,
            "spec_accept_length": (accepted + n) / n if n else 1.0,  # bonus included, as SGLang reports it
            "spec_accept_rate": accepted / drafted if drafted else 0.0,
            "spec_accept_token_num": accepted,
            "spec_draft_token_num": drafted,
            "spec_accept_per_position": per_pos,
            "draft_version": self.rounds[-1].draft_version if self.rounds else None,
            "draft_versions": sorted({o.draft_version for o in self.rounds}),
            "e2e_latency": time.perf_counter() - self.t0,
        }
        if self.p.spec_details:
            meta["spec_rounds"] = [
                {
                    "position": o.position,
                    "proposals": list(o.proposals),
                    "accepted": o.accepted,
                    "draft_version": o.draft_version,
                }
                for o in self.rounds
            ]
        return meta


async def _admitted(st: ServerState, request: Request, parse, respond):
    """Common path: parse, the concurrency limit, then respond(gen) (a Response)."""
    body = await read_json(request)
    p = parse(body, st.cfg, st.tokenizer, st.target.spec.vocab_size)
    if st.in_flight >= st.cfg.max_concurrent:
        raise BadRequest(
            f"server busy: {st.in_flight} requests in flight (limit {st.cfg.max_concurrent}); retry later", 429
        )
    if not st.worker.alive():
        raise BadRequest(f"engine is not running ({st.worker.error})", 503)
    st.in_flight += 1
    gen = Generation(st, p)
    if not p.stream:
        try:
            async for _ in gen.events():
                pass
        finally:
            st.in_flight -= 1
        return JSONResponse(respond(gen, None))

    async def sse():
        try:
            async for _ in gen.events():
                chunk = respond(gen, "delta")
                if chunk is not None:
                    yield f"data: {json.dumps(chunk)}\n\n"
            yield f"data: {json.dumps(respond(gen, 'final'))}\n\n"
            yield "data: [DONE]\n\n"
        except BadRequest as exc:
            yield f"data: {json.dumps({'error': {'message': str(exc), 'code': exc.status}})}\n\n"
        finally:
            st.in_flight -= 1

    return StreamingResponse(sse(), media_type="text/event-stream")


class _Delta:
    """Per-stream memory of what text was already sent (OpenAI streams send deltas)."""

    def __init__(self):
        self.sent = 0

    def take(self, gen: Generation) -> str:
        d = gen.text[self.sent :]
        self.sent = len(gen.text)
        return d


def _openai_finish(gen: Generation) -> str | None:
    return None if gen.finish is None else ("stop" if gen.finish["type"] == "stop" else "length")


def _usage(gen: Generation) -> dict:
    n = len(gen.p.prompt_ids)
    return {"prompt_tokens": n, "completion_tokens": len(gen.ids), "total_tokens": n + len(gen.ids)}


def make_app(st: ServerState) -> Starlette:
    created = int(time.time())

    def guard(fn):
        async def handler(request: Request):
            try:
                resp = await fn(request)
            except BadRequest as exc:
                resp = error(exc.status, str(exc))
            st.http[f"{resp.status_code // 100}xx"] += 1
            return resp

        return handler

    async def completions(request):
        delta = _Delta()

        def respond(gen, mode):
            if mode == "delta":
                text = delta.take(gen)
                return (
                    None
                    if not text
                    else {
                        "id": f"cmpl-{gen.rid}",
                        "object": "text_completion",
                        "created": created,
                        "model": st.model_name,
                        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": None}],
                    }
                )
            text = delta.take(gen) if mode == "final" else gen.text
            return {
                "id": f"cmpl-{gen.rid}",
                "object": "text_completion",
                "created": created,
                "model": st.model_name,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": _openai_finish(gen)}],
                "usage": _usage(gen),
                "meta_info": gen.meta_info(),
            }

        return await _admitted(st, request, parse_completion, respond)

    async def chat(request):
        delta = _Delta()

        def respond(gen, mode):
            base = {"id": f"chatcmpl-{gen.rid}", "created": created, "model": st.model_name}
            if mode == "delta":
                text = delta.take(gen)
                first = delta.sent == len(text)
                d = {"role": "assistant", "content": text} if first else {"content": text}
                return (
                    None
                    if not text
                    else {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": d, "finish_reason": None}],
                    }
                )
            if mode == "final":
                return {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [
                        {"index": 0, "delta": {"content": delta.take(gen)}, "finish_reason": _openai_finish(gen)}
                    ],
                    "usage": _usage(gen),
                    "meta_info": gen.meta_info(),
                }
            return {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": gen.text},
                        "finish_reason": _openai_finish(gen),
                    }
                ],
                "usage": _usage(gen),
                "meta_info": gen.meta_info(),
            }

        return await _admitted(st, request, parse_chat, respond)

    async def generate(request):
        def respond(gen, mode):
            # SGLang streams the cumulative text and output ids in every chunk
            if mode == "delta" and gen.finish is not None:
                return None  # the final chunk carries it
            return {"text": gen.text, "output_ids": list(gen.ids), "meta_info": gen.meta_info()}

        return await _admitted(st, request, parse_generate, respond)

    async def health(request):
        if not st.worker.alive():
            return error(503, f"engine is not running ({st.worker.error})")
        return PlainTextResponse("")

    async def model_info(request):
        _, g = st.worker.stats.snapshot()
        return JSONResponse(
            {
                "model_path": st.model_name,
                "tokenizer_path": st.model_name,
                "is_generation": True,
                "aurora": {
                    "draft_version": g["draft_version"],
                    "gamma": st.worker.engine.gamma,
                    "max_batch": st.cfg.batch,
                    "served_feed": True,
                    "draft": st.worker.engine.draft.kind if st.worker.engine.draft is not None else None,
                    "max_prompt_tokens": st.cfg.max_prompt_tokens,
                    "max_tokens_limit": st.cfg.max_tokens_limit,
                },
            }
        )

    async def update_weights(request):
        if st.cfg.api_key is None and not st.cfg.loopback_only:
            raise BadRequest("weight updates are refused on a server listening beyond loopback without --api-key", 403)
        if st.cfg.weights_dir is None:
            raise BadRequest("this server has no --weights-dir: weight updates are disabled", 403)
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("model_path"), str):
            raise BadRequest('body must be {"model_path": str, "version": int, "sha256": str}')
        version = body.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise BadRequest("`version` must be an integer >= 0")
        async with st.swap_lock:  # one load at a time: each costs a draft's memory
            try:
                draft = await asyncio.to_thread(
                    load_verified, st.cfg.weights_dir, body["model_path"], body.get("sha256"), st.target
                )
            except AuroraError as exc:
                st.worker.stats.add(swap_failures=1)
                return JSONResponse({"success": False, "message": str(exc)}, status_code=400)
            ok, message = await asyncio.wrap_future(st.worker.swap(draft, version))
        return JSONResponse({"success": ok, "message": message, "version": version}, status_code=200 if ok else 400)

    async def served(request):
        try:
            after = int(request.query_params.get("after", "-1"))
            limit = min(int(request.query_params.get("limit", "256")), 1024)
        except ValueError:
            raise BadRequest("`after` and `limit` must be integers") from None
        items, last = st.worker.feed.after(after, limit)
        return JSONResponse({"items": items, "last_seq": last, "time_ns": st.worker.now_ns()})

    async def metrics(request):
        c, g = st.worker.stats.snapshot()
        g = dict(g, in_flight=st.in_flight)
        return PlainTextResponse(prom.render(c, g, dict(st.http)), media_type="text/plain; version=0.0.4")

    routes = [
        Route("/v1/completions", guard(completions), methods=["POST"]),
        Route("/v1/chat/completions", guard(chat), methods=["POST"]),
        Route("/generate", guard(generate), methods=["POST"]),
        Route("/health", guard(health), methods=["GET"]),
        Route("/health_generate", guard(health), methods=["GET"]),
        Route("/get_model_info", guard(model_info), methods=["GET"]),
        Route("/v1/models", guard(lambda r: _models(st, created)), methods=["GET"]),
        Route("/update_weights_from_disk", guard(update_weights), methods=["POST"]),
        Route("/aurora/served", guard(served), methods=["GET"]),
        Route("/metrics", guard(metrics), methods=["GET"]),
    ]

    app = Starlette(routes=routes)
    return Guards(app, st.cfg.api_key, st.cfg.max_body_bytes)


async def _models(st: ServerState, created: int):
    return JSONResponse(
        {
            "object": "list",
            "data": [{"id": st.model_name, "object": "model", "created": created, "owned_by": "aurora-sim"}],
        }
    )
