"""ppboost.train: the revealed model equals xgboost hist; transcripts; stats; bad input; TLS.

Data are small (about a hundred rows, 4-5 features with at most 6 distinct
values each, depth 2, 2 rounds) so that every secure run takes a few
seconds; each secure test runs with 2 and with 3 parties.
"""
from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import ppboost
from ppboost.data import DataValidationError

from .same_model import assert_same_model, categorical_splits

ROUNDS = 2


def _labels(rng, X, objective):
    n = X.shape[0]
    if objective == "reg:squarederror":
        return ((X[:, 0] * 2 - X[:, 1] + rng.normal(size=n)) * 7.5).astype(np.float32)
    if objective == "binary:logistic":
        return (X[:, 0] + X[:, 2] + rng.normal(size=n) > 5).astype(np.float32)
    return np.clip((X[:, 0] + rng.normal(size=n)) // 2, 0, 2).astype(np.float32)


def _params(objective, **kw):
    p = {"objective": objective, "max_depth": 2, "eta": 0.3, "max_bin": 16}
    if objective == "multi:softprob":
        p["num_class"] = 3
    p.update(kw)
    return p


def _split(kind, X, y, n_parties):
    if kind == "vertical":
        cols = np.array_split(np.arange(X.shape[1]), n_parties)
        parts = {}
        for i, c in enumerate(cols):
            parts[f"p{i}"] = (X[:, c], y) if i == 0 else X[:, c]
        return ppboost.VerticalSplit(parts)
    rows = np.array_split(np.arange(X.shape[0]), n_parties)
    return ppboost.HorizontalSplit({f"p{i}": (X[r], y[r]) for i, r in enumerate(rows)})


def _reference(params, pooled, rounds=ROUNDS):
    return xgb.train({**params, "tree_method": "hist"}, pooled.dmatrix(), rounds)


OBJECTIVES = ["reg:squarederror", "binary:logistic", "multi:softprob"]


@pytest.mark.parametrize("n_parties", [2, 3])
@pytest.mark.parametrize("kind", ["horizontal", "vertical"])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_same_model_as_xgboost(objective, kind, n_parties):
    rng = np.random.default_rng(zlib.crc32(f"{objective}-{kind}-{n_parties}".encode()))
    X = rng.integers(0, 6, size=(120, 4)).astype(np.float32)
    y = _labels(rng, X, objective)
    data = _split(kind, X, y, n_parties)
    params = _params(objective)
    model = ppboost.train(params, data, ROUNDS, verbose=False)
    assert isinstance(model, ppboost.SecretSharedModel)
    assert model.num_trees == ROUNDS * (3 if objective == "multi:softprob" else 1)
    booster = model.reveal()
    pooled = data.pooled()
    # the trees themselves are xgboost's (same splits, same structure), margins within 1e-5
    assert_same_model(booster, _reference(params, pooled), pooled.dmatrix())


@pytest.mark.parametrize("objective", ["reg:squarederror", "binary:logistic"])
def test_mixed_split_three_parties(objective):
    rng = np.random.default_rng(7)
    X = rng.integers(0, 5, size=(110, 4)).astype(np.float32)
    y = _labels(rng, X, objective)
    ins_rows = np.sort(rng.choice(110, size=80, replace=False))     # insurer covers 80 patients
    data = ppboost.MixedSplit(horizontal={"h1": (X[:60, :3], y[:60]), "h2": (X[60:, :3], y[60:])},
                              vertical={"insurer": (X[ins_rows, 3:], ins_rows)})
    params = _params(objective)
    booster = ppboost.train(params, data, ROUNDS, verbose=False).reveal()
    pooled = data.pooled()
    assert np.isnan(pooled.X[:, 3]).sum() == 30
    assert_same_model(booster, _reference(params, pooled), pooled.dmatrix())


def _cat_frame(rng, n):
    df = pd.DataFrame({
        "age": rng.integers(20, 26, size=n).astype(np.float64),
        "dose": rng.integers(0, 4, size=n).astype(np.float64),
        "region": pd.Categorical(rng.choice(["n", "s", "e"], size=n), categories=["n", "s", "e"]),
        "score": rng.integers(0, 5, size=n).astype(np.float64),
    })
    df.loc[rng.random(n) < 0.15, "dose"] = np.nan
    df.loc[rng.random(n) < 0.1, "score"] = np.nan
    return df


@pytest.mark.parametrize("kind", ["vertical", "horizontal"])
def test_missing_values_and_categorical(kind):
    rng = np.random.default_rng(11)
    n = 120
    df = _cat_frame(rng, n)
    y = ((df["age"] - 22) + (df["region"] == "s") * 2 + df["dose"].fillna(5) * 0.5
         + rng.normal(size=n) > 1.5).astype(np.float32).to_numpy()
    if kind == "vertical":
        data = ppboost.VerticalSplit({"hospital": (df[["age", "dose"]], y),
                                      "insurer": df[["region", "score"]]})
    else:
        data = ppboost.HorizontalSplit({"a": (df.iloc[:70], y[:70]), "b": (df.iloc[70:], y[70:])})
    params = _params("binary:logistic", max_cat_to_onehot=8, max_depth=3)
    model = ppboost.train(params, data, ROUNDS, verbose=False)
    booster = model.reveal()
    # public: whether a feature of one owner has a missing value (age has none: no
    # backward candidates); a feature whose rows are split keeps them (no flag opened)
    want = [False, True, False, True] if kind == "vertical" else [True] * 4
    assert list(model.has_missing) == want
    pooled = data.pooled()
    assert_same_model(booster, _reference(params, pooled), pooled.dmatrix())
    # region (feature 2) is a categorical feature and the model splits on it as one:
    # a category-set split sending region "s" (code 1, the one y depends on) one way
    region = booster.feature_names.index("region")
    assert booster.feature_types[region] == "c"
    cat_splits = categorical_splits(booster, region)
    assert cat_splits and all(c == [1] for c in cat_splits), cat_splits
    assert "[region:{1}]" in "".join(booster.get_dump())          # the dump names it


@pytest.mark.parametrize("kind", ["vertical", "horizontal"])
def test_histograms_in_small_feature_groups_give_the_same_model(kind, monkeypatch):
    """With a group budget of 4 kB every cell's features go one or two at a time
    (HistCell.groups): the model is still xgboost's, the transcript still the same for
    two datasets of one shape, and each extra group costs its 2 rounds."""
    from ppboost.tree.secure import histogram

    def run(seed, budget):
        monkeypatch.setattr(histogram, "GROUP_BYTES", budget)
        rng = np.random.default_rng(seed)
        df = _cat_frame(rng, 120)
        y = ((df["age"] - 22) + df["dose"].fillna(5) * 0.5 + rng.normal(size=120) > 1.5
             ).astype(np.float32).to_numpy()
        data = ppboost.VerticalSplit({"a": (df[["age", "dose"]], y), "b": df[["region", "score"]]}) \
            if kind == "vertical" else \
            ppboost.HorizontalSplit({"a": (df.iloc[:70], y[:70]), "b": (df.iloc[70:], y[70:])})
        params = _params("binary:logistic", max_cat_to_onehot=8, max_depth=3)
        return data, params, ppboost.train(params, data, 2, verbose=False)

    data, params, small = run(3, 4096)
    pooled = data.pooled()
    assert_same_model(small.reveal(), _reference(params, pooled, 2), pooled.dmatrix())
    _, _, other = run(4, 4096)
    _, _, whole = run(3, 1 << 30)
    for name in small.stats["parties"]:
        a, b = small.stats["parties"][name], other.stats["parties"][name]
        assert a["transcript"] == b["transcript"]
        assert a["by_step"]["histograms"]["rounds"] > whole.stats["parties"][name]["by_step"][
            "histograms"]["rounds"]


def test_transcript_identical_for_datasets_of_the_same_shape():
    def run(seed):
        rng = np.random.default_rng(seed)
        X = rng.integers(0, 5, size=(60, 4)).astype(np.float32)
        X[rng.random(X.shape) < 0.1 * seed] = np.nan        # different missingness
        y = _labels(rng, np.nan_to_num(X), "binary:logistic")
        data = ppboost.VerticalSplit({"a": (X[:, :2], y), "b": X[:, 2:]})
        return ppboost.train(_params("binary:logistic"), data, 1, verbose=False).stats

    s1, s2 = run(1), run(2)
    for name in s1["parties"]:
        assert s1["parties"][name]["transcript"] == s2["parties"][name]["transcript"]
        assert s1["parties"][name]["rounds"] == s2["parties"][name]["rounds"]
        assert len(s1["parties"][name]["transcript"]) > 100
        # the breakdown by protocol step is data-independent too, and adds up
        steps = s1["parties"][name]["by_step"]
        assert steps == s2["parties"][name]["by_step"]
        assert sum(v["bytes"] for v in steps.values()) == s1["parties"][name]["bytes_sent"]
        assert sum(v["rounds"] for v in steps.values()) == s1["parties"][name]["rounds"]
        assert {"histograms", "split: weights", "split: argmax", "routing", "leaves",
                "gradients"} <= set(steps)
    assert s1["dealer"]["transcript"] == s2["dealer"]["transcript"]
    assert s1["dealer"]["rounds"] == s2["dealer"]["rounds"]


def test_later_rounds_request_their_dealer_material_in_one_message():
    """Rounds after the first ask the dealer for the whole round at once (the
    first round's recorded requests, SecureBackend.before_round): one more
    round costs party 0 exactly one more message to the dealer, the round's
    batch (which includes the product that exports the round's tree, made as
    soon as the tree is grown, so that a checkpoint can hold it), and the
    transcripts of two datasets of the same shape stay identical over 3 rounds.
    With a separate offline phase (offline="before": each round's material is
    expanded before the round) the transcript is the same and so is the model."""
    def run(seed, rounds, offline="overlap"):
        rng = np.random.default_rng(seed)
        X = rng.integers(0, 5, size=(60, 4)).astype(np.float32)
        X[rng.random(X.shape) < 0.1 * seed] = np.nan
        y = _labels(rng, np.nan_to_num(X), "binary:logistic")
        data = ppboost.VerticalSplit({"a": (X[:, :2], y), "b": X[:, 2:]})
        model = ppboost.train(_params("binary:logistic"), data, rounds, verbose=False,
                              offline=offline)
        return model.stats if offline == "overlap" else (model, data)

    def to_dealer(stats):
        tr = stats["parties"]["a"]["transcript"]
        return sum(1 for _, to, _ in tr if to == 2)

    s2, s3, t3 = run(1, 2), run(1, 3), run(2, 3)
    assert to_dealer(s3) == to_dealer(s2) + 1
    assert to_dealer(s2) > 50                    # the first round asks one by one
    for name in s3["parties"]:
        assert s3["parties"][name]["transcript"] == t3["parties"][name]["transcript"]
    assert s3["dealer"]["transcript"] == t3["dealer"]["transcript"]
    before, data = run(2, 3, "before")

    def channels(tr):           # message sizes per (sender, receiver), in order
        out = {}
        for frm, to, size in tr:
            out.setdefault((frm, to), []).append(size)
        return out

    # the offline phase moves when the dealer's messages are read, not what is sent
    for name in s3["parties"]:
        assert channels(before.stats["parties"][name]["transcript"]) \
            == channels(t3["parties"][name]["transcript"])
    pooled = data.pooled()
    assert_same_model(before.reveal(), _reference(_params("binary:logistic"), pooled, 3),
                      pooled.dmatrix())
    with pytest.raises(ValueError, match="offline == 'later', must be 'overlap' or 'before'"):
        ppboost.train(_params("binary:logistic"), data, 1, verbose=False, offline="later")


def test_horizontal_transcript_identical_for_datasets_of_the_same_shape():
    """Horizontal split of continuous features (the quantile path of the secure
    binning, tree.secure_binning.shared_cuts): two datasets of the same shape with
    different values and missingness (the same public bin counts) give the same
    transcript, binning included."""
    def run(seed):
        rng = np.random.default_rng(seed)
        X = (rng.normal(size=(60, 3)) * 10 ** seed).astype(np.float32)
        X[rng.random(X.shape) < 0.1 * seed] = np.nan
        y = (np.nan_to_num(X[:, 0]) > 0).astype(np.float32)
        data = ppboost.HorizontalSplit({"a": (X[:25], y[:25]), "b": (X[25:], y[25:])})
        return ppboost.train(_params("binary:logistic"), data, 1, verbose=False).stats

    s1, s2 = run(1), run(2)
    for name in s1["parties"]:
        assert s1["parties"][name]["transcript"] == s2["parties"][name]["transcript"]
        assert s1["parties"][name]["rounds"] == s2["parties"][name]["rounds"]
    assert s1["dealer"]["transcript"] == s2["dealer"]["transcript"]


@pytest.mark.parametrize("name,n_parties", [("breast_cancer", 2), ("diabetes", 3)])
def test_horizontal_continuous_quality_within_one_percent_of_xgboost(name, n_parties):
    """Continuous features split by rows: cuts from the secure sort's quantile path
    (equal to xgboost's own at this size), held-out quality within 1% of xgboost
    (same settings as tests/training/test_continuous.py, which is vertical)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.metrics import mean_squared_error, roc_auc_score
    from sklearn.model_selection import train_test_split
    loader, obj, metric = {
        "breast_cancer": (load_breast_cancer, "binary:logistic", roc_auc_score),
        "diabetes": (load_diabetes, "reg:squarederror",
                     lambda y, p: mean_squared_error(y, p) ** 0.5)}[name]
    X, y = loader(return_X_y=True)
    X, y = X.astype(np.float32), y.astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    params = {"objective": obj, "max_depth": 3, "eta": 0.3, "max_bin": 32}
    data = _split("horizontal", Xtr, ytr, n_parties)
    secure = ppboost.train(params, data, 4, verbose=False).reveal()
    plain = xgb.train({**params, "tree_method": "hist"}, xgb.DMatrix(Xtr, label=ytr), 4)
    ms = metric(yte, secure.predict(xgb.DMatrix(Xte)))
    mp = metric(yte, plain.predict(xgb.DMatrix(Xte)))
    assert abs(ms - mp) <= 0.01 * abs(mp), (name, ms, mp)


@pytest.mark.statistical
def test_opened_values_look_uniform():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 5, size=(80, 4)).astype(np.float32)
    y = _labels(rng, X, "reg:squarederror")
    data = ppboost.VerticalSplit({"a": (X[:, :2], y), "b": X[:, 2:]})
    model = ppboost.train(_params("reg:squarederror"), data, 1, verbose=False, keep_opened=True)
    for name, st in model.stats["parties"].items():
        ring = [np.asarray(o) for o in st["opened"] if np.asarray(o).dtype == np.uint64]
        bits = [np.asarray(o) for o in st["opened"] if np.asarray(o).dtype == np.uint8]
        vals = np.concatenate([o.ravel() for o in ring])
        assert vals.size > 10_000
        # every opened ring element is masked by a uniform one: top bit mean 1/2
        top = (vals >> np.uint64(63)).mean()
        assert abs(top - 0.5) < 5 * 0.5 / np.sqrt(vals.size), (name, top)
        # opened (daBit-masked) bits: uniform too
        b = np.concatenate([o.ravel() for o in bits]).astype(np.float64)
        assert abs(b.mean() - 0.5) < 5 * 0.5 / np.sqrt(b.size), (name, b.mean())


def test_stats_progress_bar_and_saved_model(tmp_path, capsys):
    rng = np.random.default_rng(5)
    X = rng.integers(0, 5, size=(70, 3)).astype(np.float32)
    y = _labels(rng, X, "reg:squarederror")
    data = ppboost.HorizontalSplit({"a": (X[:40], y[:40]), "b": (X[40:], y[40:])})
    model = ppboost.train(_params("reg:squarederror"), data, 2, verbose=True)
    err = capsys.readouterr().err
    assert "ppboost secure training" in err and "tree" in err and "MB sent/tree" in err
    st = model.stats
    for name in ("a", "b"):
        ps = st["parties"][name]
        assert ps["bytes_sent"] > 0 and ps["bytes_recv"] > 0 and ps["rounds"] > 0
        assert ps["online_seconds"] > 0 and len(ps["per_tree"]) == 2
        assert all(t["bytes_sent"] > 0 and t["rounds"] > 0 for t in ps["per_tree"])
    assert st["dealer"]["offline_seconds"] > 0
    ppboost.train(_params("reg:squarederror"), data, 1, verbose=False)
    assert capsys.readouterr().err == ""
    booster = model.reveal()
    path = tmp_path / "m.json"
    booster.save_model(str(path))
    loaded = xgb.Booster()
    loaded.load_model(str(path))
    d = data.pooled().dmatrix()
    np.testing.assert_array_equal(loaded.predict(d), booster.predict(d))
    trees = json.loads(path.read_text())["learner"]["gradient_booster"]["model"]["trees"]
    assert all(not any(t["sum_hessian"]) and not any(t["loss_changes"]) for t in trees)


class _NoRun(Exception):
    pass


@pytest.fixture
def no_sharing(monkeypatch):
    """Fail the test if the federation starts (i.e. anything would be shared)."""
    import ppboost.transport.inprocess as ip

    def boom(*a, **k):
        raise _NoRun("the federation was started")
    monkeypatch.setattr(ip, "run_inprocess", boom)


def test_bad_input_rejected_before_sharing(no_sharing):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, size=(30, 4)).astype(np.float32)
    y = (X[:, 0] > 2).astype(np.float32)
    good = ppboost.VerticalSplit({"a": (X[:, :2], y), "b": X[:, 2:]})
    with pytest.raises(ValueError, match="unsupported parameter.*supported keys"):
        ppboost.train({"objective": "binary:logistic", "subsample": 0.5}, good, 1)
    with pytest.raises(ValueError, match="max_depth == 0, must be >= 1"):
        ppboost.train({"max_depth": 0}, good, 1)
    with pytest.raises(DataValidationError, match=r"\[0, 1\]|0 and 1|binary"):
        ppboost.train({"objective": "binary:logistic"}, ppboost.VerticalSplit(
            {"a": (X[:, :2], y + 1), "b": X[:, 2:]}), 1)
    with pytest.raises(DataValidationError, match="class"):
        ppboost.train({"objective": "multi:softprob", "num_class": 2}, ppboost.VerticalSplit(
            {"a": (X[:, :2], y * 3), "b": X[:, 2:]}), 1)
    with pytest.raises(ValueError, match="num_boost_round"):
        ppboost.train({}, good, 0)
    with pytest.raises(TypeError, match="HorizontalSplit"):
        ppboost.train({}, (X, y), 1)
    with pytest.raises(ValueError, match="lambda \\+ min_child_weight"):
        ppboost.train({"lambda": 0, "min_child_weight": 0, "objective": "binary:logistic"},
                      good, 1)
    # the split constructors reject the rest before anything exists to share
    with pytest.raises(DataValidationError, match="NaN|finite"):
        ppboost.VerticalSplit({"a": (X[:, :2], np.where(y > 0, np.nan, 0.0)), "b": X[:, 2:]})
    with pytest.raises(DataValidationError, match="row"):
        ppboost.VerticalSplit({"a": (X[:, :2], y), "b": X[:20, 2:]})
    with pytest.raises(DataValidationError, match="column|feature"):
        ppboost.HorizontalSplit({"a": (X[:15], y[:15]), "b": (X[15:, :3], y[15:])})
    with pytest.raises(DataValidationError, match="label"):
        ppboost.VerticalSplit({"a": (X[:, :2], y), "b": (X[:, 2:], y)})
    with pytest.raises(DataValidationError, match="empty|no rows|0 rows"):
        ppboost.HorizontalSplit({"a": (X, y), "b": (X[:0], y[:0])})
    with pytest.raises(DataValidationError, match="dtype|numeric"):
        ppboost.VerticalSplit({"a": (X[:, :2], y),
                               "b": pd.DataFrame({"s": ["x"] * 30})})


def test_tls_one_process_per_party():
    rng = np.random.default_rng(9)
    X = rng.integers(0, 4, size=(50, 3)).astype(np.float32)
    y = _labels(rng, X, "reg:squarederror")
    data = ppboost.VerticalSplit({"a": (X[:, :2], y), "b": X[:, 2:]})
    params = _params("reg:squarederror")
    model = ppboost.train(params, data, 1, verbose=False, transport="tls", timeout=120)
    assert model.stats["transport"] == "tls"
    pooled = data.pooled()
    assert_same_model(model.reveal(), _reference(params, pooled, 1), pooled.dmatrix())
    # same protocol, same transcript shape as in-process
    inproc = ppboost.train(params, data, 1, verbose=False)
    assert model.stats["parties"]["a"]["transcript"] == inproc.stats["parties"]["a"]["transcript"]
