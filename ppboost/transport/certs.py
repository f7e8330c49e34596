"""Certificates for a federation: a CA and one certificate per participant.

Identity rule (checked by :mod:`ppboost.transport.tls`): the certificate of
participant ``i`` of federation ``F`` is signed by the federation CA and
carries the subjectAltName URI ``urn:ppboost:F:i``.  Its common name is the
human-readable ``"party i"`` / ``"dealer"`` (not used for checks).

:func:`make_federation` is the one-call set-up for tests, simulations on one
machine and demos: it creates a throwaway CA, per-participant keys and
certificates, and the config file.  In a real deployment each organisation
would create its own key and have the federation CA sign a certificate with
the same URI; only the certificates and the CA go into the shared config.

Keys are ECDSA P-256 (fast to generate, TLS 1.3 friendly).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .config import FederationConfig, Participant
from .identity import identity_from_uris, identity_uri

__all__ = ["identity_uri", "parse_identity", "generate_ca", "issue_participant_cert",
           "write_cert", "write_key", "make_federation", "init_federation"]

def parse_identity(cert_der: bytes) -> tuple[str, int] | None:
    """``(federation, id)`` from a DER certificate, or ``None`` if it names no (or several) participants."""
    cert = x509.load_der_x509_certificate(cert_der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    return identity_from_uris(san.get_values_for_type(x509.UniformResourceIdentifier))


def _name(cn: str, federation: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"ppboost {federation}"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def generate_ca(federation: str, days: int = 30):
    """A self-signed CA ``(certificate, private_key)`` for ``federation``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.timezone.utc)
    name = _name(f"ppboost {federation} CA", federation)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue_participant_cert(ca_cert, ca_key, federation: str, pid: int, n_parties: int,
                           hosts=("127.0.0.1", "localhost"), days: int = 30):
    """Key and certificate ``(certificate, private_key)`` for participant ``pid``.

    The certificate is valid for TLS client and server use (every participant
    both listens and connects) and names ``pid`` by :func:`identity_uri`.
    """
    if not (0 <= pid <= n_parties + 1):
        raise ValueError(f"pid == {pid}, must be in 0..{n_parties + 1} (dealer = {n_parties}, "
                         f"an analyst of its own = {n_parties + 1})")
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.timezone.utc)
    cn = {n_parties: "dealer", n_parties + 1: "analyst"}.get(pid, f"party {pid}")
    alt = [x509.UniformResourceIdentifier(identity_uri(federation, pid))]
    for h in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn, federation)).issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def write_cert(cert, path) -> str:
    Path(path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def write_key(key, path) -> str:
    """Write an unencrypted PEM private key readable by the owner only (mode 0600)."""
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)     # an existing file keeps its mode through O_CREAT: make it private
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return str(path)


def make_federation(directory, n_parties: int, host: str = "127.0.0.1", ports=None,
                    federation: str = "ppboost", timeout: float = 60.0,
                    connect_timeout: float = 30.0, write_ca_key: bool = False):
    """Create a throwaway CA, keys, certificates and ``config.json`` in ``directory``.

    ``ports`` lists one port per participant (``n_parties + 1`` of them); ``None``
    writes port 0 everywhere, meaning "pick free ports at launch"
    (:func:`ppboost.transport.launch.run_processes` binds them).  Returns
    ``(config, keys)`` where ``keys[i]`` is the path of participant ``i``'s key.
    Files: ``ca.pem`` (and ``ca-key.pem`` if ``write_ca_key``), ``party<i>.pem``
    / ``party<i>-key.pem``, ``dealer.pem`` / ``dealer-key.pem``, ``config.json``.
    """
    if not isinstance(n_parties, int) or n_parties < 2:
        raise ValueError(f"n_parties == {n_parties!r}, must be an int >= 2")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if ports is None:
        ports = [0] * (n_parties + 1)
    if len(ports) != n_parties + 1:
        raise ValueError(f"{len(ports)} ports given, need {n_parties + 1} "
                         f"({n_parties} parties + the dealer)")
    ca_cert, ca_key = generate_ca(federation)
    write_cert(ca_cert, d / "ca.pem")
    if write_ca_key:
        write_key(ca_key, d / "ca-key.pem")
    parts, keys = [], {}
    for pid in range(n_parties + 1):
        stem = "dealer" if pid == n_parties else f"party{pid}"
        cert, key = issue_participant_cert(ca_cert, ca_key, federation, pid, n_parties,
                                           hosts=(host,) if host != "localhost" else ("localhost",))
        write_cert(cert, d / f"{stem}.pem")
        keys[pid] = write_key(key, d / f"{stem}-key.pem")
        parts.append(Participant(pid, host, int(ports[pid]), str((d / f"{stem}.pem").resolve())))
    cfg = FederationConfig(federation=federation, n_parties=n_parties,
                           ca=str((d / "ca.pem").resolve()), participants=tuple(parts),
                           timeout=float(timeout), connect_timeout=float(connect_timeout))
    cfg.save(d / "config.json")
    return cfg, {k: str(Path(v).resolve()) for k, v in keys.items()}


def _address(spec: str, what: str) -> tuple:
    host, sep, port = str(spec).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what}: address {spec!r} must be HOST:PORT with a port in 1..65535")
    return host.strip("[]"), int(port)


def init_federation(directory, parties: list, dealer: str, federation: str = "ppboost",
                    timeout: float = 120.0, connect_timeout: float = 60.0, days: int = 365,
                    analyst: str | None = None):
    """Write a pilot federation: ``federation.json``, ``ca.crt``, ``<name>.key`` + ``<name>.crt``.

    ``parties``: ``[(name, "HOST:PORT"), ...]`` in id order; ``dealer``:
    ``"HOST:PORT"``; ``analyst``: the address of an analyst that is not a
    data party (participant ``analyst``, after the dealer), or None.  Each
    certificate names its participant's id (the identity rule above) and is
    valid for its host.  Key files are mode 0600; the CA key is not kept
    (no further certificate can be issued: a consortium with its own CA
    signs its members' keys instead, see the README).  Returns the :class:`FederationConfig`.
    """
    names = [n for n, _ in parties]
    if len(parties) < 2:
        raise ValueError(f"{len(parties)} data part{'y' if len(parties) == 1 else 'ies'} given; "
                         "a federation needs at least 2 (--party NAME=HOST:PORT)")
    for n in names + ["dealer"]:
        if not n or not all(c.isalnum() or c in "_-." for c in n) or n.startswith("."):
            raise ValueError(f"participant name {n!r}: use letters, digits, '_', '-' and '.'")
    if len(set(names)) != len(names) or "dealer" in names:
        raise ValueError(f"participant names {names} must be distinct and not 'dealer'")
    extra = [] if analyst is None else ["analyst"]
    if "analyst" in names and extra:
        raise ValueError("a data party is called 'analyst' and --analyst is given; rename one")
    addrs = [_address(a, n) for n, a in parties] + [_address(dealer, "dealer")] \
        + ([] if analyst is None else [_address(analyst, "analyst")])
    taken = [a for a in addrs if addrs.count(a) > 1]
    if taken:
        raise ValueError(f"address {taken[0][0]}:{taken[0][1]} is given to two participants")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    n = len(parties)
    ca_cert, ca_key = generate_ca(federation, days=days)
    write_cert(ca_cert, d / "ca.crt")
    parts = []
    for pid, (name, (host, port)) in enumerate(zip(names + ["dealer"] + extra, addrs)):
        cert, key = issue_participant_cert(ca_cert, ca_key, federation, pid, n, hosts=(host,),
                                           days=days)
        write_cert(cert, d / f"{name}.crt")
        write_key(key, d / f"{name}.key")
        parts.append(Participant(pid, host, port, f"{name}.crt", name))
    cfg = FederationConfig(federation=federation, n_parties=n, ca="ca.crt",
                           participants=tuple(parts), timeout=float(timeout),
                           connect_timeout=float(connect_timeout))
    (d / "federation.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    return FederationConfig.load(d / "federation.json")


def main(argv=None) -> int:
    """``python -m ppboost.transport DIR --parties N [--host H] [--ports P0,P1,..]``.

    Writes a throwaway federation (CA, per-participant keys/certificates,
    config.json) into DIR and prints the config path and key paths.
    """
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m ppboost.transport",
                                 description="create a federation CA, certificates, keys and config.json")
    ap.add_argument("directory")
    ap.add_argument("--parties", type=int, required=True, help="number of data parties (the dealer is extra)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--ports", default=None, help="comma-separated, one per participant (dealer last)")
    ap.add_argument("--federation", default="ppboost")
    ap.add_argument("--write-ca-key", action="store_true", help="also keep the CA key (ca-key.pem)")
    args = ap.parse_args(argv)
    ports = None if args.ports is None else [int(p) for p in args.ports.split(",")]
    cfg, keys = make_federation(args.directory, args.parties, host=args.host, ports=ports,
                                federation=args.federation, write_ca_key=args.write_ca_key)
    print(json.dumps({"config": str(Path(args.directory).resolve() / "config.json"),
                      "keys": {cfg.name(i): k for i, k in keys.items()}}, indent=2))
    return 0
