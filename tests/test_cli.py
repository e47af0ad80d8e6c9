"""The command line in-process against moto: exit codes, stdout/stderr discipline, messages."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import boto3
import pytest

from helpers import cli, moto, write_config


@pytest.fixture
def mocked():
    with moto():
        yield


def test_up_status_down_round_trip(mocked, tmp_path: Path) -> None:
    write_config(tmp_path)  # down and pause need a config file
    result = cli("up", "--yes", cwd=tmp_path)
    assert result.code == 0, result.stderr
    # Progress is for humans (stderr); the result (the summary, the URL) is on stdout.
    assert "Part 1 (storage)" in result.stderr and "Part 2 (network)" in result.stderr
    assert "Part 1 (storage)" not in result.stdout and "summary" in result.stdout and "URL: http://" in result.stdout
    assert (tmp_path / ".threetier" / "threetier.json").exists()

    status = cli("status", "--json", cwd=tmp_path)
    assert status.code == 0, status.stderr
    report = json.loads(status.stdout)  # nothing but JSON on stdout
    assert report["stack"] == "threetier" and report["region"] == "us-east-1"
    assert report["account"] == "123456789012"
    assert [(p["part"], p["name"], p["status"]) for p in report["parts"]] == [
        (1, "storage", "done"), (2, "network", "done"), (3, "database", "done"), (4, "app-image", "done"),
        (5, "app-tier", "done"), (6, "web-image", "done"), (7, "web-tier", "done")]
    assert all(p["drift"] == [] for p in report["parts"])
    assert report["parts"][1]["resources"]["vpc"].startswith("vpc-")
    assert report["outputs"]["bucket"] == report["parts"][0]["resources"]["bucket"]

    again = cli("up", "--yes", cwd=tmp_path)
    assert again.code == 0
    assert "verified, nothing to do" in again.stderr and "0 mutating AWS calls" in again.stdout

    refused = cli("down", cwd=tmp_path)  # no terminal and no --yes
    assert refused.code == 2 and "pass --yes" in refused.stderr
    assert boto3.client("ec2").describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])["Vpcs"]

    gone = cli("down", "--yes", cwd=tmp_path)
    assert gone.code == 0, gone.stderr
    assert "a scan finds nothing tagged threetier:stack=threetier" in gone.stdout
    assert not (tmp_path / ".threetier" / "threetier.json").exists()
    assert cli("down", "--yes", cwd=tmp_path).code == 0


def test_status_reports_drift_and_exits_3(built: Path) -> None:
    state = json.loads((built / ".threetier" / "threetier.json").read_text())
    table = state["parts"]["2"]["resources"]["route_tables"]["private-app-rt-az1"]
    nat_az2 = state["parts"]["2"]["resources"]["nat_gateways"]["az2"]
    boto3.client("ec2").replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat_az2)
    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    network = json.loads(status.stdout)["parts"][1]
    assert network["status"] == "drifted"
    assert any("private-app-rt-az1" in d and nat_az2 in d for d in network["drift"])
    assert cli("up", "--yes", cwd=built).code == 0  # up repairs it
    assert cli("status", "--json", cwd=built).code == 0


def test_status_without_state_file_finds_the_stack_by_tags(built: Path) -> None:
    (built / ".threetier" / "threetier.json").unlink()
    status = cli("status", "--json", cwd=built)
    assert status.code == 0
    assert [p["status"] for p in json.loads(status.stdout)["parts"]] == ["done"] * 7


def test_status_of_nothing_says_not_deployed_and_exits_3(mocked, tmp_path: Path) -> None:
    status = cli("status", "--json", cwd=tmp_path)
    assert status.code == 3  # everything is missing (the help: 3 when something is missing)
    report = json.loads(status.stdout)
    assert report["deployed"] is False and [p["status"] for p in report["parts"]] == ["pending"] * 7
    human = cli("status", cwd=tmp_path)
    assert human.code == 3 and human.stderr == ""
    assert human.stdout.strip() == ("stack threetier is not deployed in us-east-1 (123456789012): nothing tagged "
                                    "threetier:stack=threetier found; `threetier up` builds it")


def test_replay(mocked, tmp_path: Path, monkeypatch) -> None:
    import steps
    # A part that needs Part 2 is refused while Part 2 is not in AWS, before it changes anything.
    needs_network = dataclasses.replace(steps.PARTS[1], number=3, name="needs-network", needs=(1, 2))
    monkeypatch.setattr(steps, "PARTS", (*steps.PARTS, needs_network))
    refused = cli("replay", "needs-network", cwd=tmp_path)
    assert refused.code == 2
    assert "needs Part 1 (storage) done first" in refused.stderr
    assert cli("replay", "9", cwd=tmp_path).code == 2
    assert "no part '9'" in cli("replay", "9", cwd=tmp_path).stderr
    assert cli("replay", "storage", cwd=tmp_path).code == 0
    refused = cli("replay", "needs-network", cwd=tmp_path)
    assert refused.code == 2 and "needs Part 2 (network) done first (VPC threetier-vpc is missing)" in refused.stderr
    assert cli("up", "--yes", cwd=tmp_path).code == 0
    boto3.client("iam").delete_role_policy(RoleName="threetier-us-east-1-app-role", PolicyName="read-code-bucket")
    replay = cli("-v", "replay", "1", cwd=tmp_path)
    assert replay.code == 0
    assert "aws iam PutRolePolicy" in replay.stderr  # -v shows each AWS call
    assert "repaired" in replay.stderr


def test_aws_failure_is_one_line_with_part_resource_and_code(mocked, tmp_path: Path, monkeypatch) -> None:
    write_config(tmp_path, network={"azs": ["us-east-1a", "us-east-1b"]})
    import botocore.client
    from botocore.exceptions import ClientError
    real = botocore.client.BaseClient._make_api_call

    def refuse_vpc(self, operation, params):
        if operation == "CreateVpc":
            raise ClientError({"Error": {"Code": "VpcLimitExceeded", "Message": "The maximum number of VPCs has been reached."}}, operation)
        return real(self, operation, params)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse_vpc)
    result = cli("up", "--yes", cwd=tmp_path)
    assert result.code == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == ["error: Part 2 (network): create vpc threetier-vpc failed: VpcLimitExceeded: "
                           "The maximum number of VPCs has been reached."]
    assert "Traceback" not in result.stderr
    state = json.loads((tmp_path / ".threetier" / "threetier.json").read_text())
    assert state["parts"]["2"]["status"] == "failed" and "VpcLimitExceeded" in state["parts"]["2"]["error"]


def test_ctrl_c_exits_130_and_leaves_the_state_file_consistent(mocked, tmp_path: Path, monkeypatch) -> None:
    import steps.network

    real, calls = steps.network.ensure_subnets, []

    def interrupted(ctx, vpc, azs):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(ctx, vpc, azs)
    monkeypatch.setattr(steps.network, "ensure_subnets", interrupted)
    result = cli("up", "--yes", cwd=tmp_path)
    assert result.code == 130
    assert "interrupted" in result.stderr
    state = json.loads((tmp_path / ".threetier" / "threetier.json").read_text())
    # Part 1 had made everything (it was between its start and its finish, running side by side).
    assert state["parts"]["1"]["resources"]["bucket"] and state["parts"]["1"]["resources"]["instance_profile"]
    assert state["parts"]["1"]["error"] == "stopped before it finished"
    assert state["parts"]["2"]["status"] == "failed" and state["parts"]["2"]["error"] == "interrupted"
    assert cli("up", "--yes", cwd=tmp_path).code == 0


@pytest.mark.parametrize("command", [["status"], ["plan"], ["up"], ["down", "--yes"], ["replay", "network"]])
def test_no_aws_credentials_is_a_clear_error(tmp_path: Path, monkeypatch, command: list[str]) -> None:
    write_config(tmp_path)  # down and pause need a config file
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    result = cli(*command, cwd=tmp_path)
    assert result.code == 2  # nothing was attempted
    assert result.stderr.strip().splitlines()[-1] == (
        "error: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; "
        "`aws sso login` for SSO); nothing was done; to try threetier without an AWS account: threetier up --sandbox")
    assert not (tmp_path / ".threetier").exists() or not list((tmp_path / ".threetier").glob("*.json"))


def test_credentials_that_cannot_be_used_are_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    for key in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)  # a key ID without its secret
    result = cli("up", "--yes", cwd=tmp_path)
    assert result.code == 2, result.stderr  # before any change
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: the AWS credentials cannot be used: Partial credentials found in env")
    assert line.endswith("nothing was done; to try threetier without an AWS account: threetier up --sandbox")
    assert "internal error" not in result.stderr


def test_a_profile_that_does_not_exist_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nope")
    result = cli("status", cwd=tmp_path)
    assert result.code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: The config profile (nope) could not be found (AWS_PROFILE names it")
    assert "internal error" not in result.stderr and line.endswith("threetier up --sandbox")


def test_help_has_examples(capsys) -> None:
    for command in ([], ["up"], ["down"], ["status"], ["replay"], ["deploy"], ["rollback"], ["plan"], ["cost"], ["pause"], ["resume"], ["sandbox"], ["sandbox", "start"],
                    ["sandbox", "stop"], ["sandbox", "status"]):
        result = cli(*command, "--help")
        assert result.code == 0
        assert "Examples:" in capsys.readouterr().out
