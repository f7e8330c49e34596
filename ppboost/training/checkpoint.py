"""A participant's checkpoint directory: its master seed and its state after each round.

::

    CKDIR/checkpoint.json     the job digest, the participant, its data digest
    CKDIR/seed                16 random bytes drawn at the first start (mode 0600)
    CKDIR/round-0003.npz      the state after 3 finished boosting rounds (mode 0600)

Everything a participant draws at random comes from its master seed (PSI
scalars and orders, private shares, the dealer's per-party streams), so a
resumed run replays the set-up exactly (agreement, alignment, binning,
label sharing) and then moves every stream to where it stood after the last
round that every participant finished (:meth:`Checkpoint.save` keeps them
all; the participants agree on the newest one they all have).  The material
drawn from there on is the uninterrupted run's, so the model is the same.

Files are written atomically (a temporary file in the same directory, then
``os.replace``) with mode 0600: a crash leaves the previous round's state.
A directory that belongs to another job (its digest differs), to another
participant or to other data is refused with a message that says which.
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np

from ..errors import FormatError

__all__ = ["Checkpoint"]

_ROUND = re.compile(r"^round-(\d{4,})\.npz$")


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class Checkpoint:
    """The checkpoint directory of participant ``name`` for the job with digest ``job``."""

    def __init__(self, directory, job: str, name: str, data: str = ""):
        self.dir = Path(directory)
        self.job, self.name, self.data = job, name, data

    def open(self, resume: bool) -> bytes:
        """Check the directory and return the master seed (a fresh one unless ``resume``)."""
        meta_path = self.dir / "checkpoint.json"
        want = {"job": self.job, "participant": self.name, "data": self.data}
        if meta_path.exists():
            try:
                have = json.loads(meta_path.read_text())
            except ValueError:
                raise FormatError(f"{meta_path} is not valid JSON") from None
            if have.get("job") != self.job:
                raise FormatError(
                    f"the checkpoint in {self.dir} belongs to another job (digest "
                    f"{str(have.get('job'))[:12]}, this job's is {self.job[:12]}); use another "
                    "--checkpoint directory")
            if have.get("participant") != self.name:
                raise FormatError(f"the checkpoint in {self.dir} is {have.get('participant')}'s, "
                                  f"not {self.name}'s")
            if have.get("data") != self.data:
                raise FormatError(f"the checkpoint in {self.dir} was made from other data "
                                  f"than {self.name}'s file now holds")
            if not resume:
                raise FormatError(f"{self.dir} already holds a checkpoint of this job; pass "
                                  "--resume to continue it, or remove the directory to start over")
            try:
                seed = (self.dir / "seed").read_bytes()
            except OSError:
                raise FormatError(f"{self.dir} has no seed file: it cannot be resumed") from None
            if len(seed) != 16:
                raise FormatError(f"{self.dir / 'seed'} is not a 16-byte seed")
            return seed
        if resume:
            raise FormatError(f"--resume: {self.dir} holds no checkpoint of {self.name}")
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        seed = os.urandom(16)
        _write_private(self.dir / "seed", seed)
        _write_private(meta_path, json.dumps(want).encode())
        return seed

    def rounds(self) -> list:
        """Finished-round counts with a saved state, ascending."""
        if not self.dir.is_dir():
            return []
        return sorted(int(m.group(1)) for f in self.dir.iterdir() if (m := _ROUND.match(f.name)))

    def latest(self) -> int:
        r = self.rounds()
        return r[-1] if r else 0

    def save(self, rounds_done: int, arrays: dict, meta: dict) -> None:
        """The state after ``rounds_done`` rounds: named arrays plus JSON ``meta``."""
        buf = io.BytesIO()
        np.savez(buf, __meta__=np.frombuffer(json.dumps(dict(meta, job=self.job)).encode(),
                                             np.uint8), **arrays)
        _write_private(self.dir / f"round-{rounds_done:04d}.npz", buf.getvalue())

    def load(self, rounds_done: int) -> tuple:
        """``(arrays, meta)`` saved after ``rounds_done`` rounds."""
        path = self.dir / f"round-{rounds_done:04d}.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k != "__meta__"}
                meta = json.loads(bytes(z["__meta__"]).decode())
        except (OSError, ValueError, KeyError) as exc:
            raise FormatError(f"cannot read the checkpoint {path}: {exc}") from None
        if meta.get("job") != self.job:
            raise FormatError(f"{path} belongs to another job")
        return arrays, meta
