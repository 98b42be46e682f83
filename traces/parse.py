"""Small checked readers for config dictionaries: every error names where in the config it is."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from aurora_sim.errors import AuroraError

from .schema import DOMAINS


def obj(value: Any, where: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict:
    """`value` must be a dict with all `required` keys and nothing outside required + optional."""
    if not isinstance(value, dict):
        raise AuroraError(f"{where}: expected a table/object, got {type(value).__name__}")
    missing = [k for k in required if k not in value]
    if missing:
        raise AuroraError(f"{where}: missing key {missing[0]!r}")
    allowed = set(required) | set(optional)
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise AuroraError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    return value


def integer(value: Any, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise AuroraError(f"{where}: expected an integer, got {value!r}")
    if lo is not None and value < lo:
        raise AuroraError(f"{where}: {value} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise AuroraError(f"{where}: {value} is above the maximum {hi}")
    return int(value)


def number(value: Any, where: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AuroraError(f"{where}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise AuroraError(f"{where}: expected a finite number, got {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise AuroraError(f"{where}: {value} must be {'>' if lo_open else '>='} {lo}")
    if hi is not None and value > hi:
        raise AuroraError(f"{where}: {value} must be <= {hi}")
    return value


def text(value: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise AuroraError(f"{where}: expected a non-empty string, got {value!r}")
    if choices is not None and value not in choices:
        raise AuroraError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def domain(value: Any, where: str) -> str:
    return text(value, where, DOMAINS)


def mix(value: Any, where: str) -> dict[str, float]:
    """A domain mix {domain: weight}: weights >= 0, not all zero; normalised to sum 1, in
    DOMAINS order (so equal mixes serialise identically)."""
    obj(value, where, optional=DOMAINS)
    weights = {d: number(value[d], f"{where}.{d}", lo=0.0) for d in DOMAINS if d in value}
    total = sum(weights.values())
    if total <= 0:
        raise AuroraError(f"{where}: the weights sum to 0")
    return {d: w / total for d, w in weights.items() if w > 0}


def weights(value: Any, where: str, choices: tuple[str, ...]) -> dict[str, float]:
    """{choice: weight} with weights >= 0 and a positive sum (kept as given, in choices order)."""
    obj(value, where, optional=choices)
    out = {k: number(value[k], f"{where}.{k}", lo=0.0) for k in choices if k in value}
    if sum(out.values()) <= 0:
        raise AuroraError(f"{where}: the weights sum to 0")
    return out


def jsonl_objects(path: Path, text: str):
    """(line number, object) per non-blank line; a line that is not a JSON object is an error."""
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AuroraError(f"{path}: line {no}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise AuroraError(f"{path}: line {no}: expected a JSON object, got {type(obj).__name__}")
        yield no, obj
