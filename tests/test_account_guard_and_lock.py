"""Trust (issue 9): never act on the wrong account."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from helpers import cli, moto
from threetier.aws import STACK_TAG, tag_value

OTHER_ACCOUNT = "111111111111"
STACK_FILTER = [{"Name": f"tag:{STACK_TAG}", "Values": ["threetier"]}]


def switch_to_other_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials of another account, as a different AWS_PROFILE would give (moto: MOTO_ACCOUNT_ID
    makes every later request that account's)."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", OTHER_ACCOUNT)
    assert boto3.client("sts").get_caller_identity()["Account"] == OTHER_ACCOUNT


@pytest.mark.parametrize("command", [("up",), ("down", "--yes"), ("replay", "network"), ("status",), ("plan",)])
def test_a_state_file_of_another_account_is_refused_before_anything(built: Path, monkeypatch, command) -> None:
    state_path = built / ".threetier" / "threetier.json"
    before = state_path.read_text()
    switch_to_other_account(monkeypatch)
    result = cli(*command, cwd=built)
    assert result.code == 2, result.stderr
    assert result.stderr.count("error:") == 1
    assert "123456789012" in result.stderr and OTHER_ACCOUNT in result.stderr and "nothing was done" in result.stderr
    # Nothing was built in the other account, and the state file still names the stack's own.
    assert boto3.client("ec2").describe_vpcs(Filters=STACK_FILTER)["Vpcs"] == []
    assert state_path.read_text() == before and json.loads(before)["account"] == "123456789012"


def test_the_stack_is_untouched_after_a_refused_down(built: Path, monkeypatch) -> None:
    switch_to_other_account(monkeypatch)
    assert cli("down", "--yes", cwd=built).code == 2
    monkeypatch.delenv("MOTO_ACCOUNT_ID")  # back to the stack's own account
    status = cli("status", "--json", cwd=built)
    assert status.code == 0, status.stderr
    assert all(part["status"] == "done" for part in json.loads(status.stdout)["parts"])


def test_sigterm_is_handled_like_ctrl_c(tmp_path: Path, monkeypatch) -> None:
    import os
    import signal

    import steps.network
    real, calls = steps.network.ensure_subnets, []

    def terminated(ctx, vpc, azs):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to the main thread, which runs the scheduler
        return real(ctx, vpc, azs)

    with moto():
        monkeypatch.setattr(steps.network, "ensure_subnets", terminated)
        result = cli("up", "--yes", cwd=tmp_path)
        assert result.code == 130, result.stderr
        assert "interrupted; the state file is consistent" in result.stderr and "Traceback" not in result.stderr
        state = json.loads((tmp_path / ".threetier" / "threetier.json").read_text())
        assert any(part["error"] for part in state["parts"].values())  # the parts in flight say they stopped
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the CLI's only while it runs
        assert cli("up", "--yes", cwd=tmp_path).code == 0


@pytest.mark.parametrize("part", ["3", "5", "7"])
def test_replay_works_from_aws_alone_without_a_state_file(built: Path, part: str) -> None:
    (built / ".threetier" / "threetier.json").unlink()
    result = cli("replay", part, cwd=built)
    assert result.code == 0, result.stderr
    assert "verified, nothing to do" in result.stderr


@pytest.mark.parametrize(("key", "part", "expected"), [
    ("app-tier/src/server.js", 1, "application code: 1 files missing or changed"),
    ("nginx.conf", 6, "nginx.conf in the bucket: missing"),
])
def test_status_sees_code_deleted_from_the_bucket_and_up_puts_it_back(built: Path, key, part, expected) -> None:
    state = json.loads((built / ".threetier" / "threetier.json").read_text())
    boto3.client("s3").delete_object(Bucket=state["parts"]["1"]["resources"]["bucket"], Key=key)
    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    drift = json.loads(status.stdout)["parts"][part - 1]["drift"]
    assert any(expected in line for line in drift), drift
    assert cli("up", "--yes", cwd=built).code == 0
    assert cli("status", "--json", cwd=built).code == 0


def test_status_says_when_the_state_file_is_missing(built: Path) -> None:
    (built / ".threetier" / "threetier.json").unlink()
    human = cli("status", cwd=built)
    assert human.code == 0 and "no state file at .threetier/threetier.json" in human.stderr
    assert json.loads(cli("status", "--json", cwd=built).stdout)["state_file"] is None


# -- item 2: one operator at a time, anywhere: the stack's lock in AWS -------------------------
LOCK = "/threetier/threetier/lock"
SOMEONE_ELSE = {"user": "bob", "host": "bobs-laptop", "pid": 4242, "command": "up",
                "since": "2026-11-21T09:00:00Z", "caller": "arn:aws:iam::123456789012:user/bob", "token": "bobs"}


def hold_lock_as_someone_else(holder: dict | None = None) -> None:
    boto3.client("ssm").put_parameter(Name=LOCK, Value=json.dumps(holder or SOMEONE_ELSE), Type="String")


def lock_value() -> dict | None:
    try:
        return json.loads(boto3.client("ssm").get_parameter(Name=LOCK)["Parameter"]["Value"])
    except boto3.client("ssm").exceptions.ParameterNotFound:
        return None


@pytest.mark.parametrize("command", [("up",), ("replay", "network")])
def test_a_held_lock_refuses_a_change_before_any_change(tmp_path: Path, command) -> None:
    with moto():
        hold_lock_as_someone_else()
        result = cli(*command, cwd=tmp_path)
        assert result.code == 2, result.stderr
        assert result.stderr.count("error:") == 1
        # Who, where, since when, and how to proceed.
        for shown in ("bob@bobs-laptop", "pid 4242", "threetier up", "2026-11-21T09:00:00Z", "user/bob",
                      "nothing was done", "--take-over-lock"):
            assert shown in result.stderr, (shown, result.stderr)
        assert boto3.client("ec2").describe_vpcs(Filters=STACK_FILTER)["Vpcs"] == []
        assert boto3.client("s3").list_buckets()["Buckets"] == []
        assert lock_value() == SOMEONE_ELSE  # still theirs


def test_a_held_lock_refuses_down_and_the_stack_stays(built: Path) -> None:
    hold_lock_as_someone_else()
    result = cli("down", "--yes", cwd=built)
    assert result.code == 2 and "bob@bobs-laptop" in result.stderr
    assert len(boto3.client("ec2").describe_vpcs(Filters=STACK_FILTER)["Vpcs"]) == 1
    assert (built / ".threetier" / "threetier.json").exists()
    status = cli("status", "--json", cwd=built)  # looking needs no lock, and says who holds it
    assert status.code == 0
    assert json.loads(status.stdout)["lock"]["user"] == "bob" and "token" not in json.loads(status.stdout)["lock"]


def test_taking_over_a_dead_runs_lock_shows_whose_it_was(tmp_path: Path) -> None:
    with moto():
        hold_lock_as_someone_else()
        result = cli("up", "--yes", "--take-over-lock", cwd=tmp_path)
        assert result.code == 0, result.stderr
        assert "took over the stack lock from bob@bobs-laptop" in result.stderr
        assert lock_value() is None  # and released at the end, like any other run's


def test_a_lock_of_an_older_threetier_on_this_host_is_refused_without_contradiction(built: Path) -> None:
    """An older threetier recorded no boot id: a missing pid on a host of this name proves nothing (another
    machine may have the name), and the refusal says so instead of "stale ... wait for it"."""
    import socket
    import subprocess
    import sys
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is free now
    hold_lock_as_someone_else({**SOMEONE_ELSE, "host": socket.gethostname(), "pid": gone.pid})
    result = cli("up", "--yes", cwd=built)
    assert result.code == 2 and result.stderr.count("error:") == 1, result.stderr
    assert "The lock records no boot id" in result.stderr and "--take-over-lock" in result.stderr
    assert "stale" not in result.stderr and lock_value()["token"] == "bobs"
    taken = cli("up", "--yes", "--take-over-lock", cwd=built)
    assert taken.code == 0, taken.stderr
    assert f"took over the stack lock from bob@{socket.gethostname()} (pid {gone.pid}" in taken.stderr


def test_up_replay_and_down_release_the_lock_however_they_end(built: Path, monkeypatch) -> None:
    import threetier.blocks.security_groups
    # The reference stack is moto as the first `up` from nothing left it: that `up` released the lock.
    assert lock_value() is None
    assert cli("replay", "2", cwd=built).code == 0
    assert lock_value() is None

    def broken(ctx, vpc):
        raise KeyboardInterrupt
    real = threetier.blocks.security_groups.ensure_security_groups
    monkeypatch.setattr(threetier.blocks.security_groups, "ensure_security_groups", broken)
    interrupted = cli("up", "--yes", cwd=built)
    assert interrupted.code == 130 and lock_value() is None
    monkeypatch.setattr(threetier.blocks.security_groups, "ensure_security_groups", real)

    assert cli("down", "--yes", cwd=built).code == 0
    assert lock_value() is None  # down leaves nothing, the lock included
    assert [p["Name"] for p in boto3.client("ssm").describe_parameters()["Parameters"]
            if p["Name"].startswith("/threetier/")] == []


def test_someone_else_taking_over_meanwhile_keeps_their_lock(tmp_path: Path) -> None:
    """A run whose lock was taken over (it was thought dead) must not release the new holder's lock."""
    from threetier import lock
    from threetier.aws import Aws
    with moto():
        aws = Aws("us-east-1")
        mine = lock.acquire(aws, "threetier", "up")
        boto3.client("ssm").put_parameter(Name=LOCK, Value=json.dumps(SOMEONE_ELSE), Type="String", Overwrite=True)
        lock.release(aws, "threetier", mine)
        assert lock_value() == SOMEONE_ELSE


# Two operators in two processes making one stack: test_console_script.py (with its status and down).


# -- item 3: one of each, or stop -----------------------------------------------------------
def look_alike_vpc() -> str:
    """A second VPC carrying the stack's tags, as made out of band (or by two operators before the lock)."""
    return boto3.client("ec2").create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=[{
        "ResourceType": "vpc", "Tags": [{"Key": STACK_TAG, "Value": "threetier"}, {"Key": "threetier:part", "Value": "2"},
                                        {"Key": "Name", "Value": "threetier-vpc"}]}])["Vpc"]["VpcId"]


def test_a_look_alike_vpc_is_drift_and_up_removes_a_bare_one_and_refuses_to_guess_between_used_ones(
        built: Path) -> None:
    state = json.loads((built / ".threetier" / "threetier.json").read_text())
    ours = state["parts"]["2"]["resources"]["vpc"]
    extra = look_alike_vpc()
    ec2 = boto3.client("ec2")

    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    network = json.loads(status.stdout)["parts"][1]
    assert network["status"] == "drifted"
    assert any("2 VPCs carry the tags of threetier-vpc" in line and ours in line and extra in line
               for line in network["drift"]), network["drift"]

    plan = cli("plan", "--json", cwd=built)
    assert any(extra in line for line in json.loads(plan.stdout)["parts"][1]["change"])

    # Empty (no subnet, no gateway): what a lost answer's second CreateVpc leaves. up deletes it.
    up = cli("up", "--yes", cwd=built)
    assert up.code == 0, up.stderr
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])
            ["Vpcs"]] == [ours]
    assert "Part 2 (network) network and security: repaired (1 deleted)" in up.stderr

    # One with something in it is someone's: refused, naming the command, with or without the state file.
    used = look_alike_vpc()
    ec2.create_subnet(VpcId=used, CidrBlock="10.9.1.0/24")
    up = cli("up", "--yes", cwd=built)
    assert up.code == 1 and up.stderr.count("error:") == 1, up.stderr
    assert f"the state file's is {ours}, so the extra one goes: aws ec2 delete-vpc --vpc-id {used}" in up.stderr
    assert ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [used]}])["InternetGateways"] == []
    (built / ".threetier" / "threetier.json").unlink()  # without the state file, it cannot tell which
    blind = cli("up", "--yes", cwd=built)
    assert blind.code == 1 and "delete the one the stack does not use" in blind.stderr and used in blind.stderr

    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [used]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=used)  # what the message says to do
    assert cli("up", "--yes", cwd=built).code == 0
    assert cli("status", cwd=built).code == 0


def test_a_second_subnet_of_one_role_is_removed_by_up_while_empty_and_refused_once_used(built: Path) -> None:
    ec2 = boto3.client("ec2")
    vpc = json.loads((built / ".threetier" / "threetier.json").read_text())["parts"]["2"]["resources"]["vpc"]
    original = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]
    tags = [t for t in original["Tags"] if not t["Key"].startswith("aws:")]

    def copy(cidr: str) -> str:
        return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=original["AvailabilityZone"],
                                 TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}])["Subnet"]["SubnetId"]
    bare = copy("10.0.9.0/24")  # what a lost answer's second CreateSubnet leaves
    up = cli("up", "--yes", cwd=built)
    assert up.code == 0, up.stderr
    assert bare not in [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    used = copy("10.0.10.0/24")
    ec2.create_network_interface(SubnetId=used)  # something in it: not a lost answer's copy
    refused = cli("up", "--yes", cwd=built)
    assert refused.code == 1 and f"2 subnets carry the tags of {tag_value(original, 'Name')}" in refused.stderr
    assert used in refused.stderr


def test_down_says_first_what_it_cannot_delete_and_deletes_the_rest(built: Path) -> None:
    extra = look_alike_vpc()
    ec2 = boto3.client("ec2")
    foreign = ec2.create_subnet(VpcId=extra, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]  # not the stack's
    down = cli("down", "--yes", cwd=built)
    assert down.code == 1
    first_deletion = min((down.stderr.find(marker) for marker in ("✓", "deleted") if marker in down.stderr), default=-1)
    warning = down.stderr.find(f"warning: down will not be able to delete VPC threetier-vpc ({extra})")
    assert 0 <= warning < first_deletion, down.stderr
    assert f"subnet {foreign}" in down.stderr
    assert f"still there: VPC threetier-vpc {extra}" in down.stderr
    # Everything else is gone: the stack's own VPC too.
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=STACK_FILTER)["Vpcs"]] == [extra]

    ec2.delete_subnet(SubnetId=foreign)
    assert cli("down", "--yes", cwd=built).code == 0  # and a second down finishes the job
    assert ec2.describe_vpcs(Filters=STACK_FILTER)["Vpcs"] == []


def test_the_lock_costs_a_no_op_up_three_calls_not_a_second_inventory(built: Path, monkeypatch) -> None:
    from bench.moto_env import counting_calls
    from threetier import preflight
    checked: list[preflight.Findings] = []
    real = preflight.check
    monkeypatch.setattr(preflight, "check", lambda *args: checked.append(real(*args)) or checked[-1])
    with counting_calls() as first:
        assert cli("status", "--json", cwd=built).code == 0
    with counting_calls() as again:
        result = cli("up", "--yes", cwd=built)
    assert result.code == 0 and "0 mutating AWS calls" in result.stdout
    assert again.mutating == [] and sorted(again.lock_calls) == ["ssm.DeleteParameter", "ssm.PutParameter"]
    # status: the inventory (and the lock's holder); up: its preflight, the same inventory, the lock's
    # three calls, and its summary answered from that inventory.
    [findings] = checked
    assert 0 < findings.calls <= 16
    assert again.total - findings.calls <= first.total + 3, (again.total, findings.calls, first.total)
