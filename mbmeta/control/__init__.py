"""Control: the rollout objective (model -> objective) and the MPC agent that plugs into any control loop."""

from mbmeta.control.agent import MPCAgent
from mbmeta.control.objective import PRECISIONS, PROPAGATIONS, Precision, Propagation, RolloutObjective

__all__ = ["PRECISIONS", "PROPAGATIONS", "MPCAgent", "Precision", "Propagation", "RolloutObjective"]
