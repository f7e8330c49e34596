"""Secure training across hospitals that hold different patients (a horizontal split).

Three hospitals each keep their own patients' records; together they train one
XGBoost model with ppboost.train (MPC: nobody sees another hospital's rows,
gradients, split choices or leaf values).  Then the same model is compared with
plain xgboost trained on the pooled data (possible here only because the data
is synthetic).

    python examples/01_horizontal_hospitals.py [--n-patients 600] [--rounds 3]
"""
import argparse

import numpy as np
import xgboost
from sklearn.metrics import roc_auc_score

import ppboost
from ppboost.datasets import make_ms_hospitals


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-patients", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-depth", type=int, default=3)
    args = ap.parse_args(argv)

    ms = make_ms_hospitals(n_hospitals=3, n_patients=args.n_patients, n_test=300, seed=args.seed)
    # each hospital gives (its DataFrame, its labels); ms.horizontal is built exactly like this:
    data = ppboost.HorizontalSplit(dict(ms.hospitals), categories={"region": ["north", "central",
                                                                                "south", "coast"]})
    params = {"objective": "binary:logistic", "max_depth": args.max_depth, "eta": 0.3, "max_bin": 64,
              "base_score": 0.1, "max_cat_to_onehot": 5}
    data.validate(params["objective"])          # labels checked before anything is shared
    model = ppboost.train(params, data, num_boost_round=args.rounds, verbose=True)
    booster = model.reveal()                    # for the analyst only

    X_test = data.encode(ms.X_test_hospitals)
    pooled = data.pooled()                      # comparison only: never do this for real
    dtest = xgboost.DMatrix(X_test, feature_names=pooled.feature_names,
                            feature_types=pooled.feature_types, enable_categorical=True)
    plain = xgboost.train(params | {"tree_method": "hist"}, pooled.dmatrix(), args.rounds)
    p_sec, p_plain = booster.predict(dtest), plain.predict(dtest)
    print(f"{data!r}")
    print(f"secure model AUC {roc_auc_score(ms.y_test, p_sec):.4f}, plain xgboost AUC "
          f"{roc_auc_score(ms.y_test, p_plain):.4f}, largest probability difference "
          f"{np.max(np.abs(p_sec - p_plain)):.2e}")


if __name__ == "__main__":
    main()
