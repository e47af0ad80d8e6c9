"""Real servers for the application tests: MariaDB, the Node.js app tier, nginx.

Each runs as a child process on 127.0.0.1 (free ports, throwaway directories)
and is stopped by the fixture that started it.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
IS_ROOT = os.geteuid() == 0


def need(tool: str) -> str:
    """Path of a required program: missing fails in CI, skips elsewhere."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        message = f"{tool} is not installed (scripts/setup-app-deps.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, what: str, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http(method: str, url: str, body=None, *, headers=None, data: bytes | None = None, timeout: float = 10):
    """(status, headers, body): body parsed as JSON when it is JSON."""
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, head, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        status, head, raw = err.code, err.headers, err.read()
    if (head.get("Content-Type") or "").startswith("application/json"):
        return status, head, json.loads(raw)
    return status, head, raw.decode(errors="replace")


def _stop(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class LocalCA:
    """A throwaway certificate authority and the database server's certificates it signs: what
    Amazon RDS's CAs and an Aurora endpoint's certificate are to the app in AWS. The server's
    certificate names `localhost` (the name the tests connect to); `other_cert_file` is one for
    another host, to present instead (MariaDB.present_certificate)."""

    def __init__(self, base: Path):
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self._now = datetime.datetime.now(datetime.timezone.utc)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "threetier test CA")])
        ca_cert = (
            self._builder(self._name, self._key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = base / "ca.pem"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.cert_file, self.key_file = self._server("server", "localhost")
        self.other_cert_file, self.other_key_file = self._server("other", "db.elsewhere.test")

    def _builder(self, subject: x509.Name, public_key) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(self._name).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(self._now - datetime.timedelta(minutes=5))
                .not_valid_after(self._now + datetime.timedelta(days=2)))

    def _server(self, stem: str, host: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        cert_file, key_file = self.base / f"{stem}.pem", self.base / f"{stem}-key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_file.chmod(0o600)
        return cert_file, key_file


class MariaDB:
    """A throwaway MariaDB server: its own datadir, socket and TCP port on 127.0.0.1; with
    `tls`, it offers TLS with that CA's server certificate (as Aurora does, always)."""

    def __init__(self, base: Path, tls: LocalCA | None = None):
        self.base = base
        self.tls = tls
        self.datadir = base / "data"
        self.socket = base / "mysqld.sock"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log = open(base / "mariadbd.log", "ab")  # noqa: SIM115 - the server's log for its whole life

    def _user_args(self) -> list[str]:
        return ["--user=root"] if IS_ROOT else []

    def install(self) -> None:
        subprocess.run(
            [need("mariadb-install-db"), "--no-defaults", f"--datadir={self.datadir}",
             "--auth-root-authentication-method=normal", "--skip-test-db", *self._user_args()],
            check=True, stdout=self._log, stderr=subprocess.STDOUT, timeout=120,
        )

    def start(self) -> None:
        if self.tls is not None and not (self.base / "tls-cert.pem").exists():
            self._install_certificate(self.tls.cert_file, self.tls.key_file)
        self.proc = subprocess.Popen(
            [need("mariadbd"), "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
             f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.base / 'mysqld.pid'}",
             "--skip-name-resolve", "--innodb-buffer-pool-size=32M", "--skip-log-bin", *self._tls_args(),
             *self._user_args()],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        wait_until(lambda: self._answers() or self._died(), "MariaDB to accept connections", timeout=60)
        if self.proc.poll() is not None:
            raise AssertionError(f"mariadbd exited: see {self.base / 'mariadbd.log'}")

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        return [f"--ssl-ca={self.tls.ca_file}", f"--ssl-cert={self.base / 'tls-cert.pem'}",
                f"--ssl-key={self.base / 'tls-key.pem'}", "--tls-version=TLSv1.2,TLSv1.3"]

    def _install_certificate(self, cert_file: Path, key_file: Path) -> None:
        shutil.copyfile(cert_file, self.base / "tls-cert.pem")
        shutil.copyfile(key_file, self.base / "tls-key.pem")
        (self.base / "tls-key.pem").chmod(0o600)

    @contextlib.contextmanager
    def present_certificate(self, cert_file: Path, key_file: Path):
        """Serves another certificate to new connections (FLUSH SSL), the usual one again after."""
        assert self.tls is not None
        self._install_certificate(cert_file, key_file)
        self.sql("FLUSH SSL")
        try:
            yield
        finally:
            self._install_certificate(self.tls.cert_file, self.tls.key_file)
            self.sql("FLUSH SSL")

    def _died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def _answers(self) -> bool:
        return port_open(self.port) and subprocess.run(
            self._client_args("SELECT 1"), capture_output=True).returncode == 0

    def _client_args(self, statement: str) -> list[str]:
        return [need("mariadb"), "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B", "-e", statement]

    def sql(self, statement: str) -> str:
        return subprocess.run(self._client_args(statement), check=True, capture_output=True, text=True).stdout

    def stop(self, *, kill: bool = False) -> None:
        _stop(self.proc, signal.SIGKILL if kill else signal.SIGTERM, timeout=30)
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._log.close()


class Blackhole:
    """A TCP port that accepts connections and never says a word: a database host that
    cannot be reached (a security group that drops, a cluster still being created)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class AppTier:
    """The Node.js app tier (src/server.js) with a config file written like the bootstrap does."""

    def __init__(self, app_dir: Path, work: Path, *, db_port: int, db_name: str, env: dict[str, str]):
        self.app_dir = app_dir
        self.port = free_port()
        self.config_path = work / f"app-config-{db_name}.json"
        self.config_path.write_text(json.dumps({
            "port": self.port,
            "listenHost": "127.0.0.1",
            # A host *name*, as Aurora's endpoints are: what verified TLS checks the certificate against.
            "database": {"host": "localhost", "port": db_port, "name": db_name,
                         "secretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-test-AbC123",
                         "region": "us-east-1"},
        }))
        self.env = env
        self.log_path = work / f"app-tier-{db_name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
               "THREETIER_APP_CONFIG": str(self.config_path), **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([need("node"), "src/server.js"], cwd=self.app_dir, env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port) or self.proc.poll() is not None, "the app tier to listen")
        if self.proc.poll() is not None:
            raise AssertionError(f"app tier exited with {self.proc.returncode}:\n{self.log()}")

    def wait_healthy(self, timeout: float = 30) -> None:
        """Liveness: the process serves (the database plays no part)."""
        wait_until(lambda: http("GET", f"{self.url}/health")[0] == 200, "the app tier to be healthy", timeout)

    def wait_ready(self, timeout: float = 30) -> None:
        """Readiness: the database answers and the schema is in place."""
        wait_until(lambda: http("GET", f"{self.url}/ready")[0] == 200, "the app tier to be ready", timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


class Nginx:
    """nginx in the foreground with a given config file (the rendered nginx.conf)."""

    def __init__(self, conf: Path, work: Path):
        self.conf = conf
        self.pid = work / "nginx.pid"
        self.proc: subprocess.Popen | None = None

    def test_config(self) -> subprocess.CompletedProcess:
        return subprocess.run([need("nginx"), "-t", "-c", str(self.conf), "-g", f"pid {self.pid};"],
                              capture_output=True, text=True)

    def start(self, port: int) -> None:
        self.proc = subprocess.Popen([need("nginx"), "-c", str(self.conf), "-g", f"daemon off; pid {self.pid};"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: port_open(port) or self.proc.poll() is not None, "nginx to listen")
        if self.proc.poll() is not None:
            raise AssertionError(f"nginx exited: {self.proc.stderr.read().decode()}")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGQUIT)
        self.proc = None
