"""The small interface between the tree grower and where the data lives.

The grower (:mod:`ppboost.tree.grower`) is written once against
:class:`TreeBackend`. It never looks inside the objects a backend returns
(``Margins``, ``GradHess``, ``Nodes``, ``Hist``, ``Splits``, ``Leaves``):
for the plain backend they are numpy arrays, for the secure backend
(:mod:`ppboost.tree.secure`) they are secret shares held by the parties.
Everything the grower knows is public: the :class:`TreeLayout` (number of
features, bins per feature, which are categorical, the candidate table), the
parameters, the number of rows. The only thing that ever becomes plaintext
is a finished tree, for the analyst: through :meth:`TreeBackend.reveal_tree`,
or (secure backend) by the analyst summing every party's exported shares.

The algorithm is oblivious (docs/design.md "Secure training", XORBoost,
Deforth et al., PoPETs 2022): every tree is complete to ``max_depth``; each
node gets a secret one-hot vector over the public candidate table plus one
"do not split" entry, which becomes a dummy split that sends every row left.
The analyst collapses dummy splits back to leaves (:mod:`ppboost.tree.export`).

Candidate table (public, fixed by the layout; the order is also the
tie-breaking order: among equal gains the first candidate wins, exactly as
xgboost's ``SplitEntry::NeedReplace`` with its forward-then-backward scans).
For feature j with b_j regular bins and a missing bin:

* numerical, forward scan (missing goes right), t = 0 .. b_j - 1:
  left = {bins <= t};
* numerical, backward scan (missing goes left), i = b_j - 1 .. 0, t = i - 1:
  left = {bins <= t} + missing. Only eligible in a node that holds at least
  one row with feature j missing (xgboost runs the backward scan only then);
* categorical (one-vs-rest), per category c: right = {c} with missing left,
  then right = {c} + missing. As in xgboost a categorical feature has one bin
  per code 0 .. max code (absent codes too); an absent code's second
  candidate is the split "missing vs the rest".

Split rule (xgboost ``hist``, depthwise; coded once, in
:mod:`ppboost.tree.split_rule`, for both backends): loss_chg =
G_L^2/(H_L+lambda) + G_R^2/(H_R+lambda) - G^2/(H+lambda) (Chen & Guestrin
2016, eq. 7, without the factor 1/2 and gamma, as xgboost computes it);
a candidate is valid iff H_L >= min_child_weight and H_R >= min_child_weight;
the node splits on the best valid candidate iff its loss_chg > 1e-6 (kRtEps)
and loss_chg >= gamma. xgboost 3.2 ``hist`` applies gamma when it decides
whether to expand a node (a node whose best loss_chg < gamma stays a leaf
even if its children would have gained more; checked in
tests/tree/test_grower.py), so the oblivious "do not split" outcome includes
the gamma test and the analyst's pruning is just collapsing dummy splits.
Node weight w = -G/(H+lambda) if H >= min_child_weight and H > 0, else 0;
a leaf stores eta * w.

Notes for a secure implementation (what the plain backend does, and what
may be done differently in exact ring arithmetic without changing the tree):

* Tie-breaking: the argmax must return the *first* maximum of the candidate
  order above (a tournament that keeps the left operand on equality).
* The backward-scan eligibility mask ("node has a missing row for feature j")
  can be dropped in exact (fixed-point ring) arithmetic: with no missing row,
  backward candidate i and forward candidate i-1 have bit-identical sums, so
  the first-maximum rule picks the forward one, as xgboost does; backward
  i = 0 leaves only missing rows on the left (H_L = 0: invalid, or gain 0).
  The plain backend keeps the mask because its float sums differ by rounding.
* "Do not split" iff max valid loss_chg <= 1e-6 or < gamma: one comparison
  of the winner against max(gamma, 1e-6), or a (C+1)-th candidate carrying
  that threshold; either way the outcome is a secret bit, never opened.
* Dummy split: every row goes left, so the left child has the parent's rows
  and (same histogram) again does not split; the right child is empty and
  gets weight 0 (H = 0 < min_child_weight, or H = 0). The final-level leaf a
  row reaches therefore carries its collapsed ancestor's weight, and the
  margin update needs no special case.
* Weights: w = -G/(H+lambda), masked to 0 when H < min_child_weight (and
  H = 0), as xgboost's ``CalcWeight``. Internal nodes' w are revealed too
  (xgboost's ``base_weights``, and the leaf value when the analyst collapses
  a dummy split).

Costs below are for the secure backend with P parties, n rows, L = 2^level
nodes on the level, C candidates, B = sum_j (b_j + 1) bins, K groups,
in rounds and ring elements sent per party (targets, not guarantees).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .params import TreeParams

__all__ = ["TreeLayout", "RevealedTree", "TreeBackend",
           "KIND_FORWARD", "KIND_BACKWARD", "KIND_CAT_MISSING_LEFT", "KIND_CAT_MISSING_RIGHT"]

KIND_FORWARD = 0
KIND_BACKWARD = 1
KIND_CAT_MISSING_LEFT = 2
KIND_CAT_MISSING_RIGHT = 3


@dataclass(frozen=True)
class TreeLayout:
    """Public shape of the binned data and the candidate table derived from it."""

    n_bins: np.ndarray          # int64 (m,), regular bins per feature (missing bin extra)
    categorical: np.ndarray     # bool (m,)
    #: bool (m,) or None (= all True): False for a numerical feature known (publicly) to
    #: have no missing value; it gets no backward ("missing goes left") candidates, which
    #: could never be valid (a node without a missing row never takes one)
    has_missing: np.ndarray | None = None
    cand_feature: np.ndarray = field(init=False)
    cand_kind: np.ndarray = field(init=False)
    cand_bin: np.ndarray = field(init=False)        # t (numeric: bins <= t go left) or c
    cand_default_left: np.ndarray = field(init=False)

    def __post_init__(self):
        n_bins = np.asarray(self.n_bins, dtype=np.int64)
        cat = np.asarray(self.categorical, dtype=bool)
        if n_bins.ndim != 1 or cat.shape != n_bins.shape:
            raise ValueError(f"n_bins {n_bins.shape} and categorical {cat.shape} must be "
                             f"1-d of the same length")
        if np.any(n_bins < 0):
            raise ValueError("n_bins has a negative entry, must be >= 0")
        miss = np.ones(n_bins.shape, bool) if self.has_missing is None \
            else np.asarray(self.has_missing, dtype=bool)
        if miss.shape != n_bins.shape:
            raise ValueError(f"has_missing {miss.shape} must have the shape of n_bins "
                             f"{n_bins.shape}")
        feat, kind, b, dl = [], [], [], []
        for j, (nb, c) in enumerate(zip(n_bins.tolist(), cat.tolist())):
            if c:
                for cat_bin in range(nb):
                    feat += [j, j]
                    kind += [KIND_CAT_MISSING_LEFT, KIND_CAT_MISSING_RIGHT]
                    b += [cat_bin, cat_bin]
                    dl += [1, 0]
            else:
                back = nb if miss[j] else 0
                feat += [j] * (nb + back)
                kind += [KIND_FORWARD] * nb + [KIND_BACKWARD] * back
                b += list(range(nb)) + [i - 1 for i in range(nb - 1, nb - 1 - back, -1)]
                dl += [0] * nb + [1] * back
        object.__setattr__(self, "n_bins", n_bins)
        object.__setattr__(self, "categorical", cat)
        object.__setattr__(self, "has_missing", miss)
        object.__setattr__(self, "cand_feature", np.array(feat, dtype=np.int64))
        object.__setattr__(self, "cand_kind", np.array(kind, dtype=np.int64))
        object.__setattr__(self, "cand_bin", np.array(b, dtype=np.int64))
        object.__setattr__(self, "cand_default_left", np.array(dl, dtype=bool))

    @property
    def n_features(self) -> int:
        return int(self.n_bins.shape[0])

    @property
    def n_candidates(self) -> int:
        """C; the "do not split" outcome is index C of each one-hot vector."""
        return int(self.cand_feature.shape[0])

    @property
    def bin_offsets(self) -> np.ndarray:
        """Start of each feature's block in a (node, bin) histogram row (missing bin last)."""
        return np.concatenate([[0], np.cumsum(self.n_bins + 1)]).astype(np.int64)

    @property
    def cand_offsets(self) -> np.ndarray:
        """Start of each feature's candidates in the table, and C (2 b_j per feature,
        b_j for a numerical one without missing values)."""
        per = np.bincount(self.cand_feature, minlength=self.n_features)
        return np.concatenate([[0], np.cumsum(per)]).astype(np.int64)


@dataclass
class RevealedTree:
    """One finished complete tree, opened to the analyst (plaintext).

    Level k (0-based, k < max_depth) has 2^k nodes, node i of level k has
    children 2i and 2i+1 on level k+1. ``leaf_weight`` has 2^max_depth
    entries. Weights are unscaled (w = -G/(H+lambda)); a leaf's value in the
    model is float32(eta * w). No gains, hessian sums or row counts are
    revealed.
    """

    is_split: list[np.ndarray]          # bool per level
    feature: list[np.ndarray]           # int per level (meaningless where not split)
    split_bin: list[np.ndarray]         # numeric: bins <= t go left; categorical: category bin
    default_left: list[np.ndarray]      # bool
    is_categorical: list[np.ndarray]    # bool
    split_condition: list[np.ndarray]   # float32, xgboost split_conditions / category value
    node_weight: list[np.ndarray]       # float64 per level
    leaf_weight: np.ndarray             # float64, 2^max_depth
    group: int = 0                      # output group (class) of this tree

    @property
    def max_depth(self) -> int:
        return len(self.is_split)


class TreeBackend(ABC):
    """Where data and secrets live. The grower only calls these methods.

    Opaque types: ``Margins`` (n x K), ``GradHess`` (g, h of one group, n),
    ``Nodes`` (the n x L 0/1 node indicator matrix N), ``Hist`` (per node and
    bin sums of g and h), ``Splits`` (per node one-hot over C + 1 outcomes and
    the node weights), ``Leaves`` (L leaf values).

    Everything a call needs arrives in its arguments: a backend keeps no
    state from one call to the next except what it set up before training
    (a level's ``Hist`` reaches the children's ``histograms`` call through
    ``Splits`` and ``Nodes``, not through the backend). The one hook with a
    side effect is :meth:`before_round`, which the grower calls at the start
    of every boosting round.
    """

    def before_round(self, round: int) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Called by the grower at the start of boosting round ``round``,
        before :meth:`gradients` (as xgboost's ``TrainingCallback.before_iteration``).
        Default: nothing. The secure backend schedules the dealer's material
        of the round here. Secure cost: one request message (rounds >= 1)."""

    params: TreeParams
    layout: TreeLayout
    n_rows: int

    @abstractmethod
    def init_margins(self) -> Any:
        """Margins at the intercept, n x K.

        Secure cost: the intercept (mean label / class frequencies) needs one
        secure sum and, for logistic/softmax, a log/logit; O(1) rounds, O(K)
        elements. Explicit base_score: local, 0 rounds.
        """

    @abstractmethod
    def gradients(self, margins) -> list:
        """[GradHess per group] at the margins (objective from params).

        Secure cost: squared error is local; logistic needs a sigmoid and
        softmax an exp + reciprocal + products: O(1)..O(log precision)
        rounds, O(n K) elements.
        """

    @abstractmethod
    def root_nodes(self) -> Any:
        """N for the root: an n x 1 all-ones indicator. Local, 0 rounds."""

    @abstractmethod
    def histograms(self, nodes, gh) -> Any:
        """Per (node, feature, bin) sums of g and h for the rows in each node.

        Secure cost (left children only; right = parent - left, the parent's
        sums carried by ``nodes``): g*N and h*N (one Beaver product round),
        an owner-known permutation sorting rows by bin, local prefix sums, a
        second permutation selecting bin ends: 3 rounds, O(n L m) elements.
        """

    @abstractmethod
    def choose_splits(self, hist) -> Any:
        """Best valid candidate per node as a secret one-hot over C + 1
        outcomes (last = do not split), plus each node's weight.

        Secure cost: gains for L*C candidates (a reciprocal and two limb
        products), min_child_weight masks (comparisons), a tournament argmax
        with a tie tolerance, the gamma test on the winner: O(log C)
        comparison rounds, O(L C) elements per round.
        """

    @abstractmethod
    def route(self, nodes, splits) -> Any:
        """Children indicators, n x 2L: column 2l = rows of node l going left,
        2l+1 = going right. Rows go left iff their bin satisfies the chosen
        candidate (dummy split: every row left).

        Secure cost: each node's chosen feature and code from its one-hot
        (local), each row's bin in that feature by an owner-private matrix
        product (1 round, m L elements per non-owner), three comparisons on
        n L elements, then N_left (2 Beaver rounds, 6 n L elements).
        """

    @abstractmethod
    def leaf_values(self, nodes, gh) -> Any:
        """eta * w for the L nodes of the last level. Secure cost: L sums
        (local), one reciprocal, one comparison for min_child_weight."""

    @abstractmethod
    def update_margins(self, margins, nodes, leaves, group: int) -> Any:
        """margins[:, group] += N @ leaves. Secure cost: 1 Beaver round, n L elements."""

    @abstractmethod
    def reveal_tree(self, splits: list, leaves, group: int) -> RevealedTree | None:
        """Open one finished tree to the analyst only (split choices, the
        chosen split conditions and the weights): the RevealedTree where the
        analyst is, None elsewhere (plain: always the tree).

        Secure: every party exports its shares (``SecureBackend.export_shares``,
        which opens nothing; 1 Beaver round for the chosen conditions) and
        sends them to the analyst party: 1 round, O(2^d C) elements. An
        analyst outside the parties sums exported shares itself
        (:func:`ppboost.tree.secure.open_tree`)."""
