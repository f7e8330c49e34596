"""A compact, versioned, pickle-free binary container for untrusted bytes.

Layout::

    magic (4 bytes) | version (uint16 LE) | header length (uint32 LE) |
    header (UTF-8 JSON: {"meta": {...}, "arrays": [[name, dtype, shape], ...]}) |
    the arrays' raw little-endian bytes, in header order, back to back

Only a short whitelist of numpy dtypes is accepted, and every length is
checked against the buffer before anything is read, so :func:`unpack` on
arbitrary bytes raises ``ValueError`` (never IndexError, struct.error, ...).
Big integers travel as fixed-width big-endian rows of a uint8 array.
"""
from __future__ import annotations

import json
import struct

import numpy as np

_DTYPES = {"<u8": np.dtype("<u8"), "<i4": np.dtype("<i4"), "|u1": np.dtype("|u1"),
           "<f8": np.dtype("<f8"), "<i8": np.dtype("<i8")}
_PRE = struct.Struct("<4sHI")
MAX_HEADER = 1 << 20


def pack(magic: bytes, version: int, meta: dict, arrays: dict) -> bytes:
    descr, chunks = [], []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        if dt.str not in _DTYPES:
            raise TypeError(f"array {name!r}: dtype {a.dtype} not supported")
        a = a.astype(dt, copy=False)
        descr.append([name, dt.str, list(a.shape)])
        chunks.append(a.tobytes())
    header = json.dumps({"meta": meta, "arrays": descr}, separators=(",", ":")).encode()
    return _PRE.pack(magic, version, len(header)) + header + b"".join(chunks)


def packed_size(magic: bytes, version: int, meta: dict, shapes: dict) -> int:
    """``len(pack(magic, version, meta, arrays))`` for arrays of these ``{name: (dtype str,
    shape)}``, without building them."""
    descr, nbytes = [], 0
    for name, (dts, shape) in shapes.items():
        n = _DTYPES[dts].itemsize
        for d in shape:
            n *= int(d)
        descr.append([name, dts, [int(d) for d in shape]])
        nbytes += n
    header = json.dumps({"meta": meta, "arrays": descr}, separators=(",", ":")).encode()
    return _PRE.size + len(header) + nbytes


def peek_version(what: str, magic: bytes, data) -> int:
    """The format version in ``data``'s preamble (ValueError "malformed {what}: ..." if none)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"malformed {what}: expected bytes, got {type(data).__name__}")
    if len(data) < _PRE.size:
        raise ValueError(f"malformed {what}: {len(data)} bytes, shorter than the "
                         f"{_PRE.size}-byte preamble")
    mg, ver, _ = _PRE.unpack_from(bytes(data[:_PRE.size]), 0)
    if mg != magic:
        raise ValueError(f"malformed {what}: magic {mg!r}, expected {magic!r}")
    return int(ver)


def unpack(what: str, magic: bytes, version: int, data, schema: dict):
    """Parse ``data``; ``schema`` maps array name -> (dtype str, ndim).

    Returns (meta dict, {name: read-only ndarray}).  Raises ValueError
    "malformed {what}: ..." on anything unexpected.
    """
    def bad(msg):
        return ValueError(f"malformed {what}: {msg}")

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise bad(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _PRE.size:
        raise bad(f"{len(data)} bytes, shorter than the {_PRE.size}-byte preamble")
    mg, ver, hlen = _PRE.unpack_from(data, 0)
    if mg != magic:
        raise bad(f"magic {mg!r}, expected {magic!r}")
    if ver != version:
        raise bad(f"format version {ver}, expected {version}")
    if hlen > MAX_HEADER or _PRE.size + hlen > len(data):
        raise bad(f"header length {hlen} exceeds the data")
    try:
        header = json.loads(data[_PRE.size:_PRE.size + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise bad(f"header is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("meta"), dict) \
            or not isinstance(header.get("arrays"), list):
        raise bad("header must be an object with 'meta' and 'arrays'")
    arrays = {}
    pos = _PRE.size + hlen
    for item in header["arrays"]:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and isinstance(item[1], str) and isinstance(item[2], list)):
            raise bad("array descriptor must be [name, dtype, shape]")
        name, dts, shape = item
        if name not in schema:
            raise bad(f"unexpected array {name!r}")
        if name in arrays:
            raise bad(f"duplicate array {name!r}")
        want_dt, want_ndim = schema[name]
        if dts != want_dt:
            raise bad(f"array {name!r} has dtype {dts!r}, expected {want_dt!r}")
        if len(shape) != want_ndim or not all(isinstance(s, int) and not isinstance(s, bool)
                                              and 0 <= s < 2**40 for s in shape):
            raise bad(f"array {name!r} has shape {shape}, expected {want_ndim} non-negative ints")
        dt = _DTYPES[dts]
        nbytes = dt.itemsize
        for s in shape:
            nbytes *= s
        if pos + nbytes > len(data):
            raise bad(f"array {name!r} needs {nbytes} bytes, only {len(data) - pos} left")
        arrays[name] = np.frombuffer(data, dtype=dt, count=nbytes // dt.itemsize,
                                     offset=pos).reshape(shape)
        pos += nbytes
    missing = set(schema) - set(arrays)
    if missing:
        raise bad(f"missing arrays {sorted(missing)}")
    if pos != len(data):
        raise bad(f"{len(data) - pos} trailing bytes")
    return header["meta"], arrays


def get(meta: dict, what: str, key: str, typ, lo=None, hi=None):
    """meta[key] checked to be of type typ (and in [lo, hi] for ints)."""
    if key not in meta:
        raise ValueError(f"malformed {what}: missing field {key!r}")
    v = meta[key]
    if typ is int:
        ok = isinstance(v, int) and not isinstance(v, bool)
    else:
        ok = isinstance(v, typ)
    if not ok:
        raise ValueError(f"malformed {what}: field {key!r} must be {typ.__name__}")
    if lo is not None and v < lo or hi is not None and v > hi:
        raise ValueError(f"malformed {what}: field {key!r} == {v}, must be in [{lo}, {hi}]")
    return v
