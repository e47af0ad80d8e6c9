"""Your own app (app.source) through the real bootstrap on the simulated Amazon Linux 2023 host: a small
Python app and a small Node.js app (tests/application/apps/), uploaded as `threetier up` uploads them,
installed by app.install, run by app.start, answering their health path, reaching a real MariaDB over
TLS with the credentials the documented way gives them -- and again after the password rotates."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from threetier.artifacts import (
    CREDENTIALS_COMMAND,
    CUSTOM_CA_BUNDLE,
    CUSTOM_CA_KEY,
    code_files,
    render_custom_app_user_data,
    render_nginx_conf,
    render_web_user_data,
)

from .conftest import DB_PASSWORD, DB_USER, NPM_HOME, SECRET_ARN
from .servers import free_port, http
from .test_bootstrap_run import APP_LOG_GROUP, BUCKET, WEB_LOG_GROUPS, Host

pytestmark = pytest.mark.slow  # starts real servers

APPS = Path(__file__).parent / "apps"
# scripts/setup-app-deps.sh keeps the Python app's one dependency here, so its install needs no index.
WHEELS = Path("/var/cache/threetier-test/wheels")
CONFIGS = {
    "python": {"runtime": "python3.12", "install": "pip install -r requirements.txt --target vendor",
               "start": "python app.py", "packages": "python3.12 python3.12-pip"},
    "node": {"runtime": "nodejs22", "install": "npm ci --omit=dev", "start": "node server.js",
             "packages": "nodejs22 nodejs22-npm"},
}


def installer_env(app: str) -> dict[str, str]:
    """Where the builder's pip or npm finds the packages offline when this machine has them."""
    if app == "node":  # the cache scripts/setup-app-deps.sh fills (the demo's lockfile pins the same versions)
        return {"npm_config_cache": f"{NPM_HOME}/.npm", "npm_config_prefer_offline": "true"}
    if any(WHEELS.glob("PyMySQL-*.whl")):
        return {"PIP_FIND_LINKS": str(WHEELS), "PIP_NO_INDEX": "1"}
    return {}


@pytest.mark.parametrize("app", ["python", "node"])
def test_your_app_serves_reaches_the_database_over_tls_and_survives_a_rotation(
        app, sandbox_ok, tmp_path, mariadb, local_ca, secrets_manager):
    config = CONFIGS[app]
    source = tmp_path / "outside-the-project" / app  # where a user keeps it; never node_modules/ or vendor/
    shutil.copytree(APPS / app, source)
    files = code_files(str(source), None)
    bucket = tmp_path / "bucket"
    for key, body in files.items():
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        (bucket / key).write_bytes(body)
    # The one change for this machine: the CA that signed the test database's certificate, in the place
    # of the RDS CA bundle (the app reads it from $DB_CA_BUNDLE, where the bootstrap installed it).
    (bucket / CUSTOM_CA_KEY).write_bytes(local_ca.ca_file.read_bytes())

    port = free_port()
    user_data = render_custom_app_user_data(
        bucket=BUCKET, region="us-east-1", db_host="localhost", db_reader_host="localhost", db_name="customdb",
        db_secret_arn=SECRET_ARN, port=port, log_group=APP_LOG_GROUP, runtime=config["runtime"],
        install=config["install"], start=config["start"], health_path="/healthz")
    user_data = user_data.replace('DB_PORT="3306"', f'DB_PORT="{mariadb.port}"')  # and MariaDB's port
    # What the instance role gives the app in AWS: a way to read the secret.
    host = Host(tmp_path / "host", bucket, {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_manager.url})
    host.env.update(installer_env(app))
    rotated = f"rotated-{app}-password"
    try:
        result = host.run(user_data)
        assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        assert host.file("/var/lib/threetier/bootstrap.done").is_file()
        assert http("GET", f"http://127.0.0.1:{port}/healthz")[::2] == (200, {"status": "ok"})
        status, _, body = http("GET", f"http://127.0.0.1:{port}/db")
        assert status == 200 and body["database"] == "up" and body["user"] == DB_USER, body
        assert body["tls"], "the app's user may log in over TLS only: a cipher is in use"
        assert len(secrets_manager.calls) == 1, "the credentials read once, at the first request"

        # The managed secret rotates: the database takes the new password, the secret holds it.
        mariadb.sql(f"ALTER USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{rotated}'")
        secrets_manager.secret = {"username": DB_USER, "password": rotated}
        status, _, body = http("GET", f"http://127.0.0.1:{port}/db")
        assert (status, body["database"]) == (200, "up"), body
        assert len(secrets_manager.calls) == 2, "refused once, the app read the current credentials"
        if app == "python":
            serve_your_site(tmp_path, bucket, app_port=port)
    finally:
        host.stop()
        mariadb.sql(f"ALTER USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'")

    calls = host.calls()
    # The runtime from AL2023's repository, in the one dnf transaction; app.install as threetier.
    assert [c for c in calls if c.startswith("dnf ")] == \
        [f"dnf install -y {config['packages']} amazon-cloudwatch-agent logrotate"]
    assert "useradd --system --no-create-home --shell /sbin/nologin threetier" in calls
    runtime_path = "/opt/threetier/runtime/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
    assert f"runuser -u threetier -- env HOME=/var/cache/threetier PATH={runtime_path} /bin/bash -c " \
           f"{config['install']}" in calls
    installed = "vendor/pymysql" if app == "python" else "node_modules/mysql2"
    assert host.file(f"/opt/threetier/app-tier/{installed}").is_dir()
    assert (host.file("/opt/threetier/app-tier").stat().st_mode & 0o777) == 0o750, "the service reads, never writes"
    # What the app receives: the documented environment, and no secret in it.
    env = dict(line.split("=", 1) for line in host.file("/etc/threetier/app.env").read_text().splitlines())
    assert {key: value.strip('"') for key, value in env.items()} == {
        "PORT": str(port), "DB_HOST": "localhost", "DB_READER_HOST": "localhost", "DB_PORT": str(mariadb.port),
        "DB_NAME": "customdb", "DB_SECRET_ARN": SECRET_ARN, "DB_CA_BUNDLE": CUSTOM_CA_BUNDLE,
        "DB_CREDENTIALS_COMMAND": CREDENTIALS_COMMAND, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "THREETIER_HEALTH_PATH": "/healthz"}
    assert host.file(CUSTOM_CA_BUNDLE).read_bytes() == local_ca.ca_file.read_bytes()
    unit = host.file("/etc/systemd/system/threetier-app.service").read_text()
    for line in ("User=threetier", "EnvironmentFile=/etc/threetier/app.env", "Restart=on-failure",
                 "ExecStart=/usr/local/bin/threetier-app-start", f"Environment=PATH={runtime_path}"):
        assert f"\n{line}\n" in unit, line
    assert host.file("/usr/local/bin/threetier-app-start").read_text() == \
        f"#!/bin/bash\nexec /bin/bash -c '{config['start']}'\n"
    log = host.file("/var/log/threetier/app.log").read_text()
    assert f"{app} app listening on {port}" in log, log
    # The password is nowhere threetier wrote it: not in the user data, the bucket, the env file.
    for password in (DB_PASSWORD, rotated):
        assert password not in user_data
        assert not any(password.encode() in body for body in files.values())
        assert password not in host.file("/etc/threetier/app.env").read_text()
    assert os.access(host.file(CREDENTIALS_COMMAND), os.X_OK)
    assert "secretsmanager get-secret-value" in host.file(CREDENTIALS_COMMAND).read_text()
    assert json.loads(json.dumps(secrets_manager.calls[0]))["SecretId"] == SECRET_ARN


def serve_your_site(tmp_path: Path, bucket: Path, *, app_port: int) -> None:
    """web.source through the real web builder: nginx serves the site's own files, byte for byte, gives
    index.html for any other path (a single-page app's routes), and sends /api/ to the app tier (played by
    the app started above, as the internal ALB would)."""
    site = tmp_path / "outside-the-project" / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>your site</title><script src=/assets/app.js></script>\n")
    (site / "assets" / "app.js").write_text("fetch('/api/db')\n")
    for key, body in code_files(None, str(site)).items():
        if key.startswith("web-tier/"):
            (bucket / key).parent.mkdir(parents=True, exist_ok=True)
            (bucket / key).write_bytes(body)
    (bucket / "nginx.conf").write_bytes(render_nginx_conf("127.0.0.1", upstream_port=app_port))
    web = Host(tmp_path / "web-host", bucket, {})
    try:
        result = web.run(render_web_user_data(bucket=BUCKET, region="us-east-1", **WEB_LOG_GROUPS))
        assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        index = (site / "index.html").read_text()
        assert http("GET", "http://127.0.0.1/")[::2] == (200, index)
        assert http("GET", "http://127.0.0.1/orders/42")[::2] == (200, index), "a client-side route"
        assert http("GET", "http://127.0.0.1/assets/app.js")[2] == "fetch('/api/db')\n"
        status, _, body = http("GET", "http://127.0.0.1/api/db")
        assert (status, body["database"]) == (200, "up"), body
        assert http("GET", "http://127.0.0.1/health")[0] == 200, "nginx's own"
    finally:
        web.stop()
