# --- shared by both builders (spliced in by threetier.artifacts) -------------------------
set -Eeuo pipefail
umask 022
# cloud-init may run user data without HOME; npm needs one.
export HOME=/root
export npm_config_cache=/var/cache/threetier/npm npm_config_update_notifier=false \
  npm_config_fund=false npm_config_audit=false

MARKER_DIR=/var/lib/threetier
mkdir -p "$MARKER_DIR"
rm -f "$MARKER_DIR/bootstrap.done" "$MARKER_DIR/bootstrap.failed"

# Everything goes to a log file, the journal and the serial console. Neither sink may kill
# the script with SIGPIPE: tee -p keeps the file going if the pipe closes, and when logger
# cannot reach the journal the console still gets the lines.
log_sink() {
  logger -t threetier -s 2>/dev/console || cat >/dev/console
}
exec > >(tee -p -a /var/log/threetier-bootstrap.log | log_sink) 2>&1
log() { printf '[threetier %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# Fail loudly: the console says where, and a marker tells the health gate it is over.
on_error() {
  local rc=$? line=$1
  log "bootstrap FAILED (exit $rc) at line $line: $BASH_COMMAND"
  echo "$rc" > "$MARKER_DIR/bootstrap.failed"
}
trap 'on_error $LINENO' ERR

# retry CMD...: up to 5 attempts, for network steps (dnf mirrors, S3, the npm registry).
retry() {
  local attempt=1
  until "$@"; do
    if ((attempt >= 5)); then
      log "giving up after $attempt attempts: $*"
      return 1
    fi
    log "attempt $attempt failed, retrying: $*"
    sleep $((attempt * 5))
    attempt=$((attempt + 1))
  done
}

# Node.js from Amazon Linux's own packages (namespaced: node-NN, npm-NN), made the default
# `node` so that package scripts (#!/usr/bin/env node) use it too.
install_packages() {
  log "installing $*"
  retry dnf install -y "$@"
}

install_node() {
  install_packages "nodejs$NODE_MAJOR" "nodejs$NODE_MAJOR-npm"
  alternatives --set node "/usr/bin/node-$NODE_MAJOR"
  NODE="/usr/bin/node-$NODE_MAJOR"
  NPM="/usr/bin/npm-$NODE_MAJOR"
  log "node $("$NODE" --version), npm $("$NPM" --version)"
}

# fetch_tier TIER DEST: a fresh copy of s3://BUCKET/TIER/ replaces DEST.
fetch_tier() {
  local tier=$1 dest=$2
  command -v aws >/dev/null || install_packages awscli-2
  log "fetching s3://$BUCKET/$tier/ into $dest"
  rm -rf "$dest.new"
  retry aws s3 cp --recursive --only-show-errors --region "$REGION" "s3://$BUCKET/$tier/" "$dest.new/"
  test -f "$dest.new/package-lock.json"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
}

# wait_healthy URL: the service answers 2xx within about four minutes.
wait_healthy() {
  local url=$1 i
  for ((i = 1; i <= 120; i++)); do
    if curl -fsS -o /dev/null --max-time 5 "$url"; then
      log "$url answers"
      return 0
    fi
    sleep 2
  done
  log "$url does not answer:"
  curl -sS --max-time 5 "$url" || true
  return 1
}

finish() {
  date -u +%Y-%m-%dT%H:%M:%SZ > "$MARKER_DIR/bootstrap.done"
  log "bootstrap complete"
}
# --- end of shared part -------------------------------------------------------------------
