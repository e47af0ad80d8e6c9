"""The installed `threetier` console script, each command its own process, against a moto server."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from helpers import threetier, threetier_process, write_config
from threetier.aws import STACK_TAG

pytestmark = pytest.mark.slow

STACK_FILTER = [{"Name": f"tag:{STACK_TAG}", "Values": ["threetier"]}]


def test_two_operators_make_one_stack_then_status_and_down_as_separate_processes(
        moto_server: str, tmp_path: Path) -> None:
    """Two `up`s of one stack from two checkouts (two state files) at the same time: one builds,
    the other is refused naming the first; nothing is built twice, and the refused one then adopts
    the stack. Then `status` and `down`, each a process of its own, read and end what `up` left.
    (One build for both stories: each costs seconds of moto server and process start-ups.)"""
    laptops = [tmp_path / "alice", tmp_path / "bob"]
    for laptop in laptops:
        laptop.mkdir()
        write_config(laptop)  # down and pause need a config file
    runs = [threetier_process(moto_server, laptop, "up", "--yes") for laptop in laptops]
    results = [(*run.communicate(timeout=300), run.returncode) for run in runs]
    codes = sorted(code for _, _, code in results)
    assert codes == [0, 2], [err[-500:] for _, err, _ in results]
    refused = next(err for _, err, code in results if code == 2)
    assert "is being changed by" in refused and "threetier up" in refused
    ec2 = boto3.client("ec2", endpoint_url=moto_server)
    assert len(ec2.describe_vpcs(Filters=STACK_FILTER)["Vpcs"]) == 1
    assert len(ec2.describe_subnets(Filters=STACK_FILTER)["Subnets"]) == 6
    up_out, up_err, _ = next(result for result in results if result[2] == 0)
    assert "Part 2 (network)" in up_err and "Part 2 (network)" not in up_out
    assert "is up:" in up_out and "is up:" not in up_err
    codes_in_order = [code for _, _, code in results]
    winner, loser = laptops[codes_in_order.index(0)], laptops[codes_in_order.index(2)]
    again = threetier(moto_server, loser, "up", "--yes")
    assert again.returncode == 0, again.stderr[-800:]
    assert "verified, nothing to do" in again.stderr
    assert len(ec2.describe_vpcs(Filters=STACK_FILTER)["Vpcs"]) == 1

    status = threetier(moto_server, winner, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert [p["status"] for p in report["parts"]] == ["done"] * 7
    vpc = report["parts"][1]["resources"]["vpc"]
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=STACK_FILTER)["Vpcs"]] == [vpc]

    down = threetier(moto_server, winner, "down", "--yes")
    assert down.returncode == 0, down.stderr
    assert ec2.describe_vpcs(Filters=STACK_FILTER)["Vpcs"] == []
    assert boto3.client("s3", endpoint_url=moto_server).list_buckets()["Buckets"] == []
    assert not (winner / ".threetier" / "threetier.json").exists()

    after = threetier(moto_server, winner, "status", "--json")
    assert after.returncode == 3  # not deployed: everything is missing
    assert json.loads(after.stdout)["deployed"] is False
    assert [p["status"] for p in json.loads(after.stdout)["parts"]] == ["pending"] * 7
