"""Run a protocol between parties and a dealer: threads in-process, or OS processes over TLS.

``run_parties(n, fn)`` builds one :class:`Party` per data party over the
in-process transport, runs ``fn(party)`` on each (one thread each) while the
dealer thread serves correlations, closes the dealer, and returns
``(results, dealer_stats, endpoints)``.  The first exception of any
participant is re-raised in the caller; the others stop with ``PeerFailed``.

``run_parties_tls(n, fn)`` runs the very same ``fn`` with every party and
the dealer in its own OS process, talking over TLS with mutual
certificate authentication on 127.0.0.1 (``transport.launch.run_local``).
"""
from __future__ import annotations

import functools

from ..transport.inprocess import run_inprocess
from .dealer import run_dealer
from .party import Party

__all__ = ["run_parties", "run_parties_tls"]


def run_parties(n_parties: int, fn, *, timeout: float = 30.0, frac_bits: int = 16,
                keep_opened: bool = False, dealer_seeds=None):
    """Run ``fn(party)`` (or ``fn[i](party)`` for a list) on ``n_parties`` parties."""
    fns = list(fn) if isinstance(fn, (list, tuple)) else [fn] * n_parties

    def wrap(f):
        def main(ep):
            party = Party(ep, frac_bits=frac_bits, keep_opened=keep_opened)
            out = f(party)
            party.close()
            return out
        return main

    return run_inprocess(n_parties, [wrap(f) for f in fns],
                         lambda ep: run_dealer(ep, seeds=dealer_seeds), timeout=timeout)


def _party_main(ep, fn, frac_bits, keep_opened):
    party = Party(ep, frac_bits=frac_bits, keep_opened=keep_opened)
    out = fn(party)
    party.close()
    return out


def run_parties_tls(n_parties: int, fn, *, timeout: float = 30.0, frac_bits: int = 16,
                    keep_opened: bool = False):
    """Like :func:`run_parties`, one OS process per participant over mutual-TLS sockets.

    ``fn`` must be picklable by reference (a module-level function).  Returns
    what ``transport.launch.run_local`` returns:
    ``(party_results, dealer_stats, transport_stats)``.
    """
    from ..transport.launch import run_local
    party = functools.partial(_party_main, fn=fn, frac_bits=frac_bits, keep_opened=keep_opened)
    return run_local(n_parties, party, run_dealer, timeout=timeout)
