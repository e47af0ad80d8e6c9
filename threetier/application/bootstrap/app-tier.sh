#!/bin/bash
# threetier: user data of the app-tier builder (Amazon Linux 2023), rendered by
# threetier.artifacts.render_app_user_data. Installs the Node.js app from S3 as the
# systemd service threetier-app on port @@APP_PORT@@, its output shipped to CloudWatch Logs;
# safe to run again.
BUCKET=@@BUCKET@@
REGION=@@REGION@@
APP_PORT=@@APP_PORT@@
APP_LOG_FILE=@@APP_LOG_FILE@@
NODE_MAJOR=24
APP_DIR=/opt/threetier/app-tier
@@COMMON@@
export npm_config_cache=/var/cache/threetier/npm npm_config_update_notifier=false \
  npm_config_fund=false npm_config_audit=false

# Node.js from Amazon Linux's own packages (namespaced: node-NN, npm-NN) in one dnf
# transaction, made the default `node` so that package scripts (#!/usr/bin/env node) use it.
install_node() {
  install_packages "nodejs$NODE_MAJOR" "nodejs$NODE_MAJOR-npm"
  alternatives --set node "/usr/bin/node-$NODE_MAJOR"
  NODE="/usr/bin/node-$NODE_MAJOR"
  NPM="/usr/bin/npm-$NODE_MAJOR"
  log "node $("$NODE" --version), npm $("$NPM" --version)"
}

wait_for_network
install_node
id threetier >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin threetier

fetch_tier app-tier "$APP_DIR" package-lock.json
# The CAs the app verifies the database's certificate against ship with it (certs/README.md).
test -s "$APP_DIR/certs/rds-global-bundle.pem"
log "installing app dependencies"
(cd "$APP_DIR" && retry "$NPM" ci --omit=dev)

# Where the database is; no secret here: the app reads the credentials from Secrets
# Manager with the instance role.
install -d -m 0755 /etc/threetier
cat > /etc/threetier/app-config.json <<'JSON'
@@APP_CONFIG@@
JSON
chmod 0644 /etc/threetier/app-config.json

app_log_file
ship_logs

# TLS to the database, the server verified against the bundled RDS CAs (src/tls.js).
app_unit "Node.js API" "$NODE $APP_DIR/src/server.js" \
  Environment=NODE_ENV=production \
  Environment=THREETIER_APP_CONFIG=/etc/threetier/app-config.json \
  Environment=THREETIER_DB_TLS=required

systemctl daemon-reload
systemctl enable threetier-app.service
systemctl restart threetier-app.service

# Liveness only: the app serves without its database (it creates the schema by itself
# once the database answers), so the image can be baked before Aurora is reachable.
wait_healthy "http://localhost:$APP_PORT/health" || app_unhealthy
# Informational: whether the database answers yet (GET /ready).
log "GET /ready: $(curl -sS --max-time 5 "http://localhost:$APP_PORT/ready" || true)"
finish
