"""Reference-protocol families: CaDM's tasks (Lee, Seo et al., ICML 2020), reproduced from its public code.

Importing this package registers ``cadm_pendulum``, ``cadm_cartpole``, ``cadm_halfcheetah``,
``cadm_crippled_halfcheetah``, ``cadm_ant`` and ``cadm_slim_humanoid`` (``mbmeta/CaDM<Name>-v0``). Each reproduces
CaDM's dynamics, varied parameters, train set, test conditions (``c0``, ``c1``, ... with their moderate/extreme
groups), start states, observation, reward, termination, episode length and action normalisation; the notes of
each family (``docs/task_families.md``) list what differs and why.
"""

import importlib

# Registration order is the order `mbmeta envs` lists them in (CaDM's Table 1 order).
MODULES: tuple[str, ...] = ("pendulum", "cartpole", "halfcheetah", "ant", "humanoid")

for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")
