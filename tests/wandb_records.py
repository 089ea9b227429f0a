"""Read what an offline W&B run recorded about itself (name, group, tags, project) from its ``.wandb`` log.

The log uses LevelDB's log format: a 7-byte file header (``:W&B``, version), then 32 KiB blocks of records, each
a 7-byte header (CRC-32, little-endian length, type: 1 full, 2 first, 3 middle, 4 last fragment) and its bytes; a
block's tail shorter than a header is padding. Each record is a protobuf ``Record``; the run record comes early.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7


def wandb_records(run_dir: Path, limit: int = 200) -> list:
    """The first ``limit`` protobuf records of an offline run's ``run-*.wandb`` file."""
    from wandb.proto import wandb_internal_pb2 as pb

    (log,) = Path(run_dir).glob("run-*.wandb")
    data = log.read_bytes()
    assert data[:4] == b":W&B", data[:4]
    records, at, pending = [], HEADER, b""
    while at + HEADER <= len(data) and len(records) < limit:
        if BLOCK - at % BLOCK < HEADER:  # padding at the end of a block
            at += BLOCK - at % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[at : at + HEADER])
        if kind == 0:
            break
        pending += data[at + HEADER : at + HEADER + length]
        at += HEADER + length
        if kind in (1, 4):  # a whole record
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_run_record(run_dir: Path, wait: float = 30.0):
    """The ``RunRecord`` of an offline run directory (``.../wandb/offline-run-*``).

    W&B's service process writes the log and may still be flushing it when a command that ran W&B has exited: the
    file is read again for up to ``wait`` seconds until the run record is there.
    """
    deadline = time.monotonic() + wait
    while True:
        runs = [r.run for r in wandb_records(run_dir) if r.WhichOneof("record_type") == "run"]
        if runs or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert runs, f"no run record in {run_dir}"
    return runs[0]
