"""The IDX file format of MNIST: read and write numpy arrays, with clear errors on bad input.

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of
dimensions, then each dimension as a big-endian uint32, then the data, big-endian.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from tinycnn.atomic import atomic_write_bytes
from tinycnn.errors import TinycnnError

# IDX type code -> numpy dtype (big-endian, as the format stores it).
_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in _TYPES.items()}


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into a native-endian numpy array; `name` is used in error messages."""
    if len(data) < 4:
        raise TinycnnError(f"{name}: not an IDX file ({len(data)} bytes, shorter than the 4-byte magic)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _TYPES:
        raise TinycnnError(f"{name}: not an IDX file (bad magic number 0x{data[:4].hex()})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise TinycnnError(f"{name}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _TYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise TinycnnError(
            f"{name}: IDX payload {what}: {len(data)} bytes for shape {shape}, expected {expected}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TinycnnError(f"{path}: no such file") from None
    return parse_idx(data, str(path))


def encode_idx(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {sorted(map(str, _CODES))}")
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    return header + array.astype(_TYPES[code], copy=False).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write `array` as an IDX file, atomically."""
    atomic_write_bytes(path, encode_idx(array))
