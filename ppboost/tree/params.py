"""Training parameters with xgboost's names, aliases and defaults.

Only what the tree layer implements is accepted. Any other key raises a
``ValueError`` that lists the supported keys: nothing is silently ignored.

Categorical features are always split one-vs-rest (xgboost's "one-hot" split).
xgboost uses that split only when a feature has fewer categories than
``max_cat_to_onehot`` (default 4) and partition splits otherwise, so to get the
same model from plain xgboost pass a ``max_cat_to_onehot`` larger than every
categorical feature's number of categories. Here ``max_cat_to_onehot`` may be
given; if it is and a categorical feature has too many categories for a
one-hot split, an error is raised instead of silently changing the split kind.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OBJECTIVES = ("reg:squarederror", "binary:logistic", "multi:softprob")

_ALIASES = {
    "learning_rate": "eta",
    "reg_lambda": "lambda",
    "min_split_loss": "gamma",
}

SUPPORTED_KEYS = (
    "objective", "max_depth", "eta", "lambda", "gamma", "min_child_weight",
    "max_bin", "base_score", "num_class", "max_cat_to_onehot", "tree_method",
) + tuple(_ALIASES)


@dataclass(frozen=True)
class TreeParams:
    """Validated parameters (xgboost names; defaults are xgboost's)."""

    objective: str = "reg:squarederror"
    max_depth: int = 6
    eta: float = 0.3
    reg_lambda: float = 1.0
    gamma: float = 0.0
    min_child_weight: float = 1.0
    max_bin: int = 256
    base_score: float | None = None
    num_class: int = 1
    max_cat_to_onehot: int | None = None

    @property
    def n_groups(self) -> int:
        """Number of trees per boosting round (num_class for multi:softprob)."""
        return self.num_class if self.objective == "multi:softprob" else 1

    @classmethod
    def from_dict(cls, params: Mapping[str, Any] | None) -> TreeParams:
        """Validate an xgboost-style parameter dict.

        >>> TreeParams.from_dict({"max_depth": 3, "learning_rate": 0.1}).eta
        0.1
        """
        params = dict(params or {})
        unknown = sorted(k for k in params if k not in SUPPORTED_KEYS)
        if unknown:
            raise ValueError(
                f"unsupported parameter(s) {unknown}; supported keys are "
                f"{sorted(SUPPORTED_KEYS)}")
        canon: dict[str, Any] = {}
        for key, value in params.items():
            name = _ALIASES.get(key, key)
            if name in canon:
                raise ValueError(f"parameter {name!r} given twice (directly and "
                                 f"through an alias)")
            canon[name] = value
        tm = canon.pop("tree_method", "hist")
        if tm != "hist":
            raise ValueError(f"tree_method == {tm!r}, must be 'hist'")

        objective = canon.get("objective", "reg:squarederror")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective == {objective!r}, must be one of {list(OBJECTIVES)}")

        def _int(name, default, lo):
            v = canon.get(name, default)
            if isinstance(v, bool) or not isinstance(v, (int,)) and not (
                    isinstance(v, float) and float(v).is_integer()):
                raise ValueError(f"{name} == {v!r}, must be an integer >= {lo}")
            v = int(v)
            if v < lo:
                raise ValueError(f"{name} == {v}, must be >= {lo}")
            return v

        def _float(name, default, lo, strict=False):
            v = canon.get(name, default)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"{name} == {v!r}, must be a number") from None
            if not math.isfinite(v) or v < lo or (strict and v == lo):
                op = ">" if strict else ">="
                raise ValueError(f"{name} == {v}, must be a finite number {op} {lo}")
            return v

        max_depth = _int("max_depth", 6, 1)
        max_bin = _int("max_bin", 256, 2)
        eta = _float("eta", 0.3, 0.0, strict=True)
        lam = _float("lambda", 1.0, 0.0)
        gamma = _float("gamma", 0.0, 0.0)
        mcw = _float("min_child_weight", 1.0, 0.0)
        if objective == "multi:softprob":
            if "num_class" not in canon:
                raise ValueError("objective 'multi:softprob' needs num_class (>= 2)")
            num_class = _int("num_class", 0, 2)
        else:
            if "num_class" in canon and int(canon["num_class"]) not in (0, 1):
                raise ValueError(f"num_class == {canon['num_class']} given for objective "
                                 f"{objective!r}; num_class is only for 'multi:softprob'")
            num_class = 1
        base_score = canon.get("base_score")
        if base_score is not None:
            base_score = _float("base_score", base_score, -math.inf)
            if objective == "binary:logistic" and not 0.0 < base_score < 1.0:
                raise ValueError(f"base_score == {base_score}, must be in (0, 1) for "
                                 f"binary:logistic (it is a probability)")
        mcto = canon.get("max_cat_to_onehot")
        if mcto is not None:
            mcto = _int("max_cat_to_onehot", mcto, 1)
        return cls(objective=objective, max_depth=max_depth, eta=eta, reg_lambda=lam,
                   gamma=gamma, min_child_weight=mcw, max_bin=max_bin,
                   base_score=base_score, num_class=num_class, max_cat_to_onehot=mcto)
