"""A cost model read from a measured table (written by aurora_sim.costs.calibrate).

Table (JSON):
    {"kind": "profiled", "device", "model", "draft", "gamma_grid": [..], "batch_grid": [..],
     "round_ns": {"<gamma>": {"<batch>": ns}},   every grid point; non-decreasing in batch
     "prefill_ns_per_token", "train_step_ns_per_token", "swap_publish_ns", "swap_pause_ns",
     "measured_at": ISO date, "torch": version,
     optional: "train_step_fixed_ns", "train_unroll", "context_per_row", "accept_len", ...,
     and the two axes a round's cost also depends on (calibrate writes them; older tables lack them):
     "context_grid": [..], "round_ns_by_context": {"<context>": {"<gamma>": {"<batch>": ns}}}
         steady rounds (nobody admitted) at that many cached tokens per row;
     "prefill_grid": [..], "admit_ns": {"<gamma>": {"<batch>": {"<k>": {"<length>": ns}}}}
         what a round costs on top of the steady one when k requests (k = 1 and k = batch) whose
         longest prompt is `length` tokens join it: their prefill, and with a draft its catch-up
         over the prompt, padded to the longest (the engine's padding).}

Lookup, for (γ, batch): linear interpolation on batch between grid points; below the smallest
batch the first value (clamped); above the largest, linear extrapolation along the last segment
(never downward). A γ between grid values interpolates linearly between the two rows; a γ past
the largest extrapolates along the last two rows the same way; below the smallest it clamps.
With a context axis, the same rule over the mean cached tokens per row of the round (clamped
below, extrapolated above); without one, rounds cost what they cost at the calibration's context
(`context_per_row`). Admissions: with `admit_ns`, linear in the longest prompt, linear in k
between 1 and the batch, then over batch and γ as above; without it, prefill_ns_per_token per
prompt token.

Every look-up that leaves the measured ranges (a batch, γ, context or prompt length past the
grid, or an axis the table does not have) is counted per axis with a few examples
(`coverage()`): `aurora validate` reports them next to its errors.
"""

from __future__ import annotations

import bisect
import itertools
import json
from pathlib import Path

from aurora_sim.costs.shapes import RoundShape
from aurora_sim.errors import AuroraError

REQUIRED = (
    "gamma_grid",
    "batch_grid",
    "round_ns",
    "prefill_ns_per_token",
    "train_step_ns_per_token",
    "swap_publish_ns",
    "swap_pause_ns",
)


def _interp(xs: list[int], ys: list[float], x: float) -> float:
    """Piecewise-linear through (xs, ys), clamped below, extrapolated (slope >= 0) above."""
    if len(xs) == 1 or x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        slope = max(0.0, (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]))
        return ys[-1] + slope * (x - xs[-1])
    i = bisect.bisect_right(xs, x) - 1
    w = (x - xs[i]) / (xs[i + 1] - xs[i])
    return ys[i] + w * (ys[i + 1] - ys[i])


def _outside(axis: str, value: float, grid: list[int]) -> tuple[str, float, str] | None:
    """(axis, value, why) when value lies outside the grid's range (clamped or extrapolated)."""
    if value < grid[0]:
        return axis, value, f"below the grid ({grid[0]}..{grid[-1]}): clamped"
    if value > grid[-1]:
        return axis, value, f"above the grid ({grid[0]}..{grid[-1]}): extrapolated"
    return None


def _context(shape: RoundShape) -> float:
    """Mean cached tokens per row of a round."""
    return shape.context_tokens / shape.batch if shape.batch else 0.0


def _longest(shape: RoundShape) -> int:
    """The longest prompt admitted (unknown: the mean)."""
    return shape.prefill_max or -(-shape.prefill_tokens // max(1, shape.prefill_requests))


class ProfiledCost:
    EXAMPLES = 8  # out-of-table look-ups kept as examples (the first, one per axis and value)

    def __init__(self, table: dict, path: str = "<table>", train_unroll: int | None = None, swap: str = "in-place"):
        from aurora_sim.costs.swap import check

        self.path = path
        self.swap = check(swap)
        self.table = table
        self.gammas = [int(g) for g in table["gamma_grid"]]
        self.batches = [int(b) for b in table["batch_grid"]]
        self.rows = self._layer(table["round_ns"])
        by_context = table.get("round_ns_by_context")
        self.contexts = [int(c) for c in table.get("context_grid") or []] if by_context else []
        self.layers = [self._layer(by_context[str(c)]) for c in self.contexts]
        self.lengths = [int(n) for n in table.get("prefill_grid") or []] if table.get("admit_ns") else []
        self.admit = table.get("admit_ns") if self.lengths else None
        self.measured_unroll = int(table.get("train_unroll") or 1)
        self.train_unroll = train_unroll or self.measured_unroll
        self.name = f"profiled:{table.get('model', '?')}:{table.get('device', '?')}"
        self.reset_coverage()

    def _layer(self, rows: dict) -> dict[int, list[float]]:
        return {g: [float(rows[str(g)][str(b)]) for b in self.batches] for g in self.gammas}

    @classmethod
    def from_file(cls, path: str | Path, train_unroll: int | None = None, swap: str = "in-place") -> ProfiledCost:
        path = Path(path).expanduser()
        if not path.is_file():
            raise AuroraError(f"{path}: profile not found (write one with `aurora calibrate`)")
        try:
            table = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AuroraError(f"{path}: corrupt profile ({exc.__class__.__name__}: not JSON)") from None
        problem = validate_table(table)
        if problem:
            raise AuroraError(f"{path}: bad profile ({problem})")
        return cls(table, str(path), train_unroll, swap)

    def _row_at(self, rows: dict[int, list[float]], gamma: int, batch: float) -> float:
        if gamma in rows:
            row = rows[gamma]
        else:  # a γ off the grid: its row at every grid batch, kept non-decreasing in batch
            row, top = [], 0.0
            for j in range(len(self.batches)):
                top = max(top, _interp(self.gammas, [rows[g][j] for g in self.gammas], gamma))
                row.append(top)
        return _interp(self.batches, row, batch)

    def _steady(self, gamma: int, batch: int, context: float) -> float:
        if not self.contexts:
            return self._row_at(self.rows, gamma, batch)
        return _interp(self.contexts, [self._row_at(layer, gamma, batch) for layer in self.layers], context)

    def _admission(self, gamma: int, batch: int, k: int, length: float) -> float:
        """Extra ns of a round that admits k prompts, the longest `length` tokens."""

        def at(g: int, b: int) -> float:
            cell = self.admit[str(g)][str(b)]
            one = _interp(self.lengths, [float(cell["1"][str(n)]) for n in self.lengths], length)
            if b == 1:
                return one
            full = _interp(self.lengths, [float(cell[str(b)][str(n)]) for n in self.lengths], length)
            return one + (min(k, b) - 1) / (b - 1) * (full - one)

        per_batch = [_interp(self.gammas, [at(g, b) for g in self.gammas], gamma) for b in self.batches]
        return max(0.0, _interp(self.batches, per_batch, batch))

    def round_ns(self, shape: RoundShape) -> int:
        if shape.batch == 0 and shape.prefill_tokens == 0:
            return 0
        self._check(shape, _context(shape), _longest(shape))
        t = self.steady_ns(shape)
        if shape.draft_models > 1 and shape.gamma and shape.batch:
            # a second head's drafting, bounded by everything speculation adds to a plain round
            plain = self._steady(0, shape.batch, _context(shape))
            t += (shape.draft_models - 1) * max(0.0, t - plain)
        if shape.prefill_tokens:
            if self.admit is not None:
                k = max(1, shape.prefill_requests)
                t += self._admission(shape.gamma, max(shape.batch, k), k, _longest(shape))
            else:
                t += shape.prefill_tokens * float(self.table["prefill_ns_per_token"])
        return round(t)

    def steady_ns(self, shape: RoundShape) -> float:
        """The round's cost without its admissions (what calibrate subtracts from an admitting round)."""
        return self._steady(shape.gamma, shape.batch, _context(shape)) if shape.batch else 0.0

    # ---- coverage: which look-ups left the measured table ---------------------------------------
    def reset_coverage(self) -> None:
        self.lookups = 0
        self.lookups_outside = 0
        self.outside: dict[str, int] = {}
        self.outside_examples: list[dict] = []

    def _check(self, shape: RoundShape, context: float, length: int) -> None:
        self.lookups += 1
        found = []
        if shape.batch:
            found.append(_outside("batch", shape.batch, self.batches))
            found.append(_outside("gamma", shape.gamma, self.gammas))
            if self.contexts:
                found.append(_outside("context", round(context, 1), self.contexts))
            else:
                found.append(("context", round(context, 1), "not an axis of this table"))
        if shape.prefill_tokens:
            if self.lengths:
                found.append(_outside("prefill_length", length, self.lengths))
            else:
                found.append(("prefill_length", length, "not an axis of this table (linear per token)"))
        found = [f for f in found if f is not None]
        if not found:
            return
        self.lookups_outside += 1
        for axis, value, why in found:
            self.outside[axis] = self.outside.get(axis, 0) + 1
            seen = {(e["axis"], e["value"]) for e in self.outside_examples}
            if len(self.outside_examples) < self.EXAMPLES and (axis, value) not in seen:
                self.outside_examples.append(
                    {
                        "axis": axis,
                        "value": value,
                        "why": why,
                        "shape": {
                            "batch": shape.batch,
                            "gamma": shape.gamma,
                            "context_per_row": round(context, 1),
                            "prefill_requests": shape.prefill_requests,
                            "prefill_max": length if shape.prefill_tokens else 0,
                        },
                    }
                )

    def coverage(self) -> dict:
        """How many look-ups left the table since the last reset: per axis, with examples."""
        return {
            "lookups": self.lookups,
            "outside": self.lookups_outside,
            "by_axis": dict(sorted(self.outside.items())),
            "examples": list(self.outside_examples),
            "grid": {
                "gamma": self.gammas,
                "batch": self.batches,
                "context": self.contexts or None,
                "prefill_length": self.lengths or None,
            },
        }

    def train_step_ns(self, tokens: int) -> int:
        if tokens <= 0:
            return 0
        per_token = float(self.table["train_step_ns_per_token"]) * self.train_unroll / self.measured_unroll
        return round(float(self.table.get("train_step_fixed_ns", 0)) + per_token * tokens)

    def swap_ns(self) -> tuple[int, int]:
        """The table's measured publish and pause. A table measures one server's mechanism; one
        that measured an in-place copy apart (`swap_inplace_pause_ns`) gives it for in-place."""
        pause = self.table["swap_pause_ns"]
        if self.swap == "in-place":
            pause = self.table.get("swap_inplace_pause_ns", pause)
        return int(self.table["swap_publish_ns"]), int(pause)

    def describe(self) -> dict:
        meta = {k: v for k, v in self.table.items() if k != "round_ns"}
        return {
            "kind": "profiled",
            "name": self.name,
            "units": "ns (int)",
            "path": self.path,
            "train_unroll": self.train_unroll,
            "swap_mechanism": self.swap,
            "round_ns": self.table["round_ns"],
            "lookup": "linear in batch (clamped below, extrapolated above), linear in γ; "
            + ("linear in context per row" if self.contexts else "context not an axis")
            + ("; admissions by (γ, batch, k, longest prompt)" if self.admit else "; prefill per token"),
            **{f"table_{k}": v for k, v in meta.items()},
        }


def validate_table(t) -> str | None:
    """The first problem with a profile table, or None."""
    return next(_problems(t), None)


def _problems(t):
    if not isinstance(t, dict):
        yield "top level must be a JSON object"
        return
    if t.get("kind") != "profiled":
        yield f"kind must be 'profiled', got {t.get('kind')!r}"
    missing = [k for k in REQUIRED if k not in t]
    if missing:
        yield f"missing fields {', '.join(missing)}"
        return
    for key in ("gamma_grid", "batch_grid"):
        yield from filter(None, [_check_grid(t[key], key)])
    if t["batch_grid"][0] < 1:
        yield "batch_grid values must be >= 1"
    grids = {k: t[k] for k in ("gamma_grid", "batch_grid")}
    yield from filter(None, [_check_layer(t["round_ns"], grids, "round_ns")])
    if "round_ns_by_context" in t:
        yield from filter(None, [_check_grid(t.get("context_grid"), "context_grid")])
        layers = t["round_ns_by_context"] if isinstance(t["round_ns_by_context"], dict) else {}
        for c in t["context_grid"]:
            yield from filter(None, [_check_layer(layers.get(str(c)), grids, f"round_ns_by_context[{c}]")])
    if "admit_ns" in t:
        yield from filter(None, [_check_grid(t.get("prefill_grid"), "prefill_grid")])
        for g in grids["gamma_grid"]:
            for b in grids["batch_grid"]:
                for k in sorted({1, b}):
                    for n in t["prefill_grid"]:
                        v = _dig(t["admit_ns"], g, b, k, n)
                        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                            yield f"admit_ns[{g}][{b}][{k}][{n}] must be a non-negative number, got {v!r}"
    for key in ("prefill_ns_per_token", "train_step_ns_per_token", "swap_publish_ns", "swap_pause_ns"):
        v = t[key]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            yield f"{key} must be a non-negative number, got {v!r}"


def _dig(d, *keys):
    """d[str(k0)][str(k1)]..., None where a level is missing or not a mapping."""
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(str(k))
    return d


def _check_grid(grid, key: str) -> str | None:
    if not isinstance(grid, list) or not grid or not all(isinstance(x, int) and x >= 0 for x in grid):
        return f"{key} must be a non-empty list of non-negative ints"
    if sorted(set(grid)) != grid:
        return f"{key} must be strictly increasing"
    return None


def _check_layer(table, grids: dict, name: str) -> str | None:
    """The first problem with a {gamma: {batch: ns}} layer, or None."""
    if not isinstance(table, dict):
        return f"{name} must map gamma -> {{batch: ns}}"
    for g in grids["gamma_grid"]:
        row = table.get(str(g))
        if not isinstance(row, dict):
            return f"{name} has no row for gamma {g}"
        values = []
        for b in grids["batch_grid"]:
            v = row.get(str(b))
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                return f"{name}[{g}][{b}] must be a non-negative number, got {v!r}"
            values.append(v)
        if any(b < a for a, b in itertools.pairwise(values)):
            return f"{name}[{g}] decreases with batch ({values})"
    return None
