"""The packages' names loaded on first use (ppboost._lazy): ``ppboost`` and
``ppboost.inference`` import without numba, xgboost or gmpy2; a listed name loads
its module and is kept; an unknown name is an AttributeError naming the package."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = r"""
import sys
import ppboost, ppboost.inference as inf
heavy = ("numba", "xgboost", "gmpy2")
assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]
for pkg, name in ((ppboost, "nope"), (inf, "nope")):
    try:
        getattr(pkg, name)
    except AttributeError as e:
        assert str(e) == f"module {pkg.__name__!r} has no attribute 'nope'", e
    else:
        raise AssertionError(pkg.__name__)
from ppboost.data import HorizontalSplit
from ppboost.inference.messages import FRAC_BITS
assert ppboost.HorizontalSplit is HorizontalSplit and inf.FRAC_BITS == FRAC_BITS
assert "HorizontalSplit" in vars(ppboost) and "FRAC_BITS" in vars(inf)
assert set(ppboost.__all__) <= set(dir(ppboost)) and set(inf.__all__) <= set(dir(inf))
print("ok")
"""


def test_lazy_names_in_a_fresh_interpreter():
    cp = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120,
                        cwd=REPO)
    assert cp.returncode == 0 and cp.stdout.strip() == "ok", cp.stderr
