"""Tests for ppboost.data: splits, validation before sharing, categories, pooled view."""
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ppboost.data import DataValidationError, HorizontalSplit, MixedSplit, VerticalSplit, validate_labels

REG = ["north", "south", "east"]


def _frame(rng, n, categories=REG):
    return pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "region": pd.Categorical(rng.choice(categories[:2], n), categories=categories),
        "lab": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
    })


@pytest.fixture
def rng():
    return np.random.default_rng(1)


# --------------------------------------------------------------------- happy paths
def test_horizontal_views_and_pooled(rng):
    Xa, Xb = _frame(rng, 6), _frame(rng, 4)
    ya, yb = rng.integers(0, 2, 6), rng.integers(0, 2, 4)
    s = HorizontalSplit({"hospital_a": (Xa, ya), "hospital_b": (Xb, yb)})
    assert s.kind == "horizontal" and s.shape == (10, 3)
    assert s.feature_names == ["age", "region", "lab"]
    assert s.feature_types == ["q", "c", "q"]
    assert s.label_holders == ["hospital_a", "hospital_b"]
    b = s.party("hospital_b")
    assert b.X.dtype == np.float32 and b.X.shape == (4, 3)
    np.testing.assert_array_equal(b.rows, np.arange(6, 10))
    np.testing.assert_array_equal(b.feature_indices, [0, 1, 2])
    np.testing.assert_array_equal(b.y, yb.astype(np.float32))
    # NaN stays missing
    np.testing.assert_array_equal(np.isnan(b.X[:, 2]), Xb["lab"].isna().to_numpy())
    p = s.pooled()
    for v in s.parties.values():
        np.testing.assert_array_equal(p.X[np.ix_(v.rows, v.feature_indices)], v.X)
        np.testing.assert_array_equal(p.y[v.rows], v.y)
    # the views are read-only: a party's data cannot be changed behind the split's back
    with pytest.raises(ValueError):
        b.X[0, 0] = 1.0
    with pytest.raises(KeyError, match="no party named 'c'"):
        s.party("c")


def test_numpy_input_gets_xgboost_default_names(rng):
    s = VerticalSplit({"a": (rng.random((5, 2)), np.zeros(5)), "b": rng.random((5, 3))})
    assert s.feature_names == ["f0", "f1", "f2", "f3", "f4"]
    assert s.feature_types == ["q"] * 5
    np.testing.assert_array_equal(s.party("b").feature_indices, [2, 3, 4])
    assert s.party("b").y is None and s.label_holders == ["a"]


def test_vertical_pooled_matches_views(rng):
    X1, X2 = _frame(rng, 7), pd.DataFrame({"claims": rng.integers(0, 9, 7)})
    y = rng.random(7)
    s = VerticalSplit({"hospital": (X1, y), "insurer": X2})
    p = s.pooled()
    assert p.feature_names == ["age", "region", "lab", "claims"]
    np.testing.assert_array_equal(p.X[:, 3], X2["claims"].to_numpy(np.float32))
    np.testing.assert_array_equal(p.y, y.astype(np.float32))
    for v in s.parties.values():
        np.testing.assert_array_equal(p.X[np.ix_(v.rows, v.feature_indices)], v.X)


def test_mixed_split_row_alignment_forms(rng):
    Xa, Xb = _frame(rng, 3), _frame(rng, 2)
    ya, yb = np.array([0, 1, 0]), np.array([1, 1])
    ins = np.array([[10.0], [20.0], [30.0]])
    hz = {"a": (Xa, ya), "b": (Xb, yb)}
    # dict form: insurer rows are b's row 1, then a's rows 0 and 2
    m1 = MixedSplit(horizontal=hz, vertical={"insurer": (ins, {"b": [1], "a": [0, 2]})})
    np.testing.assert_array_equal(m1.party("insurer").rows, [4, 0, 2])
    # the same as explicit pooled row indices
    m2 = MixedSplit(horizontal=hz, vertical={"insurer": (ins, np.array([4, 0, 2]))})
    p1, p2 = m1.pooled(), m2.pooled()
    np.testing.assert_array_equal(p1.X, p2.X)
    col = p1.X[:, 3]
    np.testing.assert_array_equal(col[[4, 0, 2]], [10, 20, 30])
    assert np.isnan(col[[1, 3]]).all()          # rows the insurer does not cover
    assert m1.feature_names == ["age", "region", "lab", "f3"]
    assert m1.label_holders == ["a", "b"]
    # rows=None: every pooled row in order
    m3 = MixedSplit(horizontal=hz, vertical={"insurer": np.arange(5.0)[:, None]})
    np.testing.assert_array_equal(m3.pooled().X[:, 3], np.arange(5.0))
    for v in m3.parties.values():
        np.testing.assert_array_equal(m3.pooled().X[np.ix_(v.rows, v.feature_indices)], v.X)


# --------------------------------------------------------------------- categories
def test_categories_share_one_code_list_across_parties(rng):
    Xa = pd.DataFrame({"region": pd.Categorical(["north", "east", None], categories=REG)})
    # party b declares the same categories in another order: codes must still agree
    Xb = pd.DataFrame({"region": pd.Categorical(["east", "south"],
                                                categories=["east", "south", "north"])})
    s = HorizontalSplit({"a": (Xa, [0, 1, 0]), "b": (Xb, [1, 0])})
    assert s.categories == {"region": tuple(REG)}          # order of the first party
    assert s.party("b").categories == {"region": tuple(REG)}
    np.testing.assert_array_equal(s.party("a").X[:, 0], [0, 2, np.nan])
    np.testing.assert_array_equal(s.party("b").X[:, 0], [2, 1])
    f = s.pooled().frame()
    assert list(f["region"].astype(object).fillna("NA")) == ["north", "east", "NA", "east",
                                                             "south"]


def test_explicit_categories_and_values_outside_them(rng):
    Xa = pd.DataFrame({"region": pd.Categorical(["north"])})
    Xb = pd.DataFrame({"region": pd.Categorical(["south"])})
    with pytest.raises(DataValidationError, match="declares categories.*categories="):
        HorizontalSplit({"a": (Xa, [0]), "b": (Xb, [1])})
    s = HorizontalSplit({"a": (Xa, [0]), "b": (Xb, [1])}, categories={"region": REG})
    np.testing.assert_array_equal(s.pooled().X[:, 0], [0, 1])
    with pytest.raises(DataValidationError, match="category 'south'.*not in the agreed"):
        HorizontalSplit({"a": (Xa, [0]), "b": (Xb, [1])}, categories={"region": ["north"]})
    with pytest.raises(DataValidationError, match="not 'category' columns"):
        HorizontalSplit({"a": (Xa, [0]), "b": (Xb, [1])}, categories={"nope": ["x"]})


def test_pooled_dmatrix_equals_dataframe_categorical_in_xgboost(rng):
    Xa, Xb = _frame(rng, 150), _frame(rng, 150)
    ya = (Xa["region"] == "north").to_numpy().astype(float)
    yb = (Xb["age"] > 50).to_numpy().astype(float)
    s = HorizontalSplit({"a": (Xa, ya), "b": (Xb, yb)})
    p = s.pooled()
    params = {"objective": "binary:logistic", "max_depth": 3, "tree_method": "hist",
              "max_cat_to_onehot": 8}
    b1 = xgb.train(params, p.dmatrix(), 3)
    b2 = xgb.train(params, xgb.DMatrix(pd.concat([Xa, Xb], ignore_index=True),
                                       label=np.r_[ya, yb], enable_categorical=True), 3)
    assert b1.feature_types == ["q", "c", "q"]
    d = xgb.DMatrix(s.encode(pd.concat([Xa, Xb])), feature_names=p.feature_names,
                    feature_types=p.feature_types, enable_categorical=True)
    np.testing.assert_array_equal(b1.predict(d), b2.predict(d))


def test_encode_new_data(rng):
    Xa, Xb = _frame(rng, 4), _frame(rng, 4)
    s = HorizontalSplit({"a": (Xa, np.zeros(4)), "b": (Xb, np.ones(4))})
    new = pd.DataFrame({"lab": [0.5, np.nan], "age": [30, 40],
                        "region": ["east", "north"]})      # plain labels, other column order
    np.testing.assert_array_equal(s.encode(new), np.array([[30, 2, 0.5], [40, 0, np.nan]],
                                                          dtype=np.float32))
    with pytest.raises(DataValidationError, match="lacks column"):
        s.encode(new.drop(columns="age"))
    with pytest.raises(DataValidationError, match="not in the agreed"):
        s.encode(new.assign(region=["west", "north"]))
    with pytest.raises(DataValidationError, match="not a category code"):
        s.encode(np.array([[30, 5, 0.5]]))


# --------------------------------------------------------------------- bad input
def _hz(**over):
    rng = np.random.default_rng(0)
    d = {"a": (rng.random((4, 3)), np.array([0, 1, 0, 1])),
         "b": (rng.random((3, 3)), np.array([1, 1, 0]))}
    d.update(over)
    return d


@pytest.mark.parametrize("parties, match", [
    (dict(a=(np.zeros((4, 3)), [0, np.nan, 1, 0])), r"party 'a': 1 label\(s\) are NaN"),
    (dict(b=(np.zeros((3, 2)), [0, 1, 0])), "party 'b' has 2 features but party 'a' has 3"),
    (dict(b=(np.zeros((0, 3)), np.zeros(0))), r"party 'b' is empty: X has shape \(0, 3\)"),
    (dict(b=(np.zeros((3, 3)), [0, 1])), "2 labels for 3 rows"),
    (dict(b=np.zeros((3, 3))), "party 'b' has no labels"),
    (dict(b=(np.array([["x"] * 3] * 3), [0, 1, 0])), "dtype <U1; expected a numeric array"),
    (dict(b=(np.zeros(3), [0, 1, 0])), "expected a 2-D array"),
    (dict(b=([[0.0] * 3] * 3, [0, 1, 0])), "features are a list"),
    (dict(b=(np.full((3, 3), np.inf), [0, 1, 0])), "infinite"),
    (dict(b=(np.zeros((3, 3)), ["x", "y", "z"])), "labels have dtype"),
])
def test_horizontal_bad_input(parties, match):
    with pytest.raises(DataValidationError, match=match):
        HorizontalSplit(_hz(**parties))


def test_horizontal_names_and_dtypes_must_agree():
    a = pd.DataFrame({"age": [1.0, 2.0], "sex": [0, 1]})
    with pytest.raises(DataValidationError, match="feature names differ"):
        HorizontalSplit({"a": (a, [0, 1]), "b": (a.rename(columns={"sex": "gender"}), [0, 1])})
    b = a.assign(sex=pd.Categorical(["m", "f"]))
    with pytest.raises(DataValidationError,
                       match="column 'sex' is categorical at party 'b' but numeric at party 'a'"):
        HorizontalSplit({"a": (a, [0, 1]), "b": (b, [0, 1])})


def test_fewer_than_two_parties_and_bad_names():
    X = np.zeros((3, 2))
    with pytest.raises(DataValidationError, match="HorizontalSplit has 1 party; at least 2"):
        HorizontalSplit({"a": (X, [0, 1, 0])})
    with pytest.raises(DataValidationError, match="VerticalSplit has 0 parties; at least 2"):
        VerticalSplit({})
    with pytest.raises(DataValidationError, match="reserved for the dealer"):
        HorizontalSplit({"a": (X, [0, 1, 0]), "dealer": (X, [0, 1, 0])})
    with pytest.raises(DataValidationError, match="party name 'a b' is invalid"):
        HorizontalSplit({"a": (X, [0, 1, 0]), "a b": (X, [0, 1, 0])})
    with pytest.raises(DataValidationError, match="expects a dict"):
        HorizontalSplit([("a", (X, [0, 1, 0]))])


def test_non_numeric_dataframe_column_rejected():
    a = pd.DataFrame({"age": [30.0, 40.0], "name": ["ann", "bob"]})
    with pytest.raises(DataValidationError,
                       match="party 'a': column 'name' has dtype (object|str); expected a numeric"):
        VerticalSplit({"a": (a, [0, 1]), "b": np.zeros((2, 1))})
    d = pd.DataFrame({"when": pd.to_datetime(["2020-01-01", "2021-01-01"])})
    with pytest.raises(DataValidationError, match="column 'when' has dtype datetime64"):
        VerticalSplit({"a": (np.zeros((2, 1)), [0, 1]), "b": d})


def test_nullable_and_bool_columns_accepted():
    a = pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "f": [True, False]})
    s = VerticalSplit({"a": (a, [0, 1]), "b": np.ones((2, 1))})
    np.testing.assert_array_equal(s.party("a").X, np.array([[1, 1], [np.nan, 0]], np.float32))


def test_vertical_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(DataValidationError,
                       match="party 'insurer' has 4 rows but party 'hospital' has 5"):
        VerticalSplit({"hospital": (rng.random((5, 2)), np.zeros(5)),
                       "insurer": rng.random((4, 1))})
    with pytest.raises(DataValidationError,
                       match=r"2 parties hold labels \(hospital, insurer\); exactly one"):
        VerticalSplit({"hospital": (rng.random((5, 2)), np.zeros(5)),
                       "insurer": (rng.random((5, 1)), np.zeros(5))})
    with pytest.raises(DataValidationError, match="no party holds labels"):
        VerticalSplit({"hospital": rng.random((5, 2)), "insurer": rng.random((5, 1))})
    with pytest.raises(DataValidationError, match="party 'insurer' is empty"):
        VerticalSplit({"hospital": (rng.random((5, 2)), np.zeros(5)),
                       "insurer": np.zeros((5, 0))})
    with pytest.raises(DataValidationError, match=r"duplicate feature name\(s\) \['x'\]"):
        VerticalSplit({"h": (pd.DataFrame({"x": [1.0]}), [0]), "i": pd.DataFrame({"x": [2.0]})})
    with pytest.raises(DataValidationError, match="must not contain"):
        VerticalSplit({"h": (pd.DataFrame({"x[1]": [1.0]}), [0]), "i": np.ones((1, 1))})


def test_mixed_bad_input():
    rng = np.random.default_rng(0)
    hz = {"a": (rng.random((3, 2)), [0, 1, 0]), "b": (rng.random((2, 2)), [1, 0])}
    with pytest.raises(DataValidationError, match="with rows=None it must cover every pooled row"):
        MixedSplit(horizontal=hz, vertical={"ins": rng.random((4, 1))})
    with pytest.raises(DataValidationError, match=r"rows\['b'\] holds index 2, outside \[0, 1\]"):
        MixedSplit(horizontal=hz, vertical={"ins": (rng.random((1, 1)), {"b": [2]})})
    with pytest.raises(DataValidationError, match="rows names 'c', which is not a horizontal"):
        MixedSplit(horizontal=hz, vertical={"ins": (rng.random((1, 1)), {"c": [0]})})
    with pytest.raises(DataValidationError, match="duplicate row indices"):
        MixedSplit(horizontal=hz, vertical={"ins": (rng.random((2, 1)), np.array([1, 1]))})
    with pytest.raises(DataValidationError, match="rows gives 1 row indices for 2 rows"):
        MixedSplit(horizontal=hz, vertical={"ins": (rng.random((2, 1)), np.array([1]))})
    with pytest.raises(DataValidationError, match="holds index 5, outside"):
        MixedSplit(horizontal=hz, vertical={"ins": (rng.random((1, 1)), np.array([5]))})
    with pytest.raises(DataValidationError, match="horizontal is empty"):
        MixedSplit(horizontal={}, vertical={"ins": rng.random((1, 1))})
    with pytest.raises(DataValidationError, match="vertical is empty"):
        MixedSplit(horizontal=hz, vertical={})
    with pytest.raises(DataValidationError, match="appear in both"):
        MixedSplit(horizontal=hz, vertical={"a": rng.random((5, 1))})
    with pytest.raises(DataValidationError, match="party 'b' has 1 features but party 'a' has 2"):
        MixedSplit(horizontal={"a": hz["a"], "b": (rng.random((2, 1)), [1, 0])},
                   vertical={"ins": rng.random((5, 1))})
    with pytest.raises(DataValidationError, match="party 'ins' is empty"):
        MixedSplit(horizontal=hz, vertical={"ins": (np.zeros((0, 1)), np.zeros(0, dtype=int))})


# --------------------------------------------------------------------- labels vs objective
def test_validate_label_ranges():
    rng = np.random.default_rng(0)
    X = rng.random((4, 2))
    s = HorizontalSplit({"a": (X, [0, 1, 2, 0.5]), "b": (X, [0, 1, 1, 0])})
    assert s.validate("reg:squarederror") is s
    with pytest.raises(DataValidationError,
                       match=r"party 'a': label 2 at row 2 is outside \[0, 1\]"):
        s.validate("binary:logistic")
    with pytest.raises(DataValidationError, match="label 0.5 at row 3 is not a class index"):
        s.validate("multi:softprob", num_class=3)
    with pytest.raises(DataValidationError, match=r"integer labels in \[0, 1\]"):
        HorizontalSplit({"a": (X, [0, 1, 2, 0]), "b": (X, [0, 1, 1, 0])}).validate(
            "multi:softprob", num_class=2)
    ok = HorizontalSplit({"a": (X, [0, 1, 2, 0]), "b": (X, [0, 1, 1, 0])})
    ok.validate("multi:softprob", num_class=3)
    with pytest.raises(DataValidationError, match="needs num_class"):
        ok.validate("multi:softprob")
    with pytest.raises(DataValidationError, match="num_class == 1, must be an int >= 2"):
        ok.validate("multi:softprob", num_class=1)
    with pytest.raises(DataValidationError, match="num_class is only used with"):
        ok.validate("binary:logistic", num_class=3)
    with pytest.raises(DataValidationError,
                       match="'reg:linear' is not supported; expected one of reg:squarederror"):
        ok.validate("reg:linear")
    # the insurer (no labels) has nothing to check; the holder's labels are checked
    v = VerticalSplit({"h": (X, [0, 3, 1, 0]), "i": X})
    with pytest.raises(DataValidationError, match="party 'h': label 3"):
        v.validate("binary:logistic")


def test_validate_labels_function_rejects_nan():
    with pytest.raises(DataValidationError, match="NaN or infinite"):
        validate_labels(np.array([0.0, np.nan]), "reg:squarederror")


# --------------------------------------------------------------------- property: views vs pooled
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.integers(1, 3),
       st.integers(1, 2), st.integers(0, 2**31 - 1))
def test_mixed_pooled_is_the_union_of_the_views(sizes, m_h, m_v, seed):
    rng = np.random.default_rng(seed)
    hz = {f"h{i}": (np.where(rng.random((k, m_h)) < 0.2, np.nan, rng.random((k, m_h))),
                    rng.integers(0, 2, k)) for i, k in enumerate(sizes)}
    n = sum(sizes)
    cover = np.flatnonzero(rng.random(n) < 0.7)
    cover = cover if cover.size else np.array([0])
    rows = rng.permutation(cover)
    ins = rng.random((rows.size, m_v))
    s = MixedSplit(horizontal=hz, vertical={"ins": (ins, rows)})
    p = s.pooled()
    assert p.X.shape == (n, m_h + m_v) and s.shape == (n, m_h + m_v)
    np.testing.assert_array_equal(p.X[:, :m_h], np.vstack([x for x, _ in hz.values()])
                                  .astype(np.float32))
    np.testing.assert_array_equal(p.y, np.concatenate([y for _, y in hz.values()]))
    np.testing.assert_array_equal(p.X[rows, m_h:], ins.astype(np.float32))
    uncovered = np.setdiff1d(np.arange(n), rows)
    assert np.isnan(p.X[uncovered, m_h:]).all()
    covered = np.zeros(n, dtype=int)
    for v in s.parties.values():
        np.testing.assert_array_equal(p.X[np.ix_(v.rows, v.feature_indices)], v.X)
        if v.has_labels:
            covered[v.rows] += 1
    assert (covered == 1).all()          # every pooled row has exactly one label holder
