#!/usr/bin/env bash
# Run the whole test suite in .venv (created and filled on first use).
#
#   bash scripts/test.sh [PYTEST_ARGS...]     # e.g. -x -k conv, or a path under tests/
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"

TORCH_VERSION=2.13.0

# PyTorch is only an oracle for the tests: install it when pip's find-links hold a wheel of
# TORCH_VERSION for this Python and machine, never from an index, where it weighs gigabytes.
# Without it the oracle tests skip.
install_torch_oracle() {
    if "$VENV_PYTHON" - "$TORCH_VERSION" 2>/dev/null <<'PY'; then
import importlib.metadata, sys
sys.exit(importlib.metadata.version("torch").split("+")[0] != sys.argv[1])
PY
        return 0
    fi
    local links tag arch dir wheel
    links="$("$VENV_PYTHON" -m pip config get global.find-links 2>/dev/null || true)"
    links="$links $("$VENV_PYTHON" -m pip config get install.find-links 2>/dev/null || true)"
    links="$links ${PIP_FIND_LINKS:-}"
    tag="$("$VENV_PYTHON" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
    arch="$(uname -m)"
    for dir in $links; do
        dir="${dir#file://}"
        for wheel in "$dir"/torch-"$TORCH_VERSION"*-"$tag"-"$tag"-*"$arch".whl; do
            if [ -f "$wheel" ]; then
                echo "installing the PyTorch oracle from $wheel"
                "$VENV_PYTHON" -m pip install -qq --disable-pip-version-check "$wheel" \
                    || die "pip could not install $wheel"
                return 0
            fi
        done
    done
    echo "no local wheel of torch $TORCH_VERSION for $tag in pip's find-links:" \
        "the tests against PyTorch will be skipped"
}

ensure_venv dev
install_torch_oracle
cd "$REPO_ROOT"

# pyproject.toml's testpaths points pytest at tests/ when no path is given.
status=0
"$VENV_PYTHON" -m pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
    # Exit code 5: nothing collected.  For a filter (-k, a path) that is an answer, not a
    # failure; for the whole suite it means the tests are missing, which is.
    if [ "$#" -eq 0 ]; then
        die "pytest collected no tests from tests/"
    fi
    echo "no test matched: $*"
    status=0
fi
exit "$status"
