"""An encrypted prediction client against a running `ppboost serve`.

Start a server first, e.g.

    echo "a-long-random-admin-token-0123" > admin.tok && chmod 600 admin.tok
    ppboost serve --db models.db --port 8000 --admin-token-file admin.tok &

then

    python examples/05_prediction_client.py --server http://127.0.0.1:8000 \
        --admin-token-file admin.tok [--model ms_model.json] [--key-bits 3072]

The script plays two roles: the Proxy (enrols user 'bob': builds his keys and
his encrypted model, uploads the model with the admin token) and bob's client
(encrypts a few patients' records, sends them over HTTP, decrypts the scores).
The server only ever holds ciphertexts and bob's encrypted model.
"""
import argparse
import importlib.util
from pathlib import Path

import numpy as np
import xgboost

from ppboost.datasets import make_ms_hospitals
from ppboost.inference import Client, Proxy
from ppboost.inference.http_client import ServiceClient


def _hospital_model(ms):
    # the same default model as examples/04 (hospital_1's own model, no categorical column)
    path = Path(__file__).with_name("04_encrypted_prediction_inprocess.py")
    spec = importlib.util.spec_from_file_location("example04", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.hospital_model(ms)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8000")
    ap.add_argument("--admin-token-file", required=True)
    ap.add_argument("--model", help="xgboost JSON model (default: hospital_1's own model)")
    ap.add_argument("--user", default="bob")
    ap.add_argument("--key-bits", type=int, default=3072)
    ap.add_argument("--n-queries", type=int, default=5)
    args = ap.parse_args(argv)

    ms = make_ms_hospitals(n_hospitals=3, n_patients=600, n_test=100, seed=0)
    if args.model:
        booster = xgboost.Booster(model_file=args.model)
        X = ms.mixed.encode(ms.X_test)[:args.n_queries]
    else:
        booster = _hospital_model(ms)
        X = ms.X_test_hospitals.drop(columns=["region"]).to_numpy(np.float32)[:args.n_queries]

    # the Proxy's side: enrol the user and upload his encrypted model (admin token)
    admin_token = Path(args.admin_token_file).read_text().strip()
    enrollment = Proxy(booster, key_bits=args.key_bits).enroll(args.user)
    with ServiceClient(args.server, admin_token=admin_token) as admin:
        token = admin.upload_model(args.user, enrollment.model.to_bytes())["token"]

    # the user's side: encrypt, send, decrypt (his token only allows his own model)
    client = Client(enrollment.keys)
    with ServiceClient(args.server, token=token) as svc:
        result = svc.predict(args.user, client.encrypt(X))
    scores = np.asarray(client.decrypt(result), dtype=np.float64)
    plain = booster.predict(xgboost.DMatrix(X, feature_names=booster.feature_names))
    for s, p in zip(scores, plain):
        print(f"decrypted risk {s:.6f}   plaintext model {float(p):.6f}")
    diff = float(np.max(np.abs(scores - plain)))
    print(f"{len(scores)} encrypted queries answered by {args.server}; largest difference "
          f"{diff:.1e}")
    if diff > 1e-5:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
