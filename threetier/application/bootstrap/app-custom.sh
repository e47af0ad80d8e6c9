#!/bin/bash
# threetier: user data of the app-tier builder for YOUR app (app.source in config.yaml; Amazon Linux
# 2023), rendered by threetier.artifacts.render_custom_app_user_data. Installs the runtime from AL2023's
# repository, fetches app-tier/ from S3, runs app.install once as the unprivileged user threetier, and
# runs app.start as the systemd service threetier-app on $PORT (@@APP_PORT@@), restarted on failure, its
# output shipped to CloudWatch Logs. What the app receives: README "Your application". Safe to run again.
BUCKET=@@BUCKET@@
REGION=@@REGION@@
APP_PORT=@@APP_PORT@@
APP_LOG_FILE=@@APP_LOG_FILE@@
HEALTH_PATH=@@HEALTH_PATH@@
APP_INSTALL=@@APP_INSTALL@@
APP_DIR=/opt/threetier/app-tier
# The runtime's programs (node, npm / python, pip), first on the PATH of app.install and app.start.
RUNTIME_BIN=/opt/threetier/runtime/bin
APP_PATH="$RUNTIME_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
# What the app reads; no secret in it (the credentials: $DB_CREDENTIALS_COMMAND).
APP_ENV_FILE=/etc/threetier/app.env
CA_BUNDLE=/etc/threetier/rds-ca-bundle.pem
CREDENTIALS_COMMAND=/usr/local/bin/threetier-db-credentials
START_SCRIPT=/usr/local/bin/threetier-app-start
# The install's home: npm's and pip's caches and configuration, the user's only writable place.
INSTALL_HOME=/var/cache/threetier
@@COMMON@@

wait_for_network
install_packages @@RUNTIME_PACKAGES@@
id threetier >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin threetier

install -d -m 0755 "$RUNTIME_BIN"
# name, then the command line it runs (from threetier.sources.RUNTIMES), one pair a line.
while read -r name command; do
  printf '#!/bin/sh\nexec %s "$@"\n' "$command" > "$RUNTIME_BIN/$name"
  chmod 0755 "$RUNTIME_BIN/$name"
done <<'RUNTIME'
@@RUNTIME_COMMANDS@@
RUNTIME
log "runtime: $(PATH=$APP_PATH @@RUNTIME_VERSION@@)"

fetch_tier app-tier "$APP_DIR" .threetier/rds-ca-bundle.pem
install -d -m 0755 /etc/threetier
install -m 0644 "$APP_DIR/.threetier/rds-ca-bundle.pem" "$CA_BUNDLE"

# run_install: app.install, once, here on the builder (the image carries its result): as threetier, in
# the code's directory, with the runtime first on PATH; retried like every network step.
run_install() {
  [[ -n $APP_INSTALL ]] || return 0
  log "app.install: $APP_INSTALL"
  (cd "$APP_DIR" && retry runuser -u threetier -- env HOME="$INSTALL_HOME" PATH="$APP_PATH" \
    /bin/bash -c "$APP_INSTALL")
}
install -d -m 0755 -o threetier -g threetier "$INSTALL_HOME"
chown -R threetier:threetier "$APP_DIR"
run_install
# The service reads its code and cannot change it.
chown -R root:threetier "$APP_DIR"
chmod -R u+rwX,g+rX,g-w,o-rwx "$APP_DIR"

# The credentials, current after every rotation of the managed secret, with the AWS CLI and the
# instance role: no SDK needed. The app runs it at startup and again when the database refuses its login.
aws_cli=$(command -v aws)
cat > "$CREDENTIALS_COMMAND" <<CREDENTIALS
#!/bin/bash
# Prints the database's current credentials: {"username": "...", "password": "...", ...} (threetier).
exec $aws_cli secretsmanager get-secret-value --secret-id "\$DB_SECRET_ARN" --region "\$AWS_REGION" \\
  --query SecretString --output text
CREDENTIALS
chmod 0755 "$CREDENTIALS_COMMAND"

cat > "$APP_ENV_FILE" <<'APP_ENV'
@@APP_ENV@@
APP_ENV
printf 'THREETIER_HEALTH_PATH="%s"\n' "$HEALTH_PATH" >> "$APP_ENV_FILE"
chmod 0644 "$APP_ENV_FILE"

# app.start, exec'd by bash: systemd runs it as it is written in config.yaml.
cat > "$START_SCRIPT" <<'START'
@@START_SCRIPT@@
START
chmod 0755 "$START_SCRIPT"

app_log_file
ship_logs
app_unit "your app" "$START_SCRIPT" "Environment=PATH=$APP_PATH" "Environment=HOME=$INSTALL_HOME" \
  "EnvironmentFile=$APP_ENV_FILE"

systemctl daemon-reload
systemctl enable threetier-app.service
systemctl restart threetier-app.service

# Liveness (app.health_path), answered without the database: the image bakes before Aurora answers.
wait_healthy "http://localhost:$APP_PORT$HEALTH_PATH" || app_unhealthy
finish
