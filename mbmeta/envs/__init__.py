"""Task families (MuJoCo Gymnasium environments with varied physics) and their exact reward functions.

``import mbmeta.envs`` registers every family's environment with Gymnasium (``mbmeta/<Name>-v0``).
"""

from mbmeta.envs.family import Choice, Interval, Parameter, TaskFamily, TaskParams
from mbmeta.envs.registry import families, get_family, register_family

families()  # import every family module so that gymnasium.make("mbmeta/...") works after `import mbmeta.envs`

__all__ = [
    "Choice",
    "Interval",
    "Parameter",
    "TaskFamily",
    "TaskParams",
    "families",
    "get_family",
    "register_family",
]
