"""``python -m ppboost.transport DIR --parties N``: write a federation (CA, certs, keys, config.json)."""
from .certs import main

raise SystemExit(main())
