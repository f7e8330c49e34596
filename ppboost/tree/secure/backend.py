"""The secure backend: the tree grower's interface on additive shares (ppboost.mpc).

One party's side; all parties run it in lockstep.  It composes the stages
of :mod:`ppboost.tree.secure` (set-up, objective, histogram, split, route,
open) and schedules the dealer (:meth:`SecureBackend.before_round`).
Differentially private training is the subclass
:class:`ppboost.tree.secure.dp.DPSecureBackend`.
"""
from __future__ import annotations

import functools

import numpy as np

from ...mpc import raw
from ...mpc.arith import matmul as matmul_share
from ...mpc.party import Party
from ...mpc.shares import AShare
from ..backend import TreeBackend, TreeLayout
from ..params import TreeParams
from .histogram import Hist, histograms, prepare_cells
from .objective import SecureObjective
from .open import SharedTree, export_shares, reveal_to
from .plan import SecurePlan
from .precision import precision_plan
from .route import Nodes, RouteMaps, route, setup_codes
from .setup import share_conditions
from .split import CandidateMaps, Leaves, Splits, choose_splits, leaf_values

__all__ = ["SecureBackend", "step"]


def step(name: str):
    """Count the method's traffic under ``name`` in the endpoint's ``Stats.by_step``."""
    def wrap(method):
        @functools.wraps(method)
        def counted(self, *args, **kwargs):
            with self.party.ep.stats.step(name):
                return method(self, *args, **kwargs)
        return counted
    return wrap


class SecureBackend(TreeBackend):
    """One party's side of the secure backend.

    Parameters
    ----------
    party : the mpc :class:`~ppboost.mpc.party.Party` of this data party
    plan : the public :class:`SecurePlan` (``n_bins`` set by ``agree_bins``)
    params : TreeParams
    binned : {cell index: int (n_c, m_c)} bins of this party's cells
    cuts : {feature: FeatureCuts} for the features this party is cut owner of
    labels : {label block index: float labels} for the blocks this party holds
    offline : ``"overlap"`` or ``"before"`` (:meth:`before_round`)
    analyst : the party id :meth:`reveal_tree` opens trees to, or None

    Construction (every party at once) sets up the owners' code matrices
    (:func:`~ppboost.tree.secure.route.setup_codes`), the split conditions'
    shares (:func:`~ppboost.tree.secure.setup.share_conditions`) and the
    labels' shares (:class:`~ppboost.tree.secure.objective.SecureObjective`);
    nothing is opened.  Cost: 1 round and n_c m_c elements per non-owner per
    cell, one sharing of C elements per cell owner, the labels' sharing.
    """

    #: the hessians are all 1 (the histograms carry [g, count]; DP training)
    unit_hessian = False

    def __init__(self, party: Party, plan: SecurePlan, params: TreeParams, binned: dict,
                 cuts: dict, labels: dict, offline: str = "overlap",
                 analyst: int | None = None):
        if offline not in ("overlap", "before"):
            raise ValueError(f"offline == {offline!r}, must be 'overlap' or 'before'")
        if analyst is not None and (isinstance(analyst, bool)
                                    or not isinstance(analyst, (int, np.integer))
                                    or not 0 <= analyst < party.n_parties):
            raise ValueError(f"analyst == {analyst!r}, must be a party id in "
                             f"0..{party.n_parties - 1} or None")
        params = self.prepare_params(party, params)
        self.party, self.plan, self.params = party, plan, params
        self.layout = TreeLayout(plan.n_bins, plan.categorical, plan.has_missing)
        self.n_rows = int(plan.n_rows)
        self.prec = precision_plan(params, self.n_rows, unit_hessian=self.unit_hessian)
        self.candidate_maps = CandidateMaps.from_layout(self.layout)
        self._route_maps = RouteMaps.from_layout(self.layout)
        with party.ep.stats.step("tree set-up"):
            self._cells = prepare_cells(party, plan, self.layout.n_bins, binned)
            self._codes = setup_codes(party, plan, self.layout.n_bins, binned)
            self._cond = share_conditions(party, plan, self.layout, cuts)
            self.objective = SecureObjective(party, params, self.prec, plan, labels)
        self.offline, self.analyst = offline, analyst
        self._round_requests = None          # the dealer requests of one round (recorded)
        self._recording = False
        self._level_ahead = True             # histograms ask for each level's material ahead

    def prepare_params(self, party: Party, params: TreeParams) -> TreeParams:
        """The parameters the backend trains with (checked; a subclass may change them)."""
        return params

    # ------------------------------------------------------------------ dealer schedule
    @step("dealer requests")
    def before_round(self, round: int) -> None:
        """The offline phase of boosting round ``round``, requested at its start.

        Every round asks the dealer for the same correlations in the same order
        (their shapes are public).  The first round this backend runs (round 0,
        or the first one after resuming from a checkpoint) records them
        (``DealerClient.record``); from the next one on they are all requested
        at the round's start: with ``offline="overlap"`` lazily
        (``prefetch_many(expand=False)``), so the dealer generates the round's
        material while the parties work and each party expands its share when
        it uses it; with ``offline="before"`` in full before the round goes on
        (a separate offline phase).  While nothing is recorded yet (round 0),
        :meth:`histograms` requests each level's permutation material ahead.
        Cost: one request message from party 0 to the dealer (rounds >= 1).
        """
        dealer = self.party.dealer
        if self._round_requests is None:
            if self._recording:
                self._round_requests = dealer.recorded()
            else:                       # the first round this backend runs (0, or a resumed one)
                dealer.record()
                self._recording = True
        if self._round_requests:
            dealer.prefetch_many(self._round_requests, expand=self.offline == "before")
        self._level_ahead = not self._round_requests

    # ------------------------------------------------------------------ margins
    @step("intercept")
    def init_margins(self):
        """Intercept margins (n, K): :meth:`SecureObjective.init_margins`."""
        return self.objective.init_margins()

    @step("gradients")
    def gradients(self, margins) -> list:
        """[(g, h)] per group: :meth:`SecureObjective.gradients`."""
        return self.objective.gradients(margins)

    @step("margins")
    def update_margins(self, margins, nodes: Nodes, leaves: Leaves, group: int):
        """margins[:, group] += N @ (eta w): one matrix Beaver product (exact:
        N is 0/1), 1 round, n L + L elements.  Opened: Beaver masks."""
        d = matmul_share(AShare(self.party, np.ascontiguousarray(nodes.indicator)),
                         AShare(self.party, leaves.value)).value
        out = margins.copy()
        out[:, group] = out[:, group] + d
        return out

    # ------------------------------------------------------------------ one tree
    def root_nodes(self) -> Nodes:
        """N = all ones (n, 1), no parent.  Local."""
        return Nodes(raw.const(self.party, np.ones((self.n_rows, 1), np.uint64)))

    @step("histograms")
    def histograms(self, nodes: Nodes, gh) -> Hist:
        """:func:`ppboost.tree.secure.histogram.histograms` of the level, using
        ``nodes.parent`` for the right children."""
        return histograms(self.party, self.plan, self._cells, self.layout, nodes.indicator, gh,
                          nodes.parent, request_ahead=self._level_ahead)

    @step("split choice")
    def choose_splits(self, hist: Hist) -> Splits:
        """:func:`ppboost.tree.secure.split.choose_splits` against the objective's threshold."""
        thr = self.objective.split_threshold(hist.tot.shape[1])
        return choose_splits(self.party, self.prec, self.candidate_maps, self.params.reg_lambda,
                             hist, thr)

    @step("routing")
    def route(self, nodes: Nodes, splits: Splits) -> Nodes:
        """:func:`ppboost.tree.secure.route.route` (the children carry the level's Hist)."""
        return route(self.party, self.plan, self._codes, self._route_maps, nodes, splits)

    @step("leaves")
    def leaf_values(self, nodes: Nodes, gh) -> Leaves:
        """:func:`ppboost.tree.secure.split.leaf_values` of the last level."""
        return leaf_values(self.party, self.prec, self.params.reg_lambda, self.params.eta,
                           self.objective.fm, nodes.indicator, gh)

    # ------------------------------------------------------------------ finished trees
    @step("export")
    def export_shares(self, splits: list, leaves: Leaves, group: int) -> SharedTree:
        """This party's :class:`SharedTree` of a grown tree; opens nothing
        (:func:`ppboost.tree.secure.open.export_shares`; weights unscaled for
        reg:squarederror).  The analyst sums every party's with ``open_tree``."""
        unscale = self.objective.unscale if self.objective.reg else None
        return export_shares(self.party, self._cond, splits, leaves, group, self.prec.fo, unscale)

    def reveal_tree(self, splits: list, leaves: Leaves, group: int):
        """Open one grown tree to the analyst party (``analyst``): a
        :class:`~ppboost.tree.backend.RevealedTree` there, None on the others.

        :meth:`export_shares` then :func:`ppboost.tree.secure.open.reveal_to`
        (1 round more, one tree of shares from each other party to the analyst).
        A backend built without an analyst party cannot open trees: an
        analyst outside the parties sums the :meth:`export_shares` of every
        party itself (``open_tree``).
        """
        if self.analyst is None:
            raise ValueError("this SecureBackend has no analyst party (analyst=None), so it "
                             "opens no tree; call export_shares and let the analyst sum the "
                             "parties' shares with open_tree")
        mine = self.export_shares(splits, leaves, group)
        return reveal_to(self.party, mine, self.analyst, self.layout)

    def base_score_share(self) -> tuple:
        """(share, frac bits) of what xgboost stores as base_score."""
        return self.objective.base_score_share()
