"""Prompts the way users send them, cut from held-out documents of the project's corpora.

Each domain has prompt *kinds*; each kind has a pool of candidates extracted deterministically
from the held-out split (which the target never trained on):

- code / ``function``: a function up to the end of its docstring (or its signature when it has
  none), with the code above it as context — an IDE completion or a HumanEval task.
- code / ``continue``: the code before a statement, to be continued.
- code / ``task``: a chat turn asking to complete a documented function, code in a fenced block.
- finance / ``article``: a business article's headline and first sentences, to be continued.
- finance / ``figure``: a chat turn asking what one figure in an article (up to that sentence)
  refers to: one prompt per figure.
- finance / ``summary``: a chat turn asking to summarise an article up to a paragraph's end.
- finance / ``question``: a user's finance question (a ShareGPT turn, with earlier turns).
- chat / ``turn``: a conversation up to a user turn (ShareGPT, chatterbot, MT-Bench).

Candidates come from the held-out split and the traffic-only sources of the corpora (see
:mod:`aurora_sim.corpora`): nothing the tiny target or the static draft trained on. Several kinds
per document (every sentence end of an article, every figure in it, every paragraph end) give
shift-paper's 33,000 requests distinct prompts.

Text prompts longer than ``max_chars`` keep their most recent part, cut at a line (code) or
sentence (prose) boundary; chat prompts drop their oldest turns first, then the end of the
last user message. Requests draw candidates pool by pool in shuffled cycles (every candidate
once before any repeats), so repeats are as rare as the pool size allows. Lengths are in
characters (≈3.3 per token for code and ≈4.3 for prose with SmolLM2's tokenizer).
"""

from __future__ import annotations

import ast
import hashlib
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from aurora_sim.corpora import load_documents, render_chat
from aurora_sim.errors import AuroraError

from . import parse
from .schema import DOMAINS
from .seeding import stream

KINDS: dict[str, tuple[str, ...]] = {
    "code": ("function", "continue", "task"),
    "finance": ("article", "figure", "summary", "question"),
    "chat": ("turn",),
}
DEFAULT_KINDS = {
    "code": {"function": 0.4, "continue": 0.4, "task": 0.2},
    "finance": {"article": 0.5, "figure": 0.25, "summary": 0.12, "question": 0.13},
    "chat": {"turn": 1.0},
}
TASK_TEMPLATES = (
    "Complete the following Python function.",
    "Finish implementing this function:",
    "Write the body of this Python function.",
)
FIGURE_TEMPLATES = (
    "What does the figure {x} refer to in this article?",
    "In the article above, what is {x}?",
    "Explain what {x} measures here, and why it matters.",
)
SUMMARY_TEMPLATES = (
    "Summarise this article in two or three sentences:",
    "Give me the key points of this news story:",
    "What is this article about? Keep it short.",
)
# A figure: a number with its currency or unit ("$4.5bn", "12%", "1,200 jobs" keeps "1,200").
# Two characters at least, so a lone digit ("1 of 3") is no figure.
_FIGURE = re.compile(
    r"(?<![\w.,$£€])[$£€]?\d[\d,]*(?:\.\d+)?(?:%|bn\b|m\b| ?(?:per cent|percent|billion|million|trillion)\b)?"
)
_PARAGRAPH_END = re.compile(r"\n\s*\n")
_TURN = re.compile(r"^<\|(system|user|assistant)\|>\n", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?(?=\s)|\n(?=\n)")
_PROSE_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+")
_LINE_BOUNDARY = re.compile(r"\n")

Messages = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PromptConfig:
    max_chars: int = 1600
    min_chars: int = 16
    kinds: dict[str, dict[str, float]] = field(default_factory=lambda: {d: dict(w) for d, w in DEFAULT_KINDS.items()})

    @classmethod
    def from_dict(cls, d: dict, where: str = "prompts") -> PromptConfig:
        parse.obj(d, where, optional=("max_chars", "min_chars", "kinds"))
        kinds = cls().kinds
        if "kinds" in d:
            parse.obj(d["kinds"], f"{where}.kinds", optional=DOMAINS)
            for dom, w in d["kinds"].items():
                kinds[dom] = parse.weights(w, f"{where}.kinds.{dom}", KINDS[dom])
        lo = parse.integer(d.get("min_chars", 16), f"{where}.min_chars", lo=1, hi=1_000_000)
        hi = parse.integer(d.get("max_chars", 1600), f"{where}.max_chars", lo=lo, hi=10_000_000)
        return cls(hi, lo, kinds)

    def to_dict(self) -> dict:
        return {"max_chars": self.max_chars, "min_chars": self.min_chars, "kinds": self.kinds}


@dataclass(frozen=True)
class Candidate:
    kind: str
    doc_id: str
    source: str
    prompt: str | None = None
    messages: Messages | None = None


# ---------------------------------------------------------------------------- cutting


def _tail(text: str, max_chars: int, boundary: re.Pattern) -> str | None:
    """The last <= max_chars of text, starting just after a boundary (None if there is none)."""
    if len(text) <= max_chars:
        return text
    window = text[-max_chars:]
    m = boundary.search(window, 1)
    return window[m.end() :] if m and m.end() < len(window) else None


def _content_chars(c: Candidate) -> int:
    """Characters of substance: code lines that are not comments; all text otherwise."""
    if c.messages is not None:
        return sum(len(content.strip()) for _, content in c.messages)
    if c.kind in ("function", "continue"):
        return sum(len(s) for s in map(str.strip, c.prompt.splitlines()) if s and not s.startswith("#"))
    return len(c.prompt.strip())


def parse_chat(text: str) -> list[tuple[str, str]]:
    """Inverse of corpora.render_chat: [(role, content)] (a trailing empty turn is dropped)."""
    parts = _TURN.split(text)
    msgs = [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]
    while msgs and not msgs[-1][1]:
        msgs.pop()
    return msgs


def fit_messages(msgs: list[tuple[str, str]], max_chars: int) -> Messages | None:
    """Drop the oldest turns, then the end of the last one, until the rendering fits."""
    msgs = list(msgs)
    while len(msgs) > 1 and len(render_chat(msgs)) > max_chars:
        msgs.pop(0)
        while len(msgs) > 1 and msgs[0][0] == "assistant":
            msgs.pop(0)
    overflow = len(render_chat(msgs)) - max_chars
    if overflow > 0:
        role, content = msgs[-1]
        keep = content[: max(len(content) - overflow, 0)]
        ends = [m.end() for m in _SENTENCE_END.finditer(keep)]
        if ends and ends[-1] >= len(keep) // 2:
            keep = keep[: ends[-1]]  # a whole sentence if most of it survives
        else:
            keep = keep[: keep.rfind(" ")] if " " in keep else ""
        if not keep.strip():
            return None
        msgs[-1] = (role, keep.rstrip())
    return tuple(msgs)


def _chat_candidates(doc: dict, kind: str, cfg: PromptConfig) -> Iterator[Candidate]:
    msgs = parse_chat(doc["text"])
    for i, (role, content) in enumerate(msgs):
        if role == "user" and content:
            fitted = fit_messages(msgs[: i + 1], cfg.max_chars)
            if fitted:
                yield Candidate(kind, doc["id"], doc["source"], messages=fitted)


def _parse_python(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _code_candidates(doc: dict, cfg: PromptConfig) -> Iterator[Candidate]:
    text, src = doc["text"], doc["source"]
    lines = text.splitlines(keepends=True)
    tree = _parse_python(text)
    nodes = list(ast.walk(tree)) if tree else []
    for node in nodes:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.body[0].lineno <= node.lineno:
            continue
        body = node.body
        has_doc = (
            isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        )
        if has_doc and len(body) == 1:
            continue  # nothing after the docstring to complete
        cut = body[0].end_lineno if has_doc else body[0].lineno - 1
        prompt = _tail("".join(lines[:cut]), cfg.max_chars, _LINE_BOUNDARY)
        if prompt:
            yield Candidate("function", doc["id"], src, prompt=prompt)
        if has_doc:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            code = textwrap.dedent("".join(lines[start - 1 : cut]))
            template = TASK_TEMPLATES[(node.lineno + len(doc["id"])) % len(TASK_TEMPLATES)]
            msg = f"{template}\n\n```python\n{code.rstrip()}\n```"
            if len(render_chat([("user", msg)])) <= cfg.max_chars:
                yield Candidate("task", doc["id"], src, messages=(("user", msg),))
    starts = (
        sorted({n.lineno for n in nodes if isinstance(n, ast.stmt) and n.lineno > 1})
        if tree
        else [i + 1 for i, line in enumerate(lines) if i and line.strip()]
    )
    for lineno in starts:
        prompt = _tail("".join(lines[: lineno - 1]), cfg.max_chars, _LINE_BOUNDARY)
        if prompt:
            yield Candidate("continue", doc["id"], src, prompt=prompt)


def _article_candidates(doc: dict, cfg: PromptConfig) -> Iterator[Candidate]:
    text = doc["text"]
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    for end in ends[:-1] if ends and ends[-1] >= len(text.rstrip()) else ends:
        prompt = _tail(text[:end].rstrip(), cfg.max_chars, _PROSE_BOUNDARY)
        if prompt:
            yield Candidate("article", doc["id"], doc["source"], prompt=prompt)


def _pick(templates: tuple[str, ...], *keys) -> str:
    """A template chosen by a stable hash of the keys (not Python's salted hash)."""
    return templates[int(hashlib.sha256(repr(keys).encode()).hexdigest()[:8], 16) % len(templates)]


def _excerpt_message(text: str, end: int, ask: str, cfg: PromptConfig) -> Messages | None:
    """A user turn: the article up to `end` (its most recent part if too long), then the ask."""
    budget = cfg.max_chars - len(render_chat([("user", f"\n\n{ask}")]))
    excerpt = _tail(text[:end].rstrip(), budget, _PROSE_BOUNDARY) if budget > 0 else None
    return (("user", f"{excerpt}\n\n{ask}"),) if excerpt else None


def _figure_candidates(doc: dict, cfg: PromptConfig) -> Iterator[Candidate]:
    text = doc["text"]
    ends = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    for m in _FIGURE.finditer(text):
        x = m.group().rstrip(",")
        if len(x) < 2:
            continue
        end = next(e for e in ends if e >= m.end())  # the end of the figure's sentence
        ask = _pick(FIGURE_TEMPLATES, doc["id"], m.start()).format(x=x)
        msgs = _excerpt_message(text, end, ask, cfg)
        if msgs:
            yield Candidate("figure", doc["id"], doc["source"], messages=msgs)


def _summary_candidates(doc: dict, cfg: PromptConfig) -> Iterator[Candidate]:
    text = doc["text"].rstrip()
    ends = [m.start() for m in _PARAGRAPH_END.finditer(text)][1:] + [len(text)]  # 2 paragraphs at least
    for end in ends:
        msgs = _excerpt_message(text, end, _pick(SUMMARY_TEMPLATES, doc["id"], end), cfg)
        if msgs:
            yield Candidate("summary", doc["id"], doc["source"], messages=msgs)


def _candidates(domain: str, doc: dict, cfg: PromptConfig) -> Iterator[Candidate]:
    is_chat = doc["text"].startswith("<|")
    if domain == "code":
        yield from _code_candidates(doc, cfg)
    elif domain == "finance":
        if is_chat:
            yield from _chat_candidates(doc, "question", cfg)
        else:
            yield from _article_candidates(doc, cfg)
            yield from _figure_candidates(doc, cfg)
            yield from _summary_candidates(doc, cfg)
    elif is_chat:
        yield from _chat_candidates(doc, "turn", cfg)


def traffic_documents(domain: str) -> list[dict]:
    """Where a domain's prompts come from: its held-out split, then its traffic-only sources."""
    return load_documents(domain, "heldout") + load_documents(domain, "traffic")


# Pools of the project's corpora, per (corpus dir, max_chars, min_chars): building them reads
# ~35 MB of documents (≈8 s), and a process (a sweep, the test suite) generates many traces.
_POOLS: dict[tuple, dict[str, dict[str, list[Candidate]]]] = {}


def build_pools(
    cfg: PromptConfig, documents: dict[str, list[dict]] | None = None
) -> dict[str, dict[str, list[Candidate]]]:
    """{domain: {kind: [unique candidates in document order]}} for the domains' traffic documents
    (held-out split, then traffic-only sources), or for `documents` when given."""
    if documents is not None:
        return _build_pools(cfg, documents)
    from aurora_sim.corpora import build_corpora

    key = (str(build_corpora()), cfg.max_chars, cfg.min_chars)
    if key not in _POOLS:
        _POOLS[key] = _build_pools(cfg, None)
    return _POOLS[key]


def _build_pools(cfg: PromptConfig, documents: dict[str, list[dict]] | None) -> dict[str, dict[str, list[Candidate]]]:
    pools: dict[str, dict[str, list[Candidate]]] = {}
    for dom in DOMAINS:
        docs = documents[dom] if documents is not None else traffic_documents(dom)
        pools[dom] = {k: [] for k in KINDS[dom]}
        seen: set[tuple[str, ...]] = set()  # a prompt appears once per domain, in its first kind
        for doc in docs:
            for c in _candidates(dom, doc, cfg):
                key = (c.prompt,) if c.prompt is not None else tuple(x for m in c.messages for x in m)
                if _content_chars(c) >= cfg.min_chars and key not in seen:
                    seen.add(key)
                    pools[dom][c.kind].append(c)
    return pools


# ---------------------------------------------------------------------------- drawing


def draw(
    pools: dict[str, dict[str, list[Candidate]]], domain_idx: np.ndarray, cfg: PromptConfig, seed: int
) -> list[Candidate]:
    """A candidate per request (domain_idx indexes DOMAINS), each domain and kind from its own stream."""
    out: list[Candidate | None] = [None] * len(domain_idx)
    for d, dom in enumerate(DOMAINS):
        rows = np.flatnonzero(domain_idx == d)
        if not len(rows):
            continue
        kinds = [k for k, w in cfg.kinds[dom].items() if w > 0]
        p = np.array([cfg.kinds[dom][k] for k in kinds])
        for k in kinds:
            if not pools[dom][k]:
                raise AuroraError(
                    f"prompts: no {dom}/{k} prompt fits max_chars={cfg.max_chars}, "
                    f"min_chars={cfg.min_chars}; change the limits or the kind weights"
                )
        which = stream(seed, f"prompts/{dom}/kind").choice(len(kinds), size=len(rows), p=p / p.sum())
        for j, kind in enumerate(kinds):
            sel = rows[which == j]
            if not len(sel):
                continue
            pool = pools[dom][kind]
            rng = stream(seed, f"prompts/{dom}/{kind}")
            cycles = -(-len(sel) // len(pool))
            order = np.concatenate([rng.permutation(len(pool)) for _ in range(cycles)])[: len(sel)]
            for r, c in zip(sel.tolist(), order.tolist()):
                out[r] = pool[c]
    return out  # type: ignore[return-value]


def pool_sizes(pools: dict[str, dict[str, list[Candidate]]]) -> dict[str, dict[str, int]]:
    return {d: {k: len(v) for k, v in kinds.items()} for d, kinds in pools.items()}
