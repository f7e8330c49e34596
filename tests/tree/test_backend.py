"""The public candidate table of the backend interface."""
import numpy as np
import pytest

from ppboost.tree.backend import (
    KIND_BACKWARD,
    KIND_CAT_MISSING_LEFT,
    KIND_CAT_MISSING_RIGHT,
    KIND_FORWARD,
    TreeBackend,
    TreeLayout,
)


def test_candidate_order_is_xgboost_scan_order():
    lay = TreeLayout(np.array([3, 2]), np.array([False, True]))
    assert lay.n_candidates == 2 * 3 + 2 * 2
    assert list(lay.cand_feature) == [0] * 6 + [1] * 4
    assert list(lay.cand_kind) == [KIND_FORWARD] * 3 + [KIND_BACKWARD] * 3 + \
        [KIND_CAT_MISSING_LEFT, KIND_CAT_MISSING_RIGHT] * 2
    # forward t = 0, 1, 2; backward i = 2, 1, 0 -> t = i - 1; categories 0, 0, 1, 1
    assert list(lay.cand_bin) == [0, 1, 2, 1, 0, -1, 0, 0, 1, 1]
    assert list(lay.cand_default_left) == [0, 0, 0, 1, 1, 1, 1, 0, 1, 0]
    assert list(lay.bin_offsets) == [0, 4, 7]


def test_features_without_missing_values_have_no_backward_candidates():
    full = TreeLayout(np.array([3, 2, 2]), np.array([False, True, False]))
    lay = TreeLayout(np.array([3, 2, 2]), np.array([False, True, False]),
                     np.array([False, False, True]))
    keep = ~((full.cand_feature == 0) & (full.cand_kind == KIND_BACKWARD))
    assert lay.n_candidates == full.n_candidates - 3          # categorical: unchanged
    for a in ("cand_feature", "cand_kind", "cand_bin", "cand_default_left"):
        assert np.array_equal(getattr(lay, a), getattr(full, a)[keep]), a
    assert list(lay.cand_offsets) == [0, 3, 7, 11]
    assert list(full.cand_offsets) == [0, 6, 10, 14]
    assert list(lay.bin_offsets) == list(full.bin_offsets)   # histograms unchanged


def test_layout_validation():
    with pytest.raises(ValueError, match="same length"):
        TreeLayout(np.array([3, 2]), np.array([False]))
    with pytest.raises(ValueError, match="has_missing"):
        TreeLayout(np.array([3, 2]), np.array([False, False]), np.array([True]))
    with pytest.raises(ValueError, match="negative"):
        TreeLayout(np.array([-1]), np.array([False]))


def test_interface_is_abstract():
    with pytest.raises(TypeError):
        TreeBackend()
    names = {"init_margins", "gradients", "root_nodes", "histograms", "choose_splits",
             "route", "leaf_values", "update_margins", "reveal_tree"}
    assert TreeBackend.__abstractmethods__ == names
