#!/bin/bash
# run-user-data.sh HOST_DIR USER_DATA
# Runs rendered user data as root on a simulated Amazon Linux 2023 host: a private mount
# namespace whose /etc, /opt, /usr and /var are overlays kept in HOST_DIR (so the real
# machine is untouched and a second run sees the first run's state), with fake dnf,
# alternatives, useradd, aws, systemctl and journalctl first on PATH. Node.js, npm, nginx,
# curl and logger are the real ones. The environment names the fakes' inputs:
#   FAKE_BUCKET_NAME, FAKE_BUCKET_DIR  the bucket and the folder standing in for it
#   FAKE_STATE_DIR                    calls log, service pids and logs (outside the overlays)
#   FAKE_SERVICE_ENV                  extra KEY=VALUE lines for services (the "instance role")
set -euo pipefail
if [[ -z ${THREETIER_SANDBOX:-} ]]; then
  THREETIER_SANDBOX=1 exec unshare --mount --fork --propagation private "$0" "$@"
fi
host=$1
user_data=$2
fakes="$(cd "$(dirname "$0")" && pwd)/bin"
for dir in etc opt usr var; do
  mkdir -p "$host/$dir/upper" "$host/$dir/work"
  mount -t overlay overlay -o "lowerdir=/$dir,upperdir=$host/$dir/upper,workdir=$host/$dir/work" "/$dir"
done
# AL2023 namespaces Node.js: node-24 and npm-24.
ln -sf "$(readlink -f "$(command -v node)")" /usr/bin/node-24
ln -sf "$(readlink -f "$(command -v npm)")" /usr/bin/npm-24
PATH="$fakes:$PATH" bash "$user_data"
