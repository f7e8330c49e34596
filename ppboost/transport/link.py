"""An emulated network link: per-channel bandwidth and one-way delay, and its time model.

The kernel's netem is not available here, so the in-process transport
shapes its channels itself (:class:`~ppboost.transport.inprocess.Hub` with
``link=``).  Every directed channel (sender -> receiver) is a FIFO pipe of
``bandwidth`` bytes per second: a message of ``n`` bytes sent at ``t``
starts when the channel is free, occupies it for ``n / bandwidth`` seconds,
and arrives ``delay`` seconds after it has been put on the wire.  The
sender does not wait (the socket's buffer holds it), the receiver does.

``Link.parse("1gbit:10ms")``; ``"local"`` means no shaping.  Units:
``kbit``, ``mbit``, ``gbit`` (10^3, 10^6, 10^9 bits per second) and ``us``,
``ms``, ``s``.

:func:`modelled_seconds` is the time the issue's model predicts from a run's
transcript: the slowest participant's ``max(bytes sent, bytes received) /
bandwidth + rounds x round-trip time``, added to the compute time of the same
run unshaped.  A round costs a round trip, not a one-way delay: a party's
round ends with a message its peer could only send after receiving the
previous one (measured: 2,000 x 20, 1 tree, 883 rounds; at 1gbit:10ms the
shaped run took 20.5 s against 12.2 s modelled with one-way delays and
20.6 s with round trips).
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

__all__ = ["Link", "Shaper", "modelled_seconds", "replayed_seconds"]

_RATE = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


@dataclass(frozen=True)
class Link:
    """``bandwidth`` in bytes per second per direction, ``delay`` one-way seconds."""

    bandwidth: float
    delay: float

    def __post_init__(self):
        if not self.bandwidth > 0 or not self.delay >= 0:
            raise ValueError(f"link bandwidth {self.bandwidth} B/s must be > 0 and delay "
                             f"{self.delay} s >= 0")

    @classmethod
    def parse(cls, spec: str | None) -> Link | None:
        """``"1gbit:10ms"`` -> Link; ``None`` or ``"local"`` -> None (no shaping)."""
        if spec is None or spec == "local":
            return None
        m = re.fullmatch(r"\s*([\d.]+)\s*(kbit|mbit|gbit)\s*:\s*([\d.]+)\s*(us|ms|s)\s*", str(spec))
        if not m:
            raise ValueError(f"link {spec!r}: expected RATE:DELAY such as '1gbit:10ms' or "
                             "'100mbit:50ms', or 'local'")
        return cls(float(m.group(1)) * _RATE[m.group(2)] / 8.0, float(m.group(3)) * _TIME[m.group(4)])

    def __str__(self) -> str:
        return f"{self.bandwidth * 8 / 1e6:g}mbit:{self.delay * 1e3:g}ms"


class Shaper:
    """When each message on each directed channel arrives (one lock, a clock per channel)."""

    def __init__(self, link: Link):
        self.link = link
        self._free: dict = {}
        self._lock = threading.Lock()

    def arrival(self, channel: tuple, nbytes: int) -> float:
        """The monotonic time a message of ``nbytes`` sent now on ``channel`` arrives."""
        now = time.monotonic()
        with self._lock:
            start = max(now, self._free.get(channel, 0.0))
            done = start + nbytes / self.link.bandwidth
            self._free[channel] = done
        return done + self.link.delay


def modelled_seconds(link: Link, compute_seconds: float, stats: list,
                     delays_per_round: float = 2.0) -> float:
    """``compute + max over participants of (max(sent, received) / bandwidth + rounds x RTT)``.

    ``stats``: per participant a dict with ``bytes_sent``, ``bytes_recv`` and
    ``rounds`` (a run's ``model.stats`` parties and dealer).  ``delays_per_round``:
    2 (a round trip, the issue's model and an upper bound: a request and its
    answer) or 1 (a lower bound: both sides of a symmetric exchange send at once)."""
    wire = max(max(s["bytes_sent"], s.get("bytes_recv", 0)) / link.bandwidth
               + s["rounds"] * delays_per_round * link.delay for s in stats)
    return compute_seconds + wire


def replayed_seconds(link: Link, runs: list) -> float:
    """The time an unshaped run would take over ``link``, by replaying its messages.

    ``runs``: per participant ``{"me", "transcript", "times"}`` (a run's
    ``model.stats`` parties and dealer, whose ``transcript`` entries are
    ``(sender, receiver, nbytes)`` and ``times`` their ``(start, end)``).
    Each participant keeps its own compute between messages (the gap from the
    end of one send or receive to the start of the next, as measured), sends
    without waiting, and receives a message once it has arrived: every
    directed channel is a FIFO pipe as in :class:`Shaper` (``nbytes /
    bandwidth`` on the wire, then the one-way delay).  Returns the latest
    participant's finishing time, counted from the earliest first event.
    """
    events, clock, pos = {}, {}, {}
    t0 = min(r["times"][0][0] for r in runs if r["times"])
    for r in runs:
        me = r["me"]
        events[me] = list(zip(r["transcript"], r["times"]))
        clock[me], pos[me] = t0, 0
    last_end = {me: t0 for me in events}
    free, queue = {}, {}
    progress = True
    while progress:
        progress = False
        for me, evs in events.items():
            while pos[me] < len(evs):
                (frm, to, n), (start, end) = evs[pos[me]]
                gap = max(0.0, start - last_end[me])
                if frm == me:                              # a send
                    t = clock[me] + gap
                    ch = (frm, to)
                    done = max(t, free.get(ch, t0)) + n / link.bandwidth
                    free[ch] = done
                    queue.setdefault(ch, []).append(done + link.delay)
                    clock[me] = t + (end - start)
                else:                                      # a receive
                    q = queue.get((frm, me))
                    if not q:
                        break                              # not sent yet: another's turn
                    clock[me] = max(clock[me] + gap, q.pop(0))
                last_end[me] = end
                pos[me] += 1
                progress = True
    stuck = [me for me, evs in events.items() if pos[me] < len(evs)]
    if stuck:
        raise ValueError(f"the transcripts do not match up: participants {stuck} wait for "
                         "messages nobody sent")
    return max(clock.values()) - t0
