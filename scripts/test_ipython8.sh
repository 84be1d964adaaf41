#!/usr/bin/env bash
# Run the IPython adapter tests (and the step-fault tests that go through it) on IPython 8
# (the system python has IPython 9).
# Idempotent: the venv is made once (with the system's site-packages for pytest and the
# rest) and IPython 8 installed into it only when it is not there yet.
# Usage: scripts/test_ipython8.sh [pytest args...]   (VENV=/tmp/ipy8 by default)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-/tmp/ipy8}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv --system-site-packages "$venv"
fi
if ! "$venv/bin/python" -c 'import IPython, sys; sys.exit(IPython.version_info[0] != 8)' 2>/dev/null; then
    "$venv/bin/pip" install --quiet 'ipython>=8.12,<9'
fi
"$venv/bin/python" -c 'import IPython; print("IPython", IPython.__version__)'
cd "$root"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    tests/test_ipython_adapter.py tests/test_step_faults.py "$@"
