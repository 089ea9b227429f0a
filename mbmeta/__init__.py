"""mbmeta: model-based meta-reinforcement learning with learned dynamics."""

__version__ = "0.1.0"
