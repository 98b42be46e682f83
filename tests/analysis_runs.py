"""Real replays shared by the test_analysis_* modules (made once per session, on first use).

A 64-request trace with one shift (32 code, then 32 chat; closed loop of 8) replayed as the four
arms of `aurora replay --compare` (no-spec, static from the 40-step trained head, online-static,
online-scratch) on the proxy deployment, whose small draft swaps often in a short run, plus a
from-scratch run whose rollback guard always fires ("rollback").
"""

from __future__ import annotations

import functools
from pathlib import Path

ARMS = ("no-spec", "static", "online-static", "online-scratch")
PER_SEGMENT = 32
W = 8  # a rolling window that fits the 32-request segments


@functools.cache
def make_runs(root: Path, static_head: Path) -> dict[str, Path]:
    import traces
    from aurora_sim.replay.compare import arm_config
    from aurora_sim.replay.config import ReplayConfig
    from aurora_sim.replay.loop import Replay
    from traces.config import TraceConfig
    from traces.io import write_trace

    root.mkdir(parents=True, exist_ok=True)
    cfg = TraceConfig.from_dict(
        {
            "name": "two-domains",
            "seed": 0,
            "schedule": {
                "kind": "ordered",
                "segments": [{"domain": "code", "requests": PER_SEGMENT}, {"domain": "chat", "requests": PER_SEGMENT}],
            },
            "arrivals": {"kind": "closed", "concurrency": 8},
            "prompts": {"max_chars": 160, "min_chars": 16, "kinds": {"code": {"function": 0.5, "continue": 0.5}}},
            "sampling": {"max_new_tokens": 24},
        }
    )
    frame, config = traces.generate_trace(cfg)
    trace = write_trace(frame, root / "two-domains.parquet", config)
    # lr 1e-3 from the static head too (the fast recipe's 1e-4 adapts too slowly to recover
    # within these 32-request segments, which the recovery views are checked on)
    base = ReplayConfig(trace=str(trace), deployment="proxy", flush_every=16).with_(
        learner_batch_requests=4, learner_min_new=4, controller_every=2, learner_lr_finetune=None
    )
    out = {}
    for arm in ARMS:
        Replay(arm_config(base, arm, static=str(static_head)), root / arm).run()
        out[arm] = root / arm
    # not an arm: a from-scratch run whose rollback guard is rigged to fire (as test_replay_invariants)
    rigged = arm_config(base, "online-scratch").with_(
        controller_rollback=True, controller_rollback_window=4, controller_rollback_margin=-1.0
    )
    Replay(rigged, root / "rollback").run()
    out["rollback"] = root / "rollback"
    return out
