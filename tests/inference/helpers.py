"""Shared by the inference tests in this directory (``from .helpers import ...``)."""
from __future__ import annotations

import threading

import numpy as np


def count_ope_encryptions(monkeypatch) -> list[int]:
    """Record every ``OPE.encrypt_float32`` call for the rest of the test: the returned
    list gets the number of values of each call, in order (the calls still encrypt)."""
    from ppboost.crypto import ope as ope_mod
    calls: list[int] = []
    orig = ope_mod.OPE.encrypt_float32

    def counting(self, features, x):
        calls.append(len(np.asarray(x).reshape(-1)))
        return orig(self, features, x)
    monkeypatch.setattr(ope_mod.OPE, "encrypt_float32", counting)
    return calls


def run_in_threads(fn, n: int) -> tuple[list, list]:
    """Call ``fn()`` in ``n`` threads started together; ``(results, exceptions)``, each
    in the order the calls finished."""
    outs, errs = [], []

    def run():
        try:
            outs.append(fn())
        except Exception as e:        # pragma: no cover - the caller reports it
            errs.append(e)
    ts = [threading.Thread(target=run) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return outs, errs
