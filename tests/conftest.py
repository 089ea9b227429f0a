"""Test-session setup: offscreen MuJoCo rendering, offline W&B, one torch thread (tests share 2 cores)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import torch  # noqa: E402

torch.set_num_threads(1)
