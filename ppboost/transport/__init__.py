"""L1: moving bytes between parties (in-process threads, or TLS sockets).

* :mod:`.base` - the :class:`Endpoint` interface, framing, byte/round counting.
* :mod:`.inprocess` - threads and queues (simulation, tests): :func:`run_inprocess`.
* :mod:`.tls` - TLS 1.3 with mutual certificate authentication: :func:`connect_tls`.
* :mod:`.config` / :mod:`.certs` - the federation config file, CA and certificates.
* :mod:`.launch` - one OS process per participant: :func:`run_processes`, :func:`run_local`.
"""
from .base import Endpoint, PeerFailed, Stats, TransportError, TransportTimeout, decode, encode
from .config import FederationConfig, Participant
from .inprocess import Hub, InProcessEndpoint, run_inprocess
from .launch import Outcome, run_local, run_processes
from .tls import HandshakeError, TLSEndpoint, connect_tls

__all__ = ["Endpoint", "PeerFailed", "Stats", "TransportError", "TransportTimeout",
           "decode", "encode", "Hub", "InProcessEndpoint", "run_inprocess",
           "FederationConfig", "Participant", "make_federation",
           "HandshakeError", "TLSEndpoint", "connect_tls",
           "Outcome", "run_local", "run_processes"]


def __getattr__(name):
    # certs needs `cryptography`; load it only when certificates are made, so that
    # participant processes (which only verify certificates, via ssl) start faster
    if name == "make_federation":
        from .certs import make_federation
        return make_federation
    raise AttributeError(f"module 'ppboost.transport' has no attribute {name!r}")
