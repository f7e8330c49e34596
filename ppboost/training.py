"""``ppboost.train``: secure XGBoost training across parties -> :class:`SecretSharedModel`.

::

    data = ppboost.VerticalSplit({"hospital": (X1, y), "insurer": X2})
    model = ppboost.train({"objective": "binary:logistic", "max_depth": 3}, data, 10)
    booster = model.reveal()            # xgboost.Booster, for the analyst only
    model.stats                         # bytes, rounds, seconds per party; dealer offline time

What runs: every data party (one per entry of the split, ids in the split's
order) and the dealer.  By default they are threads of this process talking
over the in-process transport (``transport="inprocess"``); with
``transport="tls"`` each is its own OS process over mutually authenticated
TLS (:func:`ppboost.transport.run_local`).  Either way each party's code
sees only its own :class:`~ppboost.data.PartyData` view plus the split's
public description (shapes, names, types, who holds labels), and runs the
same oblivious grower (:mod:`ppboost.tree.grower`) on the secure backend
(:mod:`ppboost.tree.secure`).

Before anything is shared: the parameters are validated
(:class:`~ppboost.tree.params.TreeParams`: unknown keys raise and list the
supported ones) and each label holder's labels are checked against the
objective (``split.validate``); a bad split cannot even be constructed
(:mod:`ppboost.data`).

The result stays secret-shared: :class:`SecretSharedModel` keeps each
party's shares of every tree.  :meth:`SecretSharedModel.reveal` is the
analyst's step: it sums the shares, prunes the dummy splits and exports an
``xgboost.Booster``.  In this single-process simulation the object holding
all shares lives in the caller; in a deployment only the analyst would
receive them.  The revealed model carries no cover / gain statistics.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from .tree.params import TreeParams

__all__ = ["train", "SecretSharedModel"]


# ----------------------------------------------------------------------------- public plan
def _public_plan(split):
    """(cells, label_blocks) from the split's public description only."""
    from .tree.secure import Cell
    info = split.public_info()
    names = list(info["parties"])
    n = int(info["n_rows"])
    holders = set(info["label_holders"])
    cells, blocks, full_rows = [], [], []
    start = 0
    for pid, name in enumerate(names):
        pi = info["parties"][name]
        feats = np.asarray(pi["feature_indices"], np.int64)
        row_holder = info["kind"] == "horizontal" or (info["kind"] == "mixed" and name in holders)
        if row_holder:
            rows = np.arange(start, start + pi["n_rows"], dtype=np.int64)
            start += pi["n_rows"]
        else:
            rows = np.arange(n, dtype=np.int64)
        full_rows.append(not row_holder)
        cells.append(Cell(pid, rows, feats))
        if name in holders:
            blocks.append((pid, rows))
    return names, cells, blocks, full_rows


@dataclass
class _PartyJob:
    """Everything one party's process needs: its own view and public facts."""

    pid: int
    n_parties: int
    view: object                 # PartyData (own data only)
    n_rows: int
    n_features: int
    categorical: np.ndarray
    cells: list
    label_blocks: list
    cell_is_full: bool           # this party's cell spans all rows (missing where not held)
    params: TreeParams
    num_boost_round: int
    verbose: bool
    keep_opened: bool = False
    offline: str = "overlap"


def _party_main(job: _PartyJob, ep):
    """One data party: bins, shares, grows every tree; returns its shares and stats."""
    from .mpc.context import Party
    from .tree.grower import boost
    from .tree.secure import SecureBackend, SecurePlan, SharedTree, agree_bins
    t_start = time.perf_counter()
    party = Party(ep, frac_bits=16, keep_opened=job.keep_opened)
    plan = SecurePlan(job.n_rows, job.n_features, job.categorical, job.cells, job.label_blocks)
    view = job.view
    X = np.asarray(view.X, dtype=np.float32)
    if job.cell_is_full:
        full = np.full((job.n_rows, X.shape[1]), np.nan, np.float32)
        full[np.asarray(view.rows)] = X
        X = full
    my_X = {ci: X for ci, c in enumerate(plan.cells) if c.owner == job.pid}
    binned, cuts = agree_bins(party, plan, my_X, job.params.max_bin)
    _check_onehot(plan, job.params)
    labels = {bi: np.asarray(view.y) for bi, (o, _) in enumerate(plan.label_blocks)
              if o == job.pid}
    backend = SecureBackend(party, plan, job.params, binned, cuts, labels, offline=job.offline)
    setup_seconds = time.perf_counter() - t_start

    per_tree = []
    bar = None
    if job.verbose and job.pid == 0:
        from tqdm.auto import tqdm
        total = job.num_boost_round * job.params.n_groups
        bar = tqdm(total=total, desc="ppboost secure training", unit="tree")
    mark = {"t": time.perf_counter(), "b": ep.stats.total_sent, "r": ep.stats.rounds}

    def on_level(level):
        if bar is not None:
            bar.set_postfix_str(f"level {level + 1}/{job.params.max_depth}, "
                                f"{time.perf_counter() - mark['t']:.1f}s", refresh=True)

    def on_tree(rnd, group, *_):
        now = time.perf_counter()
        rec = {"round": rnd, "group": group, "seconds": now - mark["t"],
               "bytes_sent": ep.stats.total_sent - mark["b"],
               "rounds": ep.stats.rounds - mark["r"]}
        per_tree.append(rec)
        mark.update(t=now, b=ep.stats.total_sent, r=ep.stats.rounds)
        if bar is not None:
            bar.set_postfix_str(f"{rec['seconds']:.2f}s, {rec['bytes_sent'] / 1e6:.2f} MB "
                                f"sent/tree", refresh=False)
            bar.update(1)

    try:
        grown = boost(backend, job.num_boost_round, on_tree=on_tree, on_level=on_level)
    finally:
        if bar is not None:
            bar.close()
    # the analyst's material: this party's shares of each tree (split choices,
    # conditions, unscaled weights); nothing is opened here
    shared = [t if isinstance(t, SharedTree) else backend.reveal_tree(t.splits, t.leaves, t.group)
              for t in grown]
    base = backend.base_score_share()
    party.close()
    st = ep.stats
    stats = {"bytes_sent": st.total_sent, "bytes_recv": st.total_recv,
             "messages": st.messages_sent, "rounds": st.rounds,
             "online_seconds": time.perf_counter() - t_start - party.dealer.expand_seconds,
             "setup_seconds": setup_seconds,
             "dealer_expand_seconds": party.dealer.expand_seconds,
             "per_tree": per_tree, "transcript": list(st.transcript)}
    if job.keep_opened:
        stats["opened"] = party.opened
    return {"trees": shared, "base": base, "n_bins": plan.n_bins, "stats": stats}


def _check_onehot(plan, params):
    if params.max_cat_to_onehot is None:
        return
    for j in np.flatnonzero(plan.categorical):
        if plan.n_bins[j] >= params.max_cat_to_onehot:
            raise ValueError(
                f"feature {j} has {plan.n_bins[j]} categories and max_cat_to_onehot == "
                f"{params.max_cat_to_onehot}; only one-vs-rest splits are supported, so "
                f"max_cat_to_onehot must be > {plan.n_bins[j]} (or left unset)")


def _dealer_main(ep):
    from .mpc.dealer import run_dealer
    t0 = time.perf_counter()
    out = run_dealer(ep)
    out["wall_seconds"] = time.perf_counter() - t0
    out["transcript"] = list(ep.stats.transcript)
    out["rounds"] = ep.stats.rounds
    return out


# ----------------------------------------------------------------------------- model
@dataclass
class SecretSharedModel:
    """The trained model, still secret-shared among the parties.

    ``shares[p]`` holds party p's :class:`~ppboost.tree.secure.SharedTree`
    shares (and ``base_shares[p]`` its share of the intercept); none of them
    alone says anything about the model.  ``stats`` is per party
    (``stats["parties"][name]``: bytes_sent, bytes_recv, rounds, messages,
    online_seconds, setup_seconds, dealer_expand_seconds, per_tree,
    transcript) plus ``stats["dealer"]`` (offline_seconds: time the dealer
    spent generating material; bytes_sent, requests, transcript, ...).
    ``online_seconds`` is a party's wall time minus the time it spent getting
    dealer material (expanding its share and waiting for the dealer's
    messages).  With ``offline="overlap"`` the dealer works while the parties
    do, so on a machine with fewer cores than participants it is an upper
    bound; ``offline="before"`` separates the phases.
    """

    params: TreeParams
    party_names: list
    n_bins: np.ndarray
    categorical: np.ndarray
    feature_names: list
    shares: list
    base_shares: list
    stats: dict = field(default_factory=dict)
    analyst: str | None = None

    @property
    def num_trees(self) -> int:
        return len(self.shares[0]) if self.shares else 0

    def reveal(self):
        """Open the trees to the analyst: sum shares, prune dummy splits, export.

        Returns an ``xgboost.Booster`` (predict / save_model / load in plain
        xgboost all work; cover and gain are 0).
        """
        from .crypto import fixed
        from .tree.backend import TreeLayout
        from .tree.export import to_booster
        from .tree.secure import open_tree
        layout = TreeLayout(self.n_bins, self.categorical)
        trees = [open_tree([s[i] for s in self.shares], layout) for i in range(self.num_trees)]
        bits = self.base_shares[0][1]
        tot = None
        for v, _ in self.base_shares:
            v = np.asarray(v, np.uint64)
            tot = v.copy() if tot is None else tot + v
        base = fixed.decode(tot, bits).astype(np.float32)
        booster = to_booster(trees, self.params, base, n_features=len(self.n_bins),
                             categorical=self.categorical)
        default = [f"f{j}" for j in range(len(self.n_bins))]
        if self.feature_names and list(self.feature_names) != default:
            booster.feature_names = list(self.feature_names)   # DataFrame column names
            booster.feature_types = ["c" if c else "q" for c in self.categorical]
        return booster


# ----------------------------------------------------------------------------- train
def train(params, data, num_boost_round: int = 10, *, verbose: bool = True,
          timeout: float = 120.0, transport: str = "inprocess",
          keep_opened: bool = False, offline: str = "overlap") -> SecretSharedModel:
    """Train XGBoost securely on a split; returns a :class:`SecretSharedModel`.

    Parameters
    ----------
    params : dict with xgboost's names (objective, max_depth, eta, lambda,
        gamma, min_child_weight, max_bin, base_score, num_class, ...).
    data : :class:`~ppboost.data.HorizontalSplit`, ``VerticalSplit`` or ``MixedSplit``.
    num_boost_round : number of boosting rounds (trees per class).
    verbose : show a tqdm progress bar (trees; seconds and bytes per tree).
    timeout : seconds a party waits for a message before failing.
    transport : ``"inprocess"`` (threads, default) or ``"tls"`` (one process per
        participant over TLS on this machine).
    keep_opened : record every value each party saw opened (audits / tests).
    offline : when the dealer's material of a boosting round (after the
        first) is made: ``"overlap"`` (default) while the parties work, or
        ``"before"`` the round starts, in full (a separate offline phase: the
        parties then compute alone, and ``online_seconds`` is their protocol
        time only; it needs memory for a whole round's material).
    """
    from .data import Split
    p = params if isinstance(params, TreeParams) else TreeParams.from_dict(params)
    if not isinstance(data, Split):
        raise TypeError(f"data is a {type(data).__name__}; expected a ppboost HorizontalSplit, "
                        f"VerticalSplit or MixedSplit")
    if isinstance(num_boost_round, bool) or not isinstance(num_boost_round, (int, np.integer)) \
            or num_boost_round < 1:
        raise ValueError(f"num_boost_round == {num_boost_round!r}, must be an integer >= 1")
    if transport not in ("inprocess", "tls"):
        raise ValueError(f"transport == {transport!r}, must be 'inprocess' or 'tls'")
    if offline not in ("overlap", "before"):
        raise ValueError(f"offline == {offline!r}, must be 'overlap' or 'before'")
    data.validate(p.objective, p.num_class if p.objective == "multi:softprob" else None)
    if p.objective == "reg:squarederror":
        from .tree.secure import SCALE_RANGE
        for name, v in data.parties.items():
            if v.y is not None and np.any(np.abs(np.asarray(v.y, np.float64)) >= 2.0 ** SCALE_RANGE[1]):
                raise ValueError(f"party {name!r}: labels must satisfy |y| < 2**{SCALE_RANGE[1]} "
                                 f"for secure reg:squarederror")
    from .tree.secure import precision_plan
    precision_plan(p, data.n_rows)           # rejects parameters the fixed point cannot hold
    names, cells, blocks, full_rows = _public_plan(data)
    categorical = np.array([t == "c" for t in data.feature_types], dtype=bool)
    jobs = [_PartyJob(pid, len(names), data.party(name), data.n_rows, data.n_features,
                      categorical, cells, blocks, full_rows[pid], p, int(num_boost_round),
                      bool(verbose), keep_opened, offline)
            for pid, name in enumerate(names)]
    fns = [functools.partial(_party_main, job) for job in jobs]
    t0 = time.perf_counter()
    if transport == "inprocess":
        from .transport.inprocess import run_inprocess
        results, dealer, _ = run_inprocess(len(names), fns, _dealer_main, timeout=timeout)
    else:
        from .transport.launch import run_local
        results, dealer, _ = run_local(len(names), fns, _dealer_main, timeout=timeout)
    wall = time.perf_counter() - t0
    stats = {"parties": {name: r["stats"] for name, r in zip(names, results)},
             "dealer": dealer, "wall_seconds": wall, "transport": transport}
    return SecretSharedModel(p, names, results[0]["n_bins"], categorical,
                             list(data.feature_names), [r["trees"] for r in results],
                             [r["base"] for r in results], stats, analyst=names[0])
