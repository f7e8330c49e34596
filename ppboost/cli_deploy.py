"""``ppboost federation init``, ``ppboost party`` and ``ppboost dealer``: one site's commands.

::

    ppboost federation init DIR --party hospital_a=10.0.0.1:7001 --party insurer=10.0.0.2:7002 \\
                                --dealer 10.0.0.9:7009
    ppboost party  --federation DIR/federation.json --me hospital_a --key DIR/hospital_a.key \\
                   --job job.json --data hospital_a.csv --out model.json
    ppboost dealer --federation DIR/federation.json --key DIR/dealer.key --job job.json
    ppboost analyst --federation DIR/federation.json --key DIR/analyst.key --job job.json \
                    --out model.json          # only with `federation init --analyst HOST:PORT`

Each command is one participant's process: it reads only its own files,
joins the mutual-TLS mesh (:func:`ppboost.transport.tls.connect_tls`) and
runs :func:`ppboost.training.run_party` / :func:`~ppboost.training.run_dealer`.
Exit codes: 0 done; 1 the training stopped (disagreement, a peer failed or
went silent, a protocol error: the message names the participant); 2 bad
command line or local files; 130 interrupted (the others are told).
"""
from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

__all__ = ["add_commands"]


from .cli import CliError as _Stop  # one line on stderr, exit with its code


def _load(args, me_name: str | None, role: str = "party"):
    from .errors import JobError
    from .training.job import Job
    from .transport.config import FederationConfig
    try:
        config = FederationConfig.load(args.federation)
    except OSError as exc:
        raise _Stop(f"cannot read the federation file {args.federation}: {exc.strerror}", 2) from None
    except ValueError as exc:
        raise _Stop(f"federation file {args.federation}: {exc}", 2) from None
    try:
        me = {"dealer": config.dealer_id, "analyst": config.n_parties + 1}.get(role) \
            if me_name is None else config.id_of(me_name)
    except ValueError as exc:
        raise _Stop(str(exc), 2) from None
    if role == "analyst" and config.n_participants != config.n_parties + 2:
        raise _Stop("this federation has no analyst of its own (federation init --analyst "
                    "HOST:PORT); the job's analyst is one of the data parties", 2)
    if me_name is not None and me >= config.dealer_id:
        raise _Stop(f"{me_name!r} is not a data party; run `ppboost "
                    f"{'dealer' if me == config.dealer_id else 'analyst'}`", 2)
    try:
        job = Job.load(args.job)
    except JobError as exc:
        raise _Stop(str(exc), 2) from None
    if not Path(args.key).is_file():
        raise _Stop(f"the key file {args.key} does not exist", 2)
    return config, me, job


def _connect(config, me, key, job):
    from .transport.tls import connect_tls
    return connect_tls(config, me, str(key), timeout=float(job.timeout))


def _summary(name: str, st: dict, seconds: float, dealer: bool) -> str:
    trees = "" if dealer else f" ({len(st.get('per_tree', []))} trees)"
    setup = st.get("setup_messages")
    rss = f", peak memory {st['peak_rss_bytes'] / 2**20:.0f} MiB" if "peak_rss_bytes" in st else ""
    return (f"{name}: {st['bytes_sent'] / 1e6:.2f} MB sent, {st['rounds']} rounds in training"
            f"{trees}, {seconds:.1f} s in all{rss}"
            + (f"; set-up (agreement, alignment) {setup['bytes_sent'] / 1e6:.2f} MB, "
               f"{setup['rounds']} rounds" if setup else ""))


def _run(args, me_name: str | None, role: str = "party") -> int:
    from .errors import DataError, PPBoostError
    t0 = time.perf_counter()
    config, me, job = _load(args, me_name, role)
    if args.resume and not args.checkpoint:
        raise _Stop("--resume needs --checkpoint CKDIR (where the state was saved)", 2)
    name = config.name(me)
    names = config.names()
    is_analyst = name == job.analyst
    if role == "analyst" and not args.out:
        raise _Stop("the analyst writes the model: give --out FILE", 2)
    if me_name is not None:
        if is_analyst and not args.out:
            raise _Stop(f"{name} is the job's analyst: give --out FILE for the model", 2)
        if args.out and not is_analyst:
            raise _Stop(f"only the analyst ({job.analyst}) receives the model; {name} has no "
                        "--out", 2)
    site, error = None, None
    if me_name is not None:
        from .training.site import read_site
        try:
            site = read_site(args.data, job, name)
        except DataError as exc:
            error = exc                  # announced, so that every participant stops with it
            detail = getattr(exc, "local_detail", None)
            if detail:
                print(f"ppboost party ({name}): local detail, not shared: {detail}", file=sys.stderr)
    try:
        ep = _connect(config, me, args.key, job)
    except PPBoostError as exc:
        raise _Stop(str(exc), 1) from None
    except OSError as exc:
        raise _Stop(f"{name}: {exc}", 1) from None
    except KeyboardInterrupt:
        raise _Stop("interrupted while joining the federation", 130) from None

    def on_term(signum, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, on_term)
    try:
        if role == "dealer":
            from .training import run_dealer
            out = run_dealer(job, ep, names=names, checkpoint=args.checkpoint,
                             resume=args.resume)
            result = {"stats": out, "model": None}
        elif role == "analyst":
            from .training import run_analyst
            result = run_analyst(job, ep, names=names)
        else:
            from .training import run_party
            result = run_party(job, ep, site, names=names, error=error,
                               verbose=not args.quiet and sys.stderr.isatty(),
                               checkpoint=args.checkpoint, resume=args.resume)
        if result["model"] is not None:
            booster = result["model"].reveal()
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            booster.save_model(str(args.out))
            print(f"{name}: model written to {args.out} ({result['model'].num_trees} trees)")
        ep.close()
    except KeyboardInterrupt:
        ep.abort(f"{name} was interrupted (Ctrl-C or SIGTERM)")
        raise _Stop("interrupted; the other participants were told", 130) from None
    except PPBoostError as exc:
        ep.abort(f"{type(exc).__name__}: {exc}")
        raise _Stop(str(exc), 1) from None
    except (ValueError, TypeError) as exc:        # parameter checks shared by every party
        ep.abort(f"{type(exc).__name__}: {exc}")
        raise _Stop(str(exc), 1) from None
    finally:
        signal.signal(signal.SIGTERM, old)
    print(_summary(name, result["stats"], time.perf_counter() - t0, role != "party"))
    if getattr(args, "stats_json", None):
        Path(args.stats_json).write_text(json.dumps(_jsonable(result["stats"]), indent=1))
    return 0


def _jsonable(obj):
    import numpy as np
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if k != "opened"}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def cmd_party(args) -> int:
    return _run(args, args.me)


def cmd_dealer(args) -> int:
    return _run(args, None, "dealer")


def cmd_analyst(args) -> int:
    return _run(args, None, "analyst")


def cmd_federation_init(args) -> int:
    from .transport.certs import init_federation
    parties = []
    for spec in args.party or []:
        name, sep, addr = spec.partition("=")
        if not sep:
            raise _Stop(f"--party {spec!r}: expected NAME=HOST:PORT", 2)
        parties.append((name, addr))
    try:
        cfg = init_federation(args.directory, parties, args.dealer, federation=args.name,
                              timeout=args.timeout, connect_timeout=args.connect_timeout,
                              analyst=args.analyst)
    except ValueError as exc:
        raise _Stop(str(exc), 2) from None
    d = Path(args.directory)
    print(f"wrote {d / 'federation.json'}, {d / 'ca.crt'} and a key + certificate for each of "
          f"{', '.join(cfg.names())}")
    print("give each site its own <name>.key (secret) and everyone federation.json, ca.crt and "
          "the .crt files")
    return 0


def add_commands(sub) -> None:
    """Register ``federation``, ``party`` and ``dealer`` on the CLI's subparsers."""
    f = sub.add_parser("federation", help="set up a federation (certificates and federation.json)")
    fsub = f.add_subparsers(dest="federation_command", metavar="<action>")
    i = fsub.add_parser("init", help="write a pilot CA, keys, certificates and federation.json")
    i.add_argument("directory")
    i.add_argument("--party", action="append", metavar="NAME=HOST:PORT",
                   help="a data party and where it listens (repeat, in id order)")
    i.add_argument("--dealer", required=True, metavar="HOST:PORT")
    i.add_argument("--analyst", metavar="HOST:PORT",
                   help="an analyst that is not a data party (participant 'analyst')")
    i.add_argument("--name", default="ppboost", help="federation name (in every certificate)")
    i.add_argument("--timeout", type=float, default=120.0)
    i.add_argument("--connect-timeout", type=float, default=60.0,
                   help="seconds to wait for every participant to join")
    i.set_defaults(func=cmd_federation_init)
    f.set_defaults(func=lambda a: (f.print_help(sys.stderr), 2)[1])

    def common(sp):
        sp.add_argument("--federation", required=True, help="federation.json")
        sp.add_argument("--key", required=True, help="this participant's private key")
        sp.add_argument("--job", required=True, help="job.json (identical at every site)")
        sp.add_argument("--checkpoint", metavar="CKDIR", help="write state after every tree here")
        sp.add_argument("--resume", action="store_true", help="continue from --checkpoint")
        sp.add_argument("--stats-json", metavar="FILE", help="also write the stats as JSON")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("party", help="run one data party of a training job")
    common(p)
    p.add_argument("--me", required=True, help="this party's name in federation.json")
    p.add_argument("--data", required=True, help="this party's CSV or Parquet file")
    p.add_argument("--out", help="where the analyst writes the model (xgboost JSON)")
    p.set_defaults(func=cmd_party)
    d = sub.add_parser("dealer", help="run the dealer of a training job")
    common(d)
    d.set_defaults(func=cmd_dealer, out=None)
    a = sub.add_parser("analyst", help="receive and open the model (an analyst that is not a party)")
    a.add_argument("--federation", required=True, help="federation.json")
    a.add_argument("--key", required=True, help="the analyst's private key")
    a.add_argument("--job", required=True, help="job.json (identical at every site)")
    a.add_argument("--out", required=True, help="where to write the model (xgboost JSON)")
    a.add_argument("--stats-json", metavar="FILE", help="also write the stats as JSON")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=cmd_analyst, checkpoint=None, resume=False)

