"""A whole consortium on this machine: 3 hospitals, an insurer and a dealer, each its own process.

Each site gets a directory of its own holding only its data file (CSV, or
Parquet for the insurer), its private key and the public federation files,
and runs exactly the command it would run at home (``ppboost party`` /
``ppboost dealer``).  As root, where Linux network namespaces can be made,
every site also gets its own network namespace and address; otherwise its
own 127.0.x.y address.  The split is mixed: the hospitals hold their
patients' records and MS diagnoses, the insurer a reimbursement column for
most of those patients (matched by patient id with a private set
intersection) and for people who are not patients of any hospital.

    python examples/federation/run.py [--n-patients 900] [--rounds 3] [--dir DIR]

At the end, the analyst (hospital_1) has ``model.json``; as an auditor's
check only, this script pools the files and trains plain xgboost on them.
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost
from sklearn.metrics import roc_auc_score

from ppboost.consortium import Consortium, Network
from ppboost.datasets import make_ms_hospitals
from ppboost.datasets.ms import INSURER_COLUMN, REGIONS


def write_sites(c, ms, seed):
    """Per-site files: hospitals with patient ids and labels; the insurer keyed by the same ids."""
    rng = np.random.default_rng(seed)
    ids, start = {}, 0
    for name, (frame, y) in ms.hospitals.items():
        n = len(frame)
        ids[name] = [f"P{start + i:06d}" for i in range(n)]
        df = frame.assign(region=frame["region"].astype(str))
        df.insert(0, "patient_id", ids[name])
        df["ms_diagnosis"] = y.astype(int)
        df.to_csv(c.site(name) / f"{name}.csv", index=False)
        start += n
    everyone = [i for v in ids.values() for i in v]
    covered = rng.random(len(everyone)) < 0.9                  # the insurer lacks 10%
    ins = pd.DataFrame({"patient_id": np.array(everyone)[covered],
                        INSURER_COLUMN: ms.insurer[INSURER_COLUMN].to_numpy()[covered]})
    others = pd.DataFrame({"patient_id": [f"X{i:06d}" for i in range(200)],
                           INSURER_COLUMN: rng.integers(0, 50, 200).astype(float)})
    pd.concat([ins, others]).sample(frac=1, random_state=seed).to_parquet(
        c.site("insurer") / "insurer.parquet", index=False)
    return ins


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-patients", type=int, default=900)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-depth", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", help="keep the sites' directories here (default: a temporary one)")
    ap.add_argument("--loopback", action="store_true", help="127.0.x.y addresses, no namespaces")
    args = ap.parse_args(argv)

    ms = make_ms_hospitals(n_hospitals=3, n_patients=args.n_patients, n_test=300, seed=args.seed)
    hospitals = list(ms.hospitals)
    parties = hospitals + ["insurer"]
    with tempfile.TemporaryDirectory(prefix="ppboost-consortium-") as tmp, \
            Network(parties + ["dealer"], prefer_netns=not args.loopback) as net:
        root = Path(args.dir) if args.dir else Path(tmp)
        print(f"network: {net.kind}" + (f" ({net.reason})" if net.reason else "")
              + "; sites: " + ", ".join(f"{n} {net.addr[n]}" for n in parties + ["dealer"]))
        c = Consortium(root, net, parties)
        insurer = write_sites(c, ms, args.seed)
        job = {"params": {"objective": "binary:logistic", "max_depth": args.max_depth,
                          "max_bin": 64, "eta": 0.3, "max_cat_to_onehot": len(REGIONS) + 1},
               "num_boost_round": args.rounds, "split": "mixed", "label": "ms_diagnosis",
               "id": "patient_id", "analyst": hospitals[0],
               "categorical": {"region": list(REGIONS)}, "timeout": 120}
        c.write_job(job)
        for n in parties + ["dealer"]:
            files = sorted(f.name for f in c.site(n).iterdir())
            print(f"  {n}/: {', '.join(files)}")
        c.start("dealer")
        for n in parties:
            c.start(n, data="insurer.parquet" if n == "insurer" else None, out=n == hospitals[0])
        results = c.wait(1800)
        for n, (rc, out, err, _) in results.items():
            print(f"[{n}] exit {rc}: " + (out.strip().splitlines() or [""])[-1])
            if rc != 0:
                print(err)
        if any(rc != 0 for rc, *_ in results.values()):
            return 1
        model = xgboost.Booster()
        model.load_model(str(c.site(hospitals[0]) / "model.json"))
        stats = json.loads((c.site("insurer") / "stats.json").read_text())

        # --- the auditor's check (pools the files, which no site may do in real life)
        pooled = pd.concat([pd.read_csv(c.site(n) / f"{n}.csv") for n in hospitals])
        pooled = pooled.merge(insurer, on="patient_id", how="left")
        X = pooled.drop(columns=["patient_id", "ms_diagnosis"])
        X["region"] = pd.Categorical(X["region"], categories=list(REGIONS))
        dtrain = xgboost.DMatrix(X, label=pooled["ms_diagnosis"], enable_categorical=True)
        plain = xgboost.train({**job["params"], "tree_method": "hist"}, dtrain, args.rounds)
        Xt = ms.X_test[list(X.columns)].copy()
        dtest = xgboost.DMatrix(Xt, enable_categorical=True)
        auc = roc_auc_score(ms.y_test, model.predict(dtest))
        auc_plain = roc_auc_score(ms.y_test, plain.predict(dtest))
        diff = float(np.abs(model.predict(dtrain, output_margin=True)
                            - plain.predict(dtrain, output_margin=True)).max())
    print(f"insurer: {stats['bytes_sent'] / 1e6:.1f} MB sent in training, PSI and agreement "
          f"{stats['setup_messages']['bytes_sent'] / 1e6:.2f} MB")
    print(f"held-out AUC: federated model {auc:.3f}, plain xgboost on the pooled files "
          f"{auc_plain:.3f}; largest margin difference {diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
