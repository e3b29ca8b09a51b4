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

# uv installs from uv.lock: the versions the suite was run with, whatever is newest the day of the clone. uv is
# itself a pinned wheel, fetched once per machine into the user's cache (by a small venv's pip), then reused by
# every checkout: a second clone makes its .venv and installs from uv's package cache in a few seconds.
UV_VERSION="0.13.10"
UV_HOME="${XDG_CACHE_HOME:-$HOME/.cache}/crm-tui-dev/uv-$UV_VERSION"

# uv_command: the path of uv $UV_VERSION, fetching it on first use.
uv_command() {
  if [ -x "$UV_HOME/bin/uv" ]; then
    printf '%s\n' "$UV_HOME/bin/uv"
    return 0
  fi
  if command -v uv >/dev/null 2>&1 && uv --version 2>/dev/null | grep -q " $UV_VERSION\b"; then
    command -v uv
    return 0
  fi
  local py partial
  py="$(find_python)"
  ensure_venv_module "$py"
  say "fetching uv $UV_VERSION into $UV_HOME (once on this machine)"
  partial="$UV_HOME.partial.$$"
  mkdir -p "$(dirname "$UV_HOME")"
  rm -rf "$partial"
  "$py" -m venv "$partial" >&2
  "$partial/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" >&2
  # uv is one standalone binary: the folder may move. Another script that got there first wins.
  mv -T "$partial" "$UV_HOME" 2>/dev/null || rm -rf "$partial"
  printf '%s\n' "$UV_HOME/bin/uv"
}

# ensure_installed "GROUPS": .venv exists and holds this checkout (editable) and exactly the locked versions
# of its dependencies and of the dependency groups named (pyproject.toml: test, static, dev; "" = the app).
ensure_installed() {
  local groups="$1" uv digest want stamp group
  # The stamp records the lock it installed and with which groups; an install with more groups also serves
  # fewer (the app alone).
  digest="$(cat "$ROOT/uv.lock" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
  stamp="$VENV/.crm-tui-installed"
  want="${digest} ${groups}"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(head -c 16 "$stamp")" = "$digest" ]; then
    local have missing=""
    have=" $(cut -c18- "$stamp") "
    for group in $groups; do
      case "$have" in *" $group "*) ;; *) missing=1 ;; esac
    done
    [ -z "$missing" ] && return 0
  fi
  uv="$(uv_command)"
  # uv uses the Python found here, never one it would download.
  export UV_PYTHON_DOWNLOADS=never
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$uv" venv --quiet --python "$(find_python)" "$VENV" >&2
  fi
  say "installing crm-tui${groups:+ with ${groups// /, }} from uv.lock into $VENV (first run only)"
  # Installers' output goes to stderr: a command's own output (`./scripts/run mail raw ID > message.eml`,
  # `--json`) must not get it on a first run.
  local args=(sync --locked --inexact --no-default-groups)
  for group in $groups; do args+=(--group "$group"); done
  # --inexact: what another group installed stays. UV_PROJECT_ENVIRONMENT: this venv, wherever it is.
  (cd "$ROOT" && UV_PROJECT_ENVIRONMENT="$VENV" "$uv" "${args[@]}" --quiet >&2)
  printf '%s\n' "$want" > "$stamp"
}
