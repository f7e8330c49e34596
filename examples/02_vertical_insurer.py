"""Secure training with an insurer that holds other columns for the same patients.

A vertical split: the hospitals' pooled records (with the diagnosis labels) on
one side, the insurer's reimbursements for past medication on the other, rows
aligned (the same patient on the same row).  Exactly one party holds labels.
The model trained with the insurer's column is compared with one trained on the
hospital's columns alone.

    python examples/02_vertical_insurer.py [--n-patients 600] [--rounds 3]
"""
import argparse

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
    hospital = ms.vertical.party("hospitals")
    print(f"hospital: {hospital.n_rows} patients x {hospital.n_features} columns + labels; "
          f"insurer: {ms.insurer.shape[1]} column ({', '.join(ms.insurer.columns)})")
    # ms.vertical == ppboost.VerticalSplit({"hospitals": (X_hospital, y), "insurer": X_insurer})
    data = ms.vertical
    params = {"objective": "binary:logistic", "max_depth": args.max_depth, "eta": 0.3, "max_bin": 64,
              "base_score": 0.1, "max_cat_to_onehot": 5}
    model = ppboost.train(params, data, num_boost_round=args.rounds, verbose=True)
    booster = model.reveal()

    pooled = data.pooled()
    dtest = xgboost.DMatrix(data.encode(ms.X_test), feature_names=pooled.feature_names,
                            feature_types=pooled.feature_types, enable_categorical=True)
    auc_joint = roc_auc_score(ms.y_test, booster.predict(dtest))
    # what the hospitals could do alone (plain xgboost on their own columns)
    hp = ms.horizontal.pooled()
    alone = xgboost.train(params | {"tree_method": "hist"}, hp.dmatrix(), args.rounds)
    dh = xgboost.DMatrix(ms.horizontal.encode(ms.X_test_hospitals), feature_names=hp.feature_names,
                         feature_types=hp.feature_types, enable_categorical=True)
    auc_alone = roc_auc_score(ms.y_test, alone.predict(dh))
    print(f"test AUC with the insurer's column (secure): {auc_joint:.4f}; "
          f"hospital columns only: {auc_alone:.4f}")


if __name__ == "__main__":
    main()
