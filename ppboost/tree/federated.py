"""The federated backend: local histograms in the clear, summed by secure aggregation.

Federated mode (``ppboost.train(..., mode="federated")``) for a horizontal
split: every data party keeps its rows, computes gradient and hessian
histograms of its own rows with the numba kernels of
:mod:`ppboost.tree.federated_kernels`, and the histograms
are summed by secure aggregation (:mod:`ppboost.mpc.secagg`, Bonawitz et al.
CCS 2017).  One party, the *server* (the job's analyst), receives only the
sums; it searches the splits on them with the plain backend's split rule
(:class:`~ppboost.tree.plain.PlainBackend`, :mod:`ppboost.tree.split_rule`)
and tells every party the split decisions and the leaf values, in the clear.
The grower (:mod:`ppboost.tree.grower`) is the same as in the other modes.

What is opened, and to whom:

* to the server: the aggregated histograms (per node of every level, per
  feature and bin: the sums of g and h over every party's rows; per node
  and feature, the number of rows with the feature missing; per node the
  sums of g and h); for reg:squarederror, per boosting round,
  A = sum_u ceil(sum_{i in u} |g_i|) (it fixes the fixed-point scale); the
  pooled label statistics (sum of labels, or class counts) for the
  intercept; the federated sketch (:mod:`ppboost.tree.federated_binning`);
* to every party: the cuts, each node's split (feature, bin, default
  direction) or "no split", each node's weight and the leaf values, i.e.
  the model, plus the fixed-point scale of each round and which parties
  dropped out when;
* no party, the server included, sees another party's histogram: what
  reaches the server are masked vectors, uniform over Z_2^64.

Fixed point.  A histogram entry is encoded as round(v 2^f) in Z_2^64 with
f = 62 - bitlen(bound), bound >= every |sum| (n for hessians, and for the
gradients of binary:logistic and multi:softprob, whose |g| <= 1; A for
reg:squarederror), so the integer sums are exact and each party adds at
most 2^-(f+1) of rounding per entry.  Right children come from the parent
minus the left child in integers (xgboost's subtraction trick): every split
node aggregates only its child with the smaller hessian sum.

Dropouts.  A party that leaves (its process dies, its connection breaks, or
it stays silent past the timeout) is dropped by secure aggregation and
logged.  So that no later sum can be set against an earlier one to isolate
the missing party's histogram, no sum of a boosting round's gradients is
taken over fewer parties than the round's first one: if a party is missing
at a later sum of the round, the tree stops growing at the last level
summed over everyone (the nodes of that level become leaves, with the
weights the level above's sums give; a tree that loses a party at its root
is one leaf of value 0), and the round's remaining trees (other classes,
whose gradients sum to minus this class's) are single leaves of value 0.
A party missing from the round's first sum on leaves the whole round to
the others.  From the next round on the remaining parties train on their
rows.  That still opens something: a later sum over the others, set
against an earlier one that included the dropped party, isolates what did
not change in between (:mod:`ppboost.tree.federated_dropout`; a warning
at the analyst and the event's ``"disclosed"``).  A job with
``on_dropout="stop"`` stops at a dropout instead (:class:`Federation`).
At most floor((n-1)/3) parties may drop out over a run; the server cannot.
A drop during the set-up (binning, intercept) stops the job: nothing has
been trained yet and its sketch counts would be open next to everyone's.
"""
from __future__ import annotations

import json
import logging
import math

import numpy as np

from ..errors import ProtocolError
from . import losses, split_rule
from .backend import KIND_BACKWARD, KIND_FORWARD
from .binning import BinMapper
from .federated_dropout import dropout_disclosure
from .federated_kernels import local_histograms, route_rows
from .params import TreeParams
from .plain import PlainBackend

__all__ = ["Federation", "FederatedBackend", "local_histograms", "frac_bits_for"]

log = logging.getLogger("ppboost.federated")


def frac_bits_for(bound: float) -> int:
    """f with |v| 2^f < 2^62 for every |v| <= ``bound`` (one bit spare in the signed ring)."""
    b = int(math.ceil(max(float(bound), 0.0)))
    return max(0, 62 - b.bit_length())


def to_ring(x, f: int) -> np.ndarray:
    """Floats -> signed fixed point with ``f`` fractional bits in Z_2^64 (unchecked:
    :func:`frac_bits_for` chose ``f`` so that every value fits)."""
    return np.rint(np.asarray(x, np.float64) * (2.0 ** f)).astype(np.int64).view(np.uint64)


def from_ring(z, f: int) -> np.ndarray:
    """Ring elements (sums of :func:`to_ring` values) -> floats, read as signed."""
    return np.asarray(z, np.uint64).view(np.int64).astype(np.float64) / (2.0 ** f)


# ----------------------------------------------------------------------------- federation
class Federation:
    """One data party's link to the others: secure sums to the server, its decisions back.

    ``ep``: the endpoint; ``parties``: the data parties' ids; ``server``: the id
    that receives the sums (the analyst).  Failures of single peers are isolated
    (``ep.isolate_failures``), so a party that leaves stops only the receives that
    wait for it.  ``on_dropout``: ``"continue"`` (training goes on with the others,
    up to floor((n-1)/3) dropouts; see :func:`dropout_disclosure` for what that
    opens) or ``"stop"``: the first dropout stops every participant with a
    :class:`~ppboost.errors.ProtocolError` naming the party, raised at the server
    before any sum without it is unmasked.
    """

    def __init__(self, ep, parties, server: int, *, audit: bool = False,
                 on_dropout: str = "continue"):
        from ..mpc.secagg import SecAgg
        if on_dropout not in ("continue", "stop"):
            raise ValueError(f"on_dropout == {on_dropout!r}, must be 'continue' or 'stop'")
        ep.isolate_failures = True
        self.ep = ep
        self.server = int(server)
        self.sa = SecAgg(ep, parties, server, audit=audit,
                         tolerate=0 if on_dropout == "stop" else None)
        self.context: dict = {}
        self.events: list = []             # dropouts as the training saw them (see the backend)

    @property
    def is_server(self) -> bool:
        return self.sa.is_server

    @property
    def alive(self) -> list:
        return list(self.sa.alive)

    def session(self, slots: int, where: str) -> list:
        """A secure-aggregation session of ``slots`` sums (3 rounds); returns its members."""
        return self.sa.open_session(slots, where)

    def sum(self, x, where: str):
        """The secure sum of every remaining party's ``x`` (at the server; None elsewhere)."""
        return self.sa.aggregate(np.ascontiguousarray(x, np.uint64).reshape(-1), where)

    def sum_everyone(self, x, where: str, everyone):
        """:meth:`sum` during the set-up (binning, intercept): the server raises
        ProtocolError if a party of ``everyone`` dropped out (nothing is trained yet)."""
        agg = self.sum(x, where)
        if self.is_server and list(agg.included) != list(everyone):
            gone = [self.ep.name(p) for p in everyone if p not in agg.included]
            raise ProtocolError(f"{', '.join(gone)} dropped out during the federated binning "
                                "(before any tree): the job stops; restart it without them")
        return agg

    def announce(self, msg: dict, where: str) -> None:
        """Server: send ``msg`` (public decisions) to every remaining party.  Opens: ``msg``."""
        data = json.dumps(msg).encode()
        for p in self.sa.alive:
            if p != self.sa.me:
                self.sa.tell(p, data, where)

    def hear(self) -> dict:
        """Client: the server's next announcement."""
        return json.loads(bytes(self.sa.from_server()).decode())

    def drop_names(self, ids) -> list:
        return [self.ep.name(p) for p in ids]


# ----------------------------------------------------------------------------- backend
class _Nodes:
    """A level's nodes at this party: each local row's node, which nodes to aggregate,
    and (server) the previous level's integer histograms and child sums."""

    def __init__(self, level, pos, build, parent=None, truncated=None, leaf=None):
        self.level = level
        self.pos = pos                  # int64 (n_local,): node index on this level
        self.build = build              # node ids whose histograms are aggregated
        self.parent = parent            # server: previous splits dict (I, child sums, choice)
        self.truncated = truncated      # None, or the nodes' final weights (tree stopped)
        self.leaf = leaf                # last level: leaf weights (2^d) from the server


class FederatedBackend(PlainBackend):
    """:class:`~ppboost.tree.backend.TreeBackend` of one party in federated mode.

    ``fed``: its :class:`Federation`; ``codes``: its rows' bin codes (n_local x m,
    uint8 or uint16, missing = n_bins[j]); ``y``: its labels; ``mapper``: the
    federated cuts (the same at every party); ``n_total``: the pooled row count
    (public); ``base``: (margins per group, base_score as stored) from
    :func:`ppboost.training.federated` set-up; ``threads``: numba threads of the
    histogram kernel; ``kernel_lock``: a lock every party of this process shares, so
    that their kernels take turns with every core (a simulation on one machine).

    The grower's opaque objects: ``Nodes`` (:class:`_Nodes`), ``Hist`` (server: the
    aggregated histograms as the plain backend's dict plus the integer sums; clients:
    a marker), ``Splits`` (every party: the decisions; server: also the sums the
    children need).  Split search, weights and the exported tree are the plain
    backend's, on the aggregated sums.
    """

    #: the sums carry differential-privacy noise (what a dropout opens: :func:`dropout_disclosure`)
    noisy_sums = False

    def __init__(self, fed: Federation, codes, y, params: TreeParams, mapper: BinMapper,
                 n_total: int, base: np.ndarray, threads: int | None = None,
                 kernel_lock=None):
        from .backend import TreeLayout
        codes = np.ascontiguousarray(codes)
        if codes.dtype not in (np.uint8, np.uint16) or codes.ndim != 2 \
                or codes.shape[1] != mapper.n_features:
            raise ValueError(f"codes must be uint8/uint16 (n, {mapper.n_features}), got "
                             f"{codes.dtype} {codes.shape}")
        self.fed = fed
        self.params = params
        self.mapper = mapper
        self.layout = TreeLayout(mapper.n_bins, mapper.categorical)
        self.y = losses.check_labels(y, params)
        self.n_rows = int(codes.shape[0])
        self.n_total = int(n_total)
        self.codes = codes
        self.has_missing = np.asarray(codes.max(axis=0) >= mapper.n_bins if codes.shape[0]
                                      else np.zeros(mapper.n_features, bool), np.bool_)
        lay = self.layout
        self._numeric = (lay.cand_kind == KIND_FORWARD) | (lay.cand_kind == KIND_BACKWARD)
        self.base = np.asarray(base, np.float32)
        self.threads = threads
        self.kernel_lock = kernel_lock         # parties in one process: one kernel at a time
        self.trace = None
        self.offs = self.layout.bin_offsets
        self.B = int(self.offs[-1])
        self.m = self.layout.n_features
        self.W = 2 * self.B + self.m + 2           # per node: G | H | missing counts | G, H
        self.round = -1
        self.broken = False                        # a party dropped during this round
        self.round_set = None                      # who contributed to this round's sums
        self.round_members = []                    # the round's session (U2)
        self.tree_in_round = -1
        fb = frac_bits_for(self.n_total)
        self.f_h = fb
        self.f_g = fb

    # ------------------------------------------------------------------ rounds
    def before_round(self, round: int) -> None:
        """Opens the round's secure-aggregation session (3 rounds; public keys and Shamir
        shares only).  A party missing from it is left out of this round."""
        self.round = round
        self.broken = False
        self.round_set = None
        self.tree_in_round = -1
        slots = self._round_slots()
        fed = self.fed
        fed.sa.context = {"round": round}
        before = set(fed.alive)
        members = fed.session(slots, f"round {round}")
        self.round_members = list(members)
        if fed.is_server:
            for q in sorted(before - set(members)):
                self._event(q, "before the round's trees", None, first=True)

    def _round_slots(self) -> int:
        """Secure sums of one boosting round: one per level of every tree (+ the scale)."""
        p = self.params
        return p.n_groups * p.max_depth + (1 if p.objective == "reg:squarederror" else 0)

    def _level_vector(self, hist, miss, tot) -> np.ndarray:
        """This party's (S, W) uint64 vector of a level: G | H per bin, missing counts, node
        G, H (the differentially private backend adds its noise parts here)."""
        return np.concatenate([to_ring(hist[:, :, 0], self.f_g), to_ring(hist[:, :, 1], self.f_h),
                               miss, to_ring(tot[:, :1], self.f_g), to_ring(tot[:, 1:], self.f_h)],
                              axis=1)

    def _event(self, q, phase, level, group=None, first=False):
        """Server: log a dropout as training sees it, with what it opens (a warning).
        ``first``: q is missing from the round's first histogram sum."""
        name = self.fed.ep.name(q)
        note = dropout_disclosure(name, self.params, noisy=self.noisy_sums,
                                  unsummed=first and self.round == 0)
        self.fed.events.append({"party": name, "id": int(q), "round": self.round,
                                "group": group, "level": level, "phase": phase,
                                "disclosed": note})
        log.warning("federated training: round %d, %s: %s", self.round, phase, note)

    def init_margins(self):
        return np.tile(self.base[None, :], (self.n_rows, 1)).astype(np.float32)

    def gradients(self, margins):
        g, h = losses.gradients(margins, self.y, self.params)
        if self.params.objective == "reg:squarederror":
            # the round's scale: A = sum_u ceil(sum |g|) >= every |G| (opened to the server)
            l1 = float(np.abs(g[:, 0].astype(np.float64)).sum())
            if not l1 < 2.0 ** 62 / max(1, len(self.fed.sa.parties)):
                raise ProtocolError("gradients too large for the 64-bit fixed point "
                                    f"(sum |g| = {l1:.3g}); scale the labels down")
            agg = self._sum(np.array([math.ceil(l1)], np.uint64), "gradient bound", None)
            if self.fed.is_server:
                self.f_g = frac_bits_for(float(agg.total.view(np.int64)[0]))
                self.fed.announce({"f_g": self.f_g}, f"round {self.round}: scale")
            else:
                self.f_g = int(self.fed.hear()["f_g"])
        return [(g[:, k].copy(), h[:, k].copy()) for k in range(g.shape[1])]

    def _sum(self, vec, what, level, group=None):
        """A secure sum; at the server, a histogram sum whose contributors differ from the
        round's first histogram sum is marked (``.changed``) and the change logged."""
        fed = self.fed
        fed.sa.context = {"round": self.round, "group": group, "level": level}
        agg = fed.sum(vec, f"round {self.round}, {what}")
        agg.changed = False
        if fed.is_server and level is not None:
            inc = tuple(agg.included)
            if self.round_set is None:           # missing: dropped here or at the scale
                self.round_set = inc
                for q in sorted(set(self.round_members) - set(inc)):
                    self._event(q, what, level, group, first=True)
            elif inc != self.round_set:
                agg.changed = True
                for q in sorted(set(self.round_set) - set(inc)):
                    self._event(q, what, level, group)
        return agg

    # ------------------------------------------------------------------ levels
    def root_nodes(self):
        self.tree_in_round += 1
        pos = np.zeros(self.n_rows, np.int64)
        if self.broken:                       # a party left earlier in this round
            return _Nodes(0, pos, [], truncated=np.zeros(1))
        return _Nodes(0, pos, [0])

    def histograms(self, nodes, gh):
        if nodes.truncated is not None:
            return {"truncated": nodes.truncated, "level": nodes.level}
        g, h = gh
        build = np.asarray(nodes.build, np.int64)
        S = build.shape[0]
        L = 1 << nodes.level
        group = self.tree_in_round
        if S:
            slot_of = np.full(L, -1, np.int64)
            slot_of[build] = np.arange(S)
            sl = slot_of[nodes.pos]
            rows = np.flatnonzero(sl >= 0)
            if self.kernel_lock is not None:
                with self.kernel_lock:
                    hist, miss, tot = local_histograms(self.codes, rows, sl[rows], g, h,
                                                       self.offs, self.layout.n_bins, S,
                                                       self.threads, self.has_missing)
            else:
                hist, miss, tot = local_histograms(self.codes, rows, sl[rows], g, h, self.offs,
                                                   self.layout.n_bins, S, self.threads,
                                                   self.has_missing)
            vec = self._level_vector(hist, miss, tot)
            agg = self._sum(vec, f"tree {group}, level {nodes.level}", nodes.level, group)
        else:                                  # every node of the level above stopped
            agg = None
        if not self.fed.is_server:
            return {"level": nodes.level}
        if agg is not None and agg.changed:
            return {"truncate_now": True, "level": nodes.level, "parent": nodes.parent,
                    "dropped": sorted(set(self.round_set) - set(agg.included))}
        I = np.zeros((L, self.W), np.uint64)
        if agg is not None:
            I[build] = agg.total.reshape(S, self.W)
        par = nodes.parent
        if par is not None:
            for i in range(L // 2):
                b = int(par["build"][i])
                if b < 0:                      # "do not split": left = the parent, right = 0
                    I[2 * i] = par["I"][i]
                else:
                    I[2 * i + 1 - b] = par["I"][i] - I[2 * i + b]
        B, m = self.B, self.m
        count = np.zeros((L, B), np.float64)
        miss_cols = self.offs[1:] - 1          # each feature's missing bin
        count[:, miss_cols] = I[:, 2 * B:2 * B + m].view(np.int64)
        active = np.ones(L, bool)
        if par is not None:                     # children of a node that did not split
            active = np.repeat(np.asarray(par["build"]) >= 0, 2)
        return {"G": from_ring(I[:, :B], self.f_g), "H": from_ring(I[:, B:2 * B], self.f_h),
                "count": count, "G_node": from_ring(I[:, 2 * B + m], self.f_g),
                "H_node": from_ring(I[:, 2 * B + m + 1], self.f_h), "I": I, "level": nodes.level,
                "active": active}

    def _best_active(self, hist, active):
        """:meth:`PlainBackend._best` on the nodes that may split: a node whose parent did
        not split has its parent's histogram (left) or none (right), so it does not split
        either (the same decision on the same sums)."""
        L = hist["G_node"].shape[0]
        if active is None or active.all():
            return self._best(hist)
        C = self.layout.n_candidates
        choice, GL, HL = np.full(L, C), np.zeros(L), np.zeros(L)
        idx = np.flatnonzero(active)
        if idx.shape[0]:
            sub = {k: hist[k][idx] for k in ("G", "H", "count", "G_node", "H_node")}
            choice[idx], GL[idx], HL[idx] = self._best(sub)
        return choice, GL, HL

    def _children_sums(self, hist, choice, GL, HL):
        C = self.layout.n_candidates
        G, H = hist["G_node"], hist["H_node"]
        split = choice != C
        cg = np.zeros(2 * G.shape[0])
        ch = np.zeros(2 * G.shape[0])
        cg[0::2] = np.where(split, GL, G)
        ch[0::2] = np.where(split, HL, H)
        cg[1::2] = np.where(split, G - GL, 0.0)
        ch[1::2] = np.where(split, H - HL, 0.0)
        return cg, ch

    def _weights(self, G, H):
        return split_rule.weight(G, H, self.params.reg_lambda, self.params.min_child_weight)

    def choose_splits(self, hist):
        C = self.layout.n_candidates
        level = hist["level"]
        last = level == self.params.max_depth - 1
        fed = self.fed
        where = f"round {self.round}: level {level} decisions"
        if "truncated" in hist:                # the tree stopped above: dummy splits
            w = np.asarray(hist["truncated"], np.float64)
            return {"choice": np.full(w.shape[0], C), "weight": w, "build": np.full(w.shape[0], -1),
                    "truncated": w}
        if fed.is_server:
            if hist.get("truncate_now"):
                par = hist["parent"]
                w = np.zeros(1) if par is None else self._weights(par["cg"], par["ch"])
                self.broken = True
                fed.announce({"truncated": w.tolist(), "dropped": hist["dropped"]}, where)
                return {"choice": np.full(w.shape[0], C), "weight": w,
                        "build": np.full(w.shape[0], -1), "truncated": w}
            choice, GL, HL = self._best_active(hist, hist.get("active"))
            weight = self._weights(hist["G_node"], hist["H_node"])
            cg, ch = self._children_sums(hist, choice, GL, HL)
            build = np.where(choice != C, (ch[1::2] < ch[0::2]).astype(np.int64), -1)
            msg = {"choice": choice.tolist(), "weight": weight.tolist(), "build": build.tolist()}
            leaf = None
            if last:
                leaf = self._weights(cg, ch)
                msg["leaf"] = leaf.tolist()
            fed.announce(msg, where)
            return {"choice": choice, "weight": weight, "build": build, "I": hist["I"],
                    "cg": cg, "ch": ch, "leaf": leaf}
        msg = fed.hear()
        if "truncated" in msg:
            self.broken = True
            w = np.asarray(msg["truncated"], np.float64)
            return {"choice": np.full(w.shape[0], C), "weight": w, "build": np.full(w.shape[0], -1),
                    "truncated": w}
        return {"choice": np.asarray(msg["choice"], np.int64),
                "weight": np.asarray(msg["weight"], np.float64),
                "build": np.asarray(msg["build"], np.int64),
                "leaf": None if "leaf" not in msg else np.asarray(msg["leaf"], np.float64)}

    def _choice(self, splits):
        return np.asarray(splits["choice"], np.int64)

    def route(self, nodes, splits):
        lay = self.layout
        C = lay.n_candidates
        if "truncated" in splits:
            w = np.asarray(splits["truncated"], np.float64)
            wc = np.zeros(2 * w.shape[0])
            wc[0::2] = w
            return _Nodes(nodes.level + 1, 2 * nodes.pos, [], truncated=wc, leaf=wc)
        choice = self._choice(splits)
        pos = route_rows(self.codes, nodes.pos, choice, lay.cand_feature, lay.cand_bin,
                         self._numeric, lay.cand_default_left, lay.n_bins, np.int64(C))
        build = splits["build"]
        nxt = [2 * i + int(b) for i, b in enumerate(build) if b >= 0]
        parent = splits if self.fed.is_server else None
        return _Nodes(nodes.level + 1, pos, nxt, parent=parent, leaf=splits.get("leaf"))

    def leaf_values(self, nodes, gh):
        w = np.asarray(nodes.leaf if nodes.truncated is None else nodes.truncated, np.float64)
        value = (w.astype(np.float32) * np.float32(self.params.eta)).astype(np.float32)
        return {"weight": w, "value": value}

    def update_margins(self, margins, nodes, leaves, group):
        out = margins.copy()
        out[:, group] = (out[:, group] + leaves["value"][nodes.pos]).astype(np.float32)
        return out
