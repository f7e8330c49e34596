"""L1: moving bytes between parties (in-process threads, or TLS sockets)."""
from .base import Endpoint, PeerFailed, Stats, TransportError, TransportTimeout, decode, encode
from .inprocess import Hub, InProcessEndpoint, run_inprocess

__all__ = ["Endpoint", "PeerFailed", "Stats", "TransportError", "TransportTimeout",
           "decode", "encode", "Hub", "InProcessEndpoint", "run_inprocess"]
