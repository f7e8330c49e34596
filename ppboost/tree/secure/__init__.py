"""The secure backend: XORBoost-style oblivious training on additive shares.

One mechanism serves horizontal, vertical and mixed data (docs/design.md
"Secure training"; XORBoost, Deforth et al., PoPETs 2022).  Everything the
parties hold about the model is secret-shared over Z_2^64: gradients, node
indicators N (n x L, 0/1), histograms, gains, the one-hot split choices,
the routing bits, the weights.  Public: n, the cells' shapes, bins per
feature, the parameters and the objective.  Nothing is opened except
uniformly masked values inside the mpc protocols; a finished tree is opened
only to the analyst (:func:`open_tree` on every party's :class:`SharedTree`).

One module per stage, in the order a run uses them:

* :mod:`.plan`: the public cells of the pooled table (:func:`public_plan`);
* :mod:`.setup`: :func:`agree_bins` (public bin counts; shared cuts by an
  oblivious sort, :mod:`ppboost.tree.secure_binning`) and the split
  conditions' shares;
* :mod:`.precision`: the fixed-point budget (:class:`PrecisionPlan`);
* :mod:`.objective`: labels, the secret label scale, intercepts, gradients;
* :mod:`.histogram`: per-level histograms by owner-known permutations;
* :mod:`.split`: gains, the tolerant argmax, node and leaf weights;
* :mod:`.route`: children indicators by owner-private code matrices;
* :mod:`.open`: a finished tree's shares, and opening them;
* :mod:`.backend`: :class:`SecureBackend`, the grower's interface over them.

The stages keep their shares as uint64 arrays and call the raw-array
protocols of :mod:`ppboost.mpc.raw` with the party.

Not done (documented gaps): histograms run in Z_2^64 (no 32-bit ring); the
histogram's bin-end selection still costs O(n m L) elements per level and
non-owner (the dealer cannot stand in for the non-owner: it knows pi).
"""
from .backend import SecureBackend
from .objective import LABEL_BITS, SCALE_RANGE
from .open import SharedTree, open_tree
from .plan import Cell, SecurePlan, plan_from_info, public_plan
from .precision import PrecisionPlan, precision_plan
from .setup import agree_bins

__all__ = ["Cell", "SecurePlan", "SharedTree", "SecureBackend", "agree_bins",
           "precision_plan", "PrecisionPlan", "public_plan", "plan_from_info", "open_tree", "LABEL_BITS",
           "SCALE_RANGE"]
