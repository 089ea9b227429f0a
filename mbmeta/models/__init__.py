"""Meta-learned dynamics models: ensembles, normaliser, reward net, adapters and the adaptable dynamics model."""

from mbmeta.models.dynamics import AdaptedModel, MetaDynamicsModel
from mbmeta.models.ensemble import EnsembleLinear, EnsembleMLP
from mbmeta.models.gaussian import GaussianHead, gaussian_nll
from mbmeta.models.normaliser import Normaliser, transition_statistics
from mbmeta.models.reward import RewardNet

__all__ = [
    "AdaptedModel",
    "EnsembleLinear",
    "EnsembleMLP",
    "GaussianHead",
    "MetaDynamicsModel",
    "Normaliser",
    "RewardNet",
    "gaussian_nll",
    "transition_statistics",
]
