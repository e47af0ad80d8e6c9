"""The installed `threetier` console script, each command its own process, against a moto server."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_server(tmp_path: Path):
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


def threetier(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("threetier")
    assert exe, "the threetier console script is not installed (pip install -e .)"
    env = {**os.environ, "AWS_ENDPOINT_URL": url, "NO_COLOR": "1"}
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_up_status_down_as_separate_processes(moto_server: str, tmp_path: Path) -> None:
    up = threetier(moto_server, tmp_path, "up")
    assert up.returncode == 0, up.stderr
    assert up.stdout == ""
    assert "Part 2 (network)" in up.stderr

    status = threetier(moto_server, tmp_path, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert [p["status"] for p in report["parts"]] == ["done"] * 7
    vpc = report["parts"][1]["resources"]["vpc"]

    ec2 = boto3.client("ec2", endpoint_url=moto_server)
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])["Vpcs"]] == [vpc]

    down = threetier(moto_server, tmp_path, "down", "--yes")
    assert down.returncode == 0, down.stderr
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])["Vpcs"] == []
    assert boto3.client("s3", endpoint_url=moto_server).list_buckets()["Buckets"] == []
    assert not (tmp_path / ".threetier" / "threetier.json").exists()

    after = threetier(moto_server, tmp_path, "status", "--json")
    assert after.returncode == 0
    assert [p["status"] for p in json.loads(after.stdout)["parts"]] == ["pending"] * 7
