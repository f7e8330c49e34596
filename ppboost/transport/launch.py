"""Run one OS process per participant over the TLS transport, on this machine.

The process-level twin of :func:`ppboost.transport.inprocess.run_inprocess`::

    from ppboost.transport import run_local

    def party(ep):                      # must be importable: a module-level function
        ep.send(ep.dealer_id, np.arange(3))
        return ep.recv(ep.dealer_id)

    def dealer(ep):
        for p in range(ep.n_parties):
            ep.send(p, ep.recv(p) * 2)

    party_results, dealer_result, stats = run_local(2, party, dealer, timeout=10)

Rules (the processes are started with multiprocessing's ``spawn`` method):

* ``party_fn`` / ``dealer_fn`` must be picklable by reference: module-level
  functions, or ``functools.partial`` of one with picklable arguments.  Each
  is called as ``fn(endpoint)`` with a :class:`~ppboost.transport.tls.TLSEndpoint`.
  ``party_fn`` is one callable for every data party or a list of one per party.
* Each function (and the data it carries) is written to a private file that
  the child reads itself; nothing large goes through the spawn pipe, so a
  child that dies early cannot block the launcher.  A child exits when the
  launcher dies (it watches its parent).
* Return values (and exceptions) travel back by pickle.
* The module defining the function is imported afresh in every child, so keep
  heavy work out of its top level; a script that calls the launcher needs the
  usual ``if __name__ == "__main__":`` guard (multiprocessing 'spawn' rule).
* Everything runs on this machine (the config's hosts must be local); for a
  real deployment each organisation runs
  ``ep = connect_tls("config.json", my_id, "my-key.pem")`` in its own process.

:func:`run_local` makes a throwaway federation (CA, keys, certificates,
config) in a temporary directory with free ports; :func:`run_processes` runs
an existing config (e.g. one from :func:`ppboost.transport.certs.make_federation`
or a file). Listening sockets are bound in the caller before the children
start (port 0 in the config means "any free port"), so there is no race for
ports and no child connects before its peer listens.

Start-up is bounded: every child reports on its pipe when it has started,
when it has loaded its job and begins connecting, and when it is connected.
A child that has not begun connecting ``connect_timeout`` + 5 s after it was
spawned (stuck at interpreter start-up, importing the main module or loading
its job), or is not connected ``connect_timeout`` + 5 s after it began, is
*stalled*: the launcher terminates every participant and raises
:class:`~ppboost.transport.tls.HandshakeError` naming it and the timeout.
Once connected, a participant is governed by the transport's ``timeout``
only (no limit on the whole run unless ``wall_timeout`` is given).

Failures: if a participant raises, it sends an abort to its peers (their
``recv`` raises :class:`PeerFailed`), and the caller gets the **root cause**:
the participant's own exception, re-raised with ``exc.participant`` set,
a note naming it, and the remote traceback as ``__cause__``.  Preference
order: an exception raised by a participant's own code, then a participant
that died without reporting (``os._exit``, a signal) or stalled in start-up
(also when others gave up on it first: still not connected ``connect_timeout``
after its spawn, or after it began connecting), then set-up errors,
then :class:`TransportTimeout`, then :class:`PeerFailed`.  Participants still
running ``grace`` seconds after the first failure (stalled) are terminated.
``exc.outcomes`` lists what happened to everyone.
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import pickle
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait as _wait

from ..errors import PPBoostError
from .base import PeerFailed, Stats, TransportError, TransportTimeout
from .config import FederationConfig

__all__ = ["Outcome", "ParticipantError", "RemoteTraceback", "run_processes", "run_local",
           "STARTUP_SLACK"]

#: Seconds a participant gets beyond ``connect_timeout`` to begin connecting after its spawn
#: (interpreter start, imports, loading its job), and again to finish connecting.
STARTUP_SLACK = 5.0
_PROGRESS = ("started", "connecting", "connected")      # a child's reports before its result


class ParticipantError(PPBoostError, RuntimeError):
    """Stands in for a participant's exception that could not be pickled (type name and message kept)."""


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised in a participant's process."""

    def __str__(self):
        return self.args[0]


@dataclass
class Outcome:
    """What happened to one participant's process.

    ``status``: ``"ok"``, ``"error"`` (the function or set-up raised ``error``),
    ``"died"`` (exited without reporting; see ``exitcode``), ``"stalled"`` (not
    connected within the start-up bound, see the module notes; stopped by the
    launcher) or ``"terminated"`` (still running after the others had failed;
    stopped by the launcher).
    """
    pid: int
    name: str
    status: str
    result: object = None
    error: BaseException | None = None
    traceback: str = ""
    stats: Stats | None = None
    exitcode: int | None = None
    elapsed: float = 0.0


def _watch_parent(parent: int) -> None:
    """Exit this participant when the launcher is gone (its children must not outlive it)."""
    import threading

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(70)
            time.sleep(0.5)
    threading.Thread(target=watch, daemon=True, name="ppboost-parent-watch").start()


def _child(config, me, key, cert, fn_path, listen_sock, conn, timeout, connect_timeout, parent):
    """Body of one participant's process (top level so that spawn can import it).

    The function (with whatever data it carries) is read from ``fn_path``, a
    private file the launcher wrote: nothing large goes through the spawn
    pipe, whose blocking write would hang the launcher if this process died
    before reading it.
    """
    from .tls import connect_tls  # keep the parent's import graph small

    _watch_parent(parent)
    ep = None
    try:
        conn.send(("started", None, "", None))      # progress reports bound the start-up
        with open(fn_path, "rb") as fh:
            fn = pickle.load(fh)      # the launcher's own file: this session's functions
        os.unlink(fn_path)
        conn.send(("connecting", None, "", None))
        ep = connect_tls(config, me, key, cert=cert, listen_sock=listen_sock,
                         timeout=timeout, connect_timeout=connect_timeout)
        conn.send(("connected", None, "", None))
        result = fn(ep)
        try:
            conn.send(("ok", result, "", ep.stats))
        except Exception as exc:  # unpicklable result
            raise TypeError(f"{config.name(me)} returned a {type(result).__name__} that cannot be "
                            f"sent back to the caller: {exc}") from None
    except BaseException as exc:  # reported to the caller
        tb = traceback.format_exc()
        if ep is not None:
            ep.abort(f"{type(exc).__name__}: {exc}")
        stats = ep.stats if ep is not None else None
        conn.send(("error", _picklable_error(exc), tb, stats))
    finally:
        if ep is not None:
            ep.close()
        conn.close()


def _picklable_error(exc: BaseException) -> BaseException:
    """``exc``, or a :class:`ParticipantError` naming it if it does not survive pickling."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return ParticipantError(f"{type(exc).__name__}: {exc}")


def _rank(o: Outcome) -> int:
    from .tls import HandshakeError

    if o.status == "error" and not isinstance(o.error, TransportError):
        return 0
    if o.status in ("died", "stalled"):
        return 1
    if o.status == "error" and isinstance(o.error, HandshakeError):
        return 2
    if o.status == "error" and not isinstance(o.error, (TransportTimeout, PeerFailed)):
        return 3
    if o.status == "error" and isinstance(o.error, TransportTimeout):
        return 4
    if o.status == "error":
        return 5
    return 6  # terminated


def _root_exception(outcomes: list, order: list) -> BaseException:
    failed = [o for o in (outcomes[i] for i in order) if o.status != "ok"]
    root = min(failed, key=_rank)          # min is stable: earliest report wins within a rank
    if root.status == "stalled":
        from .tls import HandshakeError

        also = [o.name for o in failed if o.status == "stalled" and o is not root]
        exc = HandshakeError(f"{root.name} {root.traceback}"
                             + (f"; also stalled in start-up: {', '.join(also)}" if also else "")
                             + "; the launcher terminated every participant")
    elif root.status in ("died", "terminated"):
        exc = PeerFailed(f"{root.name} {root.traceback}")
    else:
        exc = root.error
        if root.traceback:
            exc.__cause__ = RemoteTraceback(f"\n[{root.name}, its own process]\n{root.traceback}")
        if hasattr(exc, "add_note"):
            exc.add_note(f"(raised in {root.name}'s process, run by ppboost.transport.launch)")
    try:
        exc.participant = root.pid
        exc.outcomes = outcomes
    except AttributeError:  # exceptions with __slots__
        pass
    return exc


def run_processes(config: FederationConfig | str, keys: Mapping[int, object],
                  party_fn: Callable | Sequence[Callable], dealer_fn: Callable | None = None, *,
                  timeout: float | None = None, connect_timeout: float | None = None,
                  grace: float = 2.0, wall_timeout: float | None = None,
                  return_outcomes: bool = False):
    """Start one process per participant of ``config`` on this machine and run the functions.

    ``keys[i]``: participant ``i``'s private key path, or a ``(cert, key)``
    pair to present a certificate other than the config's (tests use this to
    play an impostor).  ``timeout`` / ``connect_timeout`` override the
    config's; ``connect_timeout`` also bounds each child's start-up (a child
    not connected in time is stalled: every participant is terminated and
    :class:`~ppboost.transport.tls.HandshakeError` names it, see the module
    notes).  ``grace``: seconds granted to the others after the first
    failure before they are terminated.  ``wall_timeout``: optional limit on
    the whole run (participants still running then are terminated).
    ``dealer_fn`` ``None`` means the dealer process only connects and closes.

    Returns ``(party_results, dealer_result, stats)`` with ``stats[i]`` the
    :class:`Stats` of participant ``i``, like ``run_inprocess`` (which returns
    endpoints instead).  With ``return_outcomes=True`` nothing is raised and
    the list of :class:`Outcome` is returned instead.
    """
    if not isinstance(config, FederationConfig):
        config = FederationConfig.load(config)
    n = config.n_parties
    fns = list(party_fn) if isinstance(party_fn, (list, tuple)) else [party_fn] * n
    if len(fns) != n:
        raise ValueError(f"{len(fns)} party functions for {n} parties, need exactly {n}")
    fns.append(dealer_fn if dealer_fn is not None else _idle)
    blobs = []
    for i, f in enumerate(fns):
        try:
            blobs.append(pickle.dumps(f))
        except Exception as exc:
            raise TypeError(f"the function for {config.name(i)} ({f!r}) cannot be sent to a spawned "
                            f"process: {exc}. Use a module-level function, or functools.partial of "
                            "one with picklable arguments") from None
    missing = [i for i in range(n + 1) if i not in keys]
    if missing:
        raise ValueError(f"no key for participant(s) {missing}; keys must map every id 0..{n} to a key path")
    if not grace >= 0:
        raise ValueError(f"grace == {grace}, must be >= 0 seconds")

    # Bind every listening socket here (the highest id only connects).
    socks = {}
    jobs = tempfile.mkdtemp(prefix="ppboost-jobs-")     # each child's function, read by the child
    try:
        for i in range(n):
            part = config.participant(i)
            try:
                socks[i] = socket.create_server((part.host, part.port), backlog=64)
            except OSError as exc:
                raise TransportError(f"cannot listen for {config.name(i)} on {part.host}:{part.port}: "
                                     f"{exc} (run_processes starts everybody on this machine)") from None
        ports = [socks[i].getsockname()[1] if i in socks else config.participant(i).port
                 for i in range(n + 1)]
        config = config.with_ports(ports)

        ctx = mp.get_context("spawn")
        procs, conns, start = {}, {}, {}
        for i in range(n + 1):
            k = keys[i]
            cert, key = (k if isinstance(k, (tuple, list)) else (None, k))
            parent_end, child_end = ctx.Pipe(duplex=False)
            path = os.path.join(jobs, f"{i}.pickle")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(blobs[i])
            p = ctx.Process(target=_child, name=f"ppboost-{config.name(i)}", daemon=True,
                            args=(config, i, str(key), None if cert is None else str(cert), path,
                                  socks.get(i), child_end, timeout, connect_timeout, os.getpid()))
            p.start()
            child_end.close()
            procs[i], conns[i], start[i] = p, parent_end, time.monotonic()
    finally:
        for s in socks.values():   # the children hold their own copies now
            s.close()

    ct = float(config.connect_timeout if connect_timeout is None else connect_timeout)
    outcomes: list = [None] * (n + 1)
    order: list = []
    progress: list = [{} for _ in range(n + 1)]   # "started" / "connecting" / "connected" -> when
    first_failure = None
    t0 = time.monotonic()

    def set_up_by(i):
        """When participant ``i`` must be connected, or be called stalled (the module notes)."""
        seen = progress[i]
        return seen.get("connecting", start[i]) + ct + STARTUP_SLACK

    def stalled(i, now, slack):
        """Why participant ``i`` counts as stalled in start-up at ``now``, or None."""
        seen = progress[i]
        if "connected" in seen:
            return None
        if "connecting" in seen:
            if now - seen["connecting"] < ct + slack:
                return None
            return (f"did not connect within connect_timeout={ct:.1f}s: still connecting "
                    f"{now - seen['connecting']:.1f}s after it began (set-up stalled)")
        if now - start[i] < ct + slack:
            return None
        where = ("it had started but not loaded its job" if "started" in seen else
                 "its process never reached the launcher's code (stuck at interpreter start-up "
                 "or importing the main module?)")
        return (f"did not start within connect_timeout={ct:.1f}s: {now - start[i]:.1f}s after "
                f"its process was spawned, {where}")

    try:
        while len(order) < n + 1:
            pending = [i for i in range(n + 1) if outcomes[i] is None]
            now = time.monotonic()
            limits = [set_up_by(i) for i in pending if "connected" not in progress[i]]
            if first_failure is not None:
                limits.append(first_failure + grace)
            if wall_timeout is not None:
                limits.append(t0 + wall_timeout)
            wait_for = None if not limits else max(0.0, min(limits) - now)
            ready = _wait([conns[i] for i in pending] + [procs[i].sentinel for i in pending],
                          timeout=wait_for)
            for i in pending:
                if conns[i] not in ready and procs[i].sentinel not in ready:
                    continue
                got = None
                try:
                    while got is None and conns[i].poll():
                        got = conns[i].recv()
                        if got[0] in _PROGRESS:
                            progress[i][got[0]] = time.monotonic()
                            got = None
                except (EOFError, OSError):
                    got = None
                except Exception as exc:  # a result that does not unpickle here
                    got = ("error", ParticipantError(f"{config.name(i)}'s report could not be "
                                                     f"unpickled: {type(exc).__name__}: {exc}"),
                           "", None)
                if got is None and procs[i].sentinel not in ready:
                    continue
                if got is None:
                    procs[i].join(1.0)
                    code = procs[i].exitcode
                    o = Outcome(i, config.name(i), "died", exitcode=code,
                                traceback=f"died (exit code {code}) without reporting a result"
                                + ("; a script that starts participants needs the "
                                   "'if __name__ == \"__main__\":' guard" if code == 1 else ""))
                else:
                    status, value, tb, stats = got
                    o = Outcome(i, config.name(i), status, stats=stats, traceback=tb,
                                result=value if status == "ok" else None,
                                error=value if status == "error" else None)
                o.elapsed = time.monotonic() - start[i]
                outcomes[i] = o
                order.append(i)
                if o.status != "ok" and first_failure is None:
                    first_failure = time.monotonic()
            now = time.monotonic()
            late = {i: why for i in range(n + 1)
                    if outcomes[i] is None and (why := stalled(i, now, STARTUP_SLACK))}
            if late:
                why = (f"was terminated because {', '.join(config.name(i) for i in late)} did not "
                       f"finish its start-up within connect_timeout={ct:.1f}s")
            elif first_failure is not None and now >= first_failure + grace:
                why = f"was still running {grace:.1f}s after the first failure and was terminated (stalled?)"
            elif wall_timeout is not None and now >= t0 + wall_timeout:
                why = f"was still running after wall_timeout={wall_timeout}s and was terminated"
            else:
                continue
            for i in range(n + 1):      # the stalled ones first: the earliest report wins a tie
                if outcomes[i] is None:
                    procs[i].terminate()
                    stuck = late.get(i) or stalled(i, now, 0.0)   # the others gave up on it
                    outcomes[i] = Outcome(i, config.name(i), "stalled" if stuck else "terminated",
                                          traceback=stuck or why, elapsed=now - start[i])
            order.extend(sorted((i for i in range(n + 1) if i not in order),
                                key=lambda i: outcomes[i].status != "stalled"))
    finally:
        for i, p in procs.items():
            # reporters are only closing their sockets; a terminated (stopped?) one gets 1 s
            p.join(1.0 if outcomes[i] is None or outcomes[i].status in ("terminated", "stalled")
                   else 5.0)
            if p.is_alive():
                p.kill()
                p.join(1.0)
            conns[i].close()
        shutil.rmtree(jobs, ignore_errors=True)   # files of children that never read them

    if return_outcomes:
        return outcomes
    if any(o.status != "ok" for o in outcomes):
        raise _root_exception(outcomes, order)
    return ([o.result for o in outcomes[:n]], outcomes[n].result if dealer_fn is not None else None,
            [o.stats for o in outcomes])


def _idle(ep):
    """Default dealer: join the mesh, do nothing."""
    return None


def run_local(n_parties: int, party_fn: Callable | Sequence[Callable], dealer_fn: Callable | None = None,
              *, timeout: float = 60.0, connect_timeout: float = 30.0, grace: float = 2.0,
              wall_timeout: float | None = None, host: str = "127.0.0.1", return_outcomes: bool = False,
              names: Sequence[str] | None = None):
    """:func:`run_processes` on a throwaway federation (fresh CA and keys, free ports on ``host``).

    Same arguments and return value as :func:`run_processes`; the
    certificates live in a temporary directory that is removed afterwards.
    ``names``: every participant's name by id (the dealer last), used in
    every message, outcome and error (``config.name``, the endpoints'
    ``names``), like :func:`~ppboost.transport.inprocess.run_inprocess`;
    ``None``: ``party <id>`` / ``dealer``.
    """
    from .certs import make_federation

    if names is not None:
        names = [str(x) for x in names]
        if len(names) != n_parties + 1 or not all(names):
            raise ValueError(f"names == {names!r}: need {n_parties + 1} non-empty names, one per "
                             f"participant ({n_parties} parties, then the dealer)")
    with tempfile.TemporaryDirectory(prefix="ppboost-fed-") as d:
        config, keys = make_federation(d, n_parties, host=host, timeout=timeout,
                                       connect_timeout=connect_timeout)
        if names is not None:      # FederationConfig rejects repeated names
            config = dataclasses.replace(config, participants=tuple(
                dataclasses.replace(p, name=names[p.id]) for p in config.participants))
        return run_processes(config, keys, party_fn, dealer_fn, grace=grace,
                             wall_timeout=wall_timeout, return_outcomes=return_outcomes)
