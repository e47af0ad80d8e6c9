#!/bin/bash
# threetier: user data of the web-tier builder (Amazon Linux 2023), rendered by
# threetier.artifacts.render_web_user_data. Builds the React app from S3, serves it with
# nginx using the rendered s3://BUCKET/nginx.conf; safe to run again.
BUCKET=@@BUCKET@@
REGION=@@REGION@@
WEB_ROOT=@@WEB_ROOT@@
NODE_MAJOR=24
SRC_DIR=/opt/threetier/web-tier
@@COMMON@@

install_packages nginx
install_node

fetch_tier web-tier "$SRC_DIR"
log "building the web tier"
(cd "$SRC_DIR" && retry "$NPM" ci && "$NPM" run build)
test -f "$SRC_DIR/dist/index.html"
rm -rf "$WEB_ROOT.new"
cp -a "$SRC_DIR/dist" "$WEB_ROOT.new"
rm -rf "$WEB_ROOT"
mv "$WEB_ROOT.new" "$WEB_ROOT"
if command -v restorecon >/dev/null; then restorecon -R "$WEB_ROOT"; fi

log "installing nginx.conf"
retry aws s3 cp --only-show-errors --region "$REGION" "s3://$BUCKET/nginx.conf" /etc/nginx/nginx.conf.threetier
nginx -t -c /etc/nginx/nginx.conf.threetier
[[ -f /etc/nginx/nginx.conf.dist ]] || cp -p /etc/nginx/nginx.conf /etc/nginx/nginx.conf.dist
install -m 0644 /etc/nginx/nginx.conf.threetier /etc/nginx/nginx.conf

systemctl enable nginx.service
systemctl restart nginx.service

if ! wait_healthy "http://localhost/health"; then
  journalctl -u nginx.service --no-pager -n 50
  false  # fails the bootstrap through the ERR trap (marker + console)
fi
grep -q '<div id="root">' <<<"$(curl -fsS --max-time 5 http://localhost/)"
# Informational: the path through the internal ALB to the app tier.
log "GET /api/health through the internal ALB: $(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 http://localhost/api/health || true)"
finish
