"""`aurora regress`: replay the CI scenario's arms and compare their numbers with committed
baselines (baselines/<scenario>.json), within stated tolerances.

Only a change for the worse beyond its tolerance fails: lower acceptance length or speedup,
more recovery requests, a higher final learner loss. Replays are deterministic, so on one
machine the numbers repeat exactly; the tolerances absorb what other CPUs or torch builds may
flip (a greedy argmax tie here and there). `--update --reason "…"` rewrites the baseline and
appends the reason to its history.
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
    "acceptance_length": (+1, "rel", 0.03),
    "speedup": (+1, "rel", 0.03),
    "recovery_requests": (-1, "abs", 25),
    "final_loss": (-1, "rel", 0.15),
}


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


def baseline_path(directory: Path, scenario: str, build: str | None = None) -> Path:
    """`<scenario>.<build>.json` where one was recorded for this model build (`build`: the tiny
    target's identity, 16 hex digits); else `<scenario>.json`, or `<scenario>.tiny-fp32.json`
    where the tiny tier is built without bf16 autocast (CPUs without native bf16). The tiny build
    is deterministic on one kind of CPU but not across kinds (measured: two x86 machines with
    native bf16 built targets 0.02 apart in held-out loss, and static drafts 0.5 apart in AL), so
    a baseline only means something for the build it was recorded with."""
    from aurora_sim.models.tiny import recipe

    if build:
        own = Path(directory) / f"{scenario}.{build}.json"
        if own.is_file():
            return own
    flavour = "" if recipe()["train"]["autocast_bf16"] else ".tiny-fp32"
    return Path(directory) / f"{scenario}{flavour}.json"


def current_build(model: str = "tiny") -> str | None:
    """The built target's identity (16 hex digits), or None when it is not built yet."""
    from aurora_sim.models.registry import resolve_model
    from aurora_sim.replay.trajectories import model_identity

    try:
        return model_identity(resolve_model(model, build=False))[:16]
    except Exception:  # not built (or not a model directory): the generic baseline applies
        return None


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
    data = {
        "scenario": config["trace"],
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
