"""What a dropout opens in federated mode, when training goes on with the others.

Within a boosting round no two sums of the same gradients are taken over
different sets of parties (:mod:`ppboost.tree.federated` cuts the tree
short).  Across rounds they are: after party P drops out, every later sum is
over the others, and the analyst (the aggregation server) can subtract it
from an earlier sum that included P.  Whatever did not change in between is
then P's own, exactly:

* **missing counts** (any objective): per feature, P's number of rows with
  it missing: the sketch's pooled missing counts and every root's missing
  counts are the same every round, so an earlier one minus a later one is P's;
* **row counts per bin** (reg:squarederror, whose hessians are all 1): P's
  hessian histogram at the root, i.e. its row count in every bin of every
  feature (if no tree had P yet: from the sketch's pooled counts, for the
  features with at most max_bin + 1 distinct values);
* the same counts **within any node whose path from the root a later tree
  repeats** (a common case near the root: the strong features split first
  in every round);
* **label statistics**, if no tree was summed with P (it left before round
  0's first histogram sum) and the intercept came from the pooled labels:
  in round 0 every margin is the intercept, so the root's gradient sum over
  the others gives their label sum, and the intercept's pooled sum minus it
  is P's (binary:logistic: its number of positive labels; multi:softprob:
  its count of each class).

Gradient and (for binary:logistic and multi:softprob) hessian sums change
every round, so they do not cancel as they stand; but the analyst knows the
model, hence every row's margin as a function of its features, and may
combine sums further (for instance P's label sums over regions whose P
counts it has).  Beyond the items above nothing is claimed to stay hidden
of the statistics P contributed before it left.  The tests
(``tests/training/test_federated_dropout_privacy.py``) perform the
subtraction from what the analyst receives and find these counts equal to
P's true ones.

With differential privacy (:mod:`ppboost.tree.federated_dp`) no missing
counts are sent and every release carries the noise parts of at least
n - f - 1 parties besides the analyst, also after the tolerated dropouts:
a difference of two releases is P's counts plus noise of at least twice the
calibrated variance, post-processing of releases the accountant already
counts, so the (epsilon, delta) guarantee covers it.

A consortium that prefers stopping to this disclosure sets
``"on_dropout": "stop"`` in the job: the first dropout then stops every
participant, before any sum without the party is unmasked
(:class:`~ppboost.tree.federated.Federation`, :class:`~ppboost.mpc.secagg.SecAgg`'s
``tolerate=0``).
"""
from __future__ import annotations

from .params import TreeParams

__all__ = ["dropout_disclosure"]


def dropout_disclosure(party: str, params: TreeParams, *, noisy: bool = False,
                       unsummed: bool = False) -> str:
    """The analyst's warning when ``party`` drops out and training goes on: what it can now
    infer about that party (the module docstring).  ``noisy``: the sums carry
    differential-privacy noise; ``unsummed``: no histogram sum had the party (it left
    before round 0's first one; the set-up's sums had it)."""
    head = f"{party} dropped out and training goes on with the others. Privacy: "
    if noisy:
        return head + (f"later noisy sums set against earlier ones that included {party} give "
                       "its counts and gradient sums plus the other parties' noise parts (at "
                       "least twice the calibrated variance), within the run's (epsilon, delta) "
                       "guarantee; no missing counts are sent")
    what = ["its number of rows missing each feature"]
    if params.objective == "reg:squarederror":
        what.append("its row count in every bin of (at least) each feature with at most "
                    "max_bin + 1 distinct values (from the sketch)" if unsummed else
                    "its row count in every bin of every feature (its hessian histogram, h = 1)")
    if unsummed and params.base_score is None:
        what.append({"binary:logistic": "its number of positive labels",
                     "multi:softprob": "its number of rows of each class"}.get(
                         params.objective, "the sum of its labels") +
                    " (the intercept's pooled label statistics minus round 0's root sums)")
    if not unsummed:
        what.append("the same within any node whose path a later tree repeats")
    return head + (f"later sums over the others, set against earlier ones that included "
                   f"{party}, give the analyst exactly " + "; ".join(what) + "; and possibly "
                   "more with the model it knows (ppboost.tree.federated_dropout). A job with "
                   "\"on_dropout\": \"stop\" stops at a dropout instead")
