# Shared by main.sh and test.sh (sourced, not run): create or reuse the project's virtual
# environment and install pygrad into it, editable, with the extras a script needs.
#
#   source scripts/venv.sh && ensure_venv dev     # sets VENV_PYTHON
#
# PYTHON picks the interpreter that creates the environment (default python3);
# PYGRAD_VENV picks its folder (default .venv at the root of the repository).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${PYGRAD_VENV:-$REPO_ROOT/.venv}"
VENV_PYTHON="$VENV_DIR/bin/python"

die() {
    echo "error: $*" >&2
    exit 1
}

ensure_venv() {
    local extras="$1"
    local python="${PYTHON:-python3}"
    if ! "$VENV_PYTHON" -c "" >/dev/null 2>&1; then
        command -v "$python" >/dev/null 2>&1 || die "$python not found; install Python 3.9 or newer"
        echo "creating a virtual environment in $VENV_DIR"
        # --clear replaces a broken environment (e.g. one whose Python was uninstalled).
        "$python" -m venv --clear "$VENV_DIR" \
            || die "could not create $VENV_DIR (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    # The install is editable, so edits to the code need no reinstall; install again only when
    # the packaging files, the extras or the location of the repository change.
    local stamp="$VENV_DIR/.pygrad-installed-$extras"
    local digest
    digest="$(cat "$REPO_ROOT/setup.py" "$REPO_ROOT/pyproject.toml" <(echo "$REPO_ROOT") \
        | "$VENV_PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
        return 0
    fi
    echo "installing pygrad[$extras] into $VENV_DIR (only errors are shown)"
    "$VENV_PYTHON" -m pip install -qq --disable-pip-version-check -e "$REPO_ROOT[$extras]" \
        || die "pip could not install pygrad[$extras]; see the messages above"
    echo "$digest" >"$stamp"
}
