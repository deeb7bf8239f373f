#!/usr/bin/env bash
# pyBKT 1.4.3, the peer that benchmarks/kt.py compares our BKT with, in its own virtual environment
# (benchmarks/.venv-pybkt, git-ignored) so that it never becomes a dependency of the app.
#
# pyBKT's PyPI wheel is its pure-Python fallback, far slower than its C++ E-step: build from the source
# distribution instead (--no-binary). Its C++ code needs numpy < 2 at build time, hence the pins and
# --no-build-isolation (the build uses the numpy installed here). Needs a C++ compiler with OpenMP (g++).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3.11}"
VENV="${PYBKT_VENV:-.venv-pybkt}"

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    numpy==1.26.4 pandas==2.2.3 scikit-learn==1.5.2 scipy==1.17.1 requests==2.32.3 setuptools==75.8.0 wheel==0.48.0
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation --no-binary pybkt pybkt==1.4.3

# The build falls back to pure Python silently when the compiler fails: check that the extension is there.
"$VENV/bin/python" - <<'EOF'
from pyBKT.fit import E_step
assert E_step.__file__.endswith(".so"), f"pyBKT's C++ E-step was not built ({E_step.__file__})"
print("pyBKT 1.4.3 with its C++ E-step:", E_step.__file__)
EOF
