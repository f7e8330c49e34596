"""Run a protocol between in-process parties and a dealer thread.

``run_parties(n, fn)`` builds one :class:`Party` per data party over the
in-process transport, runs ``fn(party)`` on each (one thread each) while the
dealer thread serves correlations, closes the dealer, and returns
``(results, dealer_stats, endpoints)``.  The first exception of any
participant is re-raised in the caller; the others stop with ``PeerFailed``.
"""
from __future__ import annotations

from ..transport.inprocess import run_inprocess
from .context import Party
from .dealer import run_dealer

__all__ = ["run_parties"]


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
