"""Task families (MuJoCo Gymnasium environments with varied physics) and their exact reward functions.

``import mbmeta.envs`` registers every shipped family's environment with Gymnasium (``mbmeta/<Name>-v0``).
Your own robot: :class:`MujocoFieldFamily` turns a Gymnasium MuJoCo env into a family without environment code, and
``get_family("package.module:NAME")`` (or an entry point of the ``mbmeta.families`` group) finds families defined
outside mbmeta; see ``docs/bring_your_own_robot.md``.
"""

from mbmeta.envs.family import Choice, Condition, Interval, Parameter, TaskFamily, TaskParams
from mbmeta.envs.mujoco_fields import Field, FieldTaskEnv, MujocoFieldFamily
from mbmeta.envs.registry import ENTRY_POINT_GROUP, families, family_reference, get_family, register_family

# Import every shipped family module so that gymnasium.make("mbmeta/...") works after `import mbmeta.envs` (installed
# packages' families load when asked for: get_family(name), families()).
families(installed=False)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Choice",
    "Condition",
    "Field",
    "FieldTaskEnv",
    "Interval",
    "MujocoFieldFamily",
    "Parameter",
    "TaskFamily",
    "TaskParams",
    "families",
    "family_reference",
    "get_family",
    "register_family",
]
