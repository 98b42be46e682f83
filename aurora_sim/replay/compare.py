"""`aurora replay --compare`: the paper's four arms on one trace, under one cost model.

    no-spec         target-only decoding (the speedup baseline)
    static          the offline-trained static draft, frozen (a "well-trained static speculator")
    online-static   Aurora trained: starts from the static draft and keeps learning
    online-scratch  Aurora scratch (day-0): starts from an untrained draft and learns live
and, by name (not one of --compare's four):
    two-draft       the static draft frozen as a floor beside an online copy of it learning;
                    each domain drafted by the online head once it beats the floor there
                    (controller/router.py)
Each arm is its own run directory under OUT; the comparison is written to OUT/compare.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.summary import speedups, summarize

ARMS = ("no-spec", "static", "online-static", "online-scratch")
NAMED_ARMS = (*ARMS, "two-draft")  # what a sweep's `arm:` and arm_config take


def arm_config(base: ReplayConfig, arm: str, static: str = "static") -> ReplayConfig:
    """`static`: the static arms' draft ("static" = the offline recipe's, or a draft directory)."""
    if arm == "no-spec":
        return base.with_(init="none", learner_enabled=False)
    if arm == "static":
        return base.with_(init=static, learner_enabled=False)
    if arm == "online-static":
        return base.with_(init=static, learner_enabled=True)
    if arm == "online-scratch":
        return base.with_(init="scratch", learner_enabled=True)
    if arm == "two-draft":
        return base.with_(init=static, learner_enabled=True, floor_draft=static)
    raise ValueError(arm)


def add_speedups(summaries: dict[str, dict]) -> None:
    base = {k: summaries.get(k) for k in ("no-spec", "static")}
    for name, s in summaries.items():
        s.update(speedups(s, {k: v for k, v in base.items() if k != name}))


def run_compare(base: ReplayConfig, out: Path, run_one, arms=ARMS, static: str = "static") -> dict:
    """run_one(config, run_dir, label) performs one replay (the CLI passes one with a progress bar)."""
    out = Path(out)
    summaries = {}
    for arm in arms:
        run_one(arm_config(base, arm, static), out / arm, arm)
        summaries[arm] = summarize(out / arm)
    add_speedups(summaries)
    result = {"arms": summaries, "trace": base.trace, "seed": base.seed}
    (out / "compare.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    return result
