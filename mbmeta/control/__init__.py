"""Control: the rollout objective (model -> objective) and the MPC agent that plugs into any control loop."""

from mbmeta.control.agent import MPCAgent
from mbmeta.control.objective import PROPAGATIONS, Propagation, RolloutObjective

__all__ = ["PROPAGATIONS", "MPCAgent", "Propagation", "RolloutObjective"]
