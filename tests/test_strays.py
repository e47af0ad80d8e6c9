"""Strays (issue 23): an instance tagged with the stack that no Auto Scaling group of the stack owns
(detached from its group to debug it, or launched by hand) is drift in `status`, terminated by `up`
(which says so) and by `down`, which waits until it is terminated before its subnet and security
group go (under the real-AWS model: moto terminates at once and deletes a subnet an instance is in)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from bench.model import LatencyModel, VirtualClock, figures
from bench.model.ec2 import Instance
from helpers import cli, make_engine
from threetier import scan
from threetier.aws import tag_value
from threetier.blocks import strays

STACK = "threetier"
SLOW_SHUTDOWN = 8 * 60.0  # within the wait's 10 minutes


def detach_one(tier: str) -> dict[str, Any]:
    """One instance of the tier's group detached (ShouldDecrementDesiredCapacity: no replacement);
    returns it as EC2 describes it."""
    autoscaling = boto3.client("autoscaling")
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{STACK}-{tier}-asg"])["AutoScalingGroups"][0]
    instance_id = sorted(i["InstanceId"] for i in group["Instances"])[0]
    autoscaling.detach_instances(AutoScalingGroupName=group["AutoScalingGroupName"], InstanceIds=[instance_id],
                                 ShouldDecrementDesiredCapacity=True)
    left = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{STACK}-{tier}-asg"])["AutoScalingGroups"][0]
    assert instance_id not in {i["InstanceId"] for i in left["Instances"]}  # moto detaches it, as AWS does
    return describe(instance_id)


def describe(instance_id: str) -> dict[str, Any]:
    return boto3.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def state_of(instance_id: str) -> str:
    return describe(instance_id)["State"]["Name"]


def launch_by_hand(tags: dict[str, str], stopped: bool = False) -> str:
    """An instance in the stack's first public subnet with these tags, as someone might make by hand."""
    ec2 = boto3.client("ec2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": [f"{STACK}-public-web-az1"]}])["Subnets"]
    subnet = subnet or ec2.describe_subnets(Filters=[{"Name": f"tag:{'threetier:stack'}", "Values": [STACK]}])["Subnets"]
    instance_id: str = ec2.run_instances(
        ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet[0]["SubnetId"],
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])["Instances"][0]["InstanceId"]
    if stopped:
        ec2.stop_instances(InstanceIds=[instance_id])
    return instance_id


def flat(text: str) -> str:
    """Text without blanks and table borders: what a folded table cell says."""
    return re.sub(r"[\s│]", "", text)


def drift_of(report: dict[str, Any], part: int) -> list[str]:
    return next(p["drift"] for p in report["parts"] if p["part"] == part)


def test_a_detached_app_instance_is_drift_then_up_terminates_it_saying_so(built: Path) -> None:
    stray = detach_one("app")
    stray_id = stray["InstanceId"]
    assert tag_value(stray, "threetier:stack") == STACK and state_of(stray_id) == "running"

    status = cli("status", cwd=built)
    assert status.code == 3, status.stdout + status.stderr
    said = flat(status.stdout)  # the table folds long lines
    assert flat(f"stray instance {stray_id} ({STACK}-app, running)") in said
    assert flat("`threetier up` or `down` terminates it") in said
    report = json.loads(cli("status", "--json", cwd=built).stdout)
    assert [line for line in drift_of(report, 5) if stray_id in line] == [
        f"stray instance {stray_id} ({STACK}-app, running): tagged threetier:stack={STACK}, in no Auto Scaling "
        f"group of the stack (detached?), and billing; `threetier up` or `down` terminates it"]
    assert all(stray_id not in line for part in (4, 6, 7) for line in drift_of(report, part))  # said once
    plan = cli("plan", "--detailed-exitcode", cwd=built)
    assert plan.code == 2 and stray_id in plan.stdout

    up = cli("up", "--yes", "--json", cwd=built)
    assert up.code == 0, up.stderr
    assert f"terminating stray instance {stray_id} ({STACK}-app, running)" in up.stderr
    assert json.loads(up.stdout)["deleted"] == 1  # the stray alone
    assert state_of(stray_id) in ("shutting-down", "terminated")
    group = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"{STACK}-app-asg"])["AutoScalingGroups"][0]
    assert len(group["Instances"]) == group["DesiredCapacity"] == 2  # the group's own, back at config's size
    assert cli("status", cwd=built).code == 0


def test_down_terminates_a_detached_instance_and_finishes_in_one_run(built: Path) -> None:
    stray_id = detach_one("web")["InstanceId"]
    down = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert down.code == 0, down.stderr
    assert f"terminating stray instance {stray_id} ({STACK}-web, running)" in down.stderr
    assert state_of(stray_id) == "terminated"
    assert scan.tagged(make_engine(built).ctx.aws, STACK) == []


def test_instances_of_no_part_go_to_the_web_tier_and_a_bakes_stray_to_its_part_but_not_its_builder(
        built: Path) -> None:
    by_hand = launch_by_hand({"threetier:stack": STACK, "Name": "debug-box"}, stopped=True)
    odd_part = launch_by_hand({"threetier:stack": STACK, "threetier:part": "2"})
    not_a_builder = launch_by_hand({"threetier:stack": STACK, "threetier:part": "4", "Name": "renamed"})
    builder = launch_by_hand({"threetier:stack": STACK, "threetier:part": "6", "Name": f"{STACK}-web-builder"})
    other_stack = launch_by_hand({"threetier:stack": "another", "threetier:part": "5", "Name": "another-app"})

    report = json.loads(cli("status", "--json", cwd=built).stdout)
    mentioned = {part: [i for i in (by_hand, odd_part, not_a_builder, builder, other_stack)
                        if any(i in line for line in drift_of(report, part))] for part in (4, 5, 6, 7)}
    # The builder is Part 6's own (reported as a builder left running, not as a stray).
    assert mentioned == {4: [not_a_builder], 5: [], 6: [builder], 7: [by_hand, odd_part]}
    assert any(f"stray instance {by_hand} (debug-box, stopped)" in line for line in drift_of(report, 7))
    assert not any(f"stray instance {builder}" in line for line in drift_of(report, 6))

    up = cli("up", "--yes", cwd=built)
    assert up.code == 0, up.stderr
    for instance_id in (by_hand, odd_part, not_a_builder):
        assert f"terminating stray instance {instance_id}" in up.stderr
        assert state_of(instance_id) == "terminated"
    assert state_of(other_stack) == "running"  # not this stack's


def test_an_instance_its_group_just_launched_is_not_a_stray() -> None:
    group = {"AutoScalingGroupName": f"{STACK}-app-asg", "Instances": [{"InstanceId": "i-listed"}]}

    def instance(instance_id: str, state: str, group_tag: str | None) -> dict[str, Any]:
        tags = [{"Key": "aws:autoscaling:groupName", "Value": group_tag}] if group_tag else []
        return {"InstanceId": instance_id, "State": {"Name": state}, "Tags": tags}
    assert strays.owned([group], instance("i-listed", "running", None))
    # Pending, with the group's tag: launched after the group was read.
    assert strays.owned([group], instance("i-new", "pending", f"{STACK}-app-asg"))
    # Running with the tag of a group that does not list it: detached (AWS may leave the tag).
    assert not strays.owned([group], instance("i-detached", "running", f"{STACK}-app-asg"))
    assert not strays.owned([group], instance("i-other", "pending", "someone-elses-asg"))


def test_down_waits_for_a_stray_to_be_terminated_before_its_subnet_and_security_group_go(
        built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stray that shuts down slowly (a shutdown script, a big instance): longer than the group and the
    # load balancer take to go; and the database gone already (a `down` run again, as before this
    # fix every one was), whose deletion would otherwise outlast it. Then nothing but a wait for the
    # stray itself keeps the network.
    monkeypatch.setattr(figures, "EC2_TERMINATE_SECONDS", SLOW_SHUTDOWN)
    rds = boto3.client("rds")
    for instance in rds.describe_db_instances()["DBInstances"]:
        rds.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"], SkipFinalSnapshot=True)
    for cluster in rds.describe_db_clusters()["DBClusters"]:
        rds.delete_db_cluster(DBClusterIdentifier=cluster["DBClusterIdentifier"], SkipFinalSnapshot=True)
    stray = detach_one("app")
    clock = VirtualClock()
    engine = make_engine(built, clock=clock)
    model = LatencyModel(engine.ctx.aws, clock)
    # The model did not see it launched: it is told of it, so that it keeps it shutting down for
    # SLOW_SHUTDOWN once terminated, its ENI holding its subnet and security groups till then.
    model.instances[stray["InstanceId"]] = Instance(
        stray["InstanceId"], f"{STACK}-app", 5, "app", stray["SubnetId"], stray["VpcId"],
        tuple(g["GroupId"] for g in stray["SecurityGroups"]), False, "", launched=-3600.0)
    when: list[tuple[float, str, dict[str, Any]]] = []
    engine.ctx.aws.on_call = lambda call: when.append((clock.now(), call.operation, call.params))
    engine.down()
    assert model.violations == [], model.violations  # no DeleteSubnet/DeleteSecurityGroup refused, none retried

    terminated = [t for t, op, params in when if op == "TerminateInstances" and params["InstanceIds"] == [stray["InstanceId"]]]
    polls = [t for t, op, params in when if op == "DescribeInstances" and params.get("InstanceIds") == [stray["InstanceId"]]]
    first_delete = min(t for t, op, _ in when if op in ("DeleteSubnet", "DeleteSecurityGroup"))
    assert len(terminated) == 1
    # Polled while shutting down, and the network's deletes only once it was terminated.
    assert len(polls) >= 2 and terminated[0] <= polls[0] < polls[-1] <= first_delete
    assert first_delete >= terminated[0] + SLOW_SHUTDOWN
    assert state_of(stray["InstanceId"]) == "terminated"
    assert scan.tagged(engine.ctx.aws, STACK) == []


def test_a_stray_a_group_took_back_since_it_was_found_is_left_alone(built: Path) -> None:
    stray_id = detach_one("app")["InstanceId"]
    engine = make_engine(built)
    found = strays.find(engine.ctx, lambda part: part == 5)
    assert [stray.id for stray in found] == [stray_id]
    boto3.client("autoscaling").attach_instances(AutoScalingGroupName=f"{STACK}-app-asg", InstanceIds=[stray_id])
    engine.ctx.part = next(p for p in engine.parts if p.number == 5)
    assert strays.terminate(engine.ctx, found) == []  # the groups are read again, live, first
    assert state_of(stray_id) == "running" and engine.ctx.aws.mutating_calls() == []
