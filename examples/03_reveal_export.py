"""Reveal a securely trained model to the analyst and export it as an xgboost model.

Training leaves the trees secret-shared among the parties; reveal() reconstructs
them for the designated analyst only, as a normal xgboost.Booster (no cover /
sum_hessian statistics: they would leak per-node patient counts).  The booster
is saved as xgboost JSON and loaded back by plain xgboost.

    python examples/03_reveal_export.py [--out ms_model.json]
"""
import argparse

import numpy as np
import xgboost

import ppboost
from ppboost.datasets import make_ms_hospitals


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="ms_model.json")
    ap.add_argument("--n-patients", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-depth", type=int, default=3)
    args = ap.parse_args(argv)

    ms = make_ms_hospitals(n_hospitals=3, n_patients=args.n_patients, n_test=300, seed=args.seed)
    params = {"objective": "binary:logistic", "max_depth": args.max_depth, "eta": 0.3, "max_bin": 64,
              "base_score": 0.1, "max_cat_to_onehot": 5}
    # mixed split: hospitals by rows, the insurer adds a column for all of their patients
    model = ppboost.train(params, ms.mixed, num_boost_round=args.rounds, verbose=True)
    booster = model.reveal()
    booster.save_model(args.out)

    loaded = xgboost.Booster(model_file=args.out)
    pooled = ms.mixed.pooled()
    d = xgboost.DMatrix(ms.mixed.encode(ms.X_test), feature_names=pooled.feature_names,
                        feature_types=pooled.feature_types, enable_categorical=True)
    same = np.array_equal(booster.predict(d), loaded.predict(d))
    print(f"saved {args.out}: {len(loaded.get_dump())} trees; plain xgboost reloads it and "
          f"predicts {'the same' if same else 'DIFFERENTLY'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
