#!/usr/bin/env bash
# `mailpin demo` on a fresh Debian/Ubuntu machine, from a checkout: python3-venv if missing (apt,
# via sudo when not root), a virtualenv in .venv with mailpin, then the demo. Nothing of yours is
# read or changed; the demo's servers, CA and configs live in a temporary directory.
#
#   bash contrib/demo.sh            # extra arguments go to `mailpin demo` (--quiet, --keep)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "contrib/demo.sh: installing python3-venv" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
venv=${MAILPIN_VENV:-.venv}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e . >/dev/null
exec "$venv/bin/mailpin" demo "$@"
