"""The job file: what to train, identical at every site.

::

    {"params": {"objective": "binary:logistic", "max_depth": 3},   # xgboost names
     "num_boost_round": 20,
     "split": "horizontal" | "vertical" | "mixed",
     "label": "ms_diagnosis",          # the label column (in the files of the label holders)
     "id": "patient_id",               # join column of vertical / mixed splits; never a feature
     "analyst": "hospital_a",          # the party that receives the model
     "categorical": {"region": ["north", "south", "east", "west"]},   # declared levels
     "timeout": 120}                   # seconds a participant waits for a message

Optional keys: ``"offline"`` (``"overlap"`` or ``"before"``, see
:func:`ppboost.train`); ``"dp"``: differential privacy of the released model,
an object with :class:`ppboost.DP`'s fields, e.g. ``{"epsilon": 1.0, "delta": 1e-6,
"bounds": {"age": [18, 80, 63]}}`` (``"epsilon": "inf"``: none); ``"mode"``:
``"mpc"`` (default) or ``"federated"`` (:mod:`ppboost.training.federated`,
horizontal splits only); ``"on_dropout"`` (federated only): ``"continue"``
(default: training goes on with the others, which opens the dropped party's
counts, :mod:`ppboost.tree.federated_dropout`) or ``"stop"`` (the first
dropout stops every participant).  Any other key is an error that lists the known
ones.  :attr:`Job.digest` is the SHA-256 of the job's canonical JSON; every
participant announces it first (:mod:`ppboost.training.agree`) and a
checkpoint is keyed by it.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import JobError
from ..tree.params import TreeParams

__all__ = ["Job", "SPLITS"]

SPLITS = ("horizontal", "vertical", "mixed")
MODES = ("mpc", "federated")
_KEYS = ("params", "num_boost_round", "split", "label", "id", "analyst", "categorical",
         "timeout", "offline", "dp", "mode", "on_dropout")
ON_DROPOUT = ("continue", "stop")
_REQUIRED = ("params", "num_boost_round", "split", "analyst")


@dataclass(frozen=True)
class Job:
    """A validated job description (see the module docstring)."""

    params: dict
    num_boost_round: int
    split: str
    analyst: str
    label: str | None = None
    id: str | None = None
    categorical: dict = field(default_factory=dict)
    timeout: float = 120.0
    offline: str = "overlap"
    dp: object = None                              #: a ppboost.DP, or None
    mode: str = "mpc"                              #: "mpc" or "federated"
    on_dropout: str = "continue"                   #: federated: "continue" or "stop"

    def __post_init__(self):
        TreeParams.from_dict(self.params)          # raises, listing the supported keys
        r = self.num_boost_round
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise JobError(f"num_boost_round == {r!r}, must be an integer >= 1")
        if self.split not in SPLITS:
            raise JobError(f"split == {self.split!r}, must be one of {list(SPLITS)}")
        if not isinstance(self.analyst, str) or not self.analyst:
            raise JobError(f"analyst == {self.analyst!r}, must name a participant")
        if self.split in ("vertical", "mixed") and self.id is None:
            pass  # a simulation from an aligned Split needs no id column (rows are given)
        if self.label is not None and self.label == self.id:
            raise JobError(f"label and id are both {self.label!r}; they must be different columns")
        if not isinstance(self.categorical, dict):
            raise JobError("categorical must map a column name to its list of levels")
        for col, levels in self.categorical.items():
            if not isinstance(levels, list) or not levels:
                raise JobError(f"categorical[{col!r}] must be a non-empty list of levels")
            if len(set(map(str, levels))) != len(levels):
                raise JobError(f"categorical[{col!r}] lists a level twice")
            if col in (self.label, self.id):
                raise JobError(f"categorical[{col!r}]: {col!r} is the label or id column")
        t = self.timeout
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise JobError(f"timeout == {t!r}, must be a number of seconds > 0")
        if self.offline not in ("overlap", "before"):
            raise JobError(f"offline == {self.offline!r}, must be 'overlap' or 'before'")
        if self.mode not in MODES:
            raise JobError(f"mode == {self.mode!r}, must be one of {list(MODES)}")
        if self.mode == "federated" and self.split != "horizontal":
            raise JobError(f"mode 'federated' needs split 'horizontal', got {self.split!r}")
        if self.on_dropout not in ON_DROPOUT:
            raise JobError(f"on_dropout == {self.on_dropout!r}, must be one of {list(ON_DROPOUT)}")
        if self.on_dropout != "continue" and self.mode != "federated":
            raise JobError("on_dropout is for mode 'federated' (MPC training stops at any "
                           "dropout)")
        if self.dp is not None:
            from ..dp import DP, DPError
            try:
                object.__setattr__(self, "dp", DP.from_dict(self.dp))
            except DPError as exc:
                raise JobError(f"dp: {exc}") from None

    # ------------------------------------------------------------------ identity
    def to_dict(self) -> dict:
        d = {"params": dict(self.params), "num_boost_round": self.num_boost_round,
             "split": self.split, "analyst": self.analyst, "label": self.label, "id": self.id,
             "categorical": {k: list(v) for k, v in self.categorical.items()},
             "timeout": float(self.timeout), "offline": self.offline}
        if self.dp is not None:                    # absent without dp: the digest stays as it was
            d["dp"] = self.dp.to_dict()
        if self.mode != "mpc":                     # absent for MPC: the digest stays as it was
            d["mode"] = self.mode
        if self.on_dropout != "continue":          # absent by default: the digest stays as it was
            d["on_dropout"] = self.on_dropout
        return d

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the job: equal at every site or training stops."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    @property
    def tree_params(self) -> TreeParams:
        return TreeParams.from_dict(self.params)

    # ------------------------------------------------------------------ (de)serialise
    @classmethod
    def from_dict(cls, d: dict) -> Job:
        if not isinstance(d, dict):
            raise JobError(f"a job is a JSON object, got {type(d).__name__}")
        unknown = sorted(k for k in d if k not in _KEYS)
        if unknown:
            raise JobError(f"unknown job key(s) {unknown}; known keys are {list(_KEYS)}")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise JobError(f"the job lacks {missing} (needs {list(_REQUIRED)})")
        try:
            return cls(params=dict(d["params"]), num_boost_round=d["num_boost_round"],
                       split=d["split"], analyst=d["analyst"], label=d.get("label"),
                       id=d.get("id"), categorical=dict(d.get("categorical") or {}),
                       timeout=d.get("timeout", 120.0), offline=d.get("offline", "overlap"),
                       dp=d.get("dp"), mode=d.get("mode", "mpc"),
                       on_dropout=d.get("on_dropout", "continue"))
        except JobError:
            raise
        except (TypeError, ValueError) as exc:
            raise JobError(f"bad job: {exc}") from None

    @classmethod
    def load(cls, path) -> Job:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise JobError(f"cannot read the job file {path}: {exc.strerror or exc}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JobError(f"the job file {path} is not valid JSON: {exc}") from None
        try:
            return cls.from_dict(d)
        except JobError as exc:
            raise JobError(f"{path}: {exc}") from None

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
