"""Agreement before anything is shared: every participant announces its public facts.

Each participant (every data party and the dealer) sends every other one a
small JSON message, and receives theirs, before any share, mask or seed
moves:

- its name, and whether it is a data party or the dealer;
- the job file's digest (:attr:`~ppboost.training.job.Job.digest`);
- a data party's column names and types, row count, and whether it holds
  labels (:meth:`~ppboost.training.site.Site.facts`);
- or the local error that stopped it (a missing file, a bad value), so the
  others stop with the same message instead of waiting for it.

:func:`check` is a pure function of the announced facts, so every
participant reaches the same verdict: either the public layout of the
training (the same dict as :meth:`ppboost.data.Split.public_info`) or an
:class:`~ppboost.errors.AgreementError` with the same text everywhere,
naming the party and the field.  Nothing in these messages depends on data
values: names, types and counts only.
"""
from __future__ import annotations

import json
from collections import Counter

from ..errors import AgreementError
from ..transport.base import PeerFailed

__all__ = ["announce", "check"]


def announce(ep, names: list, mine: dict) -> list:
    """Send ``mine`` to every other participant; return everybody's facts, by id.

    Opens: ``mine`` to everyone (public facts only).  Cost: one message to
    and from every other participant, one round.  A peer that already
    stopped with the agreement's verdict makes this participant raise the
    same :class:`AgreementError` (see :func:`_verdict_of`).
    """
    payload = json.dumps(mine, sort_keys=True).encode()
    try:
        for p in range(len(names)):
            if p != ep.me:
                ep.send(p, payload)
        raws = {p: ep.recv(p) for p in range(len(names)) if p != ep.me}
    except PeerFailed as exc:
        verdict = _verdict_of(str(exc))
        if verdict is None:
            raise
        raise AgreementError(verdict) from None
    facts = []
    for p in range(len(names)):
        if p == ep.me:
            facts.append(mine)
            continue
        try:
            got = json.loads(bytes(raws[p]).decode())
            if not isinstance(got, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            raise AgreementError(f"{names[p]} sent an announcement that is not a JSON object "
                                 "(another ppboost version?)") from None
        facts.append(got)
    return facts


def _verdict_of(failure: str) -> str | None:
    """The agreement error inside a peer's failure report, or None.

    :func:`check` is a pure function of the announced facts, so a peer that
    stopped with an :class:`AgreementError` reached the verdict this
    participant would reach.  When its stop arrives before the last
    announcement (messages from different peers can arrive in any order),
    this participant stops with the same message instead of the stop
    report that wraps it."""
    marker = " failed: AgreementError: "
    return failure.partition(marker)[2] or None


def _odd_ones(values: list, names: list) -> list:
    """Names whose value differs from the most common one (ties: the lowest id's value)."""
    counts = Counter(values)
    top = max(counts.values())
    ref = next(v for v in values if counts[v] == top)
    return [n for n, v in zip(names, values) if v != ref], ref


def check(facts: list, names: list, job, dealer: int) -> dict:
    """The public layout every party trains with, or the one error they all raise.

    ``facts[i]`` is participant ``i``'s announcement (``names[i]`` its name,
    ``dealer`` the dealer's id).  Rules, in this order: names; local errors;
    job digest; then the split's own rules (horizontal: the same columns and
    types everywhere, labels everywhere; vertical: exactly one label holder,
    disjoint columns, the same row alignment mode; mixed: label holders hold
    rows with the same columns, the others add disjoint columns); the
    analyst must be a data party.
    """
    for i, f in enumerate(facts):
        if f.get("name") != names[i]:
            raise AgreementError(f"participant {i} announced itself as {f.get('name')!r}, but the "
                                 f"federation file says it is {names[i]!r}")
    errs = [f"{names[i]}: {f['error']}" for i, f in enumerate(facts) if f.get("error")]
    if errs:
        raise AgreementError("; ".join(errs))
    odd, ref = _odd_ones([f.get("job") for f in facts], names)
    if odd:
        raise AgreementError(f"job file differs: {', '.join(odd)} announced job digest "
                             f"{_short(facts[names.index(odd[0])].get('job'))}, the others "
                             f"{_short(ref)}; every site must use the same job.json")
    parties = list(range(dealer))
    roles = {i: "party" for i in parties} | {dealer: "dealer"} | \
        {i: "analyst" for i in range(dealer + 1, len(facts))}
    for i, role in roles.items():
        if facts[i].get("role") != role:
            raise AgreementError(f"{names[i]} is the {role if role != 'party' else 'data party'} "
                                 f"in the federation file but announced role "
                                 f"{facts[i].get('role')!r}")
    pnames = [names[i] for i in parties]
    own = [names[i] for i in roles if roles[i] == "analyst"]
    if job.analyst not in pnames + own:
        raise AgreementError(f"the job's analyst {job.analyst!r} is neither a data party of the "
                             f"federation ({', '.join(pnames)}) nor its analyst"
                             + (f" ({own[0]})" if own else ""))
    if own and job.analyst != own[0]:
        raise AgreementError(f"the federation has an analyst of its own ({own[0]}), but the job "
                             f"names {job.analyst!r}; the job's analyst must be {own[0]!r}")
    pf = {names[i]: facts[i] for i in parties}
    modes = {n: bool(f["aligned"]) for n, f in pf.items()}
    if len(set(modes.values())) > 1:
        raise AgreementError("some parties give pooled row indices and others join ids: "
                             f"{modes}")
    info = _layout(job.split, pf, pnames, job)
    info["resume_from"] = resume_point(facts[:dealer + 1], names[:dealer + 1])
    return info


def resume_point(facts: list, names: list) -> int | None:
    """Rounds to skip: the newest checkpoint every participant has (``None``: no checkpoints).

    Every participant must run with checkpoints or none, and all resume or
    none; a resumed participant announces the rounds it has saved.
    """
    ck = [bool(f.get("checkpoint")) for f in facts]
    if any(ck) and not all(ck):
        without = [n for n, c in zip(names, ck) if not c]
        raise AgreementError(f"{', '.join(without)} run(s) without --checkpoint while the others "
                             "keep checkpoints; start every participant the same way")
    if not any(ck):
        return None
    res = [bool(f.get("resume")) for f in facts]
    if any(res) and not all(res):
        fresh = [n for n, r in zip(names, res) if not r]
        raise AgreementError(f"{', '.join(fresh)} started without --resume while the others "
                             "resume; restart every participant with --resume")
    if not any(res):
        return 0
    common = set.intersection(*(set(f.get("saved") or []) | {0} for f in facts))
    return max(common)


def _short(d) -> str:
    return (d or "none")[:12]


def _columns(f) -> list:
    return [(str(n), str(t)) for n, t in f["columns"]]


def _layout(kind: str, pf: dict, pnames: list, job) -> dict:
    holders = [n for n in pnames if pf[n]["has_labels"]]
    label = f"the label column {job.label!r}" if job.label else "labels"
    if kind == "horizontal":
        row_parties, col_parties = pnames, []
        missing = [n for n in pnames if n not in holders]
        if missing:
            raise AgreementError(f"horizontal split: {', '.join(missing)} hold(s) no {label}; "
                                 "every party of a horizontal split holds its rows' labels")
    elif kind == "vertical":
        if len(holders) != 1:
            raise AgreementError(
                f"vertical split: {label} is at {len(holders)} parties "
                f"({', '.join(holders) or 'none'}); exactly one party may hold it")
        row_parties, col_parties = [], pnames
    else:
        if not holders:
            raise AgreementError(f"mixed split: no party holds {label}; the parties with "
                                 "labels hold the rows")
        if len(holders) == len(pnames):
            raise AgreementError("mixed split: every party holds labels, so no party adds "
                                 "columns; use split 'horizontal'")
        row_parties = holders
        col_parties = [n for n in pnames if n not in holders]
    info = {"kind": kind, "label_holders": holders, "parties": {}}
    names, types, row_cols = [], [], []
    if row_parties:
        ref = row_parties[0]
        want = dict(_columns(pf[ref]))
        for n in row_parties[1:]:
            have = dict(_columns(pf[n]))
            lack = [c for c in want if c not in have]
            extra = [c for c in have if c not in want]
            if lack or extra:
                raise AgreementError(
                    f"{kind} split: {n}'s columns differ from {ref}'s"
                    + (f"; {n} lacks {lack}" if lack else "")
                    + (f"; {n} has extra {extra}" if extra else ""))
            clash = [c for c in want if have[c] != want[c]]
            if clash:
                c = clash[0]
                raise AgreementError(f"{kind} split: column {c!r} is {_kind(have[c])} at {n} but "
                                     f"{_kind(want[c])} at {ref}")
        row_cols = list(want)
        names += row_cols
        types += list(want.values())
    owner = {c: row_parties[0] for c in names}
    for n in col_parties:
        for c, t in _columns(pf[n]):
            if c in owner:
                raise AgreementError(f"{kind} split: column {c!r} is at both {owner[c]} and {n}; "
                                     "the parties' columns must be distinct")
            owner[c] = n
            names.append(c)
            types.append(t)
    index = {c: j for j, c in enumerate(names)}
    start = 0
    n_rows = None
    for n in pnames:
        f = pf[n]
        cols = [c for c, _ in _columns(f)] if n in col_parties else row_cols
        entry = {"n_rows": int(f["n_rows"]), "n_features": len(cols),
                 "feature_indices": [index[c] for c in cols], "has_labels": bool(f["has_labels"]),
                 "columns": cols}
        if n in row_parties:
            entry["row_offset"] = start
            start += int(f["n_rows"])
        info["parties"][n] = entry
    if row_parties:
        n_rows = start
    elif all(f["aligned"] for f in pf.values()):
        counts = {n: int(pf[n]["n_rows"]) for n in pnames}
        if len(set(counts.values())) != 1:
            raise AgreementError(f"vertical split with aligned rows: row counts differ {counts}")
        n_rows = counts[pnames[0]]
    info.update(n_rows=n_rows, n_features=len(names), feature_names=names, feature_types=types)
    for t, c in zip(types, names):
        if t not in ("q", "c"):
            raise AgreementError(f"column {c!r} at {owner[c]} has unknown type {t!r}")
    return info


def _kind(t: str) -> str:
    return "categorical" if t == "c" else "numeric"
