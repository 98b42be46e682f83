"""A cost model read from a measured table (written by aurora_sim.costs.calibrate).

Table (JSON):
    {"kind": "profiled", "device", "model", "draft", "gamma_grid": [..], "batch_grid": [..],
     "round_ns": {"<gamma>": {"<batch>": ns}},   every grid point; non-decreasing in batch
     "prefill_ns_per_token", "train_step_ns_per_token", "swap_publish_ns", "swap_pause_ns",
     "measured_at": ISO date, "torch": version,
     optional: "train_step_fixed_ns", "train_unroll", "context_per_row", "accept_len", ...}

Lookup, for (γ, batch): linear interpolation on batch between grid points; below the smallest
batch the first value (clamped); above the largest, linear extrapolation along the last segment
(never downward). A γ between grid values interpolates linearly between the two rows; a γ past
the largest extrapolates along the last two rows the same way; below the smallest it clamps.
Context length is not a table axis: rounds cost what they cost at the calibration's context
(`context_per_row`). Prefill adds prefill_ns_per_token per prompt token.
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


class ProfiledCost:
    def __init__(self, table: dict, path: str = "<table>", train_unroll: int | None = None):
        self.path = path
        self.table = table
        self.gammas = [int(g) for g in table["gamma_grid"]]
        self.batches = [int(b) for b in table["batch_grid"]]
        self.rows = {g: [float(table["round_ns"][str(g)][str(b)]) for b in self.batches] for g in self.gammas}
        self.measured_unroll = int(table.get("train_unroll") or 1)
        self.train_unroll = train_unroll or self.measured_unroll
        self.name = f"profiled:{table.get('model', '?')}:{table.get('device', '?')}"

    @classmethod
    def from_file(cls, path: str | Path, train_unroll: int | None = None) -> ProfiledCost:
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
        return cls(table, str(path), train_unroll)

    def _row_at(self, gamma: int, batch: int) -> float:
        if gamma in self.rows:
            row = self.rows[gamma]
        else:  # a γ off the grid: its row at every grid batch, kept non-decreasing in batch
            row, top = [], 0.0
            for j in range(len(self.batches)):
                top = max(top, _interp(self.gammas, [self.rows[g][j] for g in self.gammas], gamma))
                row.append(top)
        return _interp(self.batches, row, batch)

    def round_ns(self, shape: RoundShape) -> int:
        if shape.batch == 0 and shape.prefill_tokens == 0:
            return 0
        t = self._row_at(shape.gamma, shape.batch) if shape.batch else 0.0
        t += shape.prefill_tokens * float(self.table["prefill_ns_per_token"])
        return round(t)

    def train_step_ns(self, tokens: int) -> int:
        if tokens <= 0:
            return 0
        per_token = float(self.table["train_step_ns_per_token"]) * self.train_unroll / self.measured_unroll
        return round(float(self.table.get("train_step_fixed_ns", 0)) + per_token * tokens)

    def swap_ns(self) -> tuple[int, int]:
        return int(self.table["swap_publish_ns"]), int(self.table["swap_pause_ns"])

    def describe(self) -> dict:
        meta = {k: v for k, v in self.table.items() if k != "round_ns"}
        return {
            "kind": "profiled",
            "name": self.name,
            "units": "ns (int)",
            "path": self.path,
            "train_unroll": self.train_unroll,
            "round_ns": self.table["round_ns"],
            "lookup": "linear in batch (clamped below, extrapolated above), linear in γ; context not an axis",
            **{f"table_{k}": v for k, v in meta.items()},
        }


def validate_table(t) -> str | None:
    """The first problem with a profile table, or None."""
    if not isinstance(t, dict):
        return "top level must be a JSON object"
    if t.get("kind") != "profiled":
        return f"kind must be 'profiled', got {t.get('kind')!r}"
    missing = [k for k in REQUIRED if k not in t]
    if missing:
        return f"missing fields {', '.join(missing)}"
    grids = {}
    for key in ("gamma_grid", "batch_grid"):
        grid = t[key]
        if not isinstance(grid, list) or not grid or not all(isinstance(x, int) and x >= 0 for x in grid):
            return f"{key} must be a non-empty list of non-negative ints"
        if sorted(set(grid)) != grid:
            return f"{key} must be strictly increasing"
        grids[key] = grid
    if grids["batch_grid"][0] < 1:
        return "batch_grid values must be >= 1"
    table = t["round_ns"]
    if not isinstance(table, dict):
        return "round_ns must map gamma -> {batch: ns}"
    for g in grids["gamma_grid"]:
        row = table.get(str(g))
        if not isinstance(row, dict):
            return f"round_ns has no row for gamma {g}"
        values = []
        for b in grids["batch_grid"]:
            v = row.get(str(b))
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                return f"round_ns[{g}][{b}] must be a non-negative number, got {v!r}"
            values.append(v)
        if any(b < a for a, b in itertools.pairwise(values)):
            return f"round_ns[{g}] decreases with batch ({values})"
    for key in ("prefill_ns_per_token", "train_step_ns_per_token", "swap_publish_ns", "swap_pause_ns"):
        v = t[key]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            return f"{key} must be a non-negative number, got {v!r}"
    return None
