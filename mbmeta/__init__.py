"""mbmeta: model-based meta-reinforcement learning with learned dynamics."""

__version__ = "0.1.0"

from mbmeta.threads import configure_threads as configure_threads  # noqa: E402
