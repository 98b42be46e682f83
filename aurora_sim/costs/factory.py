"""make_cost_model: hardware and deployment names (or a profile file) to a CostModel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aurora_sim.costs.analytic import AnalyticCost
from aurora_sim.costs.deployments import resolve_deployment
from aurora_sim.costs.hardware import get_hardware
from aurora_sim.costs.profiled import ProfiledCost
from aurora_sim.costs.protocol import CostModel
from aurora_sim.errors import AuroraError

if TYPE_CHECKING:
    from aurora_sim.models.llama import LlamaSpec


def make_cost_model(
    hardware: str = "h100",
    deployment: str = "llama3-8b",
    *,
    proxy_target: LlamaSpec | None = None,
    proxy_draft_kind: str = "eagle3",
    train_unroll: int = 5,
    profile_path: str | Path | None = None,
    swap: str = "in-place",
    max_batch: int = 8,
) -> CostModel:
    """`hardware`: h100, h200, a100, cpu, or profiled (then `profile_path` is a table written by
    calibrate, and `deployment` is ignored: the table was measured on its own models).
    `deployment`: a named deployment, `proxy` (cost the proxy models; needs `proxy_target`), or
    a JSON deployment file. `swap`: how a new draft goes live (costs/swap.py), priced at the
    server's `max_batch`."""
    if hardware == "profiled":
        if profile_path is None:
            raise AuroraError("hardware 'profiled' needs a profile file (profile_path / --profile)")
        return ProfiledCost.from_file(profile_path, train_unroll=train_unroll, swap=swap)
    hw = get_hardware(hardware)
    dep = resolve_deployment(deployment, proxy_target, proxy_draft_kind)
    return AnalyticCost(hw, dep, train_unroll=train_unroll, swap=swap, max_batch=max_batch)
