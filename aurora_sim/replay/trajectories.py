"""A content-addressed cache of greedy target trajectories, shared by every greedy replay.

Under greedy (temperature 0) verification a lossless speculative engine emits exactly what the
target alone would: each request's output is fixed by the target's weights, its prompt, its
max_new_tokens and its stop ids. So it is decoded once (target-only, batched) and stored; every
replay run of that model over those requests (any draft, γ, batch, controller) reads it back.

An entry holds, per request, `output_ids` (what TorchSpecEngine emits, up to and including the
first stop id, or max_new_tokens), `finish_reason`, and the next OVERHANG greedy tokens past the
end with stop ids ignored (what a verify pass that runs past the end of the request would see).

Layout: `<cache_dir()>/trajectories/<model_identity[:16]>/<entry_key[:32]>.npz` where
    model_identity = sha256(config.json + every *.safetensors, sorted by name)
    request_key    = sha256(prompt_ids, max_new_tokens, sorted stop_ids)
    entry_key      = sha256(FORMAT_VERSION, model_identity, [request_key, ...] in order)
An entry is an .npz (zip) of a JSON header (uint8 array `header`) and the payload arrays `ids`
(flattened output ids, int32), `offsets` (int64 [N+1]), `finish` (uint8 [N], 0 = length,
1 = stop) and `overhang` (int32 [N, OVERHANG], -1 where the model's context window ends first).
The header names the format version, model identity, request keys in order, count, total
output tokens, creation time and the sha256 of the payload. Everything is checked on load; a bad
entry is never used (it is rebuilt). Entries are published with an atomic rename, so concurrent
writers of the same entry cannot corrupt it (the last rename wins; both are valid).
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from aurora_sim.atomic import atomic_file
from aurora_sim.engine.protocol import GenRequest
from aurora_sim.errors import AuroraError
from aurora_sim.paths import cache_dir

FORMAT_VERSION = 1
CHUNK = 2048  # requests decoded (and stored) at a time when an entry needs more
OVERHANG = 16  # tokens of the target's greedy continuation stored past each request's end
_FINISH = ("length", "stop")
_ARRAYS = {"ids": ("<i4", 1), "offsets": ("<i8", 1), "finish": ("|u1", 1), "overhang": ("<i4", 2)}
_KIND = "aurora-sim greedy trajectories"


@dataclass(frozen=True)
class Trajectory:
    output_ids: tuple[
        int, ...
    ]  # exactly what TorchSpecEngine emits (ends at its first stop id, inclusive, or at max_new_tokens)
    finish_reason: str  # "stop" | "length", as RequestResult.finish_reason
    overhang: tuple[int, ...]  # the next OVERHANG greedy tokens after output_ids, stop ids ignored


class _Invalid(Exception):
    """An entry that must not be used; the message says why."""


# ---- keys -------------------------------------------------------------------------------------
_identity_memo: dict[tuple, str] = {}


def model_identity(model_dir) -> str:
    """sha256 hex of config.json followed by every *.safetensors (sorted by name), memoised per
    (path, size, mtime_ns) of those files: a rebuilt model is a different identity."""
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    weights = sorted(model_dir.glob("*.safetensors"), key=lambda p: p.name)
    if not config.is_file() or not weights:
        raise AuroraError(f"{model_dir}: not a model directory (needs config.json and *.safetensors)")
    files = [config, *weights]
    stamp = []
    for f in files:
        st = f.stat()
        stamp.append((str(f.resolve()), st.st_size, st.st_mtime_ns))
    memo_key = tuple(stamp)
    if memo_key not in _identity_memo:
        h = hashlib.sha256()
        for f in files:
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
        _identity_memo[memo_key] = h.hexdigest()
    return _identity_memo[memo_key]


def request_key(req: GenRequest) -> str:
    """sha256 hex of what fixes a greedy output: prompt ids, max_new_tokens, the set of stop ids.
    (request_id, top_p and seed do not matter under greedy decoding.)"""
    if req.temperature > 0.0:
        raise AuroraError(
            f"request {req.request_id}: temperature {req.temperature} > 0 has no fixed trajectory "
            "(the trajectory cache serves greedy replays only)"
        )
    blob = json.dumps(
        [[int(t) for t in req.prompt_ids], int(req.max_new_tokens), sorted({int(t) for t in req.stop_ids})],
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _entry_key(identity: str, keys: list[str]) -> str:
    blob = json.dumps([FORMAT_VERSION, identity, keys], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_root() -> Path:
    return cache_dir() / "trajectories"


# ---- decoding ---------------------------------------------------------------------------------
def _cut(out: list[int], req: GenRequest) -> Trajectory:
    """The real engine's output (stop at the first stop id within max_new_tokens, inclusive, else
    at max_new_tokens) and the stop-ignoring continuation after it."""
    stops = set(req.stop_ids)
    end, reason = req.max_new_tokens, "length"
    for i, t in enumerate(out[: req.max_new_tokens]):
        if t in stops:
            end, reason = i + 1, "stop"
            break
    over = list(out[end : end + OVERHANG])
    over += [-1] * (OVERHANG - len(over))  # only where the context window ends first
    return Trajectory(tuple(out[:end]), reason, tuple(over))


def decode_trajectories(target, requests, batch: int = 64, on_progress=None) -> list[Trajectory]:
    """Greedy trajectories of `requests` (in order), decoded target-only with continuous batching.

    Each request is decoded for max_new_tokens + OVERHANG tokens with no stop ids, then cut.
    Identical requests (same request_key) are decoded once. `on_progress(done_requests,
    generated_tokens)` is called after every engine step."""
    from aurora_sim.engine.torch_engine import TorchSpecEngine

    requests = list(requests)
    keys = [request_key(r) for r in requests]
    unique: dict[str, GenRequest] = {}
    for k, r in zip(keys, requests):
        unique.setdefault(k, r)
    if not unique:
        return []
    window = target.spec.max_position
    jobs = []
    for i, (_k, r) in enumerate(unique.items()):
        if not r.prompt_ids:
            raise AuroraError(f"request {r.request_id}: empty prompt")
        if r.max_new_tokens < 1:
            raise AuroraError(f"request {r.request_id}: max_new_tokens must be >= 1")
        room = window - 1 - len(r.prompt_ids) - r.max_new_tokens
        if room < 0:
            raise AuroraError(
                f"request {r.request_id}: prompt of {len(r.prompt_ids)} tokens + {r.max_new_tokens} new "
                f"exceeds the model's context window ({window})"
            )
        extra = min(OVERHANG, room)
        # own ids: request ids need not be unique across a trace, engine results are keyed by them
        jobs.append(
            replace(r, request_id=str(i), max_new_tokens=r.max_new_tokens + extra, stop_ids=(), temperature=0.0)
        )
    max_len = max(len(j.prompt_ids) + j.max_new_tokens + 1 for j in jobs)
    engine = TorchSpecEngine(target, None, gamma=0, max_batch=max(1, min(batch, len(jobs))), max_len=max_len)
    # Rows of one length decode in lockstep (no stop ids: each runs exactly its length): they are
    # admitted together (one batched prefill) and attend over similar key lengths, where trace
    # order would pad every row's attention to the longest context in the batch.
    for j in sorted(jobs, key=lambda j: (len(j.prompt_ids) + j.max_new_tokens, int(j.request_id))):
        engine.add(j)
    outputs: dict[str, list[int]] = {}
    tokens = 0
    while engine.has_work():
        outcomes = engine.step()
        tokens += len(engine.last_round.admitted) + sum(len(o.emitted) for o in outcomes)
        for res in engine.pop_finished():
            outputs[res.request_id] = res.output_ids
        if on_progress is not None:
            on_progress(len(outputs), tokens)
    by_key = {}
    for j, (k, r) in zip(jobs, unique.items()):
        out = outputs[j.request_id]
        if len(out) != j.max_new_tokens:  # no stop ids: every row runs to its length
            raise RuntimeError(f"request {r.request_id}: decoded {len(out)} tokens, expected {j.max_new_tokens}")
        by_key[k] = _cut(out, r)
    return [by_key[k] for k in keys]


# ---- entries ----------------------------------------------------------------------------------
def _payload_sha(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in _ARRAYS:
        a = arrays[name]
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _pack(trajs: list[Trajectory]) -> dict[str, np.ndarray]:
    lengths = np.array([len(t.output_ids) for t in trajs], dtype="<i8")
    offsets = np.zeros(len(trajs) + 1, dtype="<i8")
    np.cumsum(lengths, out=offsets[1:])
    ids = np.fromiter((x for t in trajs for x in t.output_ids), dtype="<i4", count=int(offsets[-1]))
    finish = np.array([_FINISH.index(t.finish_reason) for t in trajs], dtype="|u1")
    overhang = np.array([t.overhang for t in trajs], dtype="<i4").reshape(len(trajs), OVERHANG)
    return {"ids": ids, "offsets": offsets, "finish": finish, "overhang": overhang}


def _write(path: Path, identity: str, model_name: str, keys: list[str], trajs: list[Trajectory]) -> None:
    arrays = _pack(trajs)
    header = {
        "kind": _KIND,
        "format": FORMAT_VERSION,
        "model": identity,
        "model_name": model_name,
        "overhang": OVERHANG,
        "count": len(trajs),
        "tokens": int(arrays["offsets"][-1]),
        "created": time.time(),
        "payload_sha256": _payload_sha(arrays),
        "requests": keys,
    }
    blob = np.frombuffer(json.dumps(header, separators=(",", ":")).encode(), dtype=np.uint8)
    with atomic_file(path) as fh:
        np.savez_compressed(fh, header=blob, **arrays)


def _header_of(npz) -> dict:
    if "header" not in npz.files:
        raise _Invalid("no header")
    raw = npz["header"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _Invalid("malformed header")
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _Invalid("header is not JSON") from None
    if not isinstance(header, dict) or header.get("kind") != _KIND:
        raise _Invalid("not a trajectory entry")
    return header


def read_header(path: Path) -> dict:
    """The header of an entry (the payload is not read). Raises _Invalid."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return _header_of(npz)
    except _Invalid:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _Invalid(f"unreadable ({type(exc).__name__}: {exc})") from None


def _load(path: Path, identity: str, keys: list[str] | None) -> tuple[list[str], list[Trajectory]]:
    """Read and fully validate an entry: (its request keys, its trajectories). Raises _Invalid."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = _header_of(npz)
            missing = [n for n in _ARRAYS if n not in npz.files]
            if missing:
                raise _Invalid(f"missing arrays {missing}")
            arrays = {n: npz[n] for n in _ARRAYS}
    except _Invalid:
        raise
    except Exception as exc:  # zip/CRC/decompression/format errors of a truncated or corrupt file
        raise _Invalid(f"unreadable ({type(exc).__name__}: {exc})") from None
    if header.get("format") != FORMAT_VERSION:
        raise _Invalid(f"format version {header.get('format')!r}, expected {FORMAT_VERSION}")
    if header.get("model") != identity:
        raise _Invalid(f"built for another model ({str(header.get('model'))[:16]}), expected {identity[:16]}")
    if header.get("overhang") != OVERHANG:
        raise _Invalid(f"overhang {header.get('overhang')!r}, expected {OVERHANG}")
    stored = header.get("requests")
    n = header.get("count")
    if (
        not isinstance(stored, list)
        or not isinstance(n, int)
        or len(stored) != n
        or not all(isinstance(k, str) for k in stored)
    ):
        raise _Invalid("request keys do not match the count")
    if keys is not None and stored != keys:
        raise _Invalid("built for other requests")
    for name, (dtype, ndim) in _ARRAYS.items():
        a = arrays[name]
        if a.dtype.str != dtype or a.ndim != ndim:
            raise _Invalid(f"array {name} is {a.dtype.str}{a.shape}, expected {dtype} of {ndim} dimension(s)")
    ids, offsets, finish, overhang = (arrays[k] for k in _ARRAYS)
    if offsets.shape != (n + 1,) or finish.shape != (n,) or overhang.shape != (n, OVERHANG):
        raise _Invalid("array shapes do not match the count")
    if header.get("payload_sha256") != _payload_sha(arrays):
        raise _Invalid("payload checksum mismatch")
    if (
        offsets[0] != 0
        or offsets[-1] != len(ids)
        or (n and np.any(np.diff(offsets) < 1))
        or header.get("tokens") != len(ids)
    ):
        raise _Invalid("offsets do not match the token count")
    if np.any(finish > 1):
        raise _Invalid("bad finish reason")
    ids_l, off_l, over_l = ids.tolist(), offsets.tolist(), overhang.tolist()
    trajs = [
        Trajectory(tuple(ids_l[off_l[i] : off_l[i + 1]]), _FINISH[int(finish[i])], tuple(over_l[i])) for i in range(n)
    ]
    return stored, trajs


def _consistent(t: Trajectory, req: GenRequest) -> bool:
    """What a greedy engine run of `req` could have emitted (length and stop ids agree)."""
    stops = set(req.stop_ids)
    body = t.output_ids[:-1]
    if any(x in stops for x in body) or not t.output_ids or len(t.output_ids) > req.max_new_tokens:
        return False
    if t.finish_reason == "stop":
        return t.output_ids[-1] in stops
    return len(t.output_ids) == req.max_new_tokens and t.output_ids[-1] not in stops


def _entry_path(root: Path, identity: str, keys: list[str]) -> Path:
    return root / identity[:16] / f"{_entry_key(identity, keys)[:32]}.npz"


def _progress_bar(label: str, total: int, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from aurora_sim.cli_errors import err_console

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("requests"),
        TextColumn("{task.fields[tok_s]:.0f} tok/s"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not enabled,
    )
    task = bar.add_task(label, total=total, tok_s=0.0)
    return bar, task


def trajectories_for(
    target, model_dir, requests, *, root=None, batch: int = 64, progress: bool = True, log=None
) -> tuple[list[Trajectory], dict]:
    """The greedy trajectories of `requests` (in order) under `target` (loaded from `model_dir`),
    from the cache when an entry holds them, else decoded (only the requests no valid entry of
    this model holds) and stored.

    info: entry (its path), hit (nothing was decoded), decoded (requests decoded now), reused
    (requests taken from existing entries; all of them on an exact hit), exact (the entry for
    exactly these requests was valid), build_s (seconds this call took)."""
    t0 = time.perf_counter()
    requests = list(requests)
    keys = [request_key(r) for r in requests]
    identity = model_identity(model_dir)
    root = Path(root) if root is not None else cache_root()
    path = _entry_path(root, identity, keys)

    def say(msg: str) -> None:
        if log is not None:
            log(msg)

    def info(decoded: int, reused: int, exact: bool) -> dict:
        return {
            "entry": path,
            "hit": decoded == 0,
            "decoded": decoded,
            "reused": reused,
            "exact": exact,
            "build_s": time.perf_counter() - t0,
        }

    if path.exists():
        try:
            _, trajs = _load(path, identity, keys)
            if not all(_consistent(t, r) for t, r in zip(trajs, requests)):
                raise _Invalid("a trajectory does not fit its request")
            return trajs, info(0, len(requests), True)
        except _Invalid as exc:
            say(f"{path}: {exc}; rebuilding")
        except OSError as exc:
            say(f"{path}: unreadable ({exc}); rebuilding")

    # Reuse what other valid entries of this model hold (a --limit slice and the full trace share).
    found: dict[str, Trajectory] = {}
    by_key = {k: r for k, r in zip(keys, requests)}
    need = set(keys)
    model_dir_entries = sorted(path.parent.glob("*.npz")) if path.parent.is_dir() else []
    for other in model_dir_entries:
        if not need:
            break
        if other == path:
            continue
        try:
            held = read_header(other).get("requests")
            if not isinstance(held, list):
                raise _Invalid("malformed header")
            if need.isdisjoint(held):
                continue
            other_keys, trajs = _load(other, identity, None)
        except (_Invalid, TypeError) as exc:
            say(f"{other}: {exc}; skipped")
            continue
        except OSError as exc:  # vanished (cleared) or unreadable
            say(f"{other}: unreadable ({exc}); skipped")
            continue
        for k, t in zip(other_keys, trajs):
            if k in need and _consistent(t, by_key[k]):
                found[k] = t
                need.discard(k)

    todo = [k for k in dict.fromkeys(keys) if k in need]
    chunks: list[Path] = []
    if todo:
        bar, task = _progress_bar(f"trajectories {Path(model_dir).name}", len(todo), progress)
        started = time.perf_counter()

        def update(done: int, tokens: int) -> None:
            dt = time.perf_counter() - started
            bar.update(task, completed=done, tok_s=tokens / dt if dt > 0 else 0.0)

        with bar:
            # in chunks, each stored as an entry of its own as soon as it is done: a killed build
            # of a large trace resumes from them (they are found like any other entry)
            tokens_before = [0]
            for lo in range(0, len(todo), CHUNK):
                part = todo[lo : lo + CHUNK]
                last = [0]

                def chunk_update(done: int, tokens: int, lo=lo, last=last) -> None:
                    last[0] = tokens
                    update(lo + done, tokens_before[0] + tokens)

                decoded = decode_trajectories(target, [by_key[k] for k in part], batch=batch, on_progress=chunk_update)
                tokens_before[0] += last[0]
                found.update(zip(part, decoded))
                if len(todo) > CHUNK:
                    chunks.append(_entry_path(root, identity, part))
                    _write(chunks[-1], identity, Path(model_dir).name, part, decoded)
    trajs = [found[k] for k in keys]
    _write(path, identity, Path(model_dir).name, keys, trajs)
    for c in chunks:  # the full entry holds them now
        if c != path:
            c.unlink(missing_ok=True)
    todo_set = set(todo)
    n_decoded = sum(1 for k in keys if k in todo_set)
    return trajs, info(n_decoded, len(requests) - n_decoded, False)


# ---- housekeeping -----------------------------------------------------------------------------
def _entry_files(root: Path, model: str | None = None) -> list[Path]:
    if not root.is_dir():
        return []
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and (model is None or d.name.startswith(model.lower())))
    return [f for d in dirs for f in sorted(d.glob("*.npz"))]


def list_entries(root=None) -> list[dict]:
    """One dict per entry: path, model (identity[:16]), name (the model directory's name), requests,
    tokens, bytes, created (ISO), valid (its header is readable and of this format)."""
    root = Path(root) if root is not None else cache_root()
    rows = []
    for f in _entry_files(root):
        try:
            size = f.stat().st_size
        except OSError:
            continue
        row = {
            "path": str(f),
            "model": f.parent.name,
            "name": None,
            "requests": None,
            "tokens": None,
            "bytes": size,
            "created": None,
            "valid": False,
        }
        try:
            h = read_header(f)
            row.update(
                model=str(h["model"])[:16],
                name=h.get("model_name"),
                requests=int(h["count"]),
                tokens=int(h["tokens"]),
                created=datetime.fromtimestamp(float(h["created"]), tz=UTC).isoformat(timespec="seconds"),
                valid=h.get("format") == FORMAT_VERSION,
            )
        except (_Invalid, KeyError, TypeError, ValueError, OverflowError):
            pass
        rows.append(row)
    return rows


def clear(root=None, model: str | None = None) -> int:
    """Remove the entries of models whose identity starts with `model` (all when None), and
    leftover temp files of crashed writers older than an hour; returns the bytes freed."""
    root = Path(root) if root is not None else cache_root()
    if model is not None and not model:
        raise AuroraError("--model needs a model identity prefix (see `aurora cache list`)")
    freed = 0
    files = _entry_files(root, model)
    if root.is_dir():
        now = time.time()
        for d in root.iterdir():
            if d.is_dir() and (model is None or d.name.startswith(model.lower())):
                for tmp in d.glob(".*.tmp"):
                    try:
                        if now - tmp.stat().st_mtime > 3600:
                            files.append(tmp)
                    except OSError:
                        pass
    for f in files:
        try:
            size = f.stat().st_size
            f.unlink()
            freed += size
        except FileNotFoundError:
            pass
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and (model is None or d.name.startswith(model.lower())):
                try:
                    d.rmdir()  # only when empty
                except OSError:
                    pass
    return freed
