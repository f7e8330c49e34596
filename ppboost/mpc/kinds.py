"""Every correlation kind ppboost's protocols ask the dealer for, in one registry.

:func:`standard_kinds` builds a new :class:`~ppboost.mpc.dealer.Registry`
from plain imports of the kind classes: the core kinds of
:mod:`ppboost.mpc.correlations` and the kinds defined next to their
protocols.  A dealer and its parties each hold one (by default
:func:`~ppboost.mpc.dealer.run_dealer` and
:class:`~ppboost.mpc.party.Party` build it); a protocol with kinds of its
own adds them with :meth:`~ppboost.mpc.dealer.Registry.add` and passes the
registry to both sides (``run_parties(..., kinds=)``).
"""
from __future__ import annotations

from .boolean import AndTriple, XorZero
from .compare import EdaBit, LtzBundle
from .correlations import (
    BeaverTriple,
    DaBit,
    MatrixTriple,
    PermutationCorrelation,
    PermutationSelectCorrelation,
    TruncationPair,
    ZeroShare,
)
from .dealer import Registry
from .ownermat import OwnerMatrixProduct, OwnerMatrixSetup

__all__ = ["standard_kinds"]


def standard_kinds() -> Registry:
    """A new registry of the built-in kinds: ``beaver``, ``matmul``, ``trunc``,
    ``dabit``, ``zero``, ``perm``, ``perm_select`` (:mod:`ppboost.mpc.correlations`),
    ``and_triple``, ``xor_zero`` (:mod:`ppboost.mpc.boolean`), ``edabit``,
    ``ltz_bundle`` (:mod:`ppboost.mpc.compare`), ``omat_setup`` and ``omat_mul``
    (:mod:`ppboost.mpc.ownermat`)."""
    return Registry([BeaverTriple, MatrixTriple, TruncationPair, DaBit, ZeroShare,
                     PermutationCorrelation, PermutationSelectCorrelation,
                     AndTriple, XorZero, EdaBit, LtzBundle,
                     OwnerMatrixSetup, OwnerMatrixProduct])
