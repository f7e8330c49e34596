"""One party's local part of a distributed noise (:func:`noise_part`), from its own
stream (:func:`uniforms`); the parts of all parties but any one already give the
required noise (the :mod:`ppboost.dp` docstring, "Distributed noise")."""
from __future__ import annotations

import math

import numpy as np

from .checks import DPError, check_number

__all__ = ["uniforms", "noise_part"]


def uniforms(rng, shape) -> np.ndarray:
    """Uniforms in (0, 1), 53 bits each, from a :class:`ppboost.crypto.prg.PRG` (AES-CTR,
    e.g. ``party.prg``, which the dealer does not know) or a ``numpy.random.Generator``."""
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    if hasattr(rng, "uint64") and hasattr(rng, "pos"):
        w = rng.uint64(shape)
    else:
        w = rng.integers(0, np.iinfo(np.uint64).max, size=shape, dtype=np.uint64,
                         endpoint=True)
    return ((w >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53


def _gamma(rng, shape, a: float, scale: float) -> np.ndarray:
    """Gamma(a, scale) by the inverse CDF (both tails accurate)."""
    from scipy.special import gammainccinv, gammaincinv
    u = uniforms(rng, shape)
    low = u < 0.5
    out = np.empty(u.shape)
    out[low] = gammaincinv(a, u[low])
    out[~low] = gammainccinv(a, 1.0 - u[~low])
    return out * scale


def noise_part(rng, kind: str, scale: float, n_parties: int, shape) -> np.ndarray:
    """One party's part of a distributed noise of ``scale``, float64 of ``shape``.

    The parts of any ``n_parties - 1`` parties sum to exactly the noise:

    * ``"exponential"``: Exp(scale) (mean ``scale``) = sum of n_parties - 1
      Gamma(1 / (n_parties - 1), scale);
    * ``"gaussian"``: N(0, scale^2) = sum of N(0, scale^2 / (n_parties - 1));
    * ``"laplace"``: Laplace(scale) = Exp(scale) - Exp(scale), each a Gamma sum;
    * ``"gumbel"``: a whole Gumbel(0, scale) from every party (not divisible:
      any n_parties - 1 parts give a sum of Gumbels, which the exponential
      mechanism's guarantee covers as a mixture, module docstring).

    The sum of all ``n_parties`` parts has more noise (shape n_parties /
    (n_parties - 1) for the Gamma sums, variance n_parties / (n_parties - 1)
    times for the Gaussian, n_parties Gumbels).  ``rng``: see :func:`uniforms`; it must be the
    party's own (never a dealer-seeded stream).
    """
    if isinstance(n_parties, bool) or not isinstance(n_parties, (int, np.integer)) \
            or n_parties < 2:
        raise DPError(f"n_parties == {n_parties!r}: distributed noise needs >= 2 parties")
    scale = check_number("scale", scale, lo=0.0, lo_open=False)
    k = int(n_parties) - 1
    if kind == "exponential":
        return _gamma(rng, shape, 1.0 / k, scale)
    if kind == "gaussian":
        from scipy.special import ndtri
        return ndtri(uniforms(rng, shape)) * (scale / math.sqrt(k))
    if kind == "laplace":
        return _gamma(rng, shape, 1.0 / k, scale) - _gamma(rng, shape, 1.0 / k, scale)
    if kind == "gumbel":
        return -np.log(-np.log(uniforms(rng, shape))) * scale
    raise DPError(f"noise kind == {kind!r}, must be 'exponential', 'gaussian', 'laplace' or "
                  f"'gumbel'")
