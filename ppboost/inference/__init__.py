"""PPXGBoost encrypted prediction (docs/design.md, section 9).

    proxy = Proxy(booster)                   # xgboost.Booster or JSON model path
    enrollment = proxy.enroll("alice")       # .keys (client, secret), .model (server)
    client = Client(enrollment.keys)
    query = client.encrypt(X)                # NaN = missing
    result = enrollment.model.predict(query) # server side, no secrets
    scores = client.decrypt(result)          # == booster.predict(DMatrix(X))

Reference: X. Meng and J. Feigenbaum, "Privacy-Preserving XGBoost
Inference", arXiv:2011.04789 (2020) (PPXGBoost); OPE from Boldyreva et al.
EUROCRYPT 2009 (:mod:`ppboost.crypto.ope`); Paillier (EUROCRYPT 1999) via
:mod:`ppboost.crypto.paillier`.

Roles and what each holds:

* **Proxy** (trusted, set-up only; :mod:`.proxy`): the plaintext model.
  ``enroll(user)`` draws the user's Paillier key pair, OPE key and pseudonym
  key, and builds the user's :class:`EncryptedModel` (server side, public
  material only) and :class:`UserKeys` (client side, secret).
* **Server** (:mod:`.model`, :mod:`.evaluate`; the HTTP service in
  :mod:`.server`): :meth:`EncryptedModel.predict` on an
  :class:`EncryptedQuery`.  It compares OPE ciphertexts (``x < t`` iff
  ``E(x) < E(t)``, exact on float32 through the order-preserving bit trick),
  multiplies the reached leaves' Paillier ciphertexts (one homomorphic sum
  per output group) and re-randomises each result.  It holds no secret.
  What it learns is listed in :mod:`.model`.
* **Client** (:mod:`.client`, keys in :mod:`.keys`): :meth:`Client.encrypt`
  / :meth:`Client.decrypt`; adds the intercept (``base_score`` mapped to a
  margin) and applies the link.

The messages between them are in :mod:`.messages` (with the fixed-point
encoding), their byte container in :mod:`.container`.  The names below are
loaded on first use, so that the service plumbing (:mod:`.store`,
:mod:`.http_client`, the user-id rule in :mod:`.ids`) imports without the numba
and gmpy2 code.
"""

from .._lazy import lazy_getattr as _lazy_getattr

_LAZY = {
    "Proxy": "ppboost.inference.proxy",
    "Enrollment": "ppboost.inference.proxy",
    "UserKeys": "ppboost.inference.keys",
    "EncryptedModel": "ppboost.inference.model",
    "EncryptedQuery": "ppboost.inference.messages",
    "EncryptedResult": "ppboost.inference.messages",
    "Client": "ppboost.inference.client",
    "FRAC_BITS": "ppboost.inference.messages",
    "SLOT_CHOICES": "ppboost.inference.messages",
}

__all__ = ["Proxy", "Enrollment", "UserKeys", "EncryptedModel", "EncryptedQuery",
           "EncryptedResult", "Client", "FRAC_BITS", "SLOT_CHOICES"]


__getattr__ = _lazy_getattr(globals(), _LAZY)


def __dir__():
    return sorted(set(globals()) | set(__all__))
