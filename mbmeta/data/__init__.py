"""Episodes with their task parameters, in memory and on disk.

:class:`EpisodeBuffer` holds episodes and reads and writes the ``.npz`` file ``mbmeta fit`` reads (the format is in
``docs/data_format.md``); :class:`EpisodeRecorder` builds episodes step by step from vector environments.

Importing it pulls in no simulator and no Lightning.
"""

from mbmeta.data.buffer import FORMAT_NAME, FORMAT_VERSION, BufferFormatError, EpisodeBuffer
from mbmeta.data.recorder import EpisodeRecorder

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "BufferFormatError", "EpisodeBuffer", "EpisodeRecorder"]
