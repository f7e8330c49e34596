"""Tree layer (L3): the boosting algorithm, written once against a backend.

``binning`` (xgboost-hist cut values), ``losses`` (objectives), ``params``
(xgboost names and defaults), ``backend`` (the interface and the public
candidate table), ``split_rule`` (the split gain rule both backends apply),
``plain`` (numpy reference backend, ``fit_plain``), ``secure`` (the backend
on secret shares, one module per stage), ``secure_binning`` (cuts of features
split across row blocks), ``grower`` (the oblivious loop), ``export``
(revealed trees -> xgboost JSON / Booster, pruning of dummy splits).
"""
from .backend import RevealedTree, TreeBackend, TreeLayout
from .binning import (
                      BinMapper,
                      FeatureCuts,
                      FeatureSummary,
                      align_summaries,
                      cuts_from_summary,
                      fit_bins,
                      fit_bins_from_summaries,
                      merge_summaries,
                      summarize_column,
)
from .export import model_to_json, prune_tree, to_booster
from .grower import GrownTree, boost, grow_tree, reveal
from .params import TreeParams
from .plain import PlainBackend, fit_plain, prepare_plain

__all__ = ["RevealedTree", "TreeBackend", "TreeLayout", "BinMapper", "FeatureCuts",
           "FeatureSummary", "align_summaries", "cuts_from_summary", "fit_bins",
           "fit_bins_from_summaries", "merge_summaries", "summarize_column", "model_to_json",
           "prune_tree", "to_booster", "GrownTree", "boost", "grow_tree", "reveal",
           "TreeParams", "PlainBackend", "fit_plain", "prepare_plain"]
