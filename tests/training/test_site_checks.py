"""A site's local checks announce the problem, never its data (ppboost.training.site)."""
from __future__ import annotations

import pandas as pd
import pytest

from ppboost.errors import DataError
from ppboost.training.job import Job
from ppboost.training.site import read_site


def test_values_outside_the_declared_levels_are_named_by_column_only(tmp_path):
    job = Job(params={"objective": "binary:logistic"}, num_boost_round=1, split="horizontal",
              analyst="a", label="y", categorical={"r": ["n", "s"]})
    r = ["n", "atlantis", "s", "mu", "atlantis"] + [f"x{i}" for i in range(11)]
    pd.DataFrame({"x": range(len(r)), "r": r, "y": [0, 1] * 8}).to_csv(tmp_path / "a.csv",
                                                                        index=False)
    with pytest.raises(DataError) as got:
        read_site(tmp_path / "a.csv", job, "a")
    announced = str(got.value)
    assert announced == "a (a.csv): column 'r' has values outside its declared levels ['n', 's']"
    detail = got.value.local_detail                          # printed at the site only
    assert detail.startswith("column 'r': 14 row(s) outside the levels, 13 distinct value(s): ")
    assert "'atlantis'" in detail and "'mu'" in detail and detail.endswith(" ...")
    assert "x9" not in detail                                # at most 10 values listed


def test_a_text_column_is_named_without_its_values(tmp_path):
    job = Job(params={"objective": "binary:logistic"}, num_boost_round=1, split="horizontal",
              analyst="a", label="y")
    pd.DataFrame({"x": ["1 kg", "2 kg"], "y": [0, 1]}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError) as got:
        read_site(tmp_path / "a.csv", job, "a")
    assert str(got.value) == ("a (a.csv): column 'x' is not numeric (it holds text); declare it "
                              "in the job's 'categorical' with its levels, or drop it")
    pd.DataFrame({"x": pd.to_datetime(["2020-01-01", "2021-01-01"]), "y": [0, 1]}).to_parquet(
        tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"column 'x' is not numeric \(dtype datetime64"):
        read_site(tmp_path / "b.parquet", job, "a")
