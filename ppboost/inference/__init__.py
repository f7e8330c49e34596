"""PPXGBoost encrypted prediction (DESIGN.md "Encrypted prediction").

    proxy = Proxy(booster)                   # xgboost.Booster or JSON model path
    enrollment = proxy.enroll("alice")       # .keys (client, secret), .model (server)
    client = Client(enrollment.keys)
    query = client.encrypt(X)                # NaN = missing
    result = enrollment.model.predict(query) # server side, no secrets
    scores = client.decrypt(result)          # == booster.predict(DMatrix(X))
"""
from .core import (Proxy, Enrollment, UserKeys, EncryptedModel, EncryptedQuery,
                   EncryptedResult, Client, FRAC_BITS, SLOT_CHOICES)

__all__ = ["Proxy", "Enrollment", "UserKeys", "EncryptedModel", "EncryptedQuery",
           "EncryptedResult", "Client", "FRAC_BITS", "SLOT_CHOICES"]
