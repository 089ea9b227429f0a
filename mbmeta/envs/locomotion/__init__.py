"""Locomotion task families over Gymnasium v5 MuJoCo robots (HalfCheetah, Hopper, Ant, Humanoid).

Importing this package registers every family and its ``mbmeta/<Name>-v0`` Gymnasium id. Each environment's
observation is its Gymnasium counterpart's (slimmed for the Ant and Humanoid) with the step's forward velocity
appended, so that each family's batched torch ``reward``/``terminated`` equal what ``env.step`` returns.
"""

from mbmeta.envs.locomotion import ant, halfcheetah, hopper, humanoid

__all__ = ["ant", "halfcheetah", "hopper", "humanoid"]
