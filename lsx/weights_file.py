"""Safetensors files read defensively: the header without the data, and pickles told apart.

A weights file in a run folder is untrusted input. :func:`read_weights_header` reads its 8-byte
length and JSON header only (capped at :data:`MAX_HEADER_BYTES`), checks that the tensors' offsets
tile the file exactly and that each size matches its dtype and shape (what safetensors itself
checks, without mapping the file), and counts the parameters: no tensor is allocated.
:func:`looks_like_pickle` recognises pickles of every protocol and torch.save archives so that the
loader can name them instead of calling them corrupt; nothing here ever unpickles.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from lsx.errors import CheckpointError
from lsx.files import open_regular, parse_json_bytes

MAX_HEADER_BYTES = 1_000_000  # safetensors JSON header: ~100 bytes a tensor; lsx models have
# < 200 tensors (~20 KB). safetensors itself allows 100 MB, which lsx never needs.
MAX_WEIGHTS_BYTES = 2 * 2**30  # 2 GiB of tensor data; the demo runs hold < 5 MB
MAX_PARAMETERS = MAX_WEIGHTS_BYTES // 4  # the same 2 GiB as float32 parameters
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1}
_DTYPE_BYTES |= {"U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
# First bytes of protocol 0/1 pickles (MARK, GLOBAL, EMPTY_LIST/DICT/TUPLE, NONE, INT, LONG,
# FLOAT, STRING, UNICODE, BINUNICODE, ...); such a file also ends with STOP ("."). Protocol 2+
# start with 0x80 (PROTO); torch.save writes a zip ("PK").
_PICKLE_0_FIRST = frozenset(b"(c]})NILFSVXUTKJMGi")


def short(value: object, limit: int = 80) -> str:
    """``value`` (a str as is, anything else as its repr) cut to ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def looks_like_pickle(head: bytes, size: int, last: bytes) -> bool:
    """True for a pickle (any protocol) or a torch.save zip; never for a safetensors file."""
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] + 8 <= size:
        # safetensors: an 8-byte header length that fits the file, then JSON. That length can
        # start with 0x80, "PK" or "(" (headers of 640, 19,280 or 296 bytes): not a pickle.
        return False
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return True
    return bool(head) and head[0] in _PICKLE_0_FIRST and last == b"."


@dataclass(frozen=True)
class WeightsHeader:
    """What the safetensors header of a weights file says, read without touching the data."""

    shapes: dict[str, tuple[int, ...]]
    metadata: dict[str, str]
    n_bytes: int  # tensor data, in bytes
    n_parameters: int  # sum of the tensors' element counts


def read_weights_header(path: Path) -> WeightsHeader:
    """Parse and check a safetensors header: capped, offsets tile the file, sizes add up.

    Reads 8 bytes plus at most :data:`MAX_HEADER_BYTES`; allocates no tensor.

    Raises
    ------
    CheckpointError
        Not a regular file, corrupt or not safetensors, or more than :data:`MAX_WEIGHTS_BYTES`
        of tensors.
    """
    fd = open_regular(path, CheckpointError, "weights file")
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, 8, 0)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        raw = os.pread(fd, n, 8) if 0 <= n <= min(MAX_HEADER_BYTES, size - 8) else b""
    finally:
        os.close(fd)

    def corrupt(why: str) -> CheckpointError:
        return CheckpointError(
            f"{path} is corrupt or not a safetensors file ({why}). Restore it from a backup or "
            "retrain the run."
        )

    if n < 0:
        raise corrupt(f"header too small: the file has {size} bytes")
    if n > MAX_HEADER_BYTES:
        raise corrupt(f"header of {n:,} bytes; lsx reads headers of at most {MAX_HEADER_BYTES:,}")
    if len(raw) != n:
        raise corrupt(f"header of {n:,} bytes in a file of {size:,}")
    try:
        header = parse_json_bytes(raw, path, "safetensors header", CheckpointError)
    except CheckpointError as err:
        raise corrupt(f"invalid JSON in header: {short(str(err), 200)}") from err
    if not isinstance(header, dict):
        raise corrupt("the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise corrupt("__metadata__ must map strings to strings")
    shapes, spans = {}, []
    for name, entry in header.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and entry["dtype"] in _DTYPE_BYTES
            and isinstance(shape := entry.get("shape"), list)
            and all(type(d) is int and d >= 0 for d in shape)
            and isinstance(offsets := entry.get("data_offsets"), list)
            and len(offsets) == 2
            and all(type(o) is int and o >= 0 for o in offsets)
            and offsets[1] - offsets[0] == math.prod(shape) * _DTYPE_BYTES[entry["dtype"]]
        ):
            raise corrupt(f"invalid shape, data type, or offset for tensor {short(name, 60)}")
        shapes[name] = tuple(shape)
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise corrupt(f"invalid offset for tensor {short(name, 60)}")
        end = stop
    if end != size - 8 - n:
        raise corrupt(f"tensors cover {end:,} bytes but the file holds {size - 8 - n:,} after it")
    if end > MAX_WEIGHTS_BYTES:
        raise CheckpointError(
            f"{path} holds {end / 2**30:.1f} GiB of tensors; lsx loads at most "
            f"{MAX_WEIGHTS_BYTES / 2**30:.0f} GiB. Is it an lsx run? Its models are far smaller."
        )
    n_parameters = sum(math.prod(s) for s in shapes.values())
    return WeightsHeader(shapes, metadata, end, n_parameters)


def nonfinite_note(weights: Path, found: WeightsHeader, max_bytes: int) -> tuple[str, ...]:
    """Raise if a floating tensor holds NaN or Inf; () when checked, a note when over max_bytes."""
    if found.n_bytes > max_bytes:
        return (
            f"weights not checked for NaN/Inf at listing ({found.n_bytes / 1e6:.0f} MB > "
            f"{max_bytes / 1e6:.0f} MB)",
        )
    bad = []
    try:
        with safe_open(str(weights), framework="pt") as fh:
            for name in sorted(found.shapes):
                tensor = fh.get_tensor(name)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    bad.append(name)
    except Exception as err:  # SafetensorError: changed or corrupt after its header was read
        raise CheckpointError(
            f"{weights} could not be read ({err}); restore it or retrain."
        ) from err
    if bad:
        raise CheckpointError(
            f"{weights}: {len(bad)} of {len(found.shapes)} tensors hold NaN or Inf (e.g. "
            f"{', '.join(bad[:3])}): training diverged before this checkpoint was written. "
            "Retrain with a lower learning rate, or resume from an earlier snapshot."
        )
    return ()
