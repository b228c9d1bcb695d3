#!/usr/bin/env bash
# Installs what building and testing Flotilla needs on a fresh Debian/Ubuntu (apt) or
# macOS (Homebrew) machine: redis-server, promtool, a C compiler, Python 3 with the test
# tools of scripts/requirements-test.txt in .venv, chromium and playwright-core (npm) for
# the dashboard's browser tests, ioredis (npm) for the Node client and example, and checks
# for a Rust toolchain.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; exit 1
  fi
}

apt_install() {
  if ! command -v apt-get >/dev/null; then return 1; fi
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@"
}

if ! command -v redis-server >/dev/null; then
  echo "redis-server not found: installing it"
  apt_install redis-server || { command -v brew >/dev/null && brew install redis; } || {
    echo "cannot install redis-server here: install Redis 7 (https://redis.io/docs/install) and retry" >&2
    exit 1
  }
  # The package may start a system instance; tests start their own and do not need it.
fi

if ! command -v promtool >/dev/null; then
  echo "promtool not found (the alert rules' tests use it): installing prometheus"
  apt_install --no-install-recommends prometheus || { command -v brew >/dev/null && brew install prometheus; } || {
    echo "cannot install promtool here: install Prometheus 2 (https://prometheus.io/download) and retry" >&2
    exit 1
  }
fi

if ! command -v cc >/dev/null; then
  echo "no C compiler found (the TLS crate needs one): installing build-essential"
  apt_install build-essential pkg-config || { echo "install a C compiler (gcc or clang) and retry" >&2; exit 1; }
fi

if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "python3 with venv not found (the interop and manifest tests use it): installing it"
  apt_install python3 python3-venv python3-pip || { command -v brew >/dev/null && brew install python; } || {
    echo "cannot install Python here: install Python 3.10 or newer with venv and retry" >&2
    exit 1
  }
fi

if ! command -v chromium >/dev/null; then
  echo "chromium not found (the dashboard's browser tests drive it): installing it"
  apt_install chromium || { echo "install Chromium (the chromium package) and retry" >&2; exit 1; }
fi

if ! command -v npm >/dev/null; then
  echo "npm not found (the browser tests use playwright-core from npm): installing nodejs and npm"
  apt_install nodejs npm || { command -v brew >/dev/null && brew install node; } || {
    echo "install Node.js 18 or newer with npm and retry" >&2; exit 1
  }
fi

# The Python test tools live in .venv, reinstalled only when the requirements change.
root="$(cd "$(dirname "$0")/.." && pwd)"
requirements="$root/scripts/requirements-test.txt"
stamp="$root/.venv/.requirements"
if ! [ -x "$root/.venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  echo "installing the Python test tools into .venv"
  python3 -m venv "$root/.venv"
  "$root/.venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi

# npm packages, each reinstalled only when its lock file changes: playwright-core for the
# browser tests, ioredis for the Node client and the Node example.
for dir in tests/browser clients/node examples/node; do
  package="$root/$dir"
  if ! [ -d "$package/node_modules" ] || ! cmp -s "$package/package-lock.json" "$package/node_modules/.lock-stamp"; then
    echo "installing the npm packages of $dir"
    (cd "$package" && npm ci --silent --no-audit --no-fund)
    cp "$package/package-lock.json" "$package/node_modules/.lock-stamp"
  fi
done

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust 1.89 or newer with rustup (https://rustup.rs) and retry" >&2
  exit 1
fi
