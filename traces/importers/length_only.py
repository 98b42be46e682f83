"""Length-only production traces (Mooncake / Azure / BurstGPT style, see length_trace.py):
arrival times and token counts from the trace, prompt text drawn from a domain's held-out corpus.

Each request gets ``input_length × chars_per_token`` characters of the domain's held-out text
(its documents joined by blank lines; a window starting at a line start), capped by
``max_prompt_chars`` if given, and ``max_new_tokens = output_length`` with ``ignore_eos`` so a
replay generates the trace's output lengths. Token counts are only approximated through
characters (no tokenizer here); the source counts stay in the row metadata. Mooncake
``hash_ids`` are honoured: the same hash id gives the same block of ``block_size`` tokens of
text, so requests that share a prefix in the trace share it here too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from aurora_sim.corpora import load_documents
from aurora_sim.errors import AuroraError

from ..length_trace import read_length_trace
from ..seeding import stream
from .common import Imported

FORMAT = "length-only"
SNAP_CHARS = 400  # look this far for a line start


class _Text:
    """A domain's held-out text as a ring: windows wrap around its end."""

    def __init__(self, text: str):
        if not text.strip():
            raise AuroraError("length-only: the domain's held-out text is empty")
        self.text = text

    def window(self, offset: int, chars: int) -> str:
        t, n = self.text, len(self.text)
        offset %= n
        nl = t.find("\n", offset, offset + SNAP_CHARS)
        if nl != -1 and nl + 1 < n:
            offset = nl + 1
            while offset + 1 < n and t[offset] == "\n" and offset - nl < SNAP_CHARS:
                offset += 1  # start on text, not on a blank line
        out, need = [], chars
        while need > 0:
            piece = t[offset : offset + need]
            out.append(piece)
            need -= len(piece)
            offset = 0
        s = "".join(out)
        return s if s.strip() else "." * chars


def _block_offset(seed: int, h: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/block/{h}".encode()).digest()[:8], "little")


def read(
    src: Path,
    domain: str,
    seed: int = 0,
    time_unit: str = "ms",
    chars_per_token: float = 4.0,
    block_size: int = 512,
    max_prompt_chars: int | None = None,
    documents: list[dict] | None = None,
) -> tuple[list[Imported], dict]:
    if not 0.5 <= chars_per_token <= 20:
        raise AuroraError(f"--chars-per-token {chars_per_token} is outside [0.5, 20]")
    if block_size < 1:
        raise AuroraError("--block-size must be >= 1")
    trace = read_length_trace(src, time_unit)
    docs = documents if documents is not None else load_documents(domain, "heldout")
    ring = _Text("\n\n".join(d["text"] for d in docs))
    offsets = stream(seed, "length-only/offsets").integers(0, len(ring.text), len(trace))
    block_chars = max(1, round(block_size * chars_per_token))
    blocks: dict[int, str] = {}
    out = []
    for k in range(len(trace)):
        n_in, n_out = int(trace.input_tokens[k]), int(trace.output_tokens[k])
        chars = max(1, round(max(n_in, 1) * chars_per_token))
        if max_prompt_chars:
            chars = min(chars, max_prompt_chars)
        hashes = trace.hash_ids[k]
        if hashes:
            for h in hashes:
                if h not in blocks:
                    blocks[h] = ring.window(_block_offset(seed, h), block_chars)
            text = "".join(blocks[h] for h in hashes)[:chars]
            if len(text) < chars:
                text += ring.window(int(offsets[k]), chars - len(text))
        else:
            text = ring.window(int(offsets[k]), chars)
        meta = {"source_format": FORMAT, "line": int(trace.lines[k]), "input_tokens": n_in, "output_tokens": n_out}
        out.append(
            Imported(
                f"{src}: line {int(trace.lines[k])}",
                prompt=text,
                arrival_ns=int(trace.arrival_ns[k]),
                max_new_tokens=max(n_out, 1),
                ignore_eos=True,
                domain=domain,
                metadata=meta,
            )
        )
    arrivals = {"kind": "trace", "path": str(src), "time_unit": time_unit, "speed": 1.0, "sha256": trace.sha256}
    return out, {
        "chars_per_token": chars_per_token,
        "block_size": block_size,
        "max_prompt_chars": max_prompt_chars,
        "source_arrivals": arrivals,
        "mean_input_tokens": float(np.mean(trace.input_tokens)),
    }
