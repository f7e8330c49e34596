"""scikit-learn style estimators around :func:`ppboost.train` (thin wrappers).

::

    clf = ppboost.SecureXGBClassifier(n_estimators=20, max_depth=3)
    clf.fit(split)                      # a HorizontalSplit / VerticalSplit / MixedSplit
    clf.predict_proba(X_test)           # X_test in the split's pooled column layout

``fit`` takes a split instead of ``(X, y)``: the data never exists in one
place.  It runs the secure training and, as the analyst, reveals the model
(``booster_``, an ``xgboost.Booster``); prediction is plain xgboost on that
booster.  ``X`` for ``predict`` is a numpy array or a DataFrame in the
split's pooled column layout (categorical columns as codes or as pandas
``category``; see :meth:`ppboost.data.Split.encode`).

Fitted attributes: ``booster_``, ``model_`` (the
:class:`~ppboost.training.SecretSharedModel`), ``n_features_in_``,
``feature_names_in_``, and for the classifier ``classes_`` and ``n_classes_``.
Classifier labels must be the integers 0 .. K-1.

Differential privacy (:mod:`ppboost.dp`): ``dp_epsilon`` (None: none),
``dp_delta``, ``dp_clip`` and ``dp_bounds`` (public ranges of the numerical
features) make ``fit`` call ``train(..., dp=ppboost.DP(...))``; the fitted
``booster_`` then carries ``attr("dp_epsilon")`` and ``attr("dp_delta")``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SecureXGBClassifier", "SecureXGBRegressor"]


class _SecureXGBBase:
    _param_names = ("n_estimators", "max_depth", "learning_rate", "reg_lambda", "gamma",
                    "min_child_weight", "max_bin", "base_score", "verbose", "timeout",
                    "transport", "dp_epsilon", "dp_delta", "dp_clip", "dp_bounds")

    def __init__(self, *, n_estimators: int = 10, max_depth: int = 6,
                 learning_rate: float = 0.3, reg_lambda: float = 1.0, gamma: float = 0.0,
                 min_child_weight: float = 1.0, max_bin: int = 256,
                 base_score: float | None = None, verbose: bool = False,
                 timeout: float = 120.0, transport: str = "inprocess",
                 dp_epsilon: float | None = None, dp_delta: float = 1e-6, dp_clip: float = 1.0,
                 dp_bounds: dict | None = None):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.reg_lambda = reg_lambda
        self.gamma = gamma
        self.min_child_weight = min_child_weight
        self.max_bin = max_bin
        self.base_score = base_score
        self.verbose = verbose
        self.timeout = timeout
        self.transport = transport
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta
        self.dp_clip = dp_clip
        self.dp_bounds = dp_bounds

    # -- scikit-learn protocol
    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params):
        for k, v in params.items():
            if k not in self._param_names:
                raise ValueError(f"invalid parameter {k!r} for {type(self).__name__}; "
                                 f"valid parameters are {sorted(self._param_names)}")
            setattr(self, k, v)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._param_names)
        return f"{type(self).__name__}({args})"

    # -- helpers
    def _xgb_params(self) -> dict:
        n = self.n_estimators
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n_estimators == {n!r}, must be an integer >= 1")
        p = {"max_depth": self.max_depth, "eta": self.learning_rate,
             "lambda": self.reg_lambda, "gamma": self.gamma,
             "min_child_weight": self.min_child_weight, "max_bin": self.max_bin}
        if self.base_score is not None:
            p["base_score"] = self.base_score
        return p

    def _fit(self, split, params):
        from .data import Split
        from .training import train
        if not isinstance(split, Split):
            raise TypeError(f"fit takes a ppboost HorizontalSplit / VerticalSplit / "
                            f"MixedSplit, got {type(split).__name__}")
        dp = None
        if self.dp_epsilon is not None:
            from .dp import DP
            dp = DP(epsilon=self.dp_epsilon, delta=self.dp_delta, clip=self.dp_clip,
                    bounds=self.dp_bounds)
        self.model_ = train(params, split, int(self.n_estimators), verbose=self.verbose,
                            timeout=self.timeout, transport=self.transport, dp=dp)
        self.booster_ = self.model_.reveal()
        self.n_features_in_ = split.n_features
        self.feature_names_in_ = np.array(split.feature_names, dtype=object)
        self._encode = split.encode
        return self

    def _dmatrix(self, X):
        import xgboost
        if not hasattr(self, "booster_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit(split)")
        Xe = self._encode(X)
        names = self.booster_.feature_names
        return xgboost.DMatrix(Xe, feature_names=None if names is None else list(names),
                               feature_types=self.booster_.feature_types,
                               enable_categorical=True)


class SecureXGBRegressor(_SecureXGBBase):
    """Secure ``reg:squarederror`` boosting; ``predict`` returns the predictions."""

    def fit(self, split):
        p = self._xgb_params()
        p["objective"] = "reg:squarederror"
        return self._fit(split, p)

    def predict(self, X) -> np.ndarray:
        d = self._dmatrix(X)
        return self.booster_.predict(d)


class SecureXGBClassifier(_SecureXGBBase):
    """Secure ``binary:logistic`` (2 classes) or ``multi:softprob`` boosting.

    ``num_class``: the number of classes (public).  ``None`` (default) takes
    ``max(label) + 1`` over the label holders' labels -- a convenience of the
    simulation, where the caller has every party's view; pass it explicitly
    when the label domain is known.
    """

    _param_names = _SecureXGBBase._param_names + ("num_class",)

    def __init__(self, *, n_estimators: int = 10, max_depth: int = 6,
                 learning_rate: float = 0.3, reg_lambda: float = 1.0, gamma: float = 0.0,
                 min_child_weight: float = 1.0, max_bin: int = 256,
                 base_score: float | None = None, verbose: bool = False,
                 timeout: float = 120.0, transport: str = "inprocess",
                 num_class: int | None = None, dp_epsilon: float | None = None,
                 dp_delta: float = 1e-6, dp_clip: float = 1.0, dp_bounds: dict | None = None):
        super().__init__(n_estimators=n_estimators, max_depth=max_depth,
                         learning_rate=learning_rate, reg_lambda=reg_lambda, gamma=gamma,
                         min_child_weight=min_child_weight, max_bin=max_bin,
                         base_score=base_score, verbose=verbose, timeout=timeout,
                         transport=transport, dp_epsilon=dp_epsilon, dp_delta=dp_delta,
                         dp_clip=dp_clip, dp_bounds=dp_bounds)
        self.num_class = num_class

    def fit(self, split):
        K = self.num_class
        if K is None:
            ys = [np.asarray(p.y) for p in split.parties.values() if p.y is not None]
            K = int(max(y.max() for y in ys)) + 1 if ys else 0
        if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2:
            raise ValueError(f"num_class == {K!r}, must be an integer >= 2")
        p = self._xgb_params()
        if K == 2:
            p["objective"] = "binary:logistic"
        else:
            p["objective"] = "multi:softprob"
            p["num_class"] = int(K)
        self._fit(split, p)
        self.n_classes_ = int(K)
        self.classes_ = np.arange(K)
        return self

    def predict_proba(self, X) -> np.ndarray:
        d = self._dmatrix(X)
        out = self.booster_.predict(d)
        if self.n_classes_ == 2:
            return np.column_stack([1.0 - out, out])
        return out.reshape(-1, self.n_classes_)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
