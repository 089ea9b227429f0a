"""Read what an offline W&B run recorded about itself (name, group, tags, project) from its ``.wandb`` log.

The log is a sequence of 32 KiB blocks of records, each record a 7-byte header (CRC-32, little-endian length,
type) and a protobuf ``Record``; the run record comes first, well inside the first block.
"""

from __future__ import annotations

import struct
from pathlib import Path

HEADER = 7  # file header ":W&B" + version (2 bytes) + 1; then each record's header is 7 bytes too


def wandb_records(run_dir: Path) -> list:
    """The protobuf records of the first block of an offline run's ``run-*.wandb`` file."""
    from wandb.proto import wandb_internal_pb2 as pb

    (log,) = Path(run_dir).glob("run-*.wandb")
    data = log.read_bytes()[: 32 * 1024]
    assert data[:4] == b":W&B", data[:4]
    records, at = [], HEADER
    while at + HEADER <= len(data):
        _crc, length, kind = struct.unpack("<IHB", data[at : at + HEADER])
        if length == 0 or kind != 1:  # only FULL records (the run record is small)
            break
        record = pb.Record()
        record.ParseFromString(data[at + HEADER : at + HEADER + length])
        records.append(record)
        at += HEADER + length
    return records


def wandb_run_record(run_dir: Path):
    """The ``RunRecord`` of an offline run directory (``.../wandb/offline-run-*``)."""
    runs = [r.run for r in wandb_records(run_dir) if r.WhichOneof("record_type") == "run"]
    assert runs, f"no run record in {run_dir}"
    return runs[0]
