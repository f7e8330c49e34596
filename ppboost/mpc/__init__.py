"""L2: secret-shared computation over Z_2^64.

Entry points: :class:`Party` and :class:`AShare` (``context``), the dealer
(``dealer``: :func:`run_dealer`, the ``@correlation`` registry), protocols in
``arith``, ``truncation``, ``b2a``, ``prefix``, ``permutation``, and
:func:`run_parties` (``simulate``) to run parties in-process.
"""
from .context import AShare, Party
from .dealer import DealerClient, correlation, run_dealer
from .simulate import run_parties, run_parties_tls

__all__ = ["AShare", "Party", "DealerClient", "correlation", "run_dealer", "run_parties",
           "run_parties_tls"]
