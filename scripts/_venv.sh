# shellcheck shell=bash
# Sourced by scripts/test and scripts/serve: makes sure .venv exists and holds this checkout
# installed in editable mode with the requested extras. Quiet when nothing changed; on a failed
# install it prints the pip log and stops.
#
#   source scripts/_venv.sh
#   ensure_venv            # runtime dependencies only
#   ensure_venv test       # plus the [test] extra
#
# A stamp file in .venv records the hash of pyproject.toml that each extra was installed from,
# so a changed pyproject.toml reinstalls, and a second run costs one sha256sum.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
VENV_PY="$VENV/bin/python"

_pick_python() {
    local candidate
    for candidate in ${VENV_PYTHON:-} python3.11 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "scripts: need Python >= 3.11 (set VENV_PYTHON to its path)" >&2
    return 1
}

ensure_venv() {
    local extra="${1:-}"
    local spec="."
    [ -n "$extra" ] && spec=".[$extra]"
    local stamp="$VENV/.installed-${extra:-runtime}"
    local want log python

    # A venv whose interpreter no longer runs (moved, or its base Python removed) is rebuilt.
    if [ -d "$VENV" ] && ! "$VENV_PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
        echo "scripts: $VENV is broken or too old; recreating it" >&2
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV_PY" ]; then
        python="$(_pick_python)" || return 1
        echo "scripts: creating $VENV with $python" >&2
        "$python" -m venv "$VENV" || return 1
    fi

    want="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    # The [test] install includes the runtime one.
    if [ -z "$extra" ] && [ -f "$VENV/.installed-test" ] && [ "$(cat "$VENV/.installed-test")" = "$want" ]; then
        return 0
    fi
    echo "scripts: installing $spec into .venv" >&2
    log="$(mktemp)"
    if ! (cd "$REPO_ROOT" &&
        "$VENV_PY" -m pip install --disable-pip-version-check -e "$spec") >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "scripts: pip install -e '$spec' failed" >&2
        return 1
    fi
    rm -f "$log"
    echo "$want" >"$stamp"
}
