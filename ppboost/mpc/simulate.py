"""Run a protocol between parties and a dealer: threads in-process, or OS processes over TLS.

``run_parties(n, fn)`` builds one :class:`Party` per data party over the
in-process transport, runs ``fn(party)`` on each (one thread each) while the
dealer thread serves correlations, closes the dealer, and returns
``(results, dealer_stats, endpoints)``.  The first exception of any
participant is re-raised in the caller; the others stop with ``PeerFailed``.

``run_parties_tls(n, fn)`` runs the very same ``fn`` with every party and
the dealer in its own OS process, talking over TLS with mutual
certificate authentication on 127.0.0.1 (``transport.launch.run_local``).

``kinds`` (both): the :class:`~ppboost.mpc.dealer.Registry` of correlation
kinds the dealer serves and every party's dealer client knows (default
:func:`~ppboost.mpc.kinds.standard_kinds`).
"""
from __future__ import annotations

import functools

from ..transport.inprocess import run_inprocess
from .dealer import WINDOW_BYTES, Registry, run_dealer
from .dealer_client import DealerClient
from .kinds import standard_kinds
from .party import Party

__all__ = ["run_parties", "run_parties_tls"]


def run_parties(n_parties: int, fn, *, timeout: float = 30.0, frac_bits: int = 16,
                keep_opened: bool = False, dealer_seeds=None, kinds: Registry | None = None,
                window_bytes: int = WINDOW_BYTES):
    """Run ``fn(party)`` (or ``fn[i](party)`` for a list) on ``n_parties`` parties.
    ``window_bytes``: the dealer's run-ahead window (:mod:`ppboost.mpc.dealer`)."""
    fns = list(fn) if isinstance(fn, (list, tuple)) else [fn] * n_parties
    kinds = standard_kinds() if kinds is None else kinds

    def wrap(f):
        def main(ep):
            return _party_main(ep, f, frac_bits, keep_opened, kinds, window_bytes)
        return main

    return run_inprocess(n_parties, [wrap(f) for f in fns],
                         lambda ep: run_dealer(ep, kinds=kinds, seeds=dealer_seeds,
                                               window_bytes=window_bytes),
                         timeout=timeout)


def _party_main(ep, fn, frac_bits, keep_opened, kinds, window_bytes=WINDOW_BYTES):
    party = Party(ep, frac_bits=frac_bits, keep_opened=keep_opened,
                  dealer=DealerClient(ep, standard_kinds() if kinds is None else kinds,
                                      window_bytes))
    out = fn(party)
    party.close()
    return out


def _dealer_main(ep, kinds):
    return run_dealer(ep, kinds=kinds)


def run_parties_tls(n_parties: int, fn, *, timeout: float = 30.0, frac_bits: int = 16,
                    keep_opened: bool = False, kinds: Registry | None = None):
    """Like :func:`run_parties`, one OS process per participant over mutual-TLS sockets.

    ``fn`` (and the classes in ``kinds``) must be picklable by reference
    (module-level).  Returns what ``transport.launch.run_local`` returns:
    ``(party_results, dealer_stats, transport_stats)``.
    """
    from ..transport.launch import run_local
    party = functools.partial(_party_main, fn=fn, frac_bits=frac_bits, keep_opened=keep_opened,
                              kinds=kinds)
    dealer = functools.partial(_dealer_main, kinds=kinds)
    return run_local(n_parties, party, dealer, timeout=timeout)
