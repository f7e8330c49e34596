"""``python -m ppboost``: the same command line as ``ppboost``."""
import sys

from .cli import main

sys.exit(main())
