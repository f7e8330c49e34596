"""ppboost's exception hierarchy: one base class, one branch per layer.

::

    PPBoostError
    ├── DataError (ValueError)       bad input data, found before anything is shared
    ├── JobError (ValueError)        a bad job or federation description
    ├── AgreementError               participants disagree on the public facts of a job
    ├── ProtocolError                a secure protocol was misused or its peers disagree
    ├── TransportError (RuntimeError) a connection failed, timed out or a peer died
    ├── ServiceError                 the prediction service refused or failed a request
    └── FormatError (ValueError)     a model, keys or checkpoint file is malformed

Every module raises a subclass of the branch of its layer, so a caller can
catch ``PPBoostError`` for anything ppboost refuses, and the built-in base
(``ValueError``, ``RuntimeError``) keeps older ``except`` clauses working.
The subclasses: ``data.DataValidationError``, ``inference.messages.NonFiniteQuery``
(DataError); ``mpc.dealer.DealerError`` (ProtocolError);
``transport.base.TransportTimeout``, ``PeerFailed``, ``transport.tls.HandshakeError``
(TransportError); ``inference.service_errors.ServiceError``, ``ServerUnreachable``,
``inference.server.ApiError`` (ServiceError); ``inference.keys.KeysFileError``
(FormatError); ``dp.DPError``; ``cli.CliError`` (an expected command-line failure,
printed on one line) and ``demo.DemoUnavailable`` (the demo cannot go on).
"""
from __future__ import annotations

__all__ = ["PPBoostError", "DataError", "JobError", "AgreementError", "ProtocolError",
           "TransportError", "ServiceError", "FormatError"]


class PPBoostError(Exception):
    """Base class of every error ppboost raises on purpose."""


class DataError(PPBoostError, ValueError):
    """Bad input data: raised at its owner's site, before anything is shared."""


class JobError(PPBoostError, ValueError):
    """A job file or federation file that cannot be used (names the key and the problem)."""


class AgreementError(PPBoostError):
    """The participants' announced public facts disagree.

    Every participant computes the same message from the same announced
    facts, so all of them stop with the same text.
    """


class ProtocolError(PPBoostError):
    """A secure protocol was called inconsistently, or its peers disagree about a request."""


class TransportError(PPBoostError, RuntimeError):
    """A message could not be delivered: connection, timeout, or a peer that failed."""


class ServiceError(PPBoostError):
    """The prediction service refused or could not serve a request."""


class FormatError(PPBoostError, ValueError):
    """A model, keys or checkpoint file is malformed or belongs to something else."""
