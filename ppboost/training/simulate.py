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
(:mod:`ppboost.tree.secure`), then hands its shares to the analyst.

Before anything is shared: the parameters are validated
(:class:`~ppboost.tree.params.TreeParams`: unknown keys raise and list the
supported ones) and each label holder's labels are checked against the
objective (``split.validate``); a bad split cannot even be constructed
(:mod:`ppboost.data`).

This is the simulation of a deployment: every participant runs exactly the
code a site runs (:func:`ppboost.training.runner.run_party` and
:func:`~ppboost.training.runner.run_dealer`), each party with only its own
view of the split; the only difference is that the rows are already
aligned (the split says where each party's rows go), so no private set
intersection is needed.  The first party is the analyst: the other parties
send it their shares of every tree.  The result stays secret-shared:
:class:`SecretSharedModel` holds the shares the analyst received.
:meth:`SecretSharedModel.reveal` is the analyst's step: it sums the shares,
prunes the dummy splits and exports an ``xgboost.Booster``.  The revealed
model carries no cover / gain statistics.
"""
from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np

from ..tree.params import TreeParams
from .job import Job
from .model import SecretSharedModel
from .runner import local_checks, run_dealer, run_party
from .site import site_from_view

__all__ = ["train"]


def _party(job, site, names, keep_opened, verbose, ep):
    return run_party(job, ep, site, names=names, keep_opened=keep_opened, verbose=verbose)


def _dealer(job, names, ep):
    return run_dealer(job, ep, names=names)


def train(params, data, num_boost_round: int = 10, *, verbose: bool = True,
          timeout: float = 120.0, transport: str = "inprocess",
          keep_opened: bool = False, offline: str = "overlap", dp=None,
          mode: str = "mpc", link: str | None = None,
          on_dropout: str = "continue") -> SecretSharedModel:
    """Train XGBoost securely on a split; returns a :class:`SecretSharedModel`.

    Parameters
    ----------
    params : dict with xgboost's names (objective, max_depth, eta, lambda,
        gamma, min_child_weight, max_bin, base_score, num_class, ...).
    data : :class:`~ppboost.data.HorizontalSplit`, ``VerticalSplit`` or ``MixedSplit``.
    num_boost_round : number of boosting rounds (trees per class).
    verbose : show a tqdm progress bar (trees; seconds and bytes per tree).
    timeout : seconds a party waits for a message before failing; with
        ``transport="tls"`` also the bound on each process's start-up and on
        connecting (:mod:`ppboost.transport.launch`).
    transport : ``"inprocess"`` (threads, default) or ``"tls"`` (one process per
        participant over TLS on this machine).
    keep_opened : record every value each party saw opened (audits / tests).
    offline : when the dealer's material of a boosting round (after the
        first) is made: ``"overlap"`` (default) while the parties work, or
        ``"before"`` the round starts, in full (a separate offline phase: the
        parties then compute alone, and ``online_seconds`` is their protocol
        time only; it needs memory for a whole round's material).
    dp : :class:`ppboost.DP` (or its dict): train a differentially private
        model (:mod:`ppboost.dp`); ``None`` or ``DP(epsilon=math.inf)``: no
        noise, today's model.  The budget is checked here, before anything is
        shared (:class:`ppboost.dp.DPError`, e.g. a spend above the request
        or a budget too small for the trees).
    link : an emulated network link for every channel of the in-process
        transport, e.g. ``"1gbit:10ms"`` (per-channel bandwidth and one-way
        delay, :mod:`ppboost.transport.link`); ``None`` / ``"local"``: none.
    mode : ``"mpc"`` (default: the secret-shared training above) or
        ``"federated"``: a horizontal split of 3 or more parties (2 or more
        with ``dp``) whose histograms are summed by secure aggregation, the
        analyst choosing the splits in the clear
        (:mod:`ppboost.training.federated`; with ``dp`` every party adds its
        noise part first, :mod:`ppboost.tree.federated_dp`); it returns a
        :class:`~ppboost.training.federated.FederatedModel`.
    on_dropout : federated mode only: ``"continue"`` (default: training goes
        on without a party that dropped out, which opens some of its counts,
        :mod:`ppboost.tree.federated_dropout`) or ``"stop"`` (the first
        dropout stops every participant, naming it, before any sum without it
        is unmasked); the job file's ``"on_dropout"``.
    """
    from ..data import Split
    from ..transport.link import Link
    shaped = Link.parse(link)
    if shaped is not None and transport != "inprocess":
        raise ValueError(f"link={link!r} shapes the in-process transport; transport == "
                         f"{transport!r} runs over real sockets")
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
    names = list(data.party_names)
    if mode not in ("mpc", "federated"):
        raise ValueError(f"mode == {mode!r}, must be 'mpc' or 'federated'")
    if dp is not None:
        from ..dp import DP
        dp = DP.from_dict(dp)
    if mode == "federated":
        from .federated import check_federated
        check_federated(data.kind, len(names), dp=dp)
        if dp is not None and dp.private:      # the federated DP plan and public cuts, here
            from ..tree.federated_dp import plan_federated
            from ..tree.secure.dp import public_cuts
            public_cuts(dp, data.feature_names, data.feature_types, data.categories, p.max_bin)
            plan_federated(dp, p, data.n_rows, len(data.feature_names),
                           int(num_boost_round) * p.n_groups, len(names))
    elif dp is not None and dp.private:        # the DP plan and the public cuts, checked here
        from ..tree.secure.dp import plan_run, public_cuts
        public_cuts(dp, data.feature_names, data.feature_types, data.categories, p.max_bin)
        plan_run(dp, p, data.n_rows, int(num_boost_round) * p.n_groups, len(names))
    else:
        from ..tree.secure import precision_plan
        precision_plan(p, data.n_rows)       # rejects parameters the fixed point cannot hold
    pdict = dict(params) if not isinstance(params, TreeParams) else {
        k: v for k, v in dataclasses.asdict(params).items() if v is not None}
    job = Job(params=pdict, num_boost_round=int(num_boost_round), split=data.kind,
              analyst=names[0], timeout=float(timeout), offline=offline, dp=dp, mode=mode,
              on_dropout=on_dropout,
              categorical={c: [str(v) for v in levels] for c, levels in data.categories.items()})
    sites = [site_from_view(data.party(name)) for name in names]
    for site in sites if mode == "mpc" else ():
        local_checks(site, job)             # each site's own checks, before anything is shared
    everyone = names + ["dealer"]
    fns = [functools.partial(_party, job, site, everyone, keep_opened, bool(verbose) and pid == 0)
           for pid, site in enumerate(sites)]
    dealer_fn = functools.partial(_dealer, job, everyone)
    t0 = time.perf_counter()
    if transport == "inprocess":
        from ..transport.inprocess import run_inprocess
        results, dealer, _ = run_inprocess(len(names), fns, dealer_fn, timeout=timeout,
                                           names=everyone, link=shaped)
    else:
        from ..transport.launch import run_local
        # set-up is bounded by the training timeout too (connecting, and each process's start)
        results, dealer, _ = run_local(len(names), fns, dealer_fn, timeout=timeout,
                                       connect_timeout=timeout, names=everyone)
    wall = time.perf_counter() - t0
    model = results[0]["model"]
    model.stats = {"parties": {name: r["stats"] for name, r in zip(names, results)},
                   "dealer": dealer, "wall_seconds": wall, "transport": transport,
                   "link": str(shaped) if shaped is not None else "local"}
    return model
