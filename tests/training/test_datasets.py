"""Tests for ppboost.datasets (the synthetic MS hospitals data)."""
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ppboost.datasets import make_ms_hospitals
from ppboost.datasets.ms import HOSPITAL_COLUMNS, INSURER_COLUMN, MAX_DISTINCT_VALUES, REGIONS


@pytest.fixture(scope="module")
def ms():
    return make_ms_hospitals(n_hospitals=3, n_patients=3000, n_test=1000, seed=7)


def test_reproducible_by_seed(ms):
    again = make_ms_hospitals(n_hospitals=3, n_patients=3000, n_test=1000, seed=7)
    for name in ms.hospitals:
        pd.testing.assert_frame_equal(ms.hospitals[name][0], again.hospitals[name][0])
        np.testing.assert_array_equal(ms.hospitals[name][1], again.hospitals[name][1])
    pd.testing.assert_frame_equal(ms.X_test, again.X_test)
    np.testing.assert_array_equal(ms.mixed.pooled().X, again.mixed.pooled().X)
    other = make_ms_hospitals(n_hospitals=3, n_patients=3000, n_test=1000, seed=8)
    assert not ms.hospitals["hospital_1"][0].equals(other.hospitals["hospital_1"][0])


def test_shapes_columns_and_splits_agree(ms):
    assert ms.hospital_names == ["hospital_1", "hospital_2", "hospital_3"]
    sizes = [len(y) for _, y in ms.hospitals.values()]
    assert sum(sizes) == 3000 and sizes[0] > sizes[1] > sizes[2]
    assert len(ms.insurer) == 3000 and list(ms.insurer.columns) == [INSURER_COLUMN]
    names = list(HOSPITAL_COLUMNS) + [INSURER_COLUMN]
    assert ms.mixed.feature_names == names == list(ms.X_test.columns)
    assert ms.vertical.feature_names == names
    assert ms.horizontal.feature_names == list(HOSPITAL_COLUMNS)
    assert ms.mixed.feature_types == ["q"] * 8 + ["c", "q"]
    assert ms.mixed.categories == {"region": REGIONS}
    assert ms.mixed.label_holders == ms.hospital_names
    assert ms.vertical.label_holders == ["hospitals"]
    pm, pv, ph = ms.mixed.pooled(), ms.vertical.pooled(), ms.horizontal.pooled()
    np.testing.assert_array_equal(pm.X, pv.X)
    np.testing.assert_array_equal(pm.y, pv.y)
    np.testing.assert_array_equal(pm.X[:, :9], ph.X)
    np.testing.assert_array_equal(pm.y, ph.y)
    assert len(ms.y_test) == 1000 == len(ms.test_hospital)
    assert set(np.unique(ms.test_hospital)) == {0, 1, 2}
    assert ms.X_test_hospitals.columns.tolist() == list(HOSPITAL_COLUMNS)
    Xt = ms.mixed.encode(ms.X_test)
    assert Xt.shape == (1000, 10) and Xt.dtype == np.float32


def test_values_plausible_and_few_distinct(ms):
    X = ms.mixed.pooled().frame()
    assert X["age"].between(18, 80).all()
    for flag in ("female", "adem", "optic_neuritis"):
        assert set(X[flag].unique()) <= {0.0, 1.0}
    for lab in ("hyperlipidemia", "hyperglycemia"):
        assert set(X[lab].dropna().unique()) <= {0.0, 1.0}
        assert 0.05 < X[lab].isna().mean() < 0.6
    assert X["vitamin_d"].dropna().between(5, 60).all()
    assert X[INSURER_COLUMN].between(0, 50).all()
    # documented: every column has at most 63 distinct values (max_bin >= 64 is exact)
    for c in X.columns:
        assert X[c].nunique() <= MAX_DISTINCT_VALUES, c
    assert not X.drop(columns=["hyperlipidemia", "hyperglycemia", "vitamin_d"]).isna().any().any()


def test_hospitals_differ_and_prevalence_as_documented(ms):
    prev, age, miss, north = [], [], [], []
    for name, (X, y) in ms.hospitals.items():
        prev.append(y.mean())
        age.append(X["age"].mean())
        miss.append(X["vitamin_d"].isna().mean())
        north.append((X["region"] == "north").mean())
        # documented target prevalence 4 % .. 18 %; sampling error at ~800-1200 rows < 3 %
        assert abs(y.mean() - ms.prevalence[name]) < 0.03, (name, y.mean())
        assert 0.02 <= y.mean() <= 0.22
    assert ms.prevalence == pytest.approx({"hospital_1": 0.04, "hospital_2": 0.11,
                                           "hospital_3": 0.18})
    assert prev[0] < prev[1] < prev[2]
    assert age[0] - age[2] > 8               # older general hospital, younger referral centre
    assert miss[2] - miss[0] > 0.2           # more missing lab values at the referral centre
    assert north[0] - north[2] > 0.1         # different region mixes
    assert 0.04 < ms.y_test.mean() < 0.2


def test_effect_directions(ms):
    p = ms.mixed.pooled().frame()
    y = ms.mixed.pooled().y
    for flag in ("female", "adem", "optic_neuritis"):
        assert y[p[flag] == 1].mean() > y[p[flag] == 0].mean(), flag
    young = p["age"].between(20, 40).to_numpy()
    assert y[young].mean() > y[~young].mean()
    assert p.loc[y == 1, INSURER_COLUMN].mean() > p.loc[y == 0, INSURER_COLUMN].mean()
    assert p.loc[y == 1, "n_visits"].mean() > p.loc[y == 0, "n_visits"].mean()


def test_plain_xgboost_reaches_a_sensible_auc(ms):
    from sklearn.metrics import roc_auc_score

    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "max_bin": 64,
              "tree_method": "hist", "max_cat_to_onehot": 5}
    aucs = {}
    for name, split, X_test in (("mixed", ms.mixed, ms.X_test),
                                ("horizontal", ms.horizontal, ms.X_test_hospitals)):
        p = split.pooled()
        booster = xgb.train(params, p.dmatrix(), 10)
        d = xgb.DMatrix(split.encode(X_test), feature_names=p.feature_names,
                        feature_types=p.feature_types, enable_categorical=True)
        aucs[name] = roc_auc_score(ms.y_test, booster.predict(d))
    assert aucs["mixed"] > 0.75, aucs
    assert aucs["horizontal"] > 0.7, aucs


@pytest.mark.parametrize("kw, match", [
    (dict(n_hospitals=1), "n_hospitals == 1, must be an int >= 2"),
    (dict(n_patients=50), "n_patients == 50, must be >= 60"),
    (dict(n_test=0), "n_test == 0, must be an int >= 1"),
    (dict(n_patients=2.5), "n_patients == 2.5"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        make_ms_hospitals(**kw)


def test_more_hospitals():
    ms = make_ms_hospitals(n_hospitals=5, n_patients=500, n_test=50, seed=1)
    assert len(ms.hospitals) == 5 and ms.mixed.n_rows == 500
    assert ms.mixed.party("insurer").n_rows == 500
