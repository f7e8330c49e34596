"""Names of a package loaded on first use (a module ``__getattr__``, PEP 562)."""
from __future__ import annotations

import importlib


def lazy_getattr(namespace: dict, table: dict):
    """A module ``__getattr__`` for the package whose ``globals()`` is ``namespace``:
    ``name`` is imported from the module ``table[name]`` on first access and kept in
    ``namespace``; a name not in ``table`` raises ``AttributeError``."""
    package = namespace["__name__"]

    def __getattr__(name):
        mod = table.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(mod), name)
        namespace[name] = value
        return value
    return __getattr__
