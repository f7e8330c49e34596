"""Parameters: xgboost names, defaults, aliases, clear errors."""
import pytest

from ppboost.tree import TreeParams


def test_defaults_are_xgboost_defaults():
    p = TreeParams.from_dict({})
    assert (p.objective, p.max_depth, p.eta, p.reg_lambda, p.gamma, p.min_child_weight,
            p.max_bin, p.base_score) == ("reg:squarederror", 6, 0.3, 1.0, 0.0, 1.0, 256, None)
    assert p.n_groups == 1


def test_aliases_and_multiclass():
    p = TreeParams.from_dict({"learning_rate": 0.1, "reg_lambda": 2, "min_split_loss": 0.5,
                              "objective": "multi:softprob", "num_class": 4,
                              "tree_method": "hist"})
    assert (p.eta, p.reg_lambda, p.gamma, p.n_groups) == (0.1, 2.0, 0.5, 4)


def test_unknown_key_lists_supported_keys():
    with pytest.raises(ValueError, match=r"unsupported parameter\(s\) \['subsample'\].*"
                                         r"supported keys are .*'max_depth'"):
        TreeParams.from_dict({"subsample": 0.5})


@pytest.mark.parametrize("params,msg", [
    ({"max_depth": 0}, "max_depth == 0, must be >= 1"),
    ({"max_depth": 2.5}, "max_depth == 2.5, must be an integer"),
    ({"eta": 0}, "eta == 0.0, must be a finite number > 0"),
    ({"lambda": -1}, "lambda == -1.0, must be a finite number >= 0"),
    ({"gamma": float("nan")}, "gamma == nan"),
    ({"min_child_weight": "x"}, "min_child_weight == 'x', must be a number"),
    ({"max_bin": 1}, "max_bin == 1, must be >= 2"),
    ({"objective": "reg:gamma"}, "objective == 'reg:gamma', must be one of"),
    ({"objective": "multi:softprob"}, "needs num_class"),
    ({"objective": "multi:softprob", "num_class": 1}, "num_class == 1, must be >= 2"),
    ({"num_class": 3}, "num_class is only for 'multi:softprob'"),
    ({"objective": "binary:logistic", "base_score": 1.0}, "must be in \\(0, 1\\)"),
    ({"eta": 0.1, "learning_rate": 0.2}, "given twice"),
    ({"tree_method": "exact"}, "tree_method == 'exact', must be 'hist'"),
])
def test_bad_values(params, msg):
    with pytest.raises(ValueError, match=msg):
        TreeParams.from_dict(params)
