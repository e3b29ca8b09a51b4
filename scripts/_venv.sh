# Shared by scripts/run and scripts/test: find Python 3.11+, make .venv (installing Debian's python3-venv
# when it is missing and we may), and keep the project installed in it. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CRM_TUI_VENV:-$ROOT/.venv}"

say() { printf 'crm-tui setup: %s\n' "$*" >&2; }

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  say "Python 3.11 or newer is needed (Debian: apt-get install python3)"
  return 1
}

ensure_venv_module() {
  local py="$1"
  if "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    return 0
  fi
  local version
  version="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  # Debian's system Python ships venv without ensurepip (PEP 668 also forbids a bare pip install).
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing python${version}-venv (Debian package) so a virtual environment can be made"
    $sudo apt-get update -qq || true
    $sudo apt-get install -y -qq "python${version}-venv" >/dev/null 2>&1 ||
      $sudo apt-get install -y -qq python3-venv >/dev/null
  fi
  "$py" -c 'import venv, ensurepip' >/dev/null 2>&1 || {
    say "cannot make a virtual environment: install python3-venv (sudo apt-get install python3-venv)"
    return 1
  }
}

# ensure_installed EXTRAS: .venv exists and holds this checkout (editable) with the given extras.
ensure_installed() {
  local extras="$1" py stamp want
  if [ ! -x "$VENV/bin/python" ]; then
    py="$(find_python)"
    ensure_venv_module "$py"
    say "creating $VENV"
    "$py" -m venv "$VENV"
  fi
  # The stamp records the pyproject.toml it installed and with which extras; an install with the test
  # extras also serves the plain app.
  local digest
  digest="$(sha256sum < "$ROOT/pyproject.toml" | cut -c1-16)"
  want="${digest}-${extras}"
  stamp="$VENV/.crm-tui-installed"
  if [ -z "$extras" ] && [ -f "$stamp" ] && grep -q -- "^${digest}-" "$stamp"; then
    return 0
  fi
  if [ ! -f "$stamp" ] || ! grep -qx -- "$want" "$stamp"; then
    say "installing crm-tui${extras:+ with [$extras]} into $VENV (first run only)"
    # pip's output goes to stderr: a command's own output (`./scripts/run mail raw ID > message.eml`,
    # `--json`) must not get it on a first run.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}" >&2
    printf '%s\n' "$want" > "$stamp"
  fi
}
