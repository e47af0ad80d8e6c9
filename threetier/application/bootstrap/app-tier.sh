#!/bin/bash
# threetier: user data of the app-tier builder (Amazon Linux 2023), rendered by
# threetier.artifacts.render_app_user_data. Installs the Node.js app from S3 as the
# systemd service threetier-app on port @@APP_PORT@@; safe to run again.
BUCKET=@@BUCKET@@
REGION=@@REGION@@
APP_PORT=@@APP_PORT@@
NODE_MAJOR=24
APP_DIR=/opt/threetier/app-tier
@@COMMON@@

install_node
id threetier >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin threetier

fetch_tier app-tier "$APP_DIR"
log "installing app dependencies"
(cd "$APP_DIR" && retry "$NPM" ci --omit=dev)

# Where the database is; no secret here: the app reads the credentials from Secrets
# Manager with the instance role.
install -d -m 0755 /etc/threetier
cat > /etc/threetier/app-config.json <<'JSON'
@@APP_CONFIG@@
JSON
chmod 0644 /etc/threetier/app-config.json

cat > /etc/systemd/system/threetier-app.service <<UNIT
[Unit]
Description=threetier app tier (Node.js API on port $APP_PORT)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=threetier
Group=threetier
WorkingDirectory=$APP_DIR
Environment=NODE_ENV=production
Environment=THREETIER_APP_CONFIG=/etc/threetier/app-config.json
ExecStart=$NODE $APP_DIR/src/server.js
Restart=on-failure
RestartSec=5
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes

[Install]
WantedBy=multi-user.target
UNIT
# Never stop restarting: the database or Secrets Manager may come back later.
mkdir -p /etc/systemd/system/threetier-app.service.d
printf '[Unit]\nStartLimitIntervalSec=0\n' > /etc/systemd/system/threetier-app.service.d/restart.conf

systemctl daemon-reload
systemctl enable threetier-app.service
systemctl restart threetier-app.service

if ! wait_healthy "http://localhost:$APP_PORT/health"; then
  journalctl -u threetier-app.service --no-pager -n 100
  false  # fails the bootstrap through the ERR trap (marker + console)
fi
finish
