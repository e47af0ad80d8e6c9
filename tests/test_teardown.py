"""Teardown of the whole stack against moto: nothing left, one final snapshot, the order
(each from the default stack restored: conftest's `built`); and the health gate under botocore's Stubber."""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, cli, make_engine, moto, no_alarms_yet
from threetier import scan
from threetier.aws import AwsError
from threetier.blocks import baking

STACK = "threetier"


@pytest.fixture
def mocked():
    with moto():
        yield


def test_down_skip_final_snapshot_leaves_nothing_in_any_service(built: Path) -> None:
    result = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert result.code == 0, result.stderr
    engine = make_engine(built)
    assert scan.tagged(engine.ctx.aws, STACK) == []
    ec2, rds = boto3.client("ec2"), boto3.client("rds")
    assert [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"] == []
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:threetier:stack", "Values": [STACK]}])["Snapshots"] == []
    assert ec2.describe_addresses()["Addresses"] == []
    assert [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] != "deleted"] == []
    assert boto3.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert boto3.client("elbv2").describe_target_groups()["TargetGroups"] == []
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert rds.describe_db_instances()["DBInstances"] == []
    assert rds.describe_db_clusters()["DBClusters"] == []
    assert rds.describe_db_subnet_groups()["DBSubnetGroups"] == []
    assert rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"] == []
    assert boto3.client("s3").list_buckets()["Buckets"] == []
    assert [r for r in boto3.client("iam").list_roles()["Roles"] if r["RoleName"].startswith(STACK)] == []
    assert boto3.client("iam").list_instance_profiles()["InstanceProfiles"] == []
    assert cli("down", "--yes", cwd=built).code == 0  # and again: nothing to do


def test_down_keeps_exactly_one_final_snapshot(built: Path) -> None:
    result = cli("down", "--yes", cwd=built)
    assert result.code == 0, result.stderr
    manual = boto3.client("rds").describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    assert len(manual) == 1
    assert manual[0]["DBClusterSnapshotIdentifier"].startswith(f"{STACK}-final-")
    assert manual[0]["DBClusterSnapshotIdentifier"] in result.stderr  # the user is told what was kept


def test_teardown_order_of_parts_7_to_3(built: Path) -> None:
    engine = make_engine(built)
    engine.down()
    ops = [(c.operation, c.params) for c in engine.ctx.aws.calls if c.mutating]

    def index(operation, **match):
        found = [i for i, (op, p) in enumerate(ops) if op == operation and all(p.get(k) == v for k, v in match.items())]
        assert found, (operation, match)
        return found

    for tier, alb in (("web", "ext-alb"), ("app", "int-alb")):
        asg = index("DeleteAutoScalingGroup", AutoScalingGroupName=f"{STACK}-{tier}-asg")[0]
        delay = [i for i in index("ModifyTargetGroupAttributes")
                 if ops[i][1]["Attributes"] == [{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}]]
        assert any(d < asg for d in delay)  # deregistration delay 0 first
        balancer = next(i for i in index("DeleteLoadBalancer") if f"/{STACK}-{alb}/" in ops[i][1]["LoadBalancerArn"])
        listener = next(i for i in index("DeleteListener") if f"/{STACK}-{alb}/" in ops[i][1]["ListenerArn"])
        group = next(i for i in index("DeleteTargetGroup") if f"/{STACK}-{tier}-tg/" in ops[i][1]["TargetGroupArn"])
        template = [i for i in index("DeleteLaunchTemplate")][0 if tier == "web" else 1]
        assert asg < listener < balancer < group < template
    web_ami, app_ami = index("DeregisterImage")
    snapshots = index("DeleteSnapshot")
    assert web_ami < snapshots[0] and app_ami < snapshots[1]  # each AMI, then its snapshots
    # Part 7 before 6 before 5 before 4 before 3 before 2.
    assert max(index("DeleteLaunchTemplate")) < max(index("DeregisterImage"))
    assert index("DeleteAutoScalingGroup", AutoScalingGroupName=f"{STACK}-app-asg")[0] > snapshots[0]
    db_instances = index("DeleteDBInstance")
    cluster = index("DeleteDBCluster")[0]
    subnet_group = index("DeleteDBSubnetGroup")[0]
    assert max(snapshots) < min(db_instances) and max(db_instances) < cluster < subnet_group
    assert subnet_group < min(index("DeleteNatGateway")) < min(index("DeleteSubnet"))
    # The cluster waited for its instances to be gone (polled), as real AWS requires.
    described = [i for i, c in enumerate(engine.ctx.aws.calls) if c.operation == "DescribeDBInstances"]
    assert described


def test_health_gate_waits_for_the_agent_then_passes(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, clock=clock)
    bake = baking.Bake(tier="app", subnet="x", security_group="y", instance_profile_arn="z", instance_type="t3.micro",
                       architecture="x86_64", user_data="#!/bin/bash", health_url="http://localhost:4000/health", keep_builder=False,
                       baked_files={})
    client = engine.ctx.aws.client("ssm")
    with Stubber(client) as stub:
        stub.add_client_error("send_command", service_error_code="InvalidInstanceId")
        stub.add_response("send_command", {"Command": {"CommandId": "11111111-1111-1111-1111-111111111111"}})
        stub.add_response("get_command_invocation", {"Status": "InProgress"})
        stub.add_response("get_command_invocation", {"Status": "Failed", "ResponseCode": 1,
                                                     "StandardOutputContent": "bootstrap still running"})
        stub.add_response("send_command", {"Command": {"CommandId": "22222222-2222-2222-2222-222222222222"}})
        stub.add_response("get_command_invocation", {"Status": "Success", "ResponseCode": 0})
        baking.health_gate(engine.ctx, bake, "i-1")
        stub.assert_no_pending_responses()
    assert clock.sleeps == [baking.HEALTH_POLL_DELAY] * 3


def test_health_gate_fails_at_once_when_the_bootstrap_failed(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, clock=FakeClock())
    engine.ctx.aws.part = "Part 4 (app-image)"
    bake = baking.Bake(tier="app", subnet="x", security_group="y", instance_profile_arn="z", instance_type="t3.micro",
                       architecture="x86_64", user_data="#!/bin/bash", health_url="http://localhost:4000/health", keep_builder=False,
                       baked_files={})
    client = engine.ctx.aws.client("ssm")
    with Stubber(client) as stub:
        stub.add_response("send_command", {"Command": {"CommandId": "11111111-1111-1111-1111-111111111111"}})
        stub.add_response("get_command_invocation", {
            "Status": "Failed", "ResponseCode": baking.BOOTSTRAP_FAILED_EXIT,
            "StandardOutputContent": "bootstrap failed (exit 1)\nnpm ERR! 404 Not Found"})
        with pytest.raises(AwsError) as caught:
            baking.health_gate(engine.ctx, bake, "i-1")
    message = str(caught.value)
    assert message.startswith("Part 4 (app-image): waiting for app tier health on builder i-1 failed")
    assert "npm ERR! 404" in message




def test_a_builder_whose_bootstrap_failed_is_terminated_so_the_next_up_starts_fresh(mocked, tmp_path: Path) -> None:
    engine = make_engine(tmp_path)

    def bootstrap_failed(parsed, **_):
        parsed.update(Status="Failed", ResponseCode=baking.BOOTSTRAP_FAILED_EXIT,
                      StandardOutputContent="bootstrap failed (exit 1)\ndnf: no nodejs24")
    engine.ctx.aws.client("ssm").meta.events.register("after-call.ssm.GetCommandInvocation", bootstrap_failed)
    with pytest.raises(AwsError, match=r"the app bootstrap failed on i-\w+: bootstrap failed \(exit 1\) \| dnf: no nodejs24$"):
        engine.up()
    ec2 = boto3.client("ec2")
    builders = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["threetier-app-builder"]}])["Reservations"]
                for i in r["Instances"]]
    assert [b["State"]["Name"] for b in builders] == ["terminated"]
    again = make_engine(tmp_path)
    again.up()  # a fresh builder this time, and it is healthy
    builders = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["threetier-app-builder"]}])["Reservations"]
                for i in r["Instances"]]
    assert len(builders) == 2 and all(b["State"]["Name"] == "terminated" for b in builders)
    assert again.ctx.state.parts[7].status == "done"


def test_cluster_delete_waits_out_a_backup_in_progress(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == 3)
    engine.ctx.skip_final_snapshot = True
    from steps import database
    client = engine.ctx.aws.client("rds")
    cluster = {"DBClusterIdentifier": "threetier-aurora", "Status": "backing-up", "DBClusterMembers": []}
    with Stubber(client) as stub:
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster]})
        for _identifier in ("threetier-aurora-reader", "threetier-aurora-writer"):
            stub.add_client_error("describe_db_instances", service_error_code="DBInstanceNotFound")
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster]})
        stub.add_client_error("delete_db_cluster", service_error_code="InvalidDBClusterStateFault")
        stub.add_response("delete_db_cluster", {"DBCluster": {**cluster, "Status": "deleting"}})
        stub.add_response("describe_db_clusters", {"DBClusters": [{**cluster, "Status": "deleting"}]})
        stub.add_client_error("describe_db_clusters", service_error_code="DBClusterNotFoundFault")
        stub.add_response("describe_db_cluster_snapshots", {"DBClusterSnapshots": []})  # an emulator: its leftovers
        stub.add_client_error("describe_db_cluster_parameter_groups", service_error_code="DBParameterGroupNotFound")
        stub.add_client_error("describe_db_subnet_groups", service_error_code="DBSubnetGroupNotFoundFault")
        with Stubber(engine.ctx.aws.client("iam")) as iam:
            iam.add_client_error("get_role_policy", service_error_code="NoSuchEntity")
            with no_alarms_yet(engine):
                database.destroy(engine.ctx)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [30, database.POLL_DELAY]  # one retry of the delete, one poll while deleting


def test_down_refuses_a_protected_database_before_deleting_anything(mocked, tmp_path: Path) -> None:
    from helpers import write_config
    write_config(tmp_path, database={"deletion_protection": True})
    assert cli("up", "--yes", cwd=tmp_path).code == 0
    before = len(scan.tagged(make_engine(tmp_path).ctx.aws, STACK))
    result = cli("down", "--yes", cwd=tmp_path)
    assert result.code == 2
    assert "deletion protection on; set database.deletion_protection: false" in result.stderr
    assert len(scan.tagged(make_engine(tmp_path).ctx.aws, STACK)) == before  # nothing was deleted
    write_config(tmp_path, database={"deletion_protection": False})
    assert cli("up", "--yes", cwd=tmp_path).code == 0  # converges: protection off
    assert cli("down", "--yes", "--skip-final-snapshot", cwd=tmp_path).code == 0
