#!/usr/bin/env bash
# Installs everything threetier and its tests need on a fresh Debian machine:
# the package with its test extras, and (for the application tests) the system
# packages and npm dependencies. Idempotent; run it as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet -e '.[test]'

if [ -x scripts/setup-app-deps.sh ]; then
  scripts/setup-app-deps.sh
fi
