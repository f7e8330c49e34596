"""TLS transport (ppboost.transport.tls), driven from threads of this process.

The tests that need separate OS processes are in test_launch.py;
here every participant is a thread, which is fast and lets a test look at each
participant's own exception.  The sockets, TLS sessions and certificate checks
are the real ones.
"""
from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest

from ppboost.transport import (
    HandshakeError,
    PeerFailed,
    TransportTimeout,
    connect_tls,
    make_federation,
    run_inprocess,
)
from ppboost.transport.certs import (
    generate_ca,
    identity_uri,
    issue_participant_cert,
    parse_identity,
    write_cert,
    write_key,
)


def _listeners(n_parties):
    return [socket.create_server(("127.0.0.1", 0)) for _ in range(n_parties)]


@pytest.fixture
def federation(tmp_path):
    """Factory: a fresh federation with pre-bound listening sockets (free ports)."""
    def make(n_parties, timeout=10.0, connect_timeout=5.0):
        socks = _listeners(n_parties)
        cfg, keys = make_federation(tmp_path / f"fed{n_parties}", n_parties,
                                    ports=[s.getsockname()[1] for s in socks] + [0],
                                    timeout=timeout, connect_timeout=connect_timeout)
        return cfg, keys, socks
    return make


def _run_mesh(cfg, keys, socks, fns, certs=None):
    """Connect every participant in its own thread and run ``fns[i](ep)``.

    Returns ``(results, errors, stats)``, one entry per participant; endpoints
    are closed (or aborted on error) like the launcher does.
    """
    n = cfg.n_parties + 1
    results, errors, stats = [None] * n, [None] * n, [None] * n

    def run(i):
        ep = None
        try:
            ep = connect_tls(cfg, i, keys[i], cert=(certs or {}).get(i),
                             listen_sock=socks[i] if i < len(socks) else None)
            stats[i] = ep.stats
            results[i] = fns[i](ep)
        except BaseException as exc:  # inspected by the test
            errors[i] = exc
            if ep is not None:
                ep.abort(f"{type(exc).__name__}: {exc}")
        finally:
            if ep is not None:
                ep.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a participant hung"
    return results, errors, stats


# ---------------------------------------------------------------------------- exchange
PAYLOADS = [
    b"",
    b"hello",
    np.arange(17, dtype=np.uint64),
    np.array(3.5),                                   # 0-d
    np.zeros((0, 4), dtype=np.int32),                # empty
    (np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7),
    np.array([True, False, True]),
    np.arange(300_000, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15),   # 2.4 MB: many TLS records
    np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4)),        # non-contiguous in C order
]


def _exchange(ep):
    """Everyone sends every payload to everyone (all sends first: needs full duplex), then receives."""
    others = [p for p in range(ep.n_parties + 1) if p != ep.me]
    for x in PAYLOADS:
        for p in others:
            ep.send(p, x)
    got = {p: [ep.recv(p) for _ in PAYLOADS] for p in others}
    n = ep.n_parties + 1                                          # a second round, in a ring
    ep.send((ep.me + 1) % n, np.full(5, ep.me, dtype=np.uint64))
    last = ep.recv((ep.me - 1) % n)
    info = ep.peer_info(1) if hasattr(ep, "peer_info") and ep.me != 1 else None
    return got, last, info


def _check_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("n_parties", [2, 3])
def test_tls_exchange_matches_inprocess(federation, n_parties):
    cfg, keys, socks = federation(n_parties)
    res, errs, stats = _run_mesh(cfg, keys, socks, [_exchange] * (n_parties + 1))
    assert errs == [None] * (n_parties + 1)
    ref, ref_dealer, ref_eps = run_inprocess(n_parties, _exchange, _exchange, timeout=10)
    ref = list(ref) + [ref_dealer]
    for st, ep in zip(stats, ref_eps):
        # identical framing => identical byte counts, rounds and (sender, receiver, size) transcript
        assert st.transcript == ep.stats.transcript
        assert st.snapshot() == ep.stats.snapshot()
        assert st.bytes_sent == ep.stats.bytes_sent and st.bytes_recv == ep.stats.bytes_recv
    assert stats[0].rounds == 2
    info = res[0][2]
    assert info["version"] == "TLSv1.3" and info["identity"] == ("ppboost", 1)
    for i in range(n_parties + 1):
        got, last, _ = res[i]
        for p, xs in got.items():
            for x, y in zip(PAYLOADS, xs):
                _check_same(y, x if isinstance(x, bytes) else np.asarray(x))
            for x, y in zip(ref[i][0][p], xs):
                _check_same(x, y)
        _check_same(last, ref[i][1])
        assert last[0] == (i - 1) % (n_parties + 1)    # ring: the previous participant sent it


def test_received_arrays_are_aligned_writable_and_private(federation):
    big = np.arange(100_000, dtype=np.uint64)

    def sender(ep):
        ep.send(1, big)
        ep.send(1, big[::2])                      # strided view is sent as its contiguous copy
        return ep.recv(1)

    def receiver(ep):
        a = ep.recv(0)
        b = ep.recv(0)
        ok = (a.ctypes.data % 64 == 0 and a.flags.writeable and a.flags.aligned
              and np.array_equal(a, big) and np.array_equal(b, big[::2]))
        a[:] = 0                                   # our copy, not the sender's
        ep.send(0, b"ok" if ok else b"bad")

    cfg, keys, socks = federation(2)
    res, errs, _ = _run_mesh(cfg, keys, socks, [sender, receiver, lambda ep: None])
    assert errs == [None, None, None]
    assert res[0] == b"ok"
    assert big[5] == 5


def test_large_full_duplex_does_not_deadlock(federation):
    # both parties push 24 MB at each other before either reads: the reader
    # threads must drain the sockets while the owner thread is still sending
    x = np.ones(3 << 20, dtype=np.uint64)

    def fn(ep):
        if ep.is_dealer:
            return None
        ep.send(1 - ep.me, x)
        return int(ep.recv(1 - ep.me).sum())

    cfg, keys, socks = federation(2, timeout=20)
    res, errs, _ = _run_mesh(cfg, keys, socks, [fn] * 3)
    assert errs == [None] * 3
    assert res[:2] == [3 << 20, 3 << 20]


# ---------------------------------------------------------------------------- identities
def test_certificate_identity_roundtrip(tmp_path):
    ca, ca_key = generate_ca("fedx")
    cert, _ = issue_participant_cert(ca, ca_key, "fedx", 2, 2)
    from cryptography.hazmat.primitives.serialization import Encoding
    assert parse_identity(cert.public_bytes(Encoding.DER)) == ("fedx", 2)
    assert identity_uri("fedx", 2) == "urn:ppboost:fedx:2"
    analyst, _ = issue_participant_cert(ca, ca_key, "fedx", 3, 2)   # an analyst of its own
    assert parse_identity(analyst.public_bytes(Encoding.DER)) == ("fedx", 3)
    with pytest.raises(ValueError, match="pid == 4, must be in 0..3"):
        issue_participant_cert(ca, ca_key, "fedx", 4, 2)


def _rogue(tmp_path, cfg, pid, federation=None):
    """A key and a certificate naming ``pid``, signed by a CA the federation does not trust."""
    ca, ca_key = generate_ca("rogue")
    cert, key = issue_participant_cert(ca, ca_key, federation or cfg.federation, pid, cfg.n_parties)
    return (write_cert(cert, tmp_path / f"rogue{pid}.pem"), write_key(key, tmp_path / f"rogue{pid}-key.pem"))


def _noop(ep):
    return ep.me


@pytest.mark.slow
def test_client_with_certificate_from_another_ca_is_rejected(federation, tmp_path):
    cfg, keys, socks = federation(2, connect_timeout=2.0)
    cert, key = _rogue(tmp_path, cfg, 2)
    keys = dict(keys)
    keys[2] = key
    t = time.monotonic()
    _, errs, _ = _run_mesh(cfg, keys, socks, [_noop] * 3, certs={2: cert})
    assert time.monotonic() - t < 10
    # the impostor (dealer, connecting side) learns it was refused
    assert isinstance(errs[2], HandshakeError)
    assert "party 0 rejected the certificate of dealer" in str(errs[2])
    # the honest listeners name the missing participant and the rejected attempt
    for i in (0, 1):
        assert isinstance(errs[i], HandshakeError)
        assert "dealer did not connect within 2.0s" in str(errs[i])
    assert "failed the TLS handshake: certificate verify failed" in str(errs[0])


def test_listener_with_certificate_from_another_ca_is_rejected(federation, tmp_path):
    cfg, keys, socks = federation(2, connect_timeout=2.0)
    cert, key = _rogue(tmp_path, cfg, 0)
    keys = dict(keys)
    keys[0] = key
    _, errs, _ = _run_mesh(cfg, keys, socks, [_noop] * 3, certs={0: cert})
    for i in (1, 2):
        assert isinstance(errs[i], HandshakeError)
        assert "(expected party 0) presented a certificate that does not verify against the federation CA" \
            in str(errs[i])
    assert isinstance(errs[0], HandshakeError)


def test_client_with_certificate_of_another_participant_is_rejected(federation):
    cfg, keys, socks = federation(2, connect_timeout=2.0)
    keys = dict(keys)
    keys[2] = keys[1]            # the dealer process holds party 1's key and certificate
    _, errs, _ = _run_mesh(cfg, keys, socks, [_noop] * 3, certs={2: cfg.participant(1).cert})
    assert isinstance(errs[2], HandshakeError)
    assert "rejected dealer: its certificate identifies party 1, but it claims to be dealer" in str(errs[2])
    assert isinstance(errs[0], HandshakeError)
    assert "its certificate identifies party 1, but it claims to be dealer" in str(errs[0])


def test_listener_with_certificate_of_another_participant_is_rejected(federation):
    cfg, keys, socks = federation(2, connect_timeout=2.0)
    keys = dict(keys)
    keys[0] = keys[1]            # party 0's process presents party 1's identity
    _, errs, _ = _run_mesh(cfg, keys, socks, [_noop] * 3, certs={0: cfg.participant(1).cert})
    for i in (1, 2):
        assert isinstance(errs[i], HandshakeError)
        assert "expected party 0 at 127.0.0.1" in str(errs[i])
        assert "certificate identifies party 1 of federation 'ppboost'" in str(errs[i])


def test_certificate_of_another_federation_is_rejected(federation, tmp_path):
    # a CA shared by two federations: the certificate verifies, but names the wrong federation
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cfg, keys, socks = federation(2, connect_timeout=2.0)
    d = tmp_path / "fed2"
    assert not (d / "ca-key.pem").exists()            # the CA key is not written by default
    make_federation(d, 2, write_ca_key=True)          # overwrite with a CA whose key we keep
    ca = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((d / "ca-key.pem").read_bytes(), None)
    cfg, keys = make_federation(d, 2, ports=[s.getsockname()[1] for s in socks] + [0],
                                connect_timeout=2.0)   # fresh CA again: re-issue all from `ca`
    certs = {}
    for i, fed in ((0, "ppboost"), (1, "ppboost"), (2, "otherfed")):
        c, k = issue_participant_cert(ca, ca_key, fed, i, 2)
        certs[i] = write_cert(c, tmp_path / f"p{i}.pem")
        keys[i] = write_key(k, tmp_path / f"p{i}-key.pem")
    write_cert(ca, cfg.ca)                            # everybody trusts `ca`
    _, errs, _ = _run_mesh(cfg, keys, socks, [_noop] * 3, certs=certs)
    assert isinstance(errs[2], HandshakeError)
    assert "its certificate belongs to federation 'otherfed', not 'ppboost'" in str(errs[2])
    assert isinstance(errs[0], HandshakeError) and isinstance(errs[1], HandshakeError)


@pytest.mark.slow
def test_peer_not_listening(tmp_path):
    """Connecting to a port nobody listens on fails with a HandshakeError naming the
    peer once the connect timeout (1 s) is over.  Wall clock: measured 1.0 s on 2 shared
    cores; the bound, 3 s, only catches a connect that keeps retrying past its timeout."""
    # reserve a port, then close it: nobody listens there
    free = _listeners(2)
    ports = [s.getsockname()[1] for s in free]
    for s in free:
        s.close()
    cfg, keys = make_federation(tmp_path, 2, ports=ports + [0], connect_timeout=1.0)
    t = time.monotonic()
    with pytest.raises(HandshakeError, match=r"dealer could not connect to party 0 at 127\.0\.0\.1:\d+ "
                                             r"within 1\.0s: .*is party 0 running and listening"):
        connect_tls(cfg, 2, keys[2])
    assert time.monotonic() - t < 3


@pytest.mark.parametrize("me, key_of, exc, match", [
    (2, 1, HandshakeError, "does the key belong to the certificate"),
    (3, 2, ValueError, "me == 3, must be a participant id in 0..2"),
], ids=["wrong_key_for_certificate", "bad_participant_id"])
def test_connect_refused(federation, me, key_of, exc, match):
    """``connect_tls(cfg, me, keys[key_of])`` on a 2-party federation raises ``exc``."""
    cfg, keys, socks = federation(2)
    with pytest.raises(exc, match=match):
        connect_tls(cfg, me, keys[key_of])
    for s in socks:
        s.close()


# ---------------------------------------------------------------------------- failures
@pytest.mark.slow
def test_recv_timeout_names_the_silent_participant(federation):
    waited = {}
    done = threading.Event()

    def fn(ep):
        if ep.me == 0:
            t = time.monotonic()
            try:
                ep.recv(1)
            finally:
                waited[0] = time.monotonic() - t
                done.set()
        elif ep.me == 1:
            done.wait(20)            # stalls, sends nothing, until party 0 gave up

    cfg, keys, socks = federation(2, timeout=0.6)
    _, errs, _ = _run_mesh(cfg, keys, socks, [fn] * 3)
    assert isinstance(errs[0], TransportTimeout)
    assert "party 0 waited 0.6s for a message from party 1, which sent nothing" in str(errs[0])
    assert 0.6 <= waited[0] < 1.6


@pytest.mark.slow
def test_raising_participant_makes_the_others_stop(federation):
    def fn(ep):
        if ep.me == 1:
            raise ValueError("boom in party 1")
        t = time.monotonic()
        try:
            ep.recv(1 if ep.me != 1 else 0)
        except PeerFailed:
            assert time.monotonic() - t < 2.0         # well within the 10 s timeout
            raise

    cfg, keys, socks = federation(2, timeout=10)
    _, errs, _ = _run_mesh(cfg, keys, socks, [fn] * 3)
    assert isinstance(errs[1], ValueError)
    for i in (0, 2):
        assert isinstance(errs[i], PeerFailed)
        assert "party 1 failed: ValueError: boom in party 1" in str(errs[i])


def test_recv_from_finished_participant(federation):
    def fn(ep):
        if ep.me == 0:
            ep.send(1, b"last")
            return None                      # closes with a goodbye
        if ep.me == 1:
            assert ep.recv(0) == b"last"     # queued data is still delivered
            with pytest.raises(PeerFailed, match="party 0, which already closed its endpoint"):
                ep.recv(0)
            return "ok"
        return None

    cfg, keys, socks = federation(2)
    res, errs, _ = _run_mesh(cfg, keys, socks, [fn] * 3)
    assert errs == [None, None, None]
    assert res[1] == "ok"


def test_send_and_recv_validate_peer(federation):
    def fn(ep):
        if ep.me == 0:
            with pytest.raises(ValueError, match="invalid peer id 0"):
                ep.send(0, b"x")
            with pytest.raises(ValueError, match="invalid peer id 7"):
                ep.recv(7)
            with pytest.raises(TypeError, match="cannot send a list"):
                ep.send(1, [1, 2])
        return "done"

    cfg, keys, socks = federation(2)
    res, errs, _ = _run_mesh(cfg, keys, socks, [fn] * 3)
    assert errs == [None] * 3 and res[0] == "done"


def test_config_file_ports_and_late_listener(tmp_path):
    # the deployment path: every participant binds its own port from config.json,
    # and connectors retry until a late listener is up
    free = _listeners(3)
    ports = [s.getsockname()[1] for s in free]
    for s in free:
        s.close()
    make_federation(tmp_path, 2, ports=ports, timeout=5, connect_timeout=5)
    from ppboost.transport import FederationConfig
    cfg = FederationConfig.load(tmp_path / "config.json")
    keys = {0: str(tmp_path / "party0-key.pem"), 1: str(tmp_path / "party1-key.pem"),
            2: str(tmp_path / "dealer-key.pem")}

    def fn(ep):
        if ep.me == 0:
            return None
        ep.send(0, b"hi from %d" % ep.me)
        return None

    def late_party0(ep):
        return sorted([ep.recv(1), ep.recv(2)])

    def delayed(i):
        time.sleep(0.3 if i == 0 else 0.0)
        return connect_tls(str(tmp_path / "config.json"), i, keys[i])

    out, errs = {}, {}

    def run(i):
        try:
            ep = delayed(i)
            out[i] = (late_party0 if i == 0 else fn)(ep)
            ep.close()
        except BaseException as exc:
            errs[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in (2, 1, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errs == {}
    assert out[0] == [b"hi from 1", b"hi from 2"]
    assert cfg.participant(0).port == ports[0]


def test_no_threads_or_sockets_left_behind(federation):
    def fds():
        return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0

    before = fds()
    cfg, keys, socks = federation(3)
    seen = []

    def fn(ep):
        seen.extend(t for t in threading.enumerate() if t.name.startswith("ppboost-"))
        _exchange(ep)

    _, errs, _ = _run_mesh(cfg, keys, socks, [fn] * 4)
    assert errs == [None] * 4
    assert seen and all(t.daemon for t in seen)          # transport threads never block exit
    end = time.monotonic() + 5
    while time.monotonic() < end and (any(t.is_alive() for t in seen) or fds() > before):
        time.sleep(0.05)
    assert not any(t.is_alive() for t in seen)
    assert fds() <= before


def _send_to_a_frozen_reader(federation, n_parties, timeout, third=None):
    """Party 0 sends 64 MB to party 1, whose reader thread is frozen (as in a stopped
    process) by holding its TLS lock, so the socket buffers fill up and the send makes
    no progress; ``third(ep)`` runs on party 2 once party 1 is frozen.  Returns the
    participants' errors and how long party 0's send took."""
    frozen, release = threading.Event(), threading.Event()
    took = {}

    def fn(ep):
        if ep.me == 1:
            with ep._ch[0].ssl_lock:
                frozen.set()
                release.wait(20)
            return None
        if ep.me == 2 and third is not None:
            frozen.wait(10)
            return third(ep)
        if ep.me == 0:
            frozen.wait(10)
            t = time.monotonic()
            try:
                ep.send(1, np.zeros(64 << 20, dtype=np.uint8))
            finally:
                took[0] = time.monotonic() - t
                release.set()
        return None

    cfg, keys, socks = federation(n_parties, timeout=timeout)
    _, errs, _ = _run_mesh(cfg, keys, socks, [fn] * (n_parties + 1))
    return errs, took[0]


@pytest.mark.slow
def test_send_to_a_peer_that_stopped_reading_times_out(federation):
    errs, took = _send_to_a_frozen_reader(federation, 2, 0.5)
    assert isinstance(errs[0], TransportTimeout)
    assert "party 0 could not send to party 1 for 0.5s: party 1 is not reading (stalled)" in str(errs[0])
    assert 0.5 <= took < 5


@pytest.mark.slow
def test_a_blocked_send_stops_when_another_participant_fails(federation):
    """Party 2 raises while party 0's send to the frozen party 1, which could wait up to
    the 10 s timeout without progress, is under way: the send stops with party 2's
    failure within a second or two."""
    def boom(ep):
        time.sleep(1.0)
        raise ValueError("boom in party 2")

    errs, took = _send_to_a_frozen_reader(federation, 3, 10, third=boom)
    assert isinstance(errs[2], ValueError)
    assert isinstance(errs[0], PeerFailed), errs[0]
    assert "party 0 stopped sending to party 1: party 2 failed: ValueError: boom in party 2" \
        in str(errs[0])
    assert took < 3.0


def test_port_zero_needs_a_listen_socket(tmp_path):
    cfg, keys = make_federation(tmp_path, 2)              # all ports 0
    with pytest.raises(ValueError, match="party 0's port is 0 in the config, but party 0 must listen"):
        connect_tls(cfg, 0, keys[0])
    with pytest.raises(ValueError, match="port 0 in the config for party 0, party 1: dealer cannot connect"):
        connect_tls(cfg, 2, keys[2])

