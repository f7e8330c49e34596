"""The ``ppboost`` command line.

Subcommands (``ppboost <command> --help`` for all options):

``serve``
    Run the encrypted prediction HTTP service (:mod:`ppboost.inference.server`)::

        ppboost serve --db models.db --host 127.0.0.1 --port 8000 --admin-token-file admin.tok
        ppboost serve --db models.db --host 0.0.0.0 --port 8443 --admin-token-file admin.tok \
                      --tls-cert server.crt --tls-key server.key

    The admin token comes from ``--admin-token-file`` or ``$PPBOOST_ADMIN_TOKEN``.
    HTTPS with ``--tls-cert``/``--tls-key``; plain HTTP on an address that is not
    loopback is refused unless ``--insecure-http`` (a warning is logged).
``enroll``
    Run the trusted Proxy locally: build a user's keys and encrypted model from
    an xgboost JSON model, upload the model, write the user's keys file::

        ppboost enroll --model model.json --user alice --server URL --admin-token T --out alice.keys

``query``
    Encrypt rows, send them, decrypt the scores and print them (CSV or JSON)::

        ppboost query --keys alice.keys --input rows.csv [--format csv|json] [--output-margin]

``delete``
    Delete a user's model and token from the server (admin).

``enroll``, ``query`` and ``delete`` verify an ``https://`` server against
``--ca FILE`` (the CA certificate that signed the server's), else against the
system's trust store.  User ids are checked by
:func:`ppboost.inference.ids.validate_user_id` before anything is sent.
``demo``
    Run ``ppboost.demo.main()``.

The keys file
-------------
``enroll --out alice.keys`` writes the user's keys file (mode 0600): the
format and its reader and writer are in :mod:`ppboost.inference.keys`.

Exit codes: 0 success; 1 the server refused the request (the HTTP status is
explained); 2 bad command-line input or local files (a user id that breaks the
rule, an infinite input value, an unreadable CA file); 3 server unreachable, or
its TLS certificate not accepted (nothing was sent).
Expected errors print one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import stat
import sys
from pathlib import Path

from .errors import PPBoostError

__all__ = ["main", "build_parser", "CliError", "read_rows"]

ADMIN_ENV = "PPBOOST_ADMIN_TOKEN"
_MISSING = {"", "nan", "na", "n/a", "null", "none", "?", "-"}
_FLT_MAX = 3.4028234663852886e38          # the largest finite float32


class CliError(PPBoostError):
    """An expected failure: printed as one line, exit with ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------
# helpers
def _warn(message: str) -> None:
    print(f"ppboost: warning: {message}", file=sys.stderr)


def warn_if_loose(path: str, what: str) -> bool:
    """Warn on stderr if group or others may read or write ``path``; True if so."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return False
    if mode & 0o077:
        _warn(f"{what} file {path!r} is readable or writable by group or others "
              f"(mode {mode:04o}); run chmod 600 {path}")
        return True
    return False


def _read_token_file(path: str, what: str) -> str:
    try:
        tok = Path(path).read_text().strip()
    except OSError as e:
        raise CliError(f"cannot read {what} file {path!r}: {e.strerror}") from None
    if not tok:
        raise CliError(f"{what} file {path!r} is empty")
    warn_if_loose(path, what)
    return tok


def _user_id(user_id, where: str = "--user") -> str:
    from ppboost.inference.ids import validate_user_id
    try:
        return validate_user_id(user_id)
    except ValueError as e:
        raise CliError(f"{where}: {e}") from None


def _admin_token(args, required: bool = True) -> str | None:
    if getattr(args, "admin_token", None):
        return args.admin_token
    if getattr(args, "admin_token_file", None):
        return _read_token_file(args.admin_token_file, "admin token")
    tok = os.environ.get(ADMIN_ENV, "").strip()
    if tok:
        return tok
    if required:
        raise CliError(f"no admin token: pass --admin-token, --admin-token-file or set ${ADMIN_ENV}")
    return None


def _parse_cell(cell: str, where: str) -> float:
    s = cell.strip()
    if s.lower() in _MISSING:
        return math.nan
    try:
        v = float(s)
    except ValueError:
        raise CliError(f"{where}: {cell!r} is not a number (missing values: empty or NaN)") from None
    if math.isinf(v) or abs(v) > _FLT_MAX:
        raise CliError(f"{where}: {cell!r} is not a finite number (inf and values beyond "
                       "float32's range are refused, as by xgboost; missing values: empty or "
                       "NaN)")
    return v


def read_rows(text: str, name: str = "input"):
    """Parse CSV (optional header row) or a JSON list of rows into a float64 matrix.

    Empty cells and ``NaN``/``NA``/``null`` are missing values (``NaN``).
    ``inf`` (or a value beyond float32's range) is refused, naming its row
    (0-based, as the query's rows), line and feature.
    """
    import numpy as np

    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise CliError(f"{name}: not valid JSON ({e})") from None
        if data and not isinstance(data[0], list):
            data = [data]
        rows = []
        for i, row in enumerate(data):
            if not isinstance(row, list):
                raise CliError(f"{name}: row {i} is not a list")
            rows.append([math.nan if v is None else
                         _parse_cell(str(v), f"{name} row {i}, feature {j}")
                         for j, v in enumerate(row)])
    else:
        rd = csv.reader(io.StringIO(text))
        reader, lines = [], []
        for r in rd:
            if any(c.strip() for c in r):
                reader.append(r)
                lines.append(rd.line_num)
        if reader:
            first = reader[0]

            def numeric(c):
                try:
                    float(c)
                    return True
                except ValueError:
                    return c.strip().lower() in _MISSING
            if not all(numeric(c) for c in first):
                reader, lines = reader[1:], lines[1:]           # a header row
        rows = [[_parse_cell(c, f"{name} row {i} (line {ln}), feature {j}")
                 for j, c in enumerate(r)] for i, (r, ln) in enumerate(zip(reader, lines))]
    if not rows:
        raise CliError(f"{name}: no rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise CliError(f"{name}: rows have different numbers of columns {sorted(widths)}")
    return np.asarray(rows, dtype=np.float64)


def _server_extra(module: str):
    """Import a module of the prediction service, or say which extra installs it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise CliError(f"this command needs the prediction service's packages ({e.name} is "
                       "missing): pip install 'ppboost[server]'") from None


def _service(url: str, **kw):
    ServiceClient = _server_extra("ppboost.inference.http_client").ServiceClient
    try:
        return ServiceClient(url, **kw)
    except ValueError as e:
        raise CliError(str(e)) from None


def _progress(total, desc, unit="it", quiet=False, **kw):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                leave=False, **kw)


# ---------------------------------------------------------------------------
# subcommands
def cmd_serve(args) -> int:
    from ppboost.inference import service_config as sc
    ServerConfig, admin_token_digest, check_listen = (sc.ServerConfig, sc.admin_token_digest,
                                                      sc.check_listen)
    serve = _server_extra("ppboost.inference.server").serve

    token = _admin_token(args, required=False)
    if token is None:
        raise CliError(f"no admin token: pass --admin-token-file or set ${ADMIN_ENV} "
                       "(the token that may upload and delete models)")
    if len(token) < 16:
        raise CliError(f"admin token is {len(token)} characters long, must be >= 16")
    if not (0 < args.port < 65536):
        raise CliError(f"--port == {args.port}, must be in 1..65535")
    if args.workers < 1:
        raise CliError(f"--workers == {args.workers}, must be >= 1")
    try:
        check_listen(args.host, args.tls_cert, args.tls_key, args.insecure_http)
        config = ServerConfig(db_path=str(Path(args.db).resolve()),
                              admin_token_sha256=admin_token_digest(token),
                              max_batch=args.max_batch, max_body_bytes=args.max_body_bytes,
                              max_model_bytes=args.max_model_bytes,
                              cache_size=args.cache_size, log_level=args.log_level)
        from ppboost.inference.store import ModelStore
        store = ModelStore(config.db_path)
        loose = store.loose_files()
        store.close()
    except ValueError as e:
        raise CliError(str(e)) from None
    for path, mode in loose:
        _warn(f"database file {str(path)!r} is readable or writable by group or others "
              f"(mode {mode:04o}); it holds the models and token digests: run chmod 600 {path}")
    if args.tls_key:
        warn_if_loose(args.tls_key, "TLS key")
    scheme = "https" if args.tls_cert else "http"
    body = (f"max_body_bytes {config.max_body_bytes}" if config.max_body_bytes is not None
            else "predict bodies up to the largest valid query of each model")
    print(f"ppboost serve: {scheme}://{args.host}:{args.port} (db {config.db_path}, "
          f"{args.workers} worker(s), max_batch {config.max_batch}, {body}, model uploads up "
          f"to {config.upload_limit()[0]} bytes; OpenAPI at /openapi.json)", file=sys.stderr,
          flush=True)
    serve(config, host=args.host, port=args.port, workers=args.workers,
          log_level=args.log_level, access_log=args.access_log, tls_cert=args.tls_cert,
          tls_key=args.tls_key, insecure_http=args.insecure_http)
    return 0


def cmd_enroll(args) -> int:
    from ppboost.inference import Proxy
    from ppboost.inference.keys import load_client_keys, save_client_keys

    _user_id(args.user)
    if args.key_bits < 1024 or args.key_bits % 8:
        raise CliError(f"--key-bits == {args.key_bits}, must be >= 1024 and a multiple of 8 "
                       "(3072 recommended)")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CliError(f"{str(out)!r} exists; pass --force to overwrite it")
    if not Path(args.model).is_file():
        raise CliError(f"model file {args.model!r} not found (an xgboost JSON model)")
    admin = _admin_token(args)
    quiet = args.quiet
    with _service(args.server, admin_token=admin, timeout=args.timeout, ca=args.ca) as svc:
        svc.health()                               # fail fast before the slow part
        steps = _progress(3, f"enrolling {args.user}", unit="step", quiet=quiet)
        steps.set_postfix_str("encrypting the model")
        try:
            enrollment = Proxy(args.model, key_bits=args.key_bits).enroll(args.user)
        except (ValueError, OSError) as e:
            raise CliError(f"cannot enrol with model {args.model!r}: {e}") from None
        steps.update(1)
        steps.set_postfix_str("uploading")
        blob = enrollment.model.to_bytes()
        with _progress(len(blob), "upload", unit="B", quiet=quiet, unit_scale=True) as bar:
            answer = svc.upload_model(args.user, blob, rotate_token=args.rotate_token,
                                      progress=bar.update)
        steps.update(1)
        token = answer.get("token")
        if token is None:
            # the server kept the previous token: keep it from the existing keys file
            prev = load_client_keys(out) if out.exists() else None
            token = prev.get("token") if prev else None
            if token is None:
                raise CliError("the server kept the user's previous token and no previous "
                               "keys file holds it; rerun with --rotate-token", code=1)
        save_client_keys(out, keys=enrollment.keys, user_id=args.user, server=svc.base_url,
                         token=token, key_fingerprint=str(enrollment.keys.key_fingerprint),
                         force=True)
        steps.update(1)
        steps.close()
    model = enrollment.model
    print(f"enrolled {args.user!r}: {model.n_features} features, {model.n_outputs} output(s), "
          f"{len(blob)} bytes uploaded ({'new user' if answer.get('created') else 'replaced'}"
          f"{', new token' if answer.get('token') else ''}); keys written to {out} (mode 0600)",
          file=sys.stderr)
    return 0


def cmd_query(args) -> int:
    import numpy as np

    from ppboost.inference.keys import load_client_keys

    doc = load_client_keys(args.keys)
    server = args.server or doc.get("server")
    if not server:
        raise CliError("no server URL: pass --server (the keys file has none)")
    token = doc.get("token")
    if not token:
        raise CliError(f"keys file {args.keys!r} holds no access token")
    if args.input == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.input).read_text()
        except OSError as e:
            raise CliError(f"cannot read input {args.input!r}: {e.strerror}") from None
    user = _user_id(doc["user_id"], f"keys file {args.keys!r}")
    X = read_rows(text, args.input)
    from ppboost.inference import Client
    client = Client(doc["keys"])
    outs = []
    with _service(server, token=token, timeout=args.timeout, ca=args.ca) as svc:
        limit = int(svc.health().get("max_batch", args.batch_size))
        batch = max(1, min(args.batch_size, limit))
        starts = range(0, X.shape[0], batch)
        with _progress(X.shape[0], "query", unit="row", quiet=args.quiet or len(starts) < 2) as bar:
            for s in starts:
                part = X[s:s + batch]
                try:
                    q = client.encrypt(part)
                except ValueError as e:
                    raise CliError(f"input: {e}") from None
                res = svc.predict(user, q)
                outs.append(np.asarray(client.decrypt(res, output_margin=args.output_margin),
                                       dtype=np.float64))
                bar.update(part.shape[0])
    pred = np.concatenate(outs, axis=0)
    sys.stdout.write(format_predictions(pred, args.format, user, args.output_margin))
    return 0


def format_predictions(pred, fmt: str, user_id: str, output_margin: bool) -> str:
    """Scores as CSV (header, one row per input row) or as one JSON document."""
    import numpy as np

    pred = np.asarray(pred, dtype=np.float64)
    kind = "margin" if output_margin else "score"
    if fmt == "json":
        return json.dumps({"user_id": user_id, "output_margin": bool(output_margin),
                           "n_rows": int(pred.shape[0]), "predictions": pred.tolist()}) + "\n"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if pred.ndim == 1:
        w.writerow([kind])
        w.writerows([[repr(float(v))] for v in pred])
    else:
        w.writerow([f"{kind}_{j}" for j in range(pred.shape[1])])
        w.writerows([[repr(float(v)) for v in row] for row in pred])
    return buf.getvalue()


def cmd_delete(args) -> int:
    _user_id(args.user)
    with _service(args.server, admin_token=_admin_token(args),
                  timeout=args.timeout, ca=args.ca) as svc:
        svc.delete_model(args.user)
    print(f"deleted {args.user!r}'s model and token", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    from ppboost import demo
    return demo.main()


# ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ppboost", description="Privacy-preserving gradient "
                                "boosting: secure training and encrypted prediction.")
    sub = p.add_subparsers(dest="command", metavar="<command>")

    def admin_opts(sp):
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--admin-token", help=f"admin token (visible in the process list; "
                       f"prefer --admin-token-file or ${ADMIN_ENV})")
        g.add_argument("--admin-token-file", help="file whose content is the admin token")

    def ca_opt(sp):
        sp.add_argument("--ca", metavar="FILE", help="PEM file of the CA certificate that signed "
                        "the https:// server's certificate (default: the system trust store)")

    s = sub.add_parser("serve", help="run the encrypted prediction HTTP service")
    s.add_argument("--db", required=True, help="SQLite file (created if missing)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--admin-token-file", help=f"file holding the admin token (or ${ADMIN_ENV})")
    s.add_argument("--max-batch", type=int, default=1024, help="max rows per predict request")
    s.add_argument("--max-body-bytes", type=int, default=None,
                   help="max request body size in bytes, uploads included (default: each "
                   "predict body up to the largest valid query for that user's model, "
                   "max_batch rows)")
    s.add_argument("--max-model-bytes", type=int, default=64 * 1024 * 1024,
                   help="max model upload size in bytes (admin token only; default 64 MiB)")
    s.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain: serve HTTPS")
    s.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    s.add_argument("--insecure-http", action="store_true",
                   help="allow plain HTTP on an address that is not loopback (tokens and "
                   "queries in clear; for a TLS proxy in front); logs a warning")
    s.add_argument("--workers", type=int, default=1,
                   help="uvicorn worker processes (each evaluates on one core; "
                   "2 measured best on a 2-core machine)")
    s.add_argument("--cache-size", type=int, default=32, help="models kept deserialised")
    s.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])
    s.add_argument("--access-log", action="store_true", help="log every request")
    s.set_defaults(func=cmd_serve)

    e = sub.add_parser("enroll", help="encrypt a model for a user, upload it, write the keys")
    e.add_argument("--model", required=True, help="xgboost JSON model")
    e.add_argument("--user", required=True, help="user id")
    e.add_argument("--server", required=True, help="server URL, e.g. http://127.0.0.1:8000")
    admin_opts(e)
    ca_opt(e)
    e.add_argument("--out", required=True, help="keys file to write (mode 0600)")
    e.add_argument("--key-bits", type=int, default=3072,
                   help="Paillier modulus size (default 3072; small values are for tests only)")
    e.add_argument("--rotate-token", action="store_true",
                   help="ask the server for a new access token even if the keys are unchanged")
    e.add_argument("--force", action="store_true", help="overwrite --out")
    e.add_argument("--timeout", type=float, default=300.0, help="HTTP timeout in seconds")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_enroll)

    q = sub.add_parser("query", help="encrypt rows, query the server, decrypt the scores")
    q.add_argument("--keys", required=True, help="keys file written by `ppboost enroll`")
    q.add_argument("--server", help="server URL (default: the one in the keys file)")
    ca_opt(q)
    q.add_argument("--input", required=True,
                   help="CSV (optional header; empty/NaN = missing) or JSON rows; '-' = stdin")
    q.add_argument("--format", choices=["csv", "json"], default="csv", help="output format")
    q.add_argument("--output-margin", action="store_true", help="print margins, not scores")
    q.add_argument("--batch-size", type=int, default=64, help="rows per request")
    q.add_argument("--timeout", type=float, default=120.0, help="HTTP timeout in seconds")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_query)

    d = sub.add_parser("delete", help="delete a user's model and token (admin)")
    d.add_argument("--user", required=True)
    d.add_argument("--server", required=True)
    admin_opts(d)
    ca_opt(d)
    d.add_argument("--timeout", type=float, default=60.0)
    d.set_defaults(func=cmd_delete)

    m = sub.add_parser("demo", help="run the end-to-end demo")
    m.set_defaults(func=cmd_demo)
    from .cli_deploy import add_commands  # federation, party, dealer
    add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    import faulthandler
    import signal
    if hasattr(signal, "SIGUSR1"):      # `kill -USR1 PID`: every thread's stack to stderr
        try:
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        except (AttributeError, ValueError, OSError):   # stderr without a file descriptor
            pass
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from ppboost.inference.keys import KeysFileError
    from ppboost.inference.service_errors import ServerUnreachable, ServiceError
    try:
        return args.func(args)
    except CliError as e:
        who = f" ({args.me})" if getattr(args, "me", None) else ""
        print(f"ppboost {args.command}{who}: error: {e}", file=sys.stderr)
        return e.code
    except KeysFileError as e:
        print(f"ppboost {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ServerUnreachable as e:
        print(f"ppboost {args.command}: error: {e}", file=sys.stderr)
        return 3
    except ServiceError as e:
        print(f"ppboost {args.command}: error: the server refused the request: {e}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ppboost {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
