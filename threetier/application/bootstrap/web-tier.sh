#!/bin/bash
# threetier: user data of the web-tier builder (Amazon Linux 2023), rendered by
# threetier.artifacts.render_web_user_data. nginx serves the React app, built ahead of time
# and shipped in the package, or your static files (web.source) (s3://BUCKET/web-tier/ holds
# the built files: nothing is built here), with the rendered s3://BUCKET/nginx.conf, its logs shipped to CloudWatch Logs;
# safe to run again.
BUCKET=@@BUCKET@@
REGION=@@REGION@@
WEB_ROOT=@@WEB_ROOT@@
@@COMMON@@

wait_for_network
install_packages nginx
# nginx's access and error logs (the nginx package rotates them); the agent picks them up as
# nginx creates them.
ship_logs

fetch_tier web-tier "$WEB_ROOT" index.html
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
# / answers with the uploaded index.html (the demo's build or web.source), compared in bash: no
# diffutils needed on the image.
[[ $(curl -fsS --max-time 5 http://localhost/) == "$(<"$WEB_ROOT/index.html")" ]]
# Informational: the path through the internal ALB to the app tier and its database.
log "GET /api/ready through the internal ALB: $(curl -sS --max-time 5 http://localhost/api/ready || true)"
finish
