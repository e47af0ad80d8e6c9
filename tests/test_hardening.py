"""Defaults an auditor flags (issue 10, item 15): the stack VPC's default security group keeps no
rules, and `access.admin_cidr` cannot open the tiers to a wide range.

moto gives a new VPC's default group only its allow-all egress rule; real AWS also gives it
"all traffic from the group itself" inbound. `aws_default_group` makes moto's new VPCs start as
real AWS's do, so the first `up` meets both rules."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import cli, make_engine, moto, mutating, write_config
from threetier.aws import STACK_TAG

STACK = "threetier"


@pytest.fixture
def aws_default_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """New VPCs' default groups allow all traffic from themselves, as on real AWS."""
    from moto.ec2.models.vpcs import VPCBackend
    create_vpc = VPCBackend.create_vpc

    def with_self_rule(self: Any, *args: Any, **kwargs: Any) -> Any:
        vpc = create_vpc(self, *args, **kwargs)
        group = self.get_security_group_from_name("default", vpc_id=vpc.id)
        self.authorize_security_group_ingress(group.id, "-1", None, None, [], source_groups=[{"GroupId": group.id}])
        return vpc
    monkeypatch.setattr(VPCBackend, "create_vpc", with_self_rule)


def ec2() -> Any:
    return boto3.client("ec2", region_name="us-east-1")


def stack_vpc() -> str:
    vpcs = ec2().describe_vpcs(Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [STACK]}])["Vpcs"]
    assert len(vpcs) == 1
    return vpcs[0]["VpcId"]


def default_group(vpc: str) -> str:
    groups = ec2().describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]},
                                                     {"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    assert len(groups) == 1
    return groups[0]["GroupId"]


def rules_of(group: str) -> list[dict[str, Any]]:
    return ec2().describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]


def reopen(group: str) -> None:
    """What AWS gives a new VPC's default group, put back out of band."""
    client = ec2()
    client.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group}]}])
    client.authorize_security_group_egress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])


def test_up_removes_every_rule_of_the_vpc_default_group_and_a_second_up_reads_it_from_the_inventory(
        aws_default_group, tmp_path: Path) -> None:
    with moto():
        first = make_engine(tmp_path)
        first.up()
        group = default_group(stack_vpc())
        assert rules_of(group) == []  # no way in, no way out: nothing may use it by accident
        revokes = Counter(op for op in mutating(first) if op.startswith("Revoke"))
        assert revokes == Counter({"RevokeSecurityGroupIngress": 1, "RevokeSecurityGroupEgress": 1})
        assert any(c.action == "configured" and "default" in c.name for c in first.ctx.changes)

        # A second up: nothing to do, and what it reads of the default group comes from its inventory.
        second = make_engine(tmp_path)
        aws = second.ctx.aws
        real_take = second.take_inventory
        after_inventory: list[int] = []

        def take_inventory(parts: Any = None) -> None:
            real_take(parts)
            after_inventory.append(len(aws.calls))
        second.take_inventory = take_inventory  # type: ignore[method-assign]
        second.up()
        assert mutating(second) == [] and second.ctx.changes == []
        assert len(aws.calls) == after_inventory[0], [c.operation for c in aws.calls[after_inventory[0]:]]
        default_reads = [c for c in aws.calls if c.operation == "DescribeSecurityGroups"
                         and {"Name": "group-name", "Values": ["default"]} in c.params.get("Filters", [])]
        assert len(default_reads) == 1


def test_status_and_plan_report_the_default_group_rules_and_up_revokes_only_them(built: Path) -> None:
    # The reference stack's default group has no rule left, however moto made it: the test above
    # proves the first `up` leaves it so on a VPC made as real AWS makes it.
    status = cli("status", "--json", cwd=built)
    assert status.code == 0, status
    group = default_group(stack_vpc())
    reopen(group)

    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    network = next(p for p in json.loads(status.stdout)["parts"] if p["part"] == 2)
    assert network["status"] == "drifted"
    about_default = [d for d in network["drift"] if group in d]
    assert len(about_default) == 2 and network["drift"] == about_default, network["drift"]
    assert any("inbound" in d and "from itself" in d for d in about_default), about_default
    assert any("outbound" in d and "0.0.0.0/0" in d for d in about_default), about_default
    plan = json.loads(cli("plan", "--json", cwd=built).stdout)
    assert next(p for p in plan["parts"] if p["part"] == 2)["change"] == about_default
    assert plan["mutating_calls"] == 0

    again = make_engine(built)
    again.up()
    assert Counter(mutating(again)) == Counter({"RevokeSecurityGroupIngress": 1, "RevokeSecurityGroupEgress": 1})
    assert rules_of(group) == []
    assert cli("status", "--json", cwd=built).code == 0


def test_admin_cidr_wider_than_a_16_is_refused_before_any_aws_call(tmp_path: Path) -> None:
    write_config(tmp_path, access={"admin_cidr": "0.0.0.0/1"})
    result = cli("up", "--yes", cwd=tmp_path)  # no moto: an AWS call would fail on the fake credentials
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: access.admin_cidr: 0.0.0.0/1"), lines
    assert "/16" in lines[0] and "bypassing the load balancers" in lines[0], lines[0]
