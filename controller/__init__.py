"""The hot-swap controller: swap policies, rollback, and the draft version registry.

It sees only typed observations built from events the serving side already emitted
(observation.py) and answers with decisions (decisions.py); it never touches an engine. The
replay applies its decisions at round boundaries; the live runner (a later issue) will apply
the same decisions through a server's weight-update endpoint. Nothing here imports the trace
package or the replay: a test checks that.
"""

from controller.decisions import Decision, Hold, Rollback, Swap
from controller.observation import CandidateInfo, Observation, ObservationBuilder
from controller.policies import Controller, make_controller

__all__ = [
    "CandidateInfo",
    "Controller",
    "Decision",
    "Hold",
    "Observation",
    "ObservationBuilder",
    "Rollback",
    "Swap",
    "make_controller",
]
