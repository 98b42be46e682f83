"""`aurora regress`: replay the CI scenario's arms and compare their numbers with committed
baselines (baselines/<scenario>.json), within stated tolerances.

Only a change for the worse beyond its tolerance fails: lower acceptance length or speedup,
more recovery requests, a higher final learner loss. Replays are deterministic, so on one
machine the numbers repeat exactly, and every machine replays the same shipped reference build
(aurora_sim/reference), so the tolerances only absorb what another CPU's arithmetic could move on
the same bytes: benchmarks/bench_reference_noise.py measured 0 on every metric under ATen's
AVX-512, AVX2 and scalar kernels, MKL's and oneDNN's AVX2 paths and one thread; the margins
below leave room for a greedy argmax tie flipped on a kernel kind not tried (docs/reference.md).
`--update --reason "…"` rewrites the baseline and appends the reason to its history.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from aurora_sim.errors import AuroraError

SCENARIO = "shift-mini"
# metric family -> (direction, kind, tolerance): direction +1 = higher is better
TOLERANCES = {
    "acceptance_length": (+1, "rel", 0.01),
    "speedup": (+1, "rel", 0.01),
    "recovery_requests": (-1, "abs", 10),
    "final_loss": (-1, "rel", 0.05),
}


def describe_tolerances() -> str:
    """One line for tables and docs, derived from TOLERANCES so the two cannot drift."""
    names = {
        "acceptance_length": "AL",
        "speedup": "speedup",
        "recovery_requests": "recovery",
        "final_loss": "final loss",
    }
    parts = []
    for fam, (direction, kind, tol) in TOLERANCES.items():
        sign = "-" if direction > 0 else "+"
        amount = f"{tol * 100:g} % rel" if kind == "rel" else f"{tol:g} requests"
        parts.append(f"{names.get(fam, fam)} {sign}{amount}")
    return ", ".join(parts)


@dataclass
class Verdict:
    metric: str
    baseline: float | None
    now: float | None
    verdict: str  # ok | improved | REGRESSION | new | missing


def collect_metrics(summaries: dict[str, dict]) -> dict[str, float | None]:
    """The numbers a regression is judged on, flat: 'arm/metric' -> value."""
    m: dict[str, float | None] = {}
    for arm, s in summaries.items():
        if arm == "no-spec":
            continue
        for seg in s["segments"]:
            m[f"{arm}/acceptance_length/seg{seg['segment']}_{seg['domain']}"] = seg["acceptance_length"]
        for base in ("no-spec", "static"):
            if f"speedup_vs_{base}" in s:
                m[f"{arm}/speedup/vs_{base}"] = s[f"speedup_vs_{base}"]
        if arm.startswith("online"):
            for sh in s["shifts"]:
                m[f"{arm}/recovery_requests/shift@{sh['shift_at']}"] = sh["recovery_requests"]
            m[f"{arm}/final_loss"] = s["final_loss"]
    return m


def _family(metric: str) -> str:
    return metric.split("/")[1]


def judge(baseline: dict, now: dict) -> list[Verdict]:
    out = []
    for metric in sorted(set(baseline) | set(now)):
        b, n = baseline.get(metric), now.get(metric)
        if metric not in baseline:
            out.append(Verdict(metric, None, n, "new"))
            continue
        if metric not in now:
            out.append(Verdict(metric, b, None, "missing"))
            continue
        direction, kind, tol = TOLERANCES[_family(metric)]
        if b is None or n is None:
            # None = not recovered / not measurable: losing a number is a regression only for
            # recovery (never recovering is worse than recovering late)
            bad = b is not None and n is None and _family(metric) == "recovery_requests"
            good = b is None and n is not None and _family(metric) == "recovery_requests"
            out.append(Verdict(metric, b, n, "REGRESSION" if bad else "improved" if good else "ok"))
            continue
        slack = tol * abs(b) if kind == "rel" else tol
        delta = (n - b) * direction
        verdict = "REGRESSION" if delta < -slack else "improved" if delta > slack else "ok"
        out.append(Verdict(metric, b, n, verdict))
    return out


def baseline_path(directory: Path, scenario: str) -> Path:
    """`<scenario>.json`: one baseline, for the reference build (aurora_sim.reference), which is the
    same bytes on every machine. What is left between machines is kernel rounding, which the
    tolerances absorb (docs/reference.md measured it)."""
    return Path(directory) / f"{scenario}.json"


def check_reference(data: dict, path: Path) -> None:
    """A baseline is for one reference version: another one is a different model."""
    from aurora_sim import reference

    recorded = data.get("reference")
    if recorded != reference.version():
        raise AuroraError(
            f"{path}: baseline was recorded on reference build {recorded}, this package ships {reference.version()} "
            '(re-record it: aurora regress --update --reason "...")'
        )


def load_baseline(path: Path) -> tuple[dict, dict]:
    """(metrics, the whole baseline file)."""
    if not path.is_file():
        raise AuroraError(f'{path}: no baseline (run `aurora regress --update --reason "first baseline"`)')
    try:
        data = json.loads(path.read_text())
        return data["metrics"], data
    except (ValueError, KeyError) as exc:
        raise AuroraError(f"{path}: unreadable baseline ({exc})") from None


def write_baseline(path: Path, metrics: dict, config: dict, reason: str, previous: dict | None) -> None:
    from traces.io import publish

    history = list((previous or {}).get("history", []))
    history.append({"date": datetime.date.today().isoformat(), "reason": reason})
    from aurora_sim import reference

    data = {
        "scenario": config["trace"],
        "reference": reference.version(),
        "config": config,
        "tolerances": TOLERANCES,
        "metrics": metrics,
        "history": history,
        "note": "written by `aurora regress --update`; the reason is required",
    }
    publish(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def run_arms(base, out: Path, run_one, static: str = "static") -> dict[str, dict]:
    """The four arms' summaries, with speedups (`aurora replay --compare`'s runs)."""
    from aurora_sim.replay.compare import run_compare

    return run_compare(base, out, run_one, static=static)["arms"]


def parse_overrides(items: list[str]) -> dict:
    """--set learner_lr=0 controller_every=1000 -> ReplayConfig.with_ keyword arguments."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise AuroraError(f"--set {item!r}: expected KEY=VALUE (e.g. learner_lr=0)")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out
