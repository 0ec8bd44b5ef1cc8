"""Read an offline wandb run file without ``wandb sync`` (tests only: the format is wandb's
internal one)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any


def read_offline_run(path: str | Path, timeout: float = 30.0) -> dict[str, Any]:
    """Read an offline run's ``run-<id>.wandb`` file (LevelDB-log framed protobuf records):
    ``{"id", "group", "name", "tags", "config": {key: json}, "history": [{key: json}],
    "exit_code"}``.

    For tests and inspection without ``wandb sync``; the format is wandb's internal one.
    wandb's service process may still be writing the file after ``finish()`` returns: wait up
    to ``timeout`` seconds for the exit record, reading again when a record is half written.
    """
    import time

    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + timeout
    while True:
        try:
            out = _parse_offline_run(Path(path).read_bytes())
        except DecodeError:  # read while a record was half written: read it again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        if "exit_code" in out or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _parse_offline_run(data: bytes) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
    out: dict[str, Any] = {"config": {}, "history": []}
    for raw in records:
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out.update(
                id=run.run_id, group=run.run_group, name=run.display_name, tags=list(run.tags)
            )
        elif kind == "config":
            out["config"].update({i.key: i.value_json for i in record.config.update})
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
        elif kind == "history":
            out["history"].append(
                {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
            )
    return out
