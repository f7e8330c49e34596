"""The core correlation kinds: what the arithmetic and permutation protocols ask the dealer for.

Each kind is a :class:`~ppboost.mpc.dealer.Correlation` (``deal`` on the
dealer, ``expand`` on every party, the same PRG consumption on both
sides); :func:`ppboost.mpc.kinds.standard_kinds` registers them.

* ``beaver`` (elementwise triples) and ``matmul`` (matrix triples):
  :mod:`ppboost.mpc.arith`;
* ``trunc`` (truncation material): :mod:`ppboost.mpc.truncation`;
* ``dabit`` (a random bit shared both additively and by XOR):
  :mod:`ppboost.mpc.b2a`;
* ``zero`` (shares of zero, used to input values): :func:`ppboost.mpc.arith.share`;
* ``perm`` (owner-known permutation correlations, docs/design.md 6.1) and
  ``perm_select`` (the same, when only some rows of the result are kept):
  :mod:`ppboost.mpc.permutation`.
"""
from __future__ import annotations

import numpy as np

from . import ring
from .dealer import Correlation

__all__ = ["BeaverTriple", "MatrixTriple", "TruncationPair", "DaBit", "ZeroShare",
           "PermutationCorrelation", "PermutationSelectCorrelation"]


class BeaverTriple(Correlation):
    """Elementwise triple a, b, c = a*b [Beaver 1991].  Traffic: N elements to the last party."""

    name = "beaver"

    def deal(self, d, shape):
        a = sum(d.random(shape))
        b = sum(d.random(shape))
        d.share(a * b)

    def expand(self, c, shape):
        return c.random(shape), c.random(shape), c.share(shape)


class MatrixTriple(Correlation):
    """Matrix triple A (m x k), B (k x n), C = A @ B [Beaver 1991; SecureML, Mohassel-Zhang 2017].
    Traffic: m*n elements to the last party."""

    name = "matmul"

    def deal(self, d, a_shape, b_shape):
        a = sum(d.random(a_shape))
        b = sum(d.random(b_shape))
        d.share(ring.matmul(a, b))

    def expand(self, c, a_shape, b_shape):
        out_shape = ring.matmul(np.zeros(a_shape, np.uint64), np.zeros(b_shape, np.uint64)).shape
        return c.random(a_shape), c.random(b_shape), c.share(out_shape)


class TruncationPair(Correlation):
    """r uniform in Z_2^64, shares of r >> f and of msb(r) (see mpc/truncation.py).
    Traffic: 2N elements to the last party."""

    name = "trunc"

    def deal(self, d, shape, f):
        r = sum(d.random(shape))
        d.share(r >> np.uint64(f))
        d.share(r >> np.uint64(63))

    def expand(self, c, shape, f):
        return c.random(shape), c.share(shape), c.share(shape)


class DaBit(Correlation):
    """A uniform bit b shared additively in Z_2^64 and by XOR [Rotaru-Wood 2019].
    Traffic: N elements + N bits to the last party."""

    name = "dabit"

    def deal(self, d, shape):
        b = d.own.bits(ring.as_shape(shape))
        d.share(b.astype(np.uint64))
        d.share_bits(b)

    def expand(self, c, shape):
        return c.share(shape), c.share_bits(shape)


class ZeroShare(Correlation):
    """Shares of zero; party ``to`` holds the correction (minus the others' sum).
    Used to input a value: the owner adds its plaintext to its share.
    Traffic: N elements to party ``to``."""

    name = "zero"

    def deal(self, d, shape, to):
        d.share(np.zeros(ring.as_shape(shape), np.uint64), to=to)

    def expand(self, c, shape, to):
        return c.share(shape, to=to)


class PermutationCorrelation(Correlation):
    """Owner-known permutation correlation (docs/design.md 6.1, steps 1-2), ``count`` permutations.

    Every non-owner p gets one input mask a_p (``shape``) and one output mask
    c_{p,j} per permutation j (PRG-expanded).  The owner gets random
    permutations pi_j (from its PRG) and, explicitly, delta_j in the
    pre-permuted form D_j = pi_j^-1(delta_j) = a - pi_j^-1(c_j), where
    delta_j = pi_j(a) - c_j, a = sum_p a_p and c_j = sum_p c_{p,j}.  (With
    gather semantics pi(V) = V[pi], D_j = a - c_j[pi_j^-1]; sending D_j
    instead of delta_j is the same information given pi_j and saves the owner
    a gather online.)  Only pi_j^-1 is ever used, so the owner's stream
    gives pi_j^-1 directly (the inverse of a uniform permutation is uniform):
    no inversion on either side.  Traffic: count * N elements to the owner.
    Owner's material: (pi_inverses, Ds); others': (a_p, [c_{p,j}]).
    """

    name = "perm"

    def deal(self, d, shape, owner, count):
        shape = ring.as_shape(shape)
        n = shape[0]
        a_sum, c_sums = None, [None] * count
        for p in range(d.n_parties):             # sums over the non-owners, in place
            if p != owner:
                a = d.prgs[p].uint64(shape)
                a_sum = a if a_sum is None else np.add(a_sum, a, out=a_sum)
                for j in range(count):
                    c = d.prgs[p].uint64(shape)
                    c_sums[j] = c if c_sums[j] is None else np.add(c_sums[j], c, out=c_sums[j])
        for j in range(count):
            pi_inv = d.prgs[owner].permutation(n)
            D = ring.gather_rows(c_sums[j], pi_inv, negate=True, check=False)  # -c_j[pi_j^-1]
            d.send(owner, np.add(D, a_sum, out=D))

    def expand(self, c, shape, owner, count):
        shape = ring.as_shape(shape)
        if c.me != owner:
            a = c.prg.uint64(shape)
            return a, [c.prg.uint64(shape) for _ in range(count)]
        invs, ds = [], []
        for _ in range(count):
            invs.append(c.prg.permutation(shape[0]))
            ds.append(c.recv(shape, np.uint64))
        return invs, ds


class PermutationSelectCorrelation(PermutationCorrelation):
    """The ``perm`` correlation for a permutation of which only ``rows`` rows are kept.

    The dealer does exactly what it does for ``perm``.  A non-owner does not
    expand its output masks c_{p,j}: it reserves their place in its AES-CTR
    stream and later expands only the rows it needs by random access
    (docs/design.md 6.1, histogram step 4: the non-owner touches only the b kept rows).
    Non-owner's material: (a_p, [stream offset of c_{p,j}], prg).
    """

    name = "perm_select"

    def deal(self, d, shape, owner, count, rows):
        super().deal(d, shape=shape, owner=owner, count=count)

    def expand(self, c, shape, owner, count, rows):
        shape = ring.as_shape(shape)
        if not 0 <= rows <= shape[0]:
            raise ValueError(f"rows == {rows}, must be in 0..{shape[0]}")
        if c.me == owner:
            return super().expand(c, shape=shape, owner=owner, count=count)
        a = c.prg.uint64(shape)
        size = int(np.prod(shape, dtype=np.int64))
        offsets = []
        for _ in range(count):
            offsets.append(c.prg.pos)
            c.prg.pos += size  # reserved: rows are expanded on demand with words_at
        return a, offsets, c.prg
