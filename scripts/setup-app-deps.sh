#!/usr/bin/env bash
# Installs what tests/application needs on a fresh Debian 12 machine (run as root):
# MariaDB (a throwaway server the tests start themselves), nginx, Chromium, shellcheck,
# the npm dependencies of both tiers and of the test-only browser driver, and the wheel of the
# Python test app's one dependency (tests/application/apps/python: its install then needs no index).
# Idempotent; starts no service (the tests start and stop their own servers).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APT_PACKAGES=(mariadb-server nginx chromium shellcheck curl ca-certificates)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  # Keep the packages' maintainer scripts from starting mysqld/nginx as services.
  policy=/usr/sbin/policy-rc.d
  own_policy=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=true
  fi
  trap 'if $own_policy; then rm -f "$policy"; fi' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

npm_ci() {
  local dir=$1
  echo "npm ci in ${dir#"$ROOT"/}"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}
npm_ci "$ROOT/threetier/application/app-tier"
npm_ci "$ROOT/threetier/application/web-tier"
npm_ci "$ROOT/tests/application/browser"

# The Python test app's requirements.txt, as wheels its install on the simulated host finds offline.
WHEELS=/var/cache/threetier-test/wheels
mkdir -p "$WHEELS"
python3 -m pip download --quiet --no-deps --dest "$WHEELS" -r "$ROOT/tests/application/apps/python/requirements.txt"
