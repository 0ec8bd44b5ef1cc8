"""What a run's sample-quality numbers measured: ``<run dir>/sample_quality.json``.

Written by :class:`genlab.callbacks.sample_quality.SampleQualityCallback` (rank 0, atomically,
after every evaluation) and read by ``genlab.compare``, which marks FIDs computed with different
protocols as not comparable. The file holds JSON data only::

    {"version": 1, "logged_as": ["val/fid", "val/kid", ...],
     "protocols": [{"network": "classifier-mnist-5222bca348f2", "reference_split": "train",
                    "num_real": 10000, "num_fake": 1000, ..., "first_epoch": 0, "last_epoch": 9}]}

A new entry is appended when the protocol changes within a run (e.g. a resume with other
``metrics.*``). No torch import here: ``genlab.compare`` stays light.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from genlab.runs.files import atomic_write_json

PROTOCOL_FILE = "sample_quality.json"
FORMAT_VERSION = 1
#: Protocol keys that must agree for two FIDs/KIDs to be comparable (FID is biased in N).
COMPARABILITY_KEYS = (
    "network",
    "reference_data",
    "reference_split",
    "reference_fingerprint",
    "num_real",
    "num_fake",
)
#: Short column names of :data:`COMPARABILITY_KEYS` (tables).
SHORT_NAMES = {
    "network": "network",
    "reference_data": "data",
    "reference_split": "split",
    "reference_fingerprint": "data hash",
    "num_real": "N real",
    "num_fake": "N fake",
}
_EPOCH_KEYS = ("first_epoch", "last_epoch")


def _plain(value: Any) -> Any:
    """JSON data as plain str/int/float/bool/None (lists of them): anything else becomes text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value][:100]
    return str(value)


def read_protocol_file(path: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed file (``{"logged_as": [...], "protocols": [{...}, ...]}``) with every value
    reduced to plain data, or None when it is missing or not such a file."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("protocols"), list):
        return None
    protocols = [
        {str(k): _plain(v) for k, v in entry.items()}
        for entry in raw["protocols"]
        if isinstance(entry, dict)
    ]
    logged = raw.get("logged_as")
    logged = [str(name) for name in logged] if isinstance(logged, list) else []
    return {"version": _plain(raw.get("version")), "logged_as": logged, "protocols": protocols}


def record_protocol(
    path: str | os.PathLike, protocol: dict[str, Any], epoch: int, logged_as: list[str]
) -> dict[str, Any]:
    """Add ``protocol`` (measured at ``epoch``) to the file at ``path``; returns what was written.

    The last entry's ``last_epoch`` moves when the protocol is unchanged, else a new entry is
    appended (an existing file, e.g. of the run being resumed, is kept)."""
    path = Path(path)
    entry = {str(k): _plain(v) for k, v in protocol.items()}
    data = read_protocol_file(path) or {"protocols": []}
    protocols = data["protocols"]
    last = protocols[-1] if protocols else None
    if last is not None and {k: v for k, v in last.items() if k not in _EPOCH_KEYS} == entry:
        last["last_epoch"] = int(epoch)
    else:
        protocols.append({**entry, "first_epoch": int(epoch), "last_epoch": int(epoch)})
    out = {"version": FORMAT_VERSION, "logged_as": list(logged_as), "protocols": protocols}
    atomic_write_json(path, out)
    return out


def comparability(protocol: dict[str, Any] | None) -> tuple | None:
    """The values of :data:`COMPARABILITY_KEYS` (None when the protocol is unknown)."""
    if protocol is None:
        return None
    return tuple(protocol.get(k) for k in COMPARABILITY_KEYS)


def describe(protocol: dict[str, Any] | None) -> str:
    """One line: ``network ..., split train of fashion_mnist_mini, N real 10000, N fake 1000``."""
    if protocol is None:
        return "not recorded (no sample_quality.json)"
    p = protocol
    return (
        f"network {p.get('network')}, reference {p.get('reference_data')}:"
        f"{p.get('reference_split')} ({p.get('reference_fingerprint')}), "
        f"N real {p.get('num_real')}, N fake {p.get('num_fake')}"
    )


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Short names of the comparability keys on which two protocols differ."""
    return [SHORT_NAMES[k] for k in COMPARABILITY_KEYS if a.get(k) != b.get(k)]


def run_protocols(run_dir: str | os.PathLike) -> list[dict[str, Any]] | None:
    """The protocols recorded in ``<run dir>/sample_quality.json`` (None: no such file)."""
    data = read_protocol_file(Path(run_dir) / PROTOCOL_FILE)
    return None if data is None else data["protocols"]


def protocol_groups(
    names: list[str], protocols: list[list[dict[str, Any]] | None]
) -> tuple[list[str], list[str]]:
    """Label each run's sample-quality protocol (``A``, ``B``, ... by first appearance; ``?``
    unknown; ``A→B`` changed during the run) and say which numbers are not comparable.

    ``names`` and ``protocols`` are per run (``protocols[i]`` from :func:`run_protocols`).
    Returns ``(labels, notes)``: one label per run and human-readable notes (empty when every
    run used the same protocol).
    """
    keys: list[tuple] = []
    examples: list[dict[str, Any]] = []
    labels: list[str] = []
    for entries in protocols:
        if not entries:
            labels.append("?")
            continue
        letters = []
        for entry in entries:
            key = comparability(entry)
            if key not in keys:
                keys.append(key)
                examples.append(entry)
            letter = _letter(keys.index(key))
            if not letters or letters[-1] != letter:
                letters.append(letter)
        labels.append("→".join(letters))
    notes: list[str] = []
    if len(keys) > 1:
        diff = sorted({d for e in examples[1:] for d in differences(examples[0], e)})
        notes.append(
            "Not comparable: these runs' FID/KID/IS/precision/recall were computed with "
            f"different protocols (they differ in {', '.join(diff)}); compare numbers only "
            "within one protocol letter. "
            + "; ".join(f"{_letter(i)} = {describe(e)}" for i, e in enumerate(examples))
        )
    changed = [n for n, label in zip(names, labels) if "→" in label]
    if changed:
        notes.append(
            "Protocol changed during run(s) " + ", ".join(changed) + ": their curves mix protocols."
        )
    unknown = [n for n, label in zip(names, labels) if label == "?"]
    if unknown and len(unknown) < len(labels):
        notes.append(
            "No recorded protocol (sample_quality.json) for run(s) "
            + ", ".join(unknown)
            + ": cannot tell whether their FIDs are comparable with the others."
        )
    return labels, notes


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else f"P{index + 1}"
