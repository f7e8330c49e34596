"""The federation config file: who takes part, where they listen, which certificates.

One JSON file is shared by every participant (it holds nothing secret).  Each
process loads it together with its **own** private key, which never appears in
the config.  Relative paths are resolved against the directory of the config
file.  Example for two data parties and the dealer (id 2 == ``n_parties``)::

    {
      "federation": "demo",            # name baked into every certificate
      "n_parties": 2,                  # data parties 0..n-1; the dealer is n
      "ca": "ca.pem",                  # the federation CA (PEM) that signed every cert
      "timeout": 60.0,                 # seconds a recv may wait (optional, default 60)
      "connect_timeout": 30.0,         # seconds for the whole set-up (optional, default 30)
      "participants": [                # "name" is optional ("party <id>" / "dealer")
        {"id": 0, "host": "127.0.0.1", "port": 47001, "cert": "party0.pem", "name": "hospital_a"},
        {"id": 1, "host": "127.0.0.1", "port": 47002, "cert": "party1.pem"},
        {"id": 2, "host": "127.0.0.1", "port": 47003, "cert": "dealer.pem"}
      ]
    }

(JSON has no comments; the ``#`` notes above are documentation only.)
:func:`ppboost.transport.certs.make_federation` writes such a file together
with a throwaway CA and one certificate/key pair per participant.

Each participant's certificate carries its identity as a subjectAltName URI
``urn:ppboost:<federation>:<id>`` (see :mod:`ppboost.transport.certs`); the
TLS transport checks it against the id it expects at that address.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["Participant", "FederationConfig"]


@dataclass(frozen=True)
class Participant:
    """One line of the config: participant ``id`` listens on ``host:port``."""
    id: int
    host: str
    port: int
    cert: str
    name: str = ""          # e.g. "hospital_a"; "" means "party <id>" / "dealer"


@dataclass(frozen=True)
class FederationConfig:
    """Parsed, validated federation config (see the module docstring for the file format)."""
    federation: str
    n_parties: int
    ca: str
    participants: tuple = field(default_factory=tuple)
    timeout: float = 60.0
    connect_timeout: float = 30.0

    def __post_init__(self):
        if not isinstance(self.federation, str) or not self.federation or ":" in self.federation:
            raise ValueError(f"federation == {self.federation!r}, must be a non-empty name without ':'")
        if not isinstance(self.n_parties, int) or self.n_parties < 2:
            raise ValueError(f"n_parties == {self.n_parties!r}, must be an int >= 2")
        ids = sorted(p.id for p in self.participants)
        want = list(range(self.n_parties + 1))
        if ids not in (want, want + [self.n_parties + 1]):
            raise ValueError(f"participant ids == {ids}, must be exactly {want} (data parties "
                             f"0..{self.n_parties - 1}, dealer {self.n_parties}), optionally "
                             f"with an analyst {self.n_parties + 1}")
        for p in self.participants:
            if not isinstance(p.port, int) or not (0 <= p.port <= 65535):
                raise ValueError(f"participant {p.id}: port == {p.port!r}, must be an int in 0..65535")
            if not isinstance(p.host, str) or not p.host:
                raise ValueError(f"participant {p.id}: host == {p.host!r}, must be a host name or address")
        if not (self.timeout > 0):
            raise ValueError(f"timeout == {self.timeout!r}, must be > 0 seconds")
        if not (self.connect_timeout > 0):
            raise ValueError(f"connect_timeout == {self.connect_timeout!r}, must be > 0 seconds")
        object.__setattr__(self, "participants", tuple(sorted(self.participants, key=lambda p: p.id)))
        named = [p.name for p in self.participants if p.name]
        if len(set(named)) != len(named):
            raise ValueError(f"participant names {named} repeat a name; each must be unique")

    # ------------------------------------------------------------------ access
    @property
    def dealer_id(self) -> int:
        return self.n_parties

    @property
    def n_participants(self) -> int:
        """Data parties, the dealer and, if the federation has one, an analyst of its own."""
        return len(self.participants)

    def participant(self, pid: int) -> Participant:
        if not (0 <= pid < self.n_participants):
            raise ValueError(f"participant id == {pid}, must be in 0..{self.n_participants - 1}")
        return self.participants[pid]

    def name(self, pid: int) -> str:
        """The participant's name in messages: its configured name, else ``party <id>`` / ``dealer``."""
        named = self.participants[pid].name if 0 <= pid < len(self.participants) else ""
        return named or {self.n_parties: "dealer", self.n_parties + 1: "analyst"}.get(
            pid, f"party {pid}")

    def names(self) -> list:
        """Every participant's name, by id (the dealer last)."""
        return [self.name(i) for i in range(self.n_participants)]

    def id_of(self, name: str) -> int:
        """The id of the participant called ``name`` (raises naming the known ones)."""
        names = self.names()
        if name not in names:
            raise ValueError(f"no participant {name!r} in federation {self.federation!r}; "
                             f"its participants are {names}")
        return names.index(name)

    def with_ports(self, ports) -> FederationConfig:
        """A copy with participant ``i`` listening on ``ports[i]``."""
        if len(ports) != self.n_participants:
            raise ValueError(f"{len(ports)} ports for {self.n_participants} participants")
        parts = tuple(replace(p, port=int(ports[p.id])) for p in self.participants)
        return replace(self, participants=parts)

    def with_timeouts(self, timeout=None, connect_timeout=None) -> FederationConfig:
        return replace(self, timeout=self.timeout if timeout is None else float(timeout),
                       connect_timeout=(self.connect_timeout if connect_timeout is None
                                        else float(connect_timeout)))

    # ------------------------------------------------------------------ (de)serialise
    @classmethod
    def from_dict(cls, d: dict, base_dir: str | os.PathLike | None = None) -> FederationConfig:
        """Build from the JSON structure; relative paths are resolved against ``base_dir``."""
        for key in ("federation", "n_parties", "ca", "participants"):
            if key not in d:
                raise ValueError(f"federation config lacks the key {key!r} "
                                 "(needs federation, n_parties, ca, participants)")
        base = Path(base_dir) if base_dir is not None else Path.cwd()

        def path(p):
            return str((base / p).resolve()) if not os.path.isabs(p) else str(p)

        parts = []
        for i, entry in enumerate(d["participants"]):
            missing = [k for k in ("id", "host", "port", "cert") if k not in entry]
            if missing:
                raise ValueError(f"participants[{i}] lacks {missing} (needs id, host, port, cert)")
            parts.append(Participant(int(entry["id"]), str(entry["host"]), entry["port"],
                                     path(entry["cert"]), str(entry.get("name", ""))))
        return cls(federation=d["federation"], n_parties=d["n_parties"], ca=path(d["ca"]),
                   participants=tuple(parts), timeout=float(d.get("timeout", 60.0)),
                   connect_timeout=float(d.get("connect_timeout", 30.0)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> FederationConfig:
        """Read a JSON config file."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"federation config {path} is not valid JSON: {exc}") from None
        return cls.from_dict(d, base_dir=path.parent)

    def to_dict(self) -> dict:
        return {"federation": self.federation, "n_parties": self.n_parties, "ca": self.ca,
                "timeout": self.timeout, "connect_timeout": self.connect_timeout,
                "participants": [{"id": p.id, "host": p.host, "port": p.port, "cert": p.cert,
                                  **({"name": p.name} if p.name else {})}
                                 for p in self.participants]}

    def save(self, path: str | os.PathLike) -> None:
        """Write the JSON config file (paths are written as stored, i.e. absolute)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
