"""Transport micro-benchmark: throughput of 8 MB arrays, TLS between OS processes vs in-process.

Prints one JSON object.  Not a test.  Run: ``python benchmarks/bench_transport.py``.
Two participants exchange ``--rounds`` ping-pong rounds of an 8 MB uint64 array
(party 0 -> party 1 -> party 0) and one full-duplex round (both send, then both
receive); MB/s counts payload bytes moved per second of wall time.  Also the
round-trip time of a 32-byte array (latency per protocol round).
"""
from __future__ import annotations

import argparse
import time

import common
import numpy as np

from ppboost.transport import run_inprocess, run_local

MB = 1 << 20


def _pingpong(ep, size_mb, rounds):
    other = 1 - ep.me if ep.me < 2 else None
    x = np.arange(size_mb * MB // 8, dtype=np.uint64)
    t = time.perf_counter()
    for _ in range(rounds):
        if ep.me == 0:
            ep.send(other, x)
            x = ep.recv(other)
        else:
            x = ep.recv(other)
            ep.send(other, x)
    pingpong = time.perf_counter() - t
    t = time.perf_counter()
    ep.send(other, x)            # full duplex: both send first, then both receive
    y = ep.recv(other)
    duplex = time.perf_counter() - t
    assert y.shape == x.shape
    small = np.arange(4, dtype=np.uint64)
    n_small = 2000
    t = time.perf_counter()
    for _ in range(n_small):
        if ep.me == 0:
            ep.send(other, small)
            ep.recv(other)
        else:
            ep.recv(other)
            ep.send(other, small)
    rtt = (time.perf_counter() - t) / n_small
    return {"pingpong_s": pingpong, "duplex_s": duplex, "small_rtt_s": rtt}


def party(ep, size_mb=8, rounds=10):
    return _pingpong(ep, size_mb, rounds)


def _figures(res, size_mb, rounds):
    r = res[0]
    moved = 2 * rounds * size_mb
    return {"pingpong_MBps": round(moved / r["pingpong_s"], 1),
            "duplex_MBps_per_direction": round(size_mb / r["duplex_s"], 1),
            "pingpong_s": round(r["pingpong_s"], 4),
            "small_message_round_trip_us": round(r["small_rtt_s"] * 1e6, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    bench_run = common.Run()
    import functools

    fn = functools.partial(party, size_mb=args.size_mb, rounds=args.rounds)
    out = {"array_MB": args.size_mb, "rounds": args.rounds}
    t = time.perf_counter()
    res, _, stats = run_local(2, fn, timeout=120)
    out["tls_processes"] = _figures(res, args.size_mb, args.rounds)
    out["tls_processes"]["wall_including_startup_s"] = round(time.perf_counter() - t, 2)
    out["tls_processes"]["bytes_sent_party0"] = stats[0].total_sent
    res, _, eps = run_inprocess(2, fn, timeout=120)
    out["inprocess_threads"] = _figures(res, args.size_mb, args.rounds)
    out["inprocess_threads"]["bytes_sent_party0"] = eps[0].stats.total_sent
    t = time.perf_counter()
    x = np.arange(args.size_mb * MB // 8, dtype=np.uint64)
    for _ in range(2 * args.rounds):
        x = x.copy()
    out["numpy_copy_MBps"] = round(2 * args.rounds * args.size_mb / (time.perf_counter() - t), 1)
    common.emit(out, bench_run)


if __name__ == "__main__":
    main()
