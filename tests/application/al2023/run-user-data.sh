#!/bin/bash
# run-user-data.sh HOST_DIR USER_DATA
# Runs rendered user data as root on a simulated Amazon Linux 2023 host: a private mount
# namespace whose /etc, /opt, /usr and /var are overlays kept in HOST_DIR (so the real
# machine is untouched and a second run sees the first run's state), with fake dnf,
# alternatives, runuser, aws, systemctl and journalctl first on PATH (useradd records, then adds
# the user to the overlay's /etc). curl and logger are
# the real ones. Like a fresh AL2023 instance the host has no Node.js, npm or nginx until
# the user data installs them: the fake dnf then links this machine's real programs in
# (node-24 and npm-24 for nodejs24/nodejs24-npm, /usr/sbin/nginx for nginx).
# The environment names the fakes' inputs:
#   FAKE_BUCKET_NAME, FAKE_BUCKET_DIR  the bucket and the folder standing in for it
#   FAKE_STATE_DIR                    calls log, service pids and logs (outside the overlays)
#   FAKE_SERVICE_ENV                  extra KEY=VALUE lines for services (the "instance role")
#   FAKE_NETWORK_DOWN_CALLS           how many `aws s3api head-bucket` find no network first
#                                     (`always`: it never comes; default 0)
set -euo pipefail
if [[ -z ${THREETIER_SANDBOX:-} ]]; then
  THREETIER_SANDBOX=1 exec unshare --mount --fork --propagation private "$0" "$@"
fi
host=$1
user_data=$2
fakes="$(cd "$(dirname "$0")" && pwd)/bin"

# This machine's programs that the fake dnf "installs", found before the overlays hide them.
node=$(readlink -f "$(command -v node)")
npm=$(readlink -f "$(command -v npm)")
nginx=$(readlink -f "$(command -v nginx || echo /usr/sbin/nginx)")
# The system's Python (not hidden: the fakes use it), what the fake dnf gives for python3.X.
export FAKE_PYTHON
FAKE_PYTHON=$(readlink -f /usr/bin/python3)
hidden=(/usr/bin/node /usr/bin/npm /usr/bin/npx /usr/local/bin/node /usr/local/bin/npm /usr/local/bin/npx
        "$(command -v node)" "$(command -v npm)" "$(command -v npx || true)" /usr/sbin/nginx "$nginx")

for dir in etc opt usr var; do
  # The real tree stays reachable under HOST_DIR/real (the links the fake dnf makes point there).
  mkdir -p "$host/real/$dir" "$host/$dir/upper" "$host/$dir/work"
  mount --bind "/$dir" "$host/real/$dir"
  mount -t overlay overlay -o "lowerdir=/$dir,upperdir=$host/$dir/upper,workdir=$host/$dir/work" "/$dir"
done
real() {  # the path of a real program as seen from inside the overlays
  case $1 in
    /etc/* | /opt/* | /usr/* | /var/*) echo "$host/real$1" ;;
    *) echo "$1" ;;
  esac
}
export FAKE_NODE FAKE_NPM FAKE_NGINX
FAKE_NODE=$(real "$node")
FAKE_NPM=$(real "$npm")
FAKE_NGINX=$(real "$nginx")
for path in "${hidden[@]}"; do
  case $path in
    /etc/* | /opt/* | /usr/* | /var/*) rm -f "$path" ;;  # a whiteout in the overlay only
  esac
done
if command -v node || command -v npm || command -v nginx; then
  echo "run-user-data.sh: cannot hide node, npm or nginx from the simulated host" >&2
  exit 2
fi
PATH="$fakes:$PATH" bash "$user_data"
