"""Virtual time: what each engine round, trainer step and draft swap would cost on a modelled
deployment, so a CPU replay of proxy models yields an H100's timeline.

    cost = make_cost_model("h100", "llama3-8b")
    cost.round_ns(RoundShape.steady(batch=8, gamma=5, context_per_row=512, accept_len=3.5))
"""

from aurora_sim.costs.analytic import AnalyticCost
from aurora_sim.costs.deployments import DEPLOYMENTS, Deployment
from aurora_sim.costs.factory import make_cost_model
from aurora_sim.costs.hardware import HARDWARE, HardwareSpec
from aurora_sim.costs.profiled import ProfiledCost
from aurora_sim.costs.protocol import CostModel
from aurora_sim.costs.shapes import ModelShape, RoundShape
from aurora_sim.costs.speedup import implied_speedup

__all__ = [
    "DEPLOYMENTS",
    "HARDWARE",
    "AnalyticCost",
    "CostModel",
    "Deployment",
    "HardwareSpec",
    "ModelShape",
    "ProfiledCost",
    "RoundShape",
    "implied_speedup",
    "make_cost_model",
]
