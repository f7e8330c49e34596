"""Joining the federation's full mesh of mutually authenticated TLS 1.3 connections.

:func:`connect_mesh` is the set-up behind :func:`ppboost.transport.tls.connect_tls`:
TLS contexts from the participant's certificate and the federation CA, the
listener, the connections to lower ids and the accepted ones from higher
ids, each checked against the identity its certificate names (see
:mod:`ppboost.transport.tls` for the rules and the failures).
"""
from __future__ import annotations

import socket
import ssl
import threading
import time

from .base import TransportError
from .config import FederationConfig
from .tls_channel import Channel, ChannelClosed, parse_setup, setup_frame, ssl_reason

__all__ = ["connect_mesh", "HandshakeError"]


class HandshakeError(TransportError):
    """Connection set-up failed: peer not listening, bad certificate, identity mismatch, timeout."""


def _contexts(config: FederationConfig, me: int, cert: str, key: str):
    ctxs = []
    for purpose in (ssl.PROTOCOL_TLS_SERVER, ssl.PROTOCOL_TLS_CLIENT):
        ctx = ssl.SSLContext(purpose)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False          # identity is checked by participant id instead
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_cert_chain(cert, key)
        except FileNotFoundError as exc:
            raise HandshakeError(f"{config.name(me)}: certificate or key file not found: "
                                 f"{exc.filename}") from None
        except ssl.SSLError as exc:
            raise HandshakeError(f"{config.name(me)}: cannot load certificate {cert} with key {key}: "
                                 f"{ssl_reason(exc)} (does the key belong to the certificate?)") from None
        try:
            ctx.load_verify_locations(config.ca)
        except (FileNotFoundError, ssl.SSLError) as exc:
            raise HandshakeError(f"{config.name(me)}: cannot load the federation CA {config.ca}: "
                                 f"{exc}") from None
        if purpose == ssl.PROTOCOL_TLS_SERVER:
            ctx.num_tickets = 0             # no session resumption
        ctxs.append(ctx)
    return ctxs


def _bind_listener(config: FederationConfig, me: int) -> socket.socket:
    part = config.participant(me)
    try:
        sock = socket.create_server((part.host, part.port), backlog=64, reuse_port=False)
    except OSError as exc:
        raise HandshakeError(f"{config.name(me)}: cannot listen on {part.host}:{part.port}: {exc}") from None
    return sock


def connect_mesh(config: FederationConfig | str, me: int, key: str, *, cert: str | None = None,
                 listen_sock: socket.socket | None = None, timeout: float | None = None,
                 connect_timeout: float | None = None) -> tuple:
    """Set up the verified full mesh for participant ``me`` (for ``connect_tls``).

    Same arguments as ``connect_tls``.  The lower id listens and the higher id connects; both
    sides check the peer's certificate identity and the ``hello`` exchange
    (see :mod:`ppboost.transport.tls`).  Returns ``(config, me, channels,
    timeout)``: the loaded :class:`FederationConfig`, ``me``, ``{peer id:
    Channel}`` with every other participant, and the ``recv`` timeout.
    Raises :class:`HandshakeError` within ``connect_timeout`` seconds.
    """
    if not isinstance(config, FederationConfig):
        config = FederationConfig.load(config)
    n = config.n_participants - 1          # the highest id (the dealer, or an analyst after it)
    if not isinstance(me, int) or not (0 <= me <= n):
        raise ValueError(f"me == {me!r}, must be a participant id in 0..{n} "
                         f"(dealer = {config.n_parties})")
    timeout = config.timeout if timeout is None else float(timeout)
    connect_timeout = config.connect_timeout if connect_timeout is None else float(connect_timeout)
    if not timeout > 0:
        raise ValueError(f"timeout == {timeout}, must be > 0 seconds")
    if not connect_timeout > 0:
        raise ValueError(f"connect_timeout == {connect_timeout}, must be > 0 seconds")
    name = config.name
    cert = config.participant(me).cert if cert is None else cert
    server_ctx, client_ctx = _contexts(config, me, cert, key)
    deadline = time.monotonic() + connect_timeout

    channels: dict = {}
    inflight: list = []                   # every accepted channel, closed if set-up fails
    reserved: set = set()                 # ids being answered "ok" right now
    rejected: list = []
    lock = threading.Lock()
    higher = set(range(me + 1, n + 1))
    all_in = threading.Event()
    stop = threading.Event()
    if not higher:
        all_in.set()

    if higher and listen_sock is None and config.participant(me).port == 0:
        raise ValueError(f"{name(me)}'s port is 0 in the config, but {name(me)} must listen on a "
                         "known port: set it, or pass listen_sock (run_processes does that)")
    zero = [name(p) for p in range(me) if config.participant(p).port == 0]
    if zero:
        raise ValueError(f"port 0 in the config for {', '.join(zero)}: {name(me)} cannot connect there; "
                         "write the real ports into the config (run_processes does that)")
    listener = None
    if higher:
        listener = listen_sock if listen_sock is not None else _bind_listener(config, me)
    elif listen_sock is not None:
        listen_sock.close()

    def handle(conn: socket.socket, addr):
        where = f"{addr[0]}:{addr[1]}"
        ch = Channel(conn, server_ctx, server_side=True)
        with lock:
            inflight.append(ch)
        try:
            ch.handshake(deadline)
            ident = ch.peer_identity()
            hello = parse_setup(ch.read_frame(deadline))
            claimed = hello.get("id")
            if ident is None:
                reason = "its certificate names no ppboost participant"
            elif ident[0] != config.federation:
                reason = (f"its certificate belongs to federation {ident[0]!r}, "
                          f"not {config.federation!r}")
            elif claimed != ident[1]:
                reason = (f"its certificate identifies {name(ident[1])}, but it claims to be "
                          f"{name(claimed) if isinstance(claimed, int) else repr(claimed)}")
            elif ident[1] not in higher:
                reason = (f"{name(ident[1])} must not connect to {name(me)} "
                          "(the lower id listens, the higher id connects)")
            else:
                with lock:
                    dup = ident[1] in channels or ident[1] in reserved
                    if not dup:
                        reserved.add(ident[1])
                if dup:
                    reason = f"{name(ident[1])} is already connected (duplicate connection)"
                else:
                    try:
                        # answer before declaring the mesh complete: once connect_tls returns,
                        # this process may stop or exit, and the peer must not be left waiting
                        ch.send_frame(setup_frame({"ok": True}), deadline=deadline)
                    finally:
                        with lock:
                            reserved.discard(ident[1])
                    with lock:
                        channels[ident[1]] = ch
                        if higher <= set(channels):
                            all_in.set()
                    return
            with lock:
                rejected.append(f"connection from {where} rejected: {reason}")
            try:
                ch.send_frame(setup_frame({"ok": False, "reason": reason}), deadline=deadline)
            except OSError:
                pass
            ch.close()
        except ssl.SSLError as exc:
            with lock:
                rejected.append(f"connection from {where} failed the TLS handshake: {ssl_reason(exc)}")
            ch.close()
        except (OSError, ChannelClosed, TransportError) as exc:
            with lock:
                rejected.append(f"connection from {where} dropped during set-up: {exc}")
            ch.close()

    def accept_loop():
        while not stop.is_set() and not all_in.is_set():
            listener.settimeout(0.1)
            try:
                conn, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=handle, args=(conn, addr), daemon=True,
                             name=f"ppboost-accept-{me}").start()

    acceptor = None
    if listener is not None:
        acceptor = threading.Thread(target=accept_loop, daemon=True, name=f"ppboost-listen-{me}")
        acceptor.start()

    def fail(msg):
        stop.set()
        if listener is not None:
            listener.close()
        with lock:
            for ch in list(channels.values()) + inflight:
                ch.close()
        raise HandshakeError(msg)

    me_name = name(me)
    for p in range(me):
        part = config.participant(p)
        where = f"{part.host}:{part.port}"
        last = None
        sock = None
        while sock is None:
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"{me_name} could not connect to {name(p)} at {where} within "
                     f"{connect_timeout:.1f}s: {last} (is {name(p)} running and listening there?)")
            try:
                sock = socket.create_connection((part.host, part.port), timeout=min(left, 5.0))
            except OSError as exc:
                last = exc
                time.sleep(min(0.05, max(left, 0)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ch = Channel(sock, client_ctx, server_side=False)
        try:
            ch.handshake(deadline)
        except ssl.SSLCertVerificationError as exc:
            ch.close()
            fail(f"{me_name}: the participant at {where} (expected {name(p)}) presented a "
                 f"certificate that does not verify against the federation CA: {exc.verify_message}")
        except ssl.SSLError as exc:
            ch.close()
            fail(f"{me_name}: TLS handshake with {name(p)} at {where} failed: {ssl_reason(exc)}")
        except (OSError, ChannelClosed) as exc:
            ch.close()
            fail(f"{me_name}: connection to {name(p)} at {where} failed during the TLS handshake: "
                 f"{exc or type(exc).__name__}")
        ident = ch.peer_identity()
        if ident != (config.federation, p):
            ch.close()
            who = (f"{name(ident[1])} of federation {ident[0]!r}" if ident else "no ppboost participant")
            fail(f"{me_name} expected {name(p)} at {where}, but its certificate identifies {who}: "
                 "refusing to talk to it")
        try:
            ch.send_frame(setup_frame({"id": me, "federation": config.federation}), deadline=deadline)
            reply = parse_setup(ch.read_frame(deadline))
        except ssl.SSLError as exc:
            ch.close()
            fail(f"{name(p)} rejected the certificate of {me_name} during the TLS handshake "
                 f"({ssl_reason(exc)}): it is not signed by the federation CA or is otherwise invalid")
        except (OSError, ChannelClosed, TransportError) as exc:
            ch.close()
            fail(f"{me_name}: {name(p)} at {where} dropped the connection during set-up "
                 f"({exc or type(exc).__name__}); it probably rejected {me_name}'s certificate")
        if not reply.get("ok"):
            ch.close()
            fail(f"{name(p)} rejected {me_name}: {reply.get('reason', 'no reason given')}")
        with lock:
            channels[p] = ch

    if not all_in.wait(max(0.0, deadline - time.monotonic())):
        with lock:
            missing = sorted(higher - set(channels))
            why = list(rejected)
        fail(f"{me_name}: {', '.join(name(q) for q in missing)} did not connect within "
             f"{connect_timeout:.1f}s" + (f"; rejected attempts: {'; '.join(why)}" if why else
                                          " (no connection attempt was seen)"))
    stop.set()
    if listener is not None:
        listener.close()
    return config, me, channels, timeout
