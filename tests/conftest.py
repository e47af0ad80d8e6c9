"""Tests never touch real AWS: fake credentials and region are forced for every test,
and the real credential and config files are hidden."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import botocore.client
import pytest

AWS_ENV_PREFIXES = ("AWS_",)
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for key in list(os.environ):
        if key.startswith(AWS_ENV_PREFIXES) or key in ("NO_COLOR",):
            monkeypatch.delenv(key, raising=False)
    hidden = tmp_path_factory.mktemp("no-aws-home")
    monkeypatch.setenv("HOME", str(hidden))
    # The user's sandbox (its record, log and stack state files) lives here: one per test.
    monkeypatch.setenv("XDG_STATE_HOME", str(hidden / "state"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(hidden / "credentials-that-do-not-exist"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(hidden / "config-that-does-not-exist"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    # No instance metadata lookups for credentials either.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MOTO_ACM_VALIDATION_WAIT", "0")


@pytest.fixture(autouse=True)
def in_process_moto_is_an_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto has no endpoint URL to tell it apart from AWS: say so, so that
    `up` does not try an HTTP round trip through a load balancer nobody serves."""
    from threetier.aws import Aws
    from threetier.cli.common import Runtime
    real = Runtime.aws

    def aws(self: Runtime, **kwargs) -> Aws:
        made = real(self, **kwargs)
        made.emulator = True
        made.read_threads = 1  # in-process moto is CPU-bound: threads only slow it down
        return made
    monkeypatch.setattr(Runtime, "aws", aws)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_server(tmp_path: Path):
    """moto's own server in a process of its own: what separate `threetier` processes talk to."""
    port = free_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    log = open(tmp_path / "moto.log", "w")  # noqa: SIM115 - closed in the finally, after the server
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"moto server did not start: {(tmp_path / 'moto.log').read_text()}") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)
        log.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS operation made in this process, whoever makes it (the CLI's own clients too)."""
    seen: list[str] = []
    real = botocore.client.BaseClient._make_api_call

    def record(self, operation, params):
        seen.append(operation)
        return real(self, operation, params)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return seen
