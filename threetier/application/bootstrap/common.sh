# --- shared by both builders (spliced in by threetier.artifacts) -------------------------
set -Eeuo pipefail
umask 022
# cloud-init may run user data without HOME; the tools the builders run expect one.
export HOME=/root

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

# retry CMD...: up to 5 attempts, for network steps (dnf mirrors, S3, a package registry).
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

# wait_for_network: the tier scripts call it first. The app builder boots while its NAT gateway
# is still pending (it is launched as soon as the network exists); everything after this needs the
# way out. Through once S3 in the region answers: the bucket, and AL2023's dnf repositories, which
# live in S3 too. A try every NETWORK_POLL_SECONDS, for NETWORK_WAIT_SECONDS at most, then it fails.
NETWORK_WAIT_SECONDS=900
NETWORK_POLL_SECONDS=5
wait_for_network() {
  local started=$SECONDS tried left answer
  log "waiting for the network (s3://$BUCKET in $REGION)"
  while true; do
    tried=$SECONDS
    if answer=$(network_probe 2>&1); then
      log "network through after $((SECONDS - started)) s"
      return 0
    fi
    if ((SECONDS - started >= NETWORK_WAIT_SECONDS)); then
      log "no network after $((SECONDS - started)) s: ${answer:-no answer}"
      return 1
    fi
    left=$((NETWORK_POLL_SECONDS - (SECONDS - tried)))
    sleep $((left > 0 ? left : 0))
  done
}

# network_probe: one try, short timeouts (a pending NAT gateway drops packets: nothing refuses
# quickly). With the instance role's AWS CLI; on an image without it (install_packages adds it,
# once there is a network) curl, for which any answer of S3 will do.
network_probe() {
  if command -v aws >/dev/null; then
    AWS_MAX_ATTEMPTS=1 aws s3api head-bucket --bucket "$BUCKET" --region "$REGION" \
      --cli-connect-timeout 5 --cli-read-timeout 5
  else
    curl -sS -o /dev/null --max-time 5 "https://s3.$REGION.amazonaws.com/"
  fi
}

# install_packages PKG...: ONE dnf transaction (metadata is fetched once per transaction,
# which is most of its time), so each builder calls it once. The AWS CLI, which the
# standard AL2023 image has, joins that transaction on an image without it. So do, on both
# builders, the CloudWatch agent (from AL2023's own repository), which ships the tier's logs
# (ship_logs), and logrotate, which keeps the log files on the instance small (the standard
# image has it; named here because the tiers' log files rely on it).
LOG_PACKAGES=(amazon-cloudwatch-agent logrotate)
install_packages() {
  local packages=("$@" "${LOG_PACKAGES[@]}")
  command -v aws >/dev/null || packages+=(awscli-2)
  log "installing ${packages[*]}"
  retry dnf install -y "${packages[@]}"
}

# fetch_tier TIER DEST FILE: a fresh copy of s3://BUCKET/TIER/ replaces DEST, once it is
# complete (FILE, relative to DEST, must be in it).
fetch_tier() {
  local tier=$1 dest=$2 required=$3
  command -v aws >/dev/null || { log "no AWS CLI: install_packages first"; return 1; }
  log "fetching s3://$BUCKET/$tier/ into $dest"
  rm -rf "$dest.new"
  retry aws s3 cp --recursive --only-show-errors --region "$REGION" "s3://$BUCKET/$tier/" "$dest.new/"
  test -f "$dest.new/$required"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
}

# ship_logs: the CloudWatch agent (install_packages installs it) tails the tier's log files into
# the stack's log groups, a stream per instance, as its configuration says (rendered by
# threetier.artifacts; no retention there: the stack sets it on the groups). -s (re)starts the
# agent with it; enabled, it starts on every boot of an instance launched from the image. The
# builder ships too: its logs are in the groups while it bakes.
LOG_AGENT_CONFIG_FILE=@@LOG_AGENT_CONFIG_FILE@@
LOG_AGENT_CTL=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
ship_logs() {
  log "shipping the tier's logs to CloudWatch Logs ($LOG_AGENT_CONFIG_FILE)"
  install -d -m 0755 "$(dirname "$LOG_AGENT_CONFIG_FILE")"
  cat > "$LOG_AGENT_CONFIG_FILE" <<'AGENT_CONFIG'
@@LOG_AGENT_CONFIG@@
AGENT_CONFIG
  chmod 0644 "$LOG_AGENT_CONFIG_FILE"
  "$LOG_AGENT_CTL" -a fetch-config -m ec2 -s -c "file:$LOG_AGENT_CONFIG_FILE"
  systemctl enable amazon-cloudwatch-agent.service
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

# app_log_file: the app tier's stdout and stderr go to APP_LOG_FILE (systemd opens it, so the sandboxed
# service needs no right to /var/log), which the CloudWatch agent tails: the agent reads files, not the
# journal. Rotated by copying then truncating it, in place: the service keeps its descriptor (O_APPEND,
# so its next line goes to the start of the emptied file, and the agent sees the truncation).
app_log_file() {
  install -d -m 0755 "$(dirname "$APP_LOG_FILE")"
  cat > /etc/logrotate.d/threetier-app <<ROTATE
$APP_LOG_FILE {
    daily
    maxsize 50M
    rotate 7
    compress
    delaycompress
    missingok
    notifempty
    copytruncate
}
ROTATE
  chmod 0644 /etc/logrotate.d/threetier-app
}

# app_unit WHAT EXEC_START SERVICE_LINE...: the app tier's systemd unit, threetier-app, as the
# unprivileged user threetier in APP_DIR, its output appended to APP_LOG_FILE, restarted on failure
# and never given up on (the database or Secrets Manager may come back later).
app_unit() {
  local what=$1 exec_start=$2 service
  shift 2
  service=$(printf '%s\n' "$@")
  cat > /etc/systemd/system/threetier-app.service <<UNIT
[Unit]
Description=threetier app tier ($what on port $APP_PORT)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=threetier
Group=threetier
WorkingDirectory=$APP_DIR
$service
ExecStart=$exec_start
StandardOutput=append:$APP_LOG_FILE
StandardError=append:$APP_LOG_FILE
Restart=on-failure
RestartSec=5
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes

[Install]
WantedBy=multi-user.target
UNIT
  mkdir -p /etc/systemd/system/threetier-app.service.d
  printf '[Unit]\nStartLimitIntervalSec=0\n' > /etc/systemd/system/threetier-app.service.d/restart.conf
}

# app_unhealthy: the app tier's liveness URL did not answer: its journal and log on the console, and
# the bootstrap fails through the ERR trap (marker + console).
app_unhealthy() {
  journalctl -u threetier-app.service --no-pager -n 20
  tail -n 100 "$APP_LOG_FILE" || true
  return 1
}

finish() {
  date -u +%Y-%m-%dT%H:%M:%SZ > "$MARKER_DIR/bootstrap.done"
  log "bootstrap complete"
}
# --- end of shared part -------------------------------------------------------------------
