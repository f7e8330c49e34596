"""Federated mode: each party's histograms in the clear, summed by secure aggregation.

``ppboost.train(params, HorizontalSplit(...), rounds, mode="federated")`` and
``"mode": "federated"`` in a job file (``ppboost party``) run this instead
of the MPC training: :func:`ppboost.training.runner.run_party` dispatches
to :func:`run_federated_party`, :func:`~ppboost.training.runner.run_dealer`
to :func:`run_federated_dealer`.

Phases of a data party:

1. **agree**: the same announcement as the MPC mode
   (:mod:`ppboost.training.agree`); then :func:`check_federated` refuses
   anything but a horizontal split of 3 or more parties (2 or more with
   differential privacy), and :func:`federated_dp_plan` a DP configuration
   that cannot be used, with the same message at every participant.
2. **set-up** (one secure-aggregation session, :mod:`ppboost.mpc.secagg`):
   the federated sketch gives the cuts (:mod:`ppboost.tree.federated_binning`),
   then the pooled label statistics give the intercept.  Every party must
   take part: a drop here stops the job.  With DP neither: the cuts are the
   public ones of the job's bounds and the intercept the public base_score.
3. **train**: the grower on the :class:`~ppboost.tree.federated.FederatedBackend`
   (with DP :class:`~ppboost.tree.federated_dp.DPFederatedBackend`: every
   party's noise part on its sums before the secure sum, and one more sum
   per tree for the leaves): one session per boosting round, one secure sum
   per level.  The analyst is the aggregation server: it alone receives the
   sums, chooses the splits, and tells everyone the decisions and leaf values.
4. **deliver**: nothing to send; the analyst already holds the model.

The dealer takes part in the agreement only (it has nothing to do here) and
leaves.  What each participant learns is in :mod:`ppboost.tree.federated`
and in the README's threat model.

Two parties are refused without differential privacy: the sum of two
histograms minus your own is the other party's histogram, so secure
aggregation would hide nothing.  With ``dp=ppboost.DP(...)`` two parties are
accepted: what the analyst then gets is the other party's histogram plus
N(0, sigma^2) noise that the other party drew (:mod:`ppboost.tree.federated_dp`).
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import AgreementError, JobError, ProtocolError
from ..tree.params import TreeParams

__all__ = ["FederatedModel", "check_federated", "federated_dp_plan", "train_federated_party",
           "run_federated_party", "run_federated_dealer", "run_federated_outsider", "TWO_PARTIES"]

#: fault injection for the deployment tests: "round:level" makes this party's process
#: SIGKILL itself where ``leave_at`` would leave (see :func:`train_federated_party`);
#: "round:level:SIGSTOP" freezes it there instead (connections open, nothing sent)
FAULT_ENV = "PPBOOST_FAULT_DIE_AT"

TWO_PARTIES = ("mode='federated' with 2 parties is refused without differential privacy: the "
               "sum of the two histograms minus your own is the other party's histogram, so "
               "secure aggregation would hide nothing. With differential-privacy noise on the "
               "federated sums 2 parties are accepted: pass dp=ppboost.DP(epsilon, delta, "
               "bounds=...) (a job's \"dp\" object); or use mode='mpc' (the default) with 2 "
               "parties, or 3 or more parties")


def check_federated(kind: str, n_parties: int, error=JobError, dp=None,
                    analyst_is_party: bool = True) -> None:
    """Refuse what federated mode cannot do safely: raises ``error`` with the reason.

    2 parties only with differential privacy (``dp`` private), 3 or more otherwise."""
    if kind != "horizontal":
        raise error(f"mode='federated' needs a horizontal split (every party holds whole rows "
                    f"with every column and the labels), got a {kind} split; use mode='mpc'")
    private = dp is not None and getattr(dp, "private", True)
    if n_parties < (2 if private else 3):
        raise error(TWO_PARTIES if n_parties == 2 else
                    f"mode='federated' needs 3 or more parties (2 or more with differential "
                    f"privacy), got {n_parties}")
    if not analyst_is_party:
        raise error("mode='federated' needs the analyst to be a data party (it is the "
                    "aggregation server and contributes its own rows)")


def federated_dp_plan(job, info: dict, n_parties: int):
    """The run's :class:`~ppboost.tree.federated_dp.FederatedDPPlan` from the agreed public
    facts, or None without DP.  Raises :class:`~ppboost.dp.DPError` (the same at every
    participant, before anything is shared): a missing bound, a budget too small, ..."""
    if job.dp is None or not job.dp.private:
        return None
    from ..tree.federated_dp import plan_federated
    from ..tree.secure.dp import public_cuts
    params = job.tree_params
    public_cuts(job.dp, info["feature_names"], info["feature_types"], job.categorical,
                params.max_bin)
    return plan_federated(job.dp, params, int(info["n_rows"]), int(info["n_features"]),
                          job.num_boost_round * params.n_groups, int(n_parties))


@dataclass
class FederatedModel:
    """The trained model at the analyst (plaintext: every party saw its decisions).

    ``trees``: :class:`~ppboost.tree.backend.RevealedTree` per tree; ``base``:
    base_score as xgboost stores it; ``stats``: per party bytes, rounds,
    seconds per tree, the binning stages, ``dropouts``.
    """

    params: TreeParams
    trees: list
    base: np.ndarray
    n_bins: np.ndarray
    categorical: np.ndarray
    feature_names: list
    stats: dict = field(default_factory=dict)
    dropouts: list = field(default_factory=list)
    #: differential privacy: the booster attributes of
    #: :meth:`ppboost.tree.federated_dp.FederatedDPPlan.attributes`
    dp: dict | None = None

    @property
    def num_trees(self) -> int:
        return len(self.trees)

    def reveal(self):
        """The model as an ``xgboost.Booster`` (cover and gain 0, as in the MPC mode); a
        differentially private one carries ``attr("dp_epsilon")`` (the accountant's spend),
        ``"dp_delta"``, ``"dp_mechanism"`` and ``"dp_params"`` (JSON)."""
        from ..tree.export import to_booster
        booster = to_booster(self.trees, self.params, self.base, n_features=len(self.n_bins),
                             categorical=self.categorical)
        default = [f"f{j}" for j in range(len(self.n_bins))]
        if self.feature_names and list(self.feature_names) != default:
            booster.feature_names = list(self.feature_names)
            booster.feature_types = ["c" if c else "q" for c in self.categorical]
        if self.dp:
            booster.set_attr(**self.dp)
        return booster


class _Leave(Exception):
    """A simulated dropout (tests): this party leaves here."""


_KERNEL_LOCK = threading.Lock()


def _threads(ep):
    """(kernel threads, lock): every numba thread; when the parties are threads of this
    process (the in-process transport), their histogram kernels take turns (one lock),
    which on a shared machine beats running them all at once on fewer threads each."""
    import numba

    from ..transport.inprocess import InProcessEndpoint
    t = numba.config.NUMBA_NUM_THREADS
    return t, (_KERNEL_LOCK if isinstance(ep, InProcessEndpoint) else None)


def _intercept(fed, params: TreeParams, y: np.ndarray, n_total: int, everyone):
    """(margins per group, base_score as stored): the pooled label statistics by secure sum.

    Opens to the server: reg:squarederror sum_u ceil(sum |y|) (the scale) and the sum
    of labels; binary:logistic the sum of labels; multi:softprob the class counts.
    Opens to everyone: the intercept (it is in the model)."""
    from ..tree import losses
    from ..tree.federated import frac_bits_for, from_ring, to_ring
    if params.base_score is not None:
        base = losses.base_margin_from_stats(params)
        rep = np.array([params.base_score], np.float32) \
            if params.objective == "binary:logistic" else base
        return base, rep
    obj = params.objective
    y64 = np.asarray(y, np.float64)
    if obj == "multi:softprob":
        cnt = np.bincount(y64.astype(np.int64), minlength=params.num_class).astype(np.uint64)
        agg = fed.sum_everyone(cnt, "intercept", everyone)
        if fed.is_server:
            counts = agg.total.view(np.int64)
            base = losses.base_margin_from_stats(params, counts=counts, n=n_total)
            fed.announce({"base": base.astype(np.float64).tolist()}, "intercept")
        else:
            base = np.asarray(fed.hear()["base"], np.float32)
        return base.astype(np.float32), base.astype(np.float32)
    if obj == "reg:squarederror":
        l1 = float(np.abs(y64).sum())
        if not l1 < 2.0 ** 62 / max(1, len(everyone)):
            raise ProtocolError(f"labels too large for the 64-bit fixed point (sum |y| = {l1:.3g})")
        agg = fed.sum_everyone(np.array([math.ceil(l1)], np.uint64), "label bound", everyone)
        if fed.is_server:
            f = frac_bits_for(float(agg.total.view(np.int64)[0]))
            fed.announce({"f": f}, "label scale")
        else:
            f = int(fed.hear()["f"])
    else:
        f = frac_bits_for(n_total)
    agg = fed.sum_everyone(to_ring(np.array([y64.sum()]), f), "intercept", everyone)
    if fed.is_server:
        mean = float(from_ring(agg.total, f)[0]) / n_total
        base = losses.base_margin_from_stats(params, mean=mean)
        rep = np.array([np.float32(mean)], np.float32) if obj == "binary:logistic" else base
        fed.announce({"base": base.astype(np.float64).tolist(),
                      "repr": rep.astype(np.float64).tolist()}, "intercept")
    else:
        msg = fed.hear()
        base, rep = np.asarray(msg["base"], np.float32), np.asarray(msg["repr"], np.float32)
    return base.astype(np.float32), rep.astype(np.float32)


def train_federated_party(ep, job, info: dict, view, names: list, *, progress,
                          threads=None, leave_at=None, audit: bool = False, dp_plan=None,
                          noise_rng=None) -> dict:
    """Phases 2-3 for this party; returns the trees (at the analyst) and the stats.

    ``dp_plan``: the run's :class:`~ppboost.tree.federated_dp.FederatedDPPlan`
    (differential privacy; public cuts and base_score, noisy sums) or None;
    ``noise_rng``: then this party's own stream for its noise parts (default: a
    fresh :class:`~ppboost.crypto.prg.PRG`).

    ``leave_at`` (tests only): ``(round, level)``, this party leaves before sending its
    sum of that level of the round's first tree (level -1: before the round starts),
    as if its process died there; ``"binning"``: before the federated sketch.  The
    environment variable ``PPBOOST_FAULT_DIE_AT="round:level"`` (deployment tests) makes
    the process kill itself (SIGKILL) at that point instead, ``"round:level:SIGSTOP"``
    freeze itself there."""
    from ..tree.federated import FederatedBackend, Federation
    from ..tree.federated_binning import SLOTS, bin_codes, federated_cuts
    from ..tree.grower import boost
    from ..tree.plain import check_onehot

    params = job.tree_params
    if dp_plan is not None and params.base_score is None:
        import dataclasses  # the label mean would be released unnoised
        params = dataclasses.replace(params, base_score=0.5)
    parties = list(range(ep.n_parties))
    server = names.index(job.analyst)
    n_total = int(info["n_rows"])
    categorical = np.array([t == "c" for t in info["feature_types"]], dtype=bool)
    threads, lock = _threads(ep) if threads is None else (threads, None)
    t_start = time.perf_counter()
    fed = Federation(ep, parties, server, audit=audit, on_dropout=job.on_dropout)
    members = fed.session(SLOTS + 2, "set-up")
    if members != parties:
        gone = ", ".join(names[p] for p in parties if p not in members)
        raise ProtocolError(f"{gone} dropped out before the federated set-up finished: the job "
                            "stops (nothing was trained); restart it without them")
    X = np.asarray(view.X, np.float32)
    if leave_at == "binning":
        ep.close()
        return {"left": "binning", "fed": fed, "trees": [], "per_tree": [], "t_start": t_start,
                "setup_seconds": 0.0, "setup_bytes_sent": ep.stats.total_sent, "binning": {},
                "dropouts": [], "secagg_drops": []}
    if dp_plan is None:
        mapper, bin_stats = federated_cuts(fed, X, categorical, params.max_bin, threads)
    else:                                       # public cuts from the job's bounds: no sketch
        from ..tree.binning import BinMapper
        from ..tree.secure.dp import public_cuts
        pub = public_cuts(job.dp, info["feature_names"], info["feature_types"], job.categorical,
                          params.max_bin)
        mapper, bin_stats = BinMapper(tuple(pub[j] for j in range(X.shape[1]))), {"public": True}
    check_onehot(mapper, params)
    codes = bin_codes(X, mapper, threads)
    base, base_repr = _intercept(fed, params, np.asarray(view.y), n_total, parties)
    if dp_plan is None:
        backend = FederatedBackend(fed, codes, np.asarray(view.y), params, mapper, n_total, base,
                                   threads=threads, kernel_lock=lock)
    else:
        from ..crypto.prg import PRG
        from ..tree.federated_dp import DPFederatedBackend
        backend = DPFederatedBackend(fed, codes, np.asarray(view.y), params, mapper, n_total,
                                     base, dp_plan, PRG() if noise_rng is None else noise_rng,
                                     threads=threads, kernel_lock=lock)
    setup_seconds = time.perf_counter() - t_start
    setup_bytes = ep.stats.total_sent

    die = os.environ.get(FAULT_ENV)
    if leave_at is None and die:
        r_die, l_die, *how = die.split(":")
        leave_at, kill = (int(r_die), int(l_die)), getattr(signal, how[0] if how else "SIGKILL")
    else:
        kill = None
    if leave_at is not None:
        r0, l0 = leave_at
        hist, before = backend.histograms, backend.before_round

        def leave():
            if kill:                           # a real death (or a freeze): no goodbye
                os.kill(os.getpid(), kill)
            raise _Leave

        def leave_hist(nodes, gh):
            if backend.round == r0 and backend.tree_in_round == 0 and nodes.level == l0:
                leave()
            return hist(nodes, gh)

        def leave_round(rnd):
            if rnd == r0 and l0 < 0:
                leave()
            before(rnd)
        backend.histograms, backend.before_round = leave_hist, leave_round

    per_tree, trees = [], []
    mark = {"t": time.perf_counter(), "b": ep.stats.total_sent, "r": ep.stats.rounds,
            "c": time.thread_time(), "p": time.process_time()}

    def on_level(level):
        progress.level(f"level {level + 1}/{params.max_depth}, "
                       f"{time.perf_counter() - mark['t']:.1f}s")

    def on_tree(rnd, group, tree):
        if fed.is_server:
            trees.append(backend.reveal_tree(tree.splits, tree.leaves, tree.group))
        now = time.perf_counter()
        cpu, pcpu = time.thread_time(), time.process_time()
        # cpu_seconds: this party's thread (not numba's worker threads); process_cpu_seconds:
        # every thread of this process (in process: every party's)
        rec = {"round": rnd, "group": group, "seconds": now - mark["t"],
               "cpu_seconds": cpu - mark["c"], "process_cpu_seconds": pcpu - mark["p"],
               "bytes_sent": ep.stats.total_sent - mark["b"], "rounds": ep.stats.rounds - mark["r"]}
        per_tree.append(rec)
        mark.update(t=now, b=ep.stats.total_sent, r=ep.stats.rounds, c=cpu, p=pcpu)
        progress.tree(f"{rec['seconds']:.2f}s, {rec['bytes_sent'] / 1e6:.2f} MB sent/tree")

    left = None
    try:
        boost(backend, job.num_boost_round, on_tree=on_tree, on_level=on_level)
    except _Leave:
        ep.close()
        left = {"round": backend.round, "level": leave_at[1]}
    return {"trees": trees, "base": base_repr, "n_bins": mapper.n_bins, "categorical": categorical,
            "setup_seconds": setup_seconds, "setup_bytes_sent": setup_bytes, "per_tree": per_tree,
            "binning": bin_stats, "t_start": t_start, "dropouts": list(fed.events),
            "secagg_drops": list(fed.sa.drops), "left": left, "fed": fed, "params": params,
            "dp": None if dp_plan is None else dp_plan.attributes()}


def run_federated_party(job, ep, site, *, names: list, error=None, verbose: bool = False,
                        checkpoint=None, resume: bool = False, keep_opened: bool = False,
                        seed=None, leave_at=None, threads=None) -> dict:
    """:func:`~ppboost.training.runner.run_party` for ``job.mode == "federated"``.

    Returns ``{"stats": ..., "model": FederatedModel | None}``; only the analyst's
    ``model`` is set.  ``leave_at``: see :func:`train_federated_party` (tests)."""
    from ..crypto.prg import PRG
    from . import agree as _agree
    from .runner import PartyProgress, StatsWindow, align, participant_facts

    t0 = time.perf_counter()
    if error is None and checkpoint is not None:
        error = JobError("checkpoints (--checkpoint) are not built for mode 'federated'")
    setup = StatsWindow(ep)
    facts = _agree.announce(ep, names, participant_facts(job, names, ep.me, "party", site, error))
    info = _agree.check(facts, names, job, ep.dealer_id)
    check_federated(info["kind"], ep.n_parties, AgreementError, job.dp,
                    job.analyst in names[:ep.n_parties])
    if error is not None:                  # pragma: no cover - check() raised it already
        raise error
    dp_plan = federated_dp_plan(job, info, ep.n_parties)     # same verdict at every participant
    rng = PRG(seed if seed is not None else os.urandom(16))
    site, info = align(ep, job, info, site, names, rng)
    setup_stats = setup.stats()
    me = names[ep.me]
    view = site.view(info["parties"][me]["feature_indices"], info["parties"][me]["columns"])
    window = StatsWindow(ep)
    params = job.tree_params
    progress = PartyProgress(job.num_boost_round * params.n_groups, verbose,
                             f"ppboost federated training ({me})")
    try:
        out = train_federated_party(ep, job, info, view, names, progress=progress,
                                    leave_at=leave_at, threads=threads, dp_plan=dp_plan,
                                    noise_rng=PRG(rng.uint64(2).tobytes()))
    finally:
        progress.close()
    train_stats = window.stats()
    stats = dict(train_stats, mode="federated",
                 online_seconds=time.perf_counter() - out["t_start"],
                 setup_seconds=out["setup_seconds"], per_tree=out["per_tree"],
                 setup_messages=setup_stats, binning=out["binning"],
                 setup_bytes_sent=out["setup_bytes_sent"] - window.sent,
                 dropouts=out["dropouts"], secagg_drops=out["secagg_drops"], left=out["left"],
                 delivery_bytes=0, wall_seconds=time.perf_counter() - t0)
    model = None
    if out["fed"].is_server and out["left"] is None:
        model = FederatedModel(out["params"], out["trees"], out["base"], out["n_bins"],
                               out["categorical"], list(info["feature_names"]),
                               dropouts=out["dropouts"], dp=out["dp"])
    return {"stats": stats, "model": model}


def run_federated_outsider(job, ep, *, names: list, role: str, checkpoint=None) -> dict:
    """The dealer (or an analyst outside the data parties) in federated mode: it takes part
    in the agreement only (where an outside analyst is refused), then leaves."""
    from . import agree as _agree
    from .runner import StatsWindow, participant_facts

    t0 = time.perf_counter()
    error = JobError("checkpoints (--checkpoint) are not built for mode 'federated'") \
        if checkpoint is not None else None
    facts = _agree.announce(ep, names, participant_facts(job, names, ep.me, role, None, error))
    info = _agree.check(facts, names, job, ep.dealer_id)
    check_federated(info["kind"], ep.n_parties, AgreementError, job.dp,
                    job.analyst in names[:ep.n_parties])
    federated_dp_plan(job, info, ep.n_parties)       # the parties' verdict, here too
    w = StatsWindow(ep).stats()
    return {"mode": "federated", "offline_seconds": 0.0, "requests": 0, "bytes_sent": 0,
            "messages": 0, "rounds": 0, "transcript": w["transcript"], "per_tree": [],
            "wall_seconds": time.perf_counter() - t0}


def run_federated_dealer(job, ep, *, names: list, checkpoint=None, resume: bool = False) -> dict:
    """The dealer in federated mode: it takes part in the agreement only, then leaves."""
    del resume
    return run_federated_outsider(job, ep, names=names, role="dealer", checkpoint=checkpoint)
