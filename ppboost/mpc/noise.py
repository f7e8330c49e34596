"""Distributed noise as a secret: every data party inputs its own part, no one knows the sum.

:func:`joint_noise` returns shares of n = sum_p n_p, where each data party p
draws its part n_p locally (``sample(party.prg, shape)``: the party's private
AES-CTR stream, which the dealer does not know) and secret-shares it
(:func:`ppboost.mpc.raw.share_from`, one input sharing per party).  The
sampler decides the distribution; :func:`ppboost.dp.noise_part` gives parts
of an infinitely divisible noise (exponential, Gaussian, Laplace) such that
the parts of any P - 1 parties already sum to the required noise.

What each participant learns: party p knows n_p and holds uniformly random
shares of the others' parts (the owner's share of an input is its value plus
a dealer zero-sharing's share; the others' shares are their PRG words), so
the total n is as unknown to it as the sum of the other parts.  The dealer
makes the zero-sharings and sees no part and no message between parties.
The shapes are public, so the transcript does not depend on the noise.

Cost: no online round; offline the dealer sends each party one message of
``prod(shape)`` elements (its zero-sharing correction), P in all.
"""
from __future__ import annotations

import numpy as np

from ..crypto import fixed
from . import raw
from .party import Party

__all__ = ["joint_noise"]


def joint_noise(party: Party, sample, shape, frac_bits: int, bound_bits: int = 62) -> np.ndarray:
    """Shares (uint64, ``shape``) of the sum over all data parties of their parts.

    ``sample(rng, shape)`` -> float64 array: this party's part, drawn from
    ``rng`` = ``party.prg``; it is encoded at ``frac_bits`` fractional bits
    (``|part| 2^frac_bits < 2^bound_bits``, else ValueError at its owner).
    Every party calls this in lockstep with the same ``shape``.
    Opened: nothing.
    """
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    total = np.zeros(shape, np.uint64)
    for q in range(party.n_parties):
        vals = None
        if q == party.id:
            part = np.asarray(sample(party.prg, shape), dtype=np.float64)
            if part.shape != shape:
                raise ValueError(f"the noise sampler returned shape {part.shape}, not {shape}")
            vals = fixed.encode(part, frac_bits, bound_bits)
        total = total + raw.share_from(party, q, vals, shape)
    return total
