"""Transport micro-benchmark: throughput of 8 MB arrays, TLS between OS processes vs in-process.

Prints one JSON object.  Not a test.  Run: ``python benchmarks/bench_transport.py``.
Two participants exchange ``--rounds`` ping-pong rounds of an 8 MB uint64 array
(party 0 -> party 1 -> party 0) and one full-duplex round (both send, then both
receive); MB/s counts payload bytes moved per second of wall time.  Also the
round-trip time of a 32-byte array (latency per protocol round).

``--stream-mb N`` instead measures one TLS channel between two processes the way the
deployed dealer uses it: party 0 sends ``--frames`` frames of N MiB to party 1 one way
(or both ways, frame by frame, with ``--duplex``), and each process reports its CPU
seconds (user and system, all its threads) per GB moved; ``--mix`` cycles through the
frame sizes of ``MIX_MB`` instead.  The JSON then has only ``stream``.
"""
from __future__ import annotations

import argparse
import functools
import os
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


#: ``--mix``: frame sizes in MiB, cycled; roughly a deployed tree's mix of dealer material and
#: party-to-party messages (most frames 0.5-2 MiB, most bytes in frames of 8 MiB and more)
MIX_MB = (0.5, 0.5, 0.5, 1, 1, 1, 2, 2, 2, 2, 4, 4, 8, 8, 16, 32)


def _stream(ep, sizes_mb, frames, duplex):
    """Party 0 sends ``frames`` arrays to party 1, their sizes cycling through ``sizes_mb``
    (MiB); with ``duplex`` both send and receive, frame by frame."""
    other = 1 - ep.me
    xs = [np.full(int(mb * MB) // 8, ep.me + 1, dtype=np.uint64) for mb in sizes_mb]
    ep.send(other, np.zeros(1, np.uint8))          # both connected and running
    ep.recv(other)
    c0, t0 = os.times(), time.perf_counter()
    received = 0
    for k in range(frames):
        if ep.me == 0 or duplex:
            ep.send(other, xs[k % len(xs)])
        if ep.me == 1 or duplex:
            y = ep.recv(other)
            received += y.nbytes
            assert y[0] == other + 1 and y[-1] == other + 1
            del y
    ep.send(other, np.zeros(1, np.uint8))          # done: the sender's clock stops here too
    ep.recv(other)
    wall, c1 = time.perf_counter() - t0, os.times()
    return {"wall_s": wall, "user_s": c1.user - c0.user, "sys_s": c1.system - c0.system,
            "received": received}


def stream(sizes_mb, frames, duplex):
    fn = functools.partial(_stream, sizes_mb=sizes_mb, frames=frames, duplex=duplex)
    res, _, _ = run_local(2, fn, timeout=120)
    gb = sum(r["received"] for r in res) / 1e9
    wall = max(r["wall_s"] for r in res)
    out = {"frame_MiB": list(sizes_mb), "frames": frames, "duplex": duplex,
           "GB_moved": round(gb, 3), "wall_s": round(wall, 3), "MBps": round(gb * 1e3 / wall, 1)}
    for who, r in zip(("sender", "receiver") if not duplex else ("party0", "party1"), res):
        out[who] = {"user_s": round(r["user_s"], 3), "sys_s": round(r["sys_s"], 3),
                    "cpu_s_per_GB": round((r["user_s"] + r["sys_s"]) / gb, 3)}
    out["cpu_s_per_GB_both"] = round(sum(r["user_s"] + r["sys_s"] for r in res) / gb, 3)
    return out


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
    ap.add_argument("--stream-mb", type=float, default=0,
                    help="instead: stream frames of this many MiB over one TLS channel")
    ap.add_argument("--mix", action="store_true",
                    help="instead: stream frames of the sizes in MIX_MB (cycled)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--duplex", action="store_true", help="with --stream-mb / --mix: both ways")
    args = ap.parse_args()
    bench_run = common.Run()
    if args.stream_mb or args.mix:
        sizes = MIX_MB if args.mix else (args.stream_mb,)
        common.emit({"stream": stream(sizes, args.frames, args.duplex)}, bench_run)
        return

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
