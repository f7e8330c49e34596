"""One participant of a training job: the code every site runs, and ``train()`` simulates.

::

    ep = connect_tls(federation, my_id, my_key)          # or an in-process endpoint
    result = run_party(job, ep, site, names=federation_names)      # a data party
    result = run_dealer(job, ep, names=federation_names)          # the dealer

A data party's code receives only its own :class:`~ppboost.training.site.Site`
(its table), the :class:`~ppboost.training.job.Job`, and what the protocol
sends it.  The phases, each a function below:

1. **agree** (:mod:`ppboost.training.agree`): public facts are announced and
   checked; any disagreement stops everyone with the same message.
2. **align** (vertical and mixed splits with join ids): private set
   intersection with each label holder (:mod:`ppboost.mpc.psi`) places each
   party's rows in one agreed, random order.
3. **train**: secure binning, label sharing and the oblivious grower on the
   secure backend, exactly as before (:mod:`ppboost.tree.grower`).
4. **deliver**: every party sends its shares of the trees and of the
   intercept to the analyst only; the analyst opens the model.

Stats: the ``transcript``, ``bytes_sent``, ``rounds`` of a party's result
cover phase 3 (training) only, so they are comparable with earlier runs;
``setup_messages`` covers phases 1-2 (with ``agreement_seconds`` and
``alignment_seconds``), ``setup_seconds`` the binning and label sharing that
start phase 3, and ``delivery_bytes`` / ``delivery_seconds`` phase 4.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ..crypto.prg import PRG
from ..errors import AgreementError, DataError
from . import agree as _agree
from .job import Job
from .site import Site

__all__ = ["run_party", "run_dealer", "run_analyst", "PartyProgress"]


class PartyProgress:
    """Per-tree progress hook: a tqdm bar on a terminal, or nothing."""

    def __init__(self, total: int, show: bool, desc: str):
        self.bar = None
        if show:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="tree")

    def level(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)

    def tree(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)

    def skip(self, trees: int) -> None:
        if self.bar is not None:
            self.bar.update(trees)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------- phases
def participant_facts(job: Job, names: list, me: int, role: str, site: Site | None, error,
                      ck=None, resume: bool = False) -> dict:
    """What this participant announces at the agreement: its name, role, the job's digest,
    its checkpoint state, and its site's public facts (or the error that stops it)."""
    f = {"name": names[me], "role": role, "job": job.digest, "checkpoint": ck is not None,
         "resume": bool(resume), "saved": ck.rounds() if ck is not None and resume else []}
    if error is not None:
        f["error"] = str(error)
    elif site is not None:
        f.update(site.facts())
    return f


def align(ep, job: Job, info: dict, site: Site, names: list, rng: PRG) -> tuple:
    """Place this party's rows in the pooled order; returns ``(site, info)``.

    Horizontal: a row holder's rows keep its file order at its offset.
    Vertical (join ids): each non-label party runs a PSI with the label
    holder; the label holder keeps the rows every partner has, in a uniformly
    random order, and tells each partner which of its rows go where.  Mixed:
    each row holder shuffles its rows, runs a PSI with each party that adds
    columns, and tells it where its matched rows go; pooled rows a column
    party lacks are missing in its columns.

    Opens: the intersection size to everyone (vertical: it is the number of
    training rows); to a column party, which of its own rows are in the
    intersection; to a row holder, which of its own rows the column party has.
    Nothing about an id outside the intersection (see :mod:`ppboost.mpc.psi`).
    """
    from ..mpc.psi import psi_leader, psi_partner

    me = names[ep.me]
    kind = info["kind"]
    mine = info["parties"][me]
    if site.rows is not None:                      # simulation: rows already pooled
        return site, info
    if kind == "horizontal":
        start = mine["row_offset"]
        return site.take(np.arange(site.n_rows), np.arange(start, start + site.n_rows)), info
    pid = {n: i for i, n in enumerate(names)}
    holders = info["label_holders"]
    col_parties = [n for n in info["parties"] if n not in holders]
    if me in holders:
        # vertical: keep my file order for the PSI, then one random order of the kept rows;
        # mixed: my rows in a random order from the start (their pooled positions)
        order = rng.permutation(site.n_rows) if kind == "mixed" else np.arange(site.n_rows)
        matches = {n: psi_leader(ep, pid[n], site.ids[order], job.digest, rng.uint64(4).tobytes())
                   for n in col_parties}
        if kind == "vertical":
            keep = np.flatnonzero(np.all([m >= 0 for m in matches.values()], axis=0))
            keep = keep[rng.permutation(len(keep))]
            pooled = np.arange(len(keep), dtype=np.int64)
            sent = {n: np.stack([matches[n][keep], pooled]) for n in col_parties}
            site, n_rows = site.take(order[keep], pooled), len(keep)
        else:
            start = mine["row_offset"]
            sent = {}
            for n in col_parties:
                hit = np.flatnonzero(matches[n] >= 0)
                sent[n] = np.stack([matches[n][hit], start + hit])
            site, n_rows = site.take(order, start + np.arange(site.n_rows)), info["n_rows"]
        for n in col_parties:
            ep.send(pid[n], sent[n].astype(np.int64))
    else:
        orders = {h: rng.permutation(site.n_rows) for h in holders}
        for h in holders:
            psi_partner(ep, pid[h], site.ids, job.digest, rng.uint64(4).tobytes(), orders[h])
        local, pooled = [], []
        for h in holders:
            got = np.asarray(ep.recv(pid[h]))
            if got.dtype != np.int64 or got.ndim != 2 or got.shape[0] != 2 \
                    or (got.size and (got[0].min() < 0 or got[0].max() >= site.n_rows)):
                raise AgreementError(f"{h} sent a malformed row assignment")
            local.append(orders[h][got[0]])
            pooled.append(got[1])
        local, pooled = np.concatenate(local), np.concatenate(pooled)
        site = site.take(local, pooled)
        n_rows = info["n_rows"] if kind == "mixed" else len(pooled)
    info = dict(info, n_rows=int(n_rows))
    if kind == "vertical":
        info["parties"] = {n: dict(p, n_rows=int(n_rows)) for n, p in info["parties"].items()}
    if info["n_rows"] == 0:
        raise DataError("the parties' ids have no row in common: nothing to train on")
    return site, info


def _check_onehot(plan, params):
    if params.max_cat_to_onehot is None:
        return
    for j in np.flatnonzero(plan.categorical):
        if plan.n_bins[j] >= params.max_cat_to_onehot:
            raise ValueError(
                f"feature {j} has {plan.n_bins[j]} categories and max_cat_to_onehot == "
                f"{params.max_cat_to_onehot}; only one-vs-rest splits are supported, so "
                f"max_cat_to_onehot must be > {plan.n_bins[j]} (or left unset)")


def train_party(party, job: Job, info: dict, view, *, progress: PartyProgress,
                checkpoint=None, dp_plan=None) -> dict:
    """Phase 3: bin, share, grow every tree; returns this party's shares and stats.

    ``dp_plan``: the run's :class:`~ppboost.dp.DPPlan` (differential privacy:
    public cuts from the job's bounds, the noisy backend), or None.

    With a ``checkpoint``, the state is saved after every round (a dealer
    mark first, so that the dealer saves where its streams stand at the same
    point), and ``info["resume_from"]`` rounds are skipped: right after the
    (replayed) intercept, every stream moves to where it stood then.
    """
    from ..tree.grower import boost
    from ..tree.secure import SecureBackend, SecurePlan, agree_bins, plan_from_info
    from .model import pack_shares, unpack_shares

    ep = party.ep
    params = job.tree_params
    t_start = time.perf_counter()
    names, cells, blocks, full_rows = plan_from_info(info)
    categorical = np.array([t == "c" for t in info["feature_types"]], dtype=bool)
    n_rows = int(info["n_rows"])
    plan = SecurePlan(n_rows, int(info["n_features"]), categorical, cells, blocks)
    X = np.asarray(view.X, dtype=np.float32)
    if full_rows[ep.me]:
        full = np.full((n_rows, X.shape[1]), np.nan, np.float32)
        full[np.asarray(view.rows)] = X
        X = full
    my_X = {ci: X for ci, c in enumerate(plan.cells) if c.owner == ep.me}
    pub = None
    if dp_plan is not None:
        from ..tree.secure.dp import public_cuts
        pub = public_cuts(job.dp, info["feature_names"], info["feature_types"], job.categorical,
                          params.max_bin)
    binned, cuts = agree_bins(party, plan, my_X, params.max_bin, public_cuts=pub)
    _check_onehot(plan, params)
    labels = {bi: np.asarray(view.y) for bi, (o, _) in enumerate(plan.label_blocks) if o == ep.me}
    if dp_plan is None:
        backend = SecureBackend(party, plan, params, binned, cuts, labels, offline=job.offline)
    else:
        from ..tree.secure.dp import DPSecureBackend
        backend = DPSecureBackend(party, plan, params, binned, cuts, labels,
                                  offline=job.offline, dp=dp_plan)
    setup_seconds = time.perf_counter() - t_start

    per_tree = []
    mark = {"t": time.perf_counter(), "b": ep.stats.total_sent, "r": ep.stats.rounds}

    def on_level(level):
        progress.level(f"level {level + 1}/{params.max_depth}, "
                       f"{time.perf_counter() - mark['t']:.1f}s")

    shared = []

    def on_tree(rnd, group, tree):
        # this party's shares of the tree (split choices, conditions, unscaled weights)
        shared.append(backend.export_shares(tree.splits, tree.leaves, tree.group))
        now = time.perf_counter()
        rec = {"round": rnd, "group": group, "seconds": now - mark["t"],
               "bytes_sent": ep.stats.total_sent - mark["b"], "rounds": ep.stats.rounds - mark["r"]}
        per_tree.append(rec)
        mark.update(t=now, b=ep.stats.total_sent, r=ep.stats.rounds)
        progress.tree(f"{rec['seconds']:.2f}s, {rec['bytes_sent'] / 1e6:.2f} MB sent/tree")

    def on_round(rnd, margins):
        party.dealer.mark(f"round-{rnd + 1}")
        checkpoint.save(rnd + 1, {"margins": np.asarray(margins),
                                  "trees": np.frombuffer(pack_shares(shared, (np.zeros(1), 0)),
                                                         np.uint8)},
                        {"prg": int(party.prg.pos), "dealer": party.dealer.positions(),
                         "per_tree": per_tree})

    def resume(margins):
        k = info["resume_from"]
        party.dealer.mark(f"resume-{k}")
        if k == 0:
            return 0, margins
        arrays, meta = checkpoint.load(k)
        party.prg.pos = int(meta["prg"])
        party.dealer.restore(meta["dealer"])
        shared.extend(unpack_shares(arrays["trees"].tobytes(), "the checkpoint")[0])
        per_tree.extend(meta["per_tree"])
        progress.skip(len(shared))
        return k, arrays["margins"]

    with_ck = checkpoint is not None
    boost(backend, job.num_boost_round, on_tree=on_tree, on_level=on_level,
          on_round=on_round if with_ck else None, resume=resume if with_ck else None)
    return {"trees": shared, "base": backend.base_score_share(),
            "layout": (plan.n_bins, categorical, plan.has_missing),
            "setup_seconds": setup_seconds, "per_tree": per_tree, "t_start": t_start,
            "dp": None if dp_plan is None else dp_plan.attributes()}


# ----------------------------------------------------------------------------- stats
def peak_rss() -> int:
    """This process's peak resident memory in bytes (per participant when each is a
    process; in a simulation in threads, the whole simulation's)."""
    import resource
    import sys
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kb if sys.platform == "darwin" else kb * 1024)


class StatsWindow:
    """The endpoint's counters from a start mark: one phase's bytes, rounds, transcript."""

    def __init__(self, ep):
        self.ep = ep
        st = ep.stats
        self.k, self.sent, self.recv = len(st.transcript), st.total_sent, st.total_recv
        self.msgs, self.rounds = st.messages_sent, st.rounds
        self.steps = {k: dict(v) for k, v in st.by_step.items()}

    def stats(self) -> dict:
        st = self.ep.stats
        zero = {"bytes": 0, "rounds": 0}
        steps = {k: {c: v[c] - self.steps.get(k, zero)[c] for c in zero}
                 for k, v in st.by_step.items()}
        return {"bytes_sent": st.total_sent - self.sent, "bytes_recv": st.total_recv - self.recv,
                "messages": st.messages_sent - self.msgs, "rounds": st.rounds - self.rounds,
                "transcript": list(st.transcript[self.k:]),
                "times": list(st.times[self.k:]),
                "by_step": {k: v for k, v in steps.items() if v["bytes"] or v["rounds"]}}


def _checkpoint(directory, job: Job, name: str, site: Site | None):
    """The participant's :class:`Checkpoint` (keyed by the job and its own data), or None."""
    if directory is None:
        return None
    from .checkpoint import Checkpoint
    data = ""
    if site is not None:
        import hashlib
        h = hashlib.sha256(np.ascontiguousarray(site.X).tobytes())
        for part in (site.y, site.ids, site.rows):
            if part is not None:
                h.update(np.asarray(part).astype(str if part is site.ids else part.dtype).tobytes())
        data = h.hexdigest()
    return Checkpoint(directory, job.digest, name, data)


def local_checks(site: Site, job: Job) -> None:
    """Checks on a site's own data that need the job (before anything is announced)."""
    p = job.tree_params
    if site.y is not None and p.objective == "reg:squarederror":
        from ..tree.secure import SCALE_RANGE
        if np.any(np.abs(np.asarray(site.y, np.float64)) >= 2.0 ** SCALE_RANGE[1]):
            raise DataError(f"party {site.name!r}: labels must satisfy |y| < 2**{SCALE_RANGE[1]} "
                            "for secure reg:squarederror")


# ----------------------------------------------------------------------------- participants
def run_party(job: Job, ep, site: Site | None, *, names: list, error: BaseException | None = None,
              keep_opened: bool = False, verbose: bool = False, seed: bytes | None = None,
              checkpoint=None, resume: bool = False) -> dict:
    """Run one data party of ``job`` over the endpoint ``ep``; returns its result.

    ``site``: this party's own table (``None`` only together with ``error``,
    the local problem that prevented reading it: it is announced so that
    every participant stops with the same message).  ``names``: every
    participant's name by id (the dealer last).  ``seed``: 16 bytes from
    which this party's private randomness is drawn (default: fresh, or the
    checkpoint's).  ``checkpoint``: a directory (:class:`~ppboost.training.
    checkpoint.Checkpoint`) where the state is written after every round;
    ``resume``: continue after the newest round every participant saved.

    Returns ``{"stats": ..., "model": SecretSharedModel | None}``; only the
    analyst's ``model`` is set (it holds every party's shares).
    """
    if job.mode == "federated":
        from .federated import run_federated_party
        return run_federated_party(job, ep, site, names=names, error=error, verbose=verbose,
                                   checkpoint=checkpoint, resume=resume, seed=seed)
    from ..errors import FormatError
    from ..mpc.party import Party

    t0 = time.perf_counter()
    ck = _checkpoint(checkpoint, job, names[ep.me], site)
    if error is None and site is not None:
        try:
            local_checks(site, job)
            if ck is not None:
                seed = ck.open(resume)
        except (DataError, FormatError) as exc:
            error = exc
    setup = StatsWindow(ep)
    facts = _agree.announce(ep, names, participant_facts(job, names, ep.me, "party", site, error,
                                                         ck, resume))
    info = _agree.check(facts, names, job, ep.dealer_id)
    if error is not None:                  # pragma: no cover - check() raised it already
        raise error
    t_agreed = time.perf_counter()
    rng = PRG(seed if seed is not None else os.urandom(16))
    site, info = align(ep, job, info, site, names, rng)
    setup_stats = setup.stats()
    setup_stats.update(agreement_seconds=t_agreed - t0,
                       alignment_seconds=time.perf_counter() - t_agreed)
    from ..tree.secure import precision_plan
    params = job.tree_params
    dp_plan = None
    if job.dp is not None and job.dp.private:         # same verdict at every party
        from ..tree.secure.dp import plan_run
        dp_plan = plan_run(job.dp, params, int(info["n_rows"]),
                           job.num_boost_round * params.n_groups, ep.n_parties)
    else:
        precision_plan(params, int(info["n_rows"]))   # same verdict at every party
    me = names[ep.me]
    view = site.view(info["parties"][me]["feature_indices"], info["parties"][me]["columns"])
    window = StatsWindow(ep)
    party = Party(ep, frac_bits=16, keep_opened=keep_opened, seed=rng.uint64(2).tobytes())
    progress = PartyProgress(job.num_boost_round * params.n_groups, verbose,
                             f"ppboost secure training ({me})")
    try:
        out = train_party(party, job, info, view, progress=progress, checkpoint=ck,
                          dp_plan=dp_plan)
    finally:
        progress.close()
    party.close()
    train_stats = window.stats()
    stats = dict(train_stats,
                 online_seconds=time.perf_counter() - out["t_start"] - party.dealer.expand_seconds,
                 setup_seconds=out["setup_seconds"],
                 dealer_expand_seconds=party.dealer.expand_seconds, per_tree=out["per_tree"],
                 setup_messages=setup_stats, resumed_from=info.get("resume_from"))
    if keep_opened:
        stats["opened"] = party.opened
    t_deliver = time.perf_counter()
    model = deliver(ep, job, names, info, out)
    stats["delivery_seconds"] = time.perf_counter() - t_deliver
    stats["delivery_bytes"] = ep.stats.total_sent - window.sent - train_stats["bytes_sent"]
    stats["wall_seconds"] = time.perf_counter() - t0
    stats["peak_rss_bytes"] = peak_rss()
    return {"stats": stats, "model": model}


def deliver(ep, job: Job, names: list, info: dict, out: dict):
    """Phase 4: shares of the trees and the intercept go to the analyst only.

    Opens nothing to anyone but the analyst, who receives every party's
    shares (with the public bin counts) and can sum them
    (:meth:`SecretSharedModel.reveal`).  Returns the
    :class:`~ppboost.training.model.SecretSharedModel` at an analyst that is
    a data party, ``None`` at the other parties.  Cost: one message per
    party to the analyst (its shares of every tree).
    """
    from .model import pack_shares

    analyst = names.index(job.analyst)
    if ep.me != analyst:
        ep.send(analyst, pack_shares(out["trees"], out["base"], out["layout"]))
        return None
    return collect_model(ep, job, names, info, mine=(out["trees"], out["base"]), dp=out.get("dp"))


def collect_model(ep, job: Job, names: list, info: dict, mine=None, dp=None):
    """The analyst's side of :func:`deliver`: every party's shares -> SecretSharedModel.

    ``mine``: the analyst's own ``(trees, base)`` if it is a data party; ``dp``: the
    booster's differential-privacy attributes (default: from the job's public facts,
    :func:`ppboost.tree.secure.dp.model_attributes`)."""
    from .model import SecretSharedModel, unpack_shares

    shares, bases, layout = [], [], None
    for p in range(ep.n_parties):
        if p == ep.me:
            trees, base = mine
        else:
            trees, base, got = unpack_shares(ep.recv(p), names[p])
            layout = layout if layout is not None else got
        shares.append(trees)
        bases.append(base)
    n_bins, categorical, has_missing = layout
    return SecretSharedModel(job.tree_params, names[:ep.n_parties], np.asarray(n_bins),
                             np.asarray(categorical, bool), list(info["feature_names"]), shares,
                             bases, analyst=job.analyst, dp=dp if dp is not None else _dp_attrs(
                                 job, info, ep.n_parties), has_missing=has_missing)


def _dp_attrs(job: Job, info: dict, n_parties: int):
    if job.dp is None or not job.dp.private:
        return None
    from ..tree.secure.dp import model_attributes
    p = job.tree_params
    return model_attributes(job.dp, p, info.get("n_rows"), job.num_boost_round * p.n_groups,
                            n_parties)


def run_analyst(job: Job, ep, *, names: list) -> dict:
    """Run an analyst that is not a data party: agree, then receive and open the model.

    It announces only the job digest and sees only what :func:`deliver`
    sends it (every party's shares of the trees).  Returns
    ``{"stats": ..., "model": SecretSharedModel}``.
    """
    t0 = time.perf_counter()
    facts = _agree.announce(ep, names, participant_facts(job, names, ep.me, "analyst", None, None))
    info = _agree.check(facts, names, job, ep.dealer_id)
    window = StatsWindow(ep)
    model = collect_model(ep, job, names, info)
    st = window.stats()
    return {"stats": dict(st, per_tree=[], wall_seconds=time.perf_counter() - t0),
            "model": model}


def run_dealer(job: Job, ep, *, names: list, checkpoint=None, resume: bool = False) -> dict:
    """Run the dealer of ``job`` over ``ep``: agree, then serve correlations until done.

    The dealer announces only the job digest; it sees no data and no model.
    With a ``checkpoint`` its streams come from the checkpoint's master seed,
    and at every round mark it saves where they stand (``resume``: it moves
    them back there at the parties' resume mark).  Returns its stats
    (``offline_seconds``, requests, bytes, transcript of the training phase).
    """
    if job.mode == "federated":
        from .federated import run_federated_dealer
        return run_federated_dealer(job, ep, names=names, checkpoint=checkpoint, resume=resume)
    from ..errors import FormatError
    from ..mpc.dealer import run_dealer as serve

    t0 = time.perf_counter()
    ck = _checkpoint(checkpoint, job, names[ep.me], None)
    error = seeds = own = on_mark = None
    if ck is not None:
        try:
            master = PRG(ck.open(resume))
            seeds = [master.uint64(2).tobytes() for _ in range(ep.n_parties)]
            own = master.uint64(2).tobytes()
        except FormatError as exc:
            error = exc

        def on_mark(tag, session):
            what, _, k = tag.partition("-")
            if what == "round":
                ck.save(int(k), {}, {"positions": session.positions()})
            elif what == "resume" and int(k) > 0:
                session.restore(ck.load(int(k))[1]["positions"])
    facts = _agree.announce(ep, names, participant_facts(job, names, ep.me, "dealer", None, error,
                                                         ck, resume))
    _agree.check(facts, names, job, ep.dealer_id)
    window = StatsWindow(ep)
    out = serve(ep, idle_timeout=max(float(job.timeout), 60.0), seeds=seeds, own_seed=own,
                on_mark=on_mark)
    w = window.stats()
    out.update(peak_rss_bytes=peak_rss())
    out.update(bytes_sent=w["bytes_sent"], messages=w["messages"], rounds=w["rounds"],
               transcript=w["transcript"], times=w["times"],
               wall_seconds=time.perf_counter() - t0)
    return out
