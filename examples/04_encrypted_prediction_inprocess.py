"""Encrypted prediction (PPXGBoost), all in one process.

The trusted Proxy turns a plaintext xgboost model into a personalised encrypted
model for one user (OPE-encrypted thresholds, Paillier-encrypted leaves).  The
user encrypts a query, the "server" (here: a method call) evaluates it without
any secret key, and only the user can decrypt the score.

By default the model is hospital_1's own plain xgboost model, trained on its own
patients only (no pooling).  Pass --model to use another xgboost JSON model,
e.g. the one examples/03_reveal_export.py writes.  ppboost.inference does not
support categorical splits yet, so the default model leaves out the
categorical 'region' column.

    python examples/04_encrypted_prediction_inprocess.py [--model m.json] [--key-bits 3072]
"""
import argparse

import numpy as np
import xgboost

from ppboost.datasets import make_ms_hospitals
from ppboost.inference import Client, Proxy


def hospital_model(ms, rounds=5):
    """hospital_1's own model (its rows only), without the categorical column."""
    X, y = ms.hospitals["hospital_1"]
    X = X.drop(columns=["region"])
    return xgboost.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3},
                         xgboost.DMatrix(X.to_numpy(np.float32), label=y,
                                         feature_names=list(X.columns)), rounds)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="xgboost JSON model (default: hospital_1's own model)")
    ap.add_argument("--key-bits", type=int, default=3072, help="Paillier modulus size")
    ap.add_argument("--n-queries", type=int, default=5)
    args = ap.parse_args(argv)

    ms = make_ms_hospitals(n_hospitals=3, n_patients=600, n_test=100, seed=0)
    if args.model:
        booster = xgboost.Booster(model_file=args.model)
        X = ms.mixed.encode(ms.X_test)[:args.n_queries]
    else:
        booster = hospital_model(ms)
        X = ms.X_test_hospitals.drop(columns=["region"]).to_numpy(np.float32)[:args.n_queries]

    proxy = Proxy(booster, key_bits=args.key_bits)       # trusted: sees the model
    enrollment = proxy.enroll("alice")                   # alice's keys + her encrypted model
    client = Client(enrollment.keys)                     # alice's side
    query = client.encrypt(X)                            # NaN = missing
    result = enrollment.model.predict(query)             # server side: no secret key
    scores = client.decrypt(result)                      # only alice can do this
    plain = booster.predict(xgboost.DMatrix(X, feature_names=booster.feature_names))
    for s, p in zip(scores, plain):
        print(f"decrypted risk {float(s):.6f}   plaintext model {float(p):.6f}")
    diff = float(np.max(np.abs(np.asarray(scores, dtype=np.float64) - plain)))
    print(f"largest difference {diff:.1e}")
    if diff > 1e-5:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
