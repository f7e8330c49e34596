"""Secure training: the per-participant runner, its job file, and ``train()`` on top of it.

- :func:`train` (:mod:`.simulate`): every participant in this process or in
  processes on this machine, from an aligned :class:`~ppboost.data.Split`.
- :func:`run_party` / :func:`run_dealer` (:mod:`.runner`): one participant
  over an endpoint, as each site runs it (``ppboost party`` / ``ppboost dealer``).
- :class:`Job` (:mod:`.job`), :class:`Site` and :func:`read_site` (:mod:`.site`).
"""
from .job import Job
from .model import SecretSharedModel
from .runner import run_analyst, run_dealer, run_party
from .simulate import train
from .site import Site, read_site

__all__ = ["train", "SecretSharedModel", "run_party", "run_dealer", "run_analyst", "Job", "Site",
           "read_site"]
