"""Everything that defines a live run (stored whole in runs.config_json, the API key excepted)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aurora_sim.replay.config import ControllerConfig, LearnerConfig

TIME_BASE = "wall-clock ns since the live run started (not virtual time)"


@dataclass(frozen=True)
class LiveConfig:
    server: str = "http://127.0.0.1:30000"
    trace: str = "shift-ci"
    limit: int | None = None
    concurrency: int = 8  # closed loop: requests in flight
    model: str = "tiny"  # the learner's own copy of the target (must be the server's)
    draft: str = "eagle3"
    init: str = "static"  # the draft the learner starts from (the server is synced to it first)
    gamma: int = 4  # used when the server does not report its own
    seed: int = 0
    weights_dir: str = "runs/live-weights"  # shared with the server's --weights-dir
    learning: bool = True
    timeout_s: float = 60.0
    retries: int = 4
    backoff_s: float = 0.2
    backoff_max_s: float = 5.0
    ready_timeout_s: float = 60.0
    flush_every: int = 200
    keep_versions: int = 3
    profile: str | None = None  # an `aurora calibrate` table: prices swaps for the payoff policy
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)

    def to_json(self) -> str:
        d = asdict(self)
        if d["profile"] is None:  # (a run without one keeps the config and run id of before)
            del d["profile"]
        if self.learner.discard == "branch":
            del d["learner"]["discard"]
        d["time_base"] = TIME_BASE
        d["mode"] = "live"
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    def run_id(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @property
    def weights_path(self) -> Path:
        return Path(self.weights_dir)
