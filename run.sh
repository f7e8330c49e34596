#!/usr/bin/env bash
# The two set-up commands of the README:
#   ./run.sh demo    -> creates/reuses .venv, installs ppboost, runs `ppboost demo`
#   ./run.sh test    -> creates/reuses .venv, installs ppboost[test], runs ruff and the whole test suite
# Needs only python3 (>= 3.10) with pip and venv on the machine.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv
stamp="$VENV/.ppboost-installed"
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"
cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    exec ppboost demo "$@" ;;
  test)
    # Lint (the configuration is in pyproject.toml), the main suite (numba JIT on, kernels
    # cached), then the kernel tests again as plain Python.
    ruff check ppboost tests benchmarks examples
    python -m pytest -q "$@"
    NUMBA_DISABLE_JIT=1 python -m pytest -q -m nojit "$@"
    ;;
  *)
    echo "usage: ./run.sh demo | ./run.sh test [pytest args]" >&2; exit 2 ;;
esac
