"""A Hugging Face ``datasets`` dataset saved with ``save_to_disk`` (loaded with
``datasets.load_from_disk``; nothing is downloaded).

The prompt column is ``--column`` or the first present of: ``messages`` (a list of
``{"role", "content"}``, trailing assistant turns dropped as the recorded reply),
``conversations`` (ShareGPT ``{"from", "value"}`` or role/content turns; the first human turn),
``prompt``, ``text`` (strings, or a messages list). A ``DatasetDict`` needs ``--split`` unless it
has a ``train`` split or only one. Needs the ``datasets`` package.
"""

from __future__ import annotations

from pathlib import Path

from aurora_sim.errors import AuroraError

from .common import Imported, chat_messages, role_of, split_reply

FORMAT = "hf-datasets"
COLUMNS = ("messages", "conversations", "prompt", "text")


def _load(src: Path, split: str | None):
    try:
        import datasets
    except ImportError:
        raise AuroraError("the hf-datasets importer needs the `datasets` package (pip install datasets)") from None
    if not Path(src).exists():
        raise AuroraError(f"{src}: not found")
    try:
        ds = datasets.load_from_disk(str(src))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, arrow errors, ...
        raise AuroraError(f"{src}: not a dataset saved with save_to_disk ({str(exc).splitlines()[0][:160]})") from None
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds)
        if split is None:
            split = "train" if "train" in ds else names[0] if len(names) == 1 else None
            if split is None:
                raise AuroraError(f"{src}: a DatasetDict with splits {', '.join(names)}: pass --split")
        if split not in ds:
            raise AuroraError(f"{src}: no split {split!r} (splits: {', '.join(names)})")
        ds = ds[split]
    elif split is not None:
        raise AuroraError(f"{src}: a single Dataset has no splits; drop --split")
    return ds, split


def _conversation(raw, where: str) -> tuple[list[tuple[str, str]], str | None]:
    if not isinstance(raw, list) or not raw:
        raise AuroraError(f"{where}: conversations must be a non-empty list")
    msgs = []
    for k, t in enumerate(raw):
        if not isinstance(t, dict):
            raise AuroraError(f"{where}: turn {k} must be an object")
        role = t.get("from", t.get("role"))
        value = t.get("value", t.get("content"))
        if not isinstance(value, str):
            raise AuroraError(f"{where}: turn {k} has no string value/content")
        msgs.append((role_of(role, f"{where}: turn {k}"), value))
    first = next((i for i, (r, v) in enumerate(msgs) if r == "user" and v.strip()), None)
    if first is None:
        raise AuroraError(f"{where}: no human turn")
    reply = msgs[first + 1][1] if first + 1 < len(msgs) and msgs[first + 1][0] == "assistant" else None
    return split_reply(msgs[: first + 1], where)[0], reply


def read(src: Path, split: str | None = None, column: str | None = None) -> tuple[list[Imported], dict]:
    ds, split = _load(src, split)
    names = list(ds.column_names)
    if column is None:
        column = next((c for c in COLUMNS if c in names), None)
        if column is None:
            raise AuroraError(
                f"{src}: no prompt column (looked for {', '.join(COLUMNS)}; columns: {', '.join(names)}); pass --column"
            )
    elif column not in names:
        raise AuroraError(f"{src}: no column {column!r} (columns: {', '.join(names)})")
    out = []
    for i, value in enumerate(ds[column]):
        where = f"{src}: row {i}"
        meta = {"source_format": FORMAT, "row": i}
        if isinstance(value, str):
            if not value.strip():
                raise AuroraError(f"{where}: {column} is empty")
            rec = Imported(where, prompt=value, metadata=meta)
        elif column == "conversations":
            msgs, reply = _conversation(value, where)
            rec = Imported(where, messages=msgs, metadata=meta | ({"reply_chars": len(reply)} if reply else {}))
        elif isinstance(value, list):
            msgs, reply = chat_messages(value, where)
            rec = Imported(where, messages=msgs, metadata=meta | ({"reply_chars": len(reply)} if reply else {}))
        else:
            raise AuroraError(f"{where}: {column} must be a string or a list of messages, got {type(value).__name__}")
        out.append(rec)
    if not out:
        raise AuroraError(f"{src}: the dataset has no rows")
    return out, {"split": split, "column": column, "fingerprint": getattr(ds, "_fingerprint", None)}
