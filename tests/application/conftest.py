"""Fixtures for the application tests: the uploaded bytes materialised on disk, a real
MariaDB, a stub of the Secrets Manager endpoint, and app-tier processes."""
from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from threetier.artifacts import application_files

from .servers import IN_CI, AppTier, LocalCA, MariaDB, need, port_open

DB_USER = "app"
DB_PASSWORD = "app-password"
# A user the server lets in without TLS: only for the test of the explicit opt-out.
PLAINTEXT_DB_USER = "app_plaintext"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-test-AbC123"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("THREETIER_ARTIFACTS") or Path(__file__).parent / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


# What the app builder runs after fetching its tier from the bucket (the web builder only
# copies the built bundle: it runs nothing).
APP_BUILDER_INSTALL = ["ci", "--omit=dev"]
# npm's home (its cache and config), read before the suite's fixtures hide $HOME.
NPM_HOME = os.environ.get("HOME", "/root")


@pytest.fixture(scope="session")
def application_tree(tmp_path_factory) -> Path:
    """application_files() -- the bytes `threetier up` uploads -- written to disk, and the
    app tier's dependencies installed from its lockfile the way its builder does (npm ci;
    the npm cache filled by scripts/setup-app-deps.sh makes it quick)."""
    root = tmp_path_factory.mktemp("bucket")
    for key, content in application_files().items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    result = subprocess.run(
        [need("npm"), *APP_BUILDER_INSTALL, "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=root / "app-tier", capture_output=True, text=True, timeout=300, env={**os.environ, "HOME": NPM_HOME},
    )
    assert result.returncode == 0, f"npm ci in app-tier failed:\n{result.stderr[-3000:]}"
    return root


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory) -> LocalCA:
    """The CA the test database's certificate chains to (RDS's CAs, in AWS)."""
    return LocalCA(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory, local_ca):
    """MariaDB offering TLS, as Aurora does. The app's user may log in over TLS only (REQUIRE
    SSL: what require_secure_transport does to every user of a cluster), so an app that logs
    in as that user spoke TLS."""
    server = MariaDB(tmp_path_factory.mktemp("mariadb"), tls=local_ca)
    try:
        server.install()
        server.start()
        server.sql(
            f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}' REQUIRE SSL;"
            f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'127.0.0.1';"
            f"CREATE USER '{PLAINTEXT_DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{PLAINTEXT_DB_USER}'@'127.0.0.1';"
        )
        yield server
    finally:
        server.close()


class SecretsManagerStub:
    """Answers GetSecretValue like the Secrets Manager endpoint (JSON 1.1 protocol)."""

    def __init__(self):
        self.secret = {"username": DB_USER, "password": DB_PASSWORD}
        self.calls: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                target = self.headers.get("X-Amz-Target", "")
                stub.calls.append({"target": target, **request})
                if target == "secretsmanager.GetSecretValue" and request.get("SecretId") == SECRET_ARN:
                    status, body = 200, {"ARN": SECRET_ARN, "Name": "rds!cluster-test",
                                         "SecretString": json.dumps(stub.secret), "VersionId": "v1"}
                else:
                    status, body = 400, {"__type": "ResourceNotFoundException", "message": "no such secret"}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def secrets_manager():
    stub = SecretsManagerStub()
    yield stub
    stub.close()


# The app's TLS as in production (THREETIER_DB_TLS=required, which its systemd unit sets),
# with one change for this machine: the CA that signed the test database's certificate
# instead of the RDS bundle shipped with the app.
def tls_env(local_ca: LocalCA) -> dict[str, str]:
    return {"THREETIER_DB_TLS": "required", "THREETIER_DB_CA_BUNDLE": str(local_ca.ca_file)}


@pytest.fixture
def start_app(application_tree, mariadb, local_ca, tmp_path):
    """start_app(db_name, secrets=None, db_port=None, user=..., env=...) -> a running
    AppTier; credentials from the THREETIER_DB_CREDENTIALS override, or from `secrets` (a
    SecretsManagerStub); the database is the session's MariaDB unless db_port names another,
    reached over TLS verified against the test CA (tls_env) unless `env` says otherwise."""
    started: list[AppTier] = []

    def start(db_name: str, secrets: SecretsManagerStub | None = None, db_port: int | None = None, *,
              user: str = DB_USER, env: dict[str, str] | None = None) -> AppTier:
        if secrets is None:
            app_env = {"THREETIER_DB_CREDENTIALS": json.dumps({"username": user, "password": DB_PASSWORD})}
        else:
            app_env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets.url}
        app_env.update(tls_env(local_ca) if env is None else env)
        app = AppTier(application_tree / "app-tier", tmp_path, db_port=db_port or mariadb.port, db_name=db_name,
                      env=app_env)
        started.append(app)
        app.start()
        return app

    yield start
    for app in started:
        app.stop()


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sandbox_ok():
    """The simulated Amazon Linux 2023 host can run here (al2023/run-user-data.sh): root, mount
    namespaces, and port 80 free for the web builder's nginx."""
    need("unshare")
    if os.geteuid() != 0:
        _unavailable("the simulated host needs root (mount namespaces and overlays)")
    probe = subprocess.run(["unshare", "--mount", "--fork", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        _unavailable(f"cannot make a mount namespace here: {probe.stderr.strip()}")
    if port_open(80):
        _unavailable("port 80 is taken; the web builder's nginx must listen on it")
