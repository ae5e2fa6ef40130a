#!/usr/bin/env bash
# `mailpin demo` on a fresh Debian/Ubuntu machine, from a checkout: python3-venv if missing (apt,
# via sudo when not root), a virtualenv in .venv with mailpin in it (installed once), then the demo.
# Nothing of yours is read or changed; the demo's servers, CA and configs live in a temporary directory.
#
#   bash contrib/demo.sh            # extra arguments go to `mailpin demo` (--quiet, --keep)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=${MAILPIN_VENV:-.venv}
if ! "$venv/bin/mailpin" --version >/dev/null 2>&1; then
  if ! command -v "$python" >/dev/null || ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "contrib/demo.sh: installing python3-venv with apt" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "contrib/demo.sh: mailpin needs Python 3.10 or newer; $python is $("$python" --version 2>&1)" >&2
    exit 1
  }
  # A .venv left by an earlier `python3 -m venv` without python3-venv has no pip: start it afresh.
  "$venv/bin/python" -m pip --version >/dev/null 2>&1 || "$python" -m venv --clear "$venv"
  echo "contrib/demo.sh: installing mailpin into $venv (once; needs the package index)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e . >/dev/null
fi
exec "$venv/bin/mailpin" demo "$@"
