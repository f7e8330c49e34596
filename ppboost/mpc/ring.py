"""Ring Z_2^64 kernels (numba, uint64 in / uint64 out).

numpy already wraps ``+ - *`` on uint64 arrays for free, so plain numpy is
used for single operations.  Kernels here fuse several passes into one or
do what numpy cannot do fast in uint64: matrix products (numpy has no
integer BLAS), the Beaver finishing step, truncation finishing, prefix sums
and row gathers.  Every kernel is ``@njit(cache=True, nogil=True)`` (nogil so
that party threads really run in parallel) and casts its constants to
``np.uint64`` (numba types ``int64 + uint64`` as float64).

Public functions validate and allocate; the private ``_kernels`` do the work.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["as_ring", "as_shape", "beaver_finish", "matmul", "prefix_sum", "gather_rows",
           "truncate_finish", "inverse_permutation", "check_permutation",
           "compose", "mask_pair", "beaver_finish_opened"]

_U0 = np.uint64(0)


def _wrapping(fn):
    """Silence numpy's scalar overflow warnings: wrapping is the ring's arithmetic
    (they appear when kernels run as plain Python under NUMBA_DISABLE_JIT=1)."""
    import functools

    @functools.wraps(fn)
    def inner(*args, **kwargs):
        with np.errstate(over="ignore"):
            return fn(*args, **kwargs)
    return inner


def as_ring(x, name: str = "value") -> np.ndarray:
    """Convert public integers to ring elements (uint64, two's complement).

    Accepts Python ints, integer numpy scalars/arrays (signed ints are taken
    mod 2**64) and bools.  Floats raise ``TypeError``: encode them first
    with ``ppboost.crypto.fixed.encode``.
    """
    if isinstance(x, (bool, np.bool_)):
        return np.uint64(int(x))
    if isinstance(x, int):
        return np.uint64(x % (1 << 64))
    a = np.asarray(x)
    if a.dtype == np.uint64:
        return a
    if a.dtype.kind == "b":
        return a.astype(np.uint64)
    if a.dtype.kind in "iu":
        return a.astype(np.int64).view(np.uint64) if a.dtype.kind == "i" else a.astype(np.uint64)
    raise TypeError(f"{name} has dtype {a.dtype}, expected integers / uint64 ring elements "
                    f"(encode floats with ppboost.crypto.fixed.encode first)")


def as_shape(shape) -> tuple:
    """A public shape as a tuple of non-negative ints (an int ``n`` is ``(n,)``)."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"invalid shape {shape}")
    return shape


# ---------------------------------------------------------------- Beaver
@njit(cache=True, nogil=True)
def _beaver_finish(c, a, b, d, e, add_de, out):
    # z_p = c_p + d*b_p + e*a_p (+ d*e for one party)  [Beaver 1991]
    n = c.shape[0]
    if add_de:
        for i in range(n):
            out[i] = c[i] + d[i] * b[i] + e[i] * a[i] + d[i] * e[i]
    else:
        for i in range(n):
            out[i] = c[i] + d[i] * b[i] + e[i] * a[i]
    return out


@_wrapping
def beaver_finish(c, a, b, d, e, add_de: bool) -> np.ndarray:
    """Local last step of a Beaver product: ``c + d*b + e*a (+ d*e if add_de)``.

    All arguments are uint64 arrays of one shape; returns a new array.
    """
    arrs = [np.ascontiguousarray(v) for v in (c, a, b, d, e)]
    shape = arrs[0].shape
    for v in arrs:
        if v.dtype != np.uint64 or v.shape != shape:
            raise ValueError(f"beaver_finish: expected uint64 arrays of shape {shape}, "
                             f"got {v.dtype} {v.shape}")
    flat = [v.reshape(-1) for v in arrs]
    out = np.empty(flat[0].shape[0], dtype=np.uint64)
    _beaver_finish(*flat, bool(add_de), out)
    return out.reshape(shape)


@njit(cache=True, nogil=True)
def _beaver_finish_opened(c, a, b, mine, other, add_de, out):
    # as _beaver_finish, with the opening's last addition fused in:
    # d = mine[i] + other[i], e = mine[n+i] + other[n+i]
    n = c.shape[0]
    for i in range(n):
        d = mine[i] + other[i]
        e = mine[n + i] + other[n + i]
        z = c[i] + d * b[i] + e * a[i]
        if add_de:
            z += d * e
        out[i] = z
    return out


@_wrapping
def beaver_finish_opened(c, a, b, mine, other, add_de: bool) -> np.ndarray:
    """:func:`beaver_finish` where (d, e) = ``mine + other`` (each the flat
    concatenation of d and e): saves a pass over the opened values."""
    shape = np.shape(c)
    c, a, b = (np.ascontiguousarray(v).reshape(-1) for v in (c, a, b))
    mine = np.ascontiguousarray(mine).reshape(-1)
    other = np.ascontiguousarray(other).reshape(-1)
    for v in (c, a, b, mine, other):
        if v.dtype != np.uint64:
            raise TypeError(f"beaver_finish_opened expects uint64 arrays, got {v.dtype}")
    if a.shape != c.shape or b.shape != c.shape or mine.shape != (2 * c.size,) \
            or other.shape != mine.shape:
        raise ValueError("beaver_finish_opened: inconsistent sizes")
    out = np.empty(c.size, dtype=np.uint64)
    _beaver_finish_opened(c, a, b, mine, other, bool(add_de), out)
    return out.reshape(shape)


# ---------------------------------------------------------------- matmul
@njit(cache=True, nogil=True)
def _matmul(a, b, out):
    # out = a @ b mod 2**64, blocked i-k-j loop (inner loop contiguous in b and out)
    m, kk = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            out[i, j] = _U0
    for i0 in range(0, m, 64):
        i1 = min(i0 + 64, m)
        for k0 in range(0, kk, 256):
            k1 = min(k0 + 256, kk)
            for j0 in range(0, n, 512):
                j1 = min(j0 + 512, n)
                for i in range(i0, i1):
                    for k in range(k0, k1):
                        aik = a[i, k]
                        for j in range(j0, j1):
                            out[i, j] += aik * b[k, j]
    return out


@_wrapping
def matmul(a, b) -> np.ndarray:
    """Matrix product mod 2**64 of uint64 arrays (2-D @ 2-D; 1-D operands are
    treated as a row / column vector like numpy and squeezed back)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != np.uint64 or b.dtype != np.uint64:
        raise TypeError(f"matmul expects uint64 arrays, got {a.dtype} and {b.dtype}")
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise ValueError(f"matmul supports 1-D and 2-D operands, got ndim {a.ndim} and {b.ndim}")
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    if a2.shape[1] != b2.shape[0]:
        raise ValueError(f"matmul shape mismatch: {a.shape} @ {b.shape}")
    out = np.empty((a2.shape[0], b2.shape[1]), dtype=np.uint64)
    _matmul(np.ascontiguousarray(a2), np.ascontiguousarray(b2), out)
    if a.ndim == 1 and b.ndim == 1:
        return out.reshape(())
    if a.ndim == 1:
        return out.reshape(-1)
    if b.ndim == 1:
        return out.reshape(-1)
    return out


# ---------------------------------------------------------------- prefix sums
@njit(cache=True, nogil=True)
def _prefix_rows(x, out):
    # out[i, :] = sum_{r <= i} x[r, :]  (mod 2**64)
    n, k = x.shape
    if n == 0:
        return out
    for j in range(k):
        out[0, j] = x[0, j]
    for i in range(1, n):
        for j in range(k):
            out[i, j] = out[i - 1, j] + x[i, j]
    return out


@_wrapping
def prefix_sum(x, axis: int = 0, reverse: bool = False, out=None) -> np.ndarray:
    """Inclusive prefix sum (suffix sum if ``reverse``) of a uint64 array along ``axis``.

    ``out`` (only for a C-contiguous 2-D ``x``, ``axis=0``, not reversed): a
    C-contiguous uint64 array of x's shape to write into (e.g. a slice of a
    larger stacked array); it is returned.
    """
    x = np.asarray(x)
    if x.dtype != np.uint64:
        raise TypeError(f"prefix_sum expects uint64, got {x.dtype}")
    if out is not None:
        if x.ndim != 2 or axis != 0 or reverse or not x.flags.c_contiguous \
                or out.shape != x.shape or out.dtype != np.uint64 or not out.flags.c_contiguous:
            raise ValueError(f"prefix_sum(out=...) needs a C-contiguous 2-D x, axis 0, not "
                             f"reversed, and a C-contiguous uint64 out of shape {x.shape}")
        return _prefix_rows(x, out)
    if x.ndim == 0:
        raise ValueError("prefix_sum needs an array with at least one axis")
    axis = axis % x.ndim
    moved = np.moveaxis(x, axis, 0)
    if reverse:
        moved = moved[::-1]
    shp = moved.shape
    flat = np.ascontiguousarray(moved.reshape(shp[0], -1))
    if flat.shape[1] == 1:  # one column: numpy's cumsum is as fast and wraps mod 2**64
        out = np.cumsum(flat, axis=0, dtype=np.uint64)
    else:  # several columns: the row-major numba loop is ~5x faster than cumsum(axis=0)
        out = np.empty_like(flat)
        _prefix_rows(flat, out)
    out = out.reshape(shp)
    if reverse:
        out = out[::-1]
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))


# ---------------------------------------------------------------- gathers
@njit(cache=True, nogil=True)
def _gather_rows_sub(x, y, idx, out):
    # out[i, :] = x[idx[i], :] - y[idx[i], :]
    k = x.shape[1]
    for i in range(idx.shape[0]):
        r = idx[i]
        for j in range(k):
            out[i, j] = x[r, j] - y[r, j]
    return out


@njit(cache=True, nogil=True)
def _gather_rows(x, idx, negate, out):
    # out[i, :] = x[idx[i], :]  (or 0 - x[idx[i], :] if negate)
    k = x.shape[1]
    if k == 1:
        if negate:
            for i in range(idx.shape[0]):
                out[i, 0] = _U0 - x[idx[i], 0]
        else:
            for i in range(idx.shape[0]):
                out[i, 0] = x[idx[i], 0]
        return out
    for i in range(idx.shape[0]):
        r = idx[i]
        if negate:
            for j in range(k):
                out[i, j] = _U0 - x[r, j]
        else:
            for j in range(k):
                out[i, j] = x[r, j]
    return out


@_wrapping
def gather_rows(x, idx, negate: bool = False, minus=None, check: bool = True) -> np.ndarray:
    """``x[idx]`` (``-x[idx]`` if ``negate``; ``x[idx] - minus[idx]`` if ``minus``,
    an array of x's shape) along axis 0, for a uint64 array and a 1-D
    int32/int64 index.  One fused numba pass (faster than numpy's fancy
    indexing followed by a negation or a subtraction, and than ``x[idx]`` for
    several columns).  ``check=False`` skips the range check of ``idx`` (only
    for indices the caller made or validated itself: the kernel does not
    check bounds)."""
    x = np.asarray(x)
    idx = np.asarray(idx)
    if x.dtype != np.uint64:
        raise TypeError(f"gather_rows expects uint64 data, got {x.dtype}")
    if idx.ndim != 1 or idx.dtype not in (np.int32, np.int64):
        raise ValueError(f"gather_rows expects a 1-D int32/int64 index, got {idx.dtype} {idx.shape}")
    if x.ndim == 0:
        raise ValueError("gather_rows needs an array with at least one axis")
    n = x.shape[0]
    if check and idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"gather_rows: index out of range 0..{n - 1}")
    flat = np.ascontiguousarray(x.reshape(n, -1))
    out = np.empty((idx.shape[0], flat.shape[1]), dtype=np.uint64)
    if minus is None:
        _gather_rows(flat, idx, bool(negate), out)
    else:
        minus = np.asarray(minus)
        if minus.shape != x.shape or minus.dtype != np.uint64 or negate:
            raise ValueError(f"gather_rows: minus must be uint64 of shape {x.shape} (and "
                             f"negate False), got {minus.dtype} {minus.shape}")
        _gather_rows_sub(flat, np.ascontiguousarray(minus.reshape(n, -1)), idx, out)
    return out.reshape((idx.shape[0],) + x.shape[1:])


@njit(cache=True, nogil=True)
def _compose(p, q, out):
    # out[i] = p[q[i]]
    for i in range(q.shape[0]):
        out[i] = p[q[i]]
    return out


def compose(p, q, dtype=np.int64) -> np.ndarray:
    """``p[q]`` for index vectors (the permutation "apply q, then p" in gather form),
    written directly as ``dtype`` (int32 halves the bytes of a published index)."""
    p = np.ascontiguousarray(p, dtype=np.int64)
    q = np.ascontiguousarray(q, dtype=np.int64)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError("compose expects 1-D index vectors")
    if q.size and (q.min() < 0 or q.max() >= p.shape[0]):
        raise ValueError(f"compose: index out of range 0..{p.shape[0] - 1}")
    return _compose(p, q, np.empty(q.shape[0], dtype=dtype))


@njit(cache=True, nogil=True)
def _mask_pair(x, a, y, b, out):
    # out = [x - a, y - b]: a party's share of the Beaver openings (d, e)
    n = x.shape[0]
    for i in range(n):
        out[i] = x[i] - a[i]
    for i in range(y.shape[0]):
        out[n + i] = y[i] - b[i]
    return out


@_wrapping
def mask_pair(x, a, y, b) -> np.ndarray:
    """``concatenate([x - a, y - b])`` (flattened) in one pass, as a new array."""
    x, a, y, b = (np.ascontiguousarray(v).reshape(-1) for v in (x, a, y, b))
    for v in (x, a, y, b):
        if v.dtype != np.uint64:
            raise TypeError(f"mask_pair expects uint64 arrays, got {v.dtype}")
    if x.shape != a.shape or y.shape != b.shape:
        raise ValueError(f"mask_pair: shapes {x.shape}/{a.shape} and {y.shape}/{b.shape} differ")
    return _mask_pair(x, a, y, b, np.empty(x.size + y.size, dtype=np.uint64))


@njit(cache=True, nogil=True)
def _inverse_perm(p, out):
    for i in range(p.shape[0]):
        out[p[i]] = i
    return out


def check_permutation(p, n: int, name: str = "permutation") -> np.ndarray:
    """Validate that ``p`` is a permutation of ``0..n-1``; return it as int64."""
    p = np.asarray(p)
    if p.ndim != 1 or p.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D integer index vector, got {p.dtype} {p.shape}")
    if p.shape[0] != n:
        raise ValueError(f"{name} has length {p.shape[0]}, expected {n} (the number of rows)")
    seen = np.zeros(n, dtype=bool)
    if n and (p.min() < 0 or p.max() >= n):
        raise ValueError(f"{name} is not a permutation of 0..{n - 1}: entries out of range")
    seen[p] = True
    if not seen.all():
        raise ValueError(f"{name} is not a permutation of 0..{n - 1}: repeated entries")
    return p.astype(np.int64)


def inverse_permutation(p, check: bool = True) -> np.ndarray:
    """The inverse of a permutation index vector: ``q[p[i]] = i``."""
    p = np.asarray(p, dtype=np.int64)
    if check:
        p = check_permutation(p, p.shape[0] if p.ndim == 1 else -1)
    return _inverse_perm(p, np.empty_like(p))




# ---------------------------------------------------------------- truncation
@njit(cache=True, nogil=True)
def _truncate_finish(c, r_hi, r_msb, f, add_public, offset_hi, out):
    # y_p = [p==0]*((c >> f) - 2^(62-f)) - r_hi_p + r_msb_p * (1 - c_msb) * 2^(64-f)
    sh = np.uint64(f)
    top = np.uint64(64 - f) if f > 0 else np.uint64(0)
    one = np.uint64(1)
    for i in range(c.shape[0]):
        ci = c[i]
        notmsb = one - (ci >> np.uint64(63))
        w = r_msb[i] * notmsb
        v = (w << top) if f > 0 else _U0
        v = v - r_hi[i]
        if add_public:
            v = v + (ci >> sh) - offset_hi
        out[i] = v
    return out


@_wrapping
def truncate_finish(c, r_hi, r_msb, f: int, add_public: bool, offset_hi) -> np.ndarray:
    """Local finishing step of :func:`ppboost.mpc.truncation.truncate` (see there)."""
    c = np.ascontiguousarray(c).reshape(-1)
    out = np.empty_like(c)
    _truncate_finish(c, np.ascontiguousarray(r_hi).reshape(-1),
                     np.ascontiguousarray(r_msb).reshape(-1), int(f), bool(add_public),
                     np.uint64(offset_hi), out)
    return out
