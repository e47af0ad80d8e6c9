"""The installed `threetier` console script, each command its own process, against a moto server."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from helpers import threetier, write_config

pytestmark = pytest.mark.slow


def test_up_status_down_as_separate_processes(moto_server: str, tmp_path: Path) -> None:
    write_config(tmp_path)  # down and pause need a config file
    up = threetier(moto_server, tmp_path, "up", "--yes")
    assert up.returncode == 0, up.stderr
    assert "Part 2 (network)" in up.stderr and "Part 2 (network)" not in up.stdout
    assert "is up:" in up.stdout and "is up:" not in up.stderr

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
    assert after.returncode == 3  # not deployed: everything is missing
    assert json.loads(after.stdout)["deployed"] is False
    assert [p["status"] for p in json.loads(after.stdout)["parts"]] == ["pending"] * 7
