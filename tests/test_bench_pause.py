"""bench.model's rules for what `threetier pause` and `resume` touch (issue 14): Aurora stopped only when
available, stopping then stopped, starting then available, nothing changed while it sleeps; an Auto
Scaling group's instances drained for the deregistration delay after a scale-in; and one modeled
pause + resume of the whole stack that breaks no rule."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.model import (
    CLUSTER_CREATE_SECONDS,
    CLUSTER_START_SECONDS,
    CLUSTER_STOP_SECONDS,
    DB_INSTANCE_CREATE_SECONDS,
    EC2_TERMINATE_SECONDS,
    LatencyModel,
    VirtualClock,
)
from bench.runs import modeled_run
from helpers import make_engine, moto

CLUSTER = "lab-aurora"


def outcome(call: Any, **params: Any) -> str:
    """"ok", or the error code AWS (the model) answered."""
    try:
        call(**params)
        return "ok"
    except ClientError as exc:
        return exc.response["Error"]["Code"]


@pytest.fixture
def mocked() -> Iterator[None]:
    with moto():
        yield


class Lab:
    """moto behind the model, on a virtual clock: an Aurora cluster with a writer and a reader created at
    t=0 (available from 60 s, the instances from 540 s)."""

    def __init__(self, tmp_path: Path, relax: tuple[str, ...] = ()):
        self.clock = VirtualClock()
        aws = make_engine(tmp_path, clock=self.clock).ctx.aws
        self.model = LatencyModel(aws, self.clock, relax=relax)
        self.rds, self.ec2, self.elbv2, self.asg = (aws.client(s) for s in ("rds", "ec2", "elbv2", "autoscaling"))
        self.rds.create_db_cluster(DBClusterIdentifier=CLUSTER, Engine="aurora-mysql",
                                   EngineVersion="8.0.mysql_aurora.3.10.3", MasterUsername="admin",
                                   MasterUserPassword="not-a-secret-1")
        self.until(CLUSTER_CREATE_SECONDS)
        for role in ("writer", "reader"):
            self.rds.create_db_instance(DBInstanceIdentifier=f"lab-{role}", DBClusterIdentifier=CLUSTER,
                                        Engine="aurora-mysql", DBInstanceClass="db.t4g.medium")
        self.ready = self.clock.now() + DB_INSTANCE_CREATE_SECONDS

    def until(self, t: float) -> None:
        self.clock.advance(t - self.clock.now())

    def cluster(self) -> str:
        return self.rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]["Status"]

    def instances(self) -> list[str]:
        return sorted({i["DBInstanceStatus"] for i in self.rds.describe_db_instances()["DBInstances"]})

    def stop(self) -> str:
        return outcome(self.rds.stop_db_cluster, DBClusterIdentifier=CLUSTER)

    def start(self) -> str:
        return outcome(self.rds.start_db_cluster, DBClusterIdentifier=CLUSTER)

    def add_instance(self) -> str:
        return outcome(self.rds.create_db_instance, DBInstanceIdentifier="lab-extra", DBClusterIdentifier=CLUSTER,
                       Engine="aurora-mysql", DBInstanceClass="db.t4g.medium")


@pytest.fixture
def lab(mocked: None, tmp_path: Path) -> Lab:
    return Lab(tmp_path)


def test_a_cluster_stops_only_when_it_and_its_instances_are_available(lab: Lab) -> None:
    assert lab.cluster() == "available" and lab.instances() == ["creating"]
    assert lab.stop() == "InvalidDBClusterStateFault"
    assert [v for v in lab.model.violations if "cannot be stopped" in v]
    assert lab.model.rule_hits() == {"stop-cluster-not-available": 1}
    lab.until(lab.ready)
    assert lab.stop() == "ok"
    assert lab.model.rule_hits() == {"stop-cluster-not-available": 1}


def test_a_stopped_cluster_is_stopping_for_the_modeled_time_then_stopped(lab: Lab) -> None:
    lab.until(lab.ready)
    assert lab.stop() == "ok"
    stopped_at = lab.model.clusters[CLUSTER].stop_requested
    assert stopped_at is not None
    assert lab.cluster() == "stopping" and lab.instances() == ["stopping"]
    assert lab.start() == "InvalidDBClusterStateFault"  # not before it has stopped: a violation
    assert lab.model.rule_hits() == {"start-cluster-stopping": 1}
    lab.until(stopped_at + CLUSTER_STOP_SECONDS - 1)
    assert lab.cluster() == "stopping"
    lab.until(stopped_at + CLUSTER_STOP_SECONDS)
    assert lab.cluster() == "stopped" and lab.instances() == ["stopped"]
    assert lab.stop() == "InvalidDBClusterStateFault"  # stopped already


def test_a_started_cluster_is_starting_then_available_with_its_instances(lab: Lab) -> None:
    lab.until(lab.ready)
    lab.stop()
    lab.until(lab.clock.now() + CLUSTER_STOP_SECONDS)
    assert lab.start() == "ok"
    started_at = lab.model.clusters[CLUSTER].start_requested
    assert started_at is not None
    assert lab.cluster() == "starting" and lab.instances() == ["starting"]
    assert lab.start() == "InvalidDBClusterStateFault"  # starting already: a refusal, not a violation
    lab.until(started_at + CLUSTER_START_SECONDS - 1)
    assert lab.cluster() == "starting"
    lab.until(started_at + CLUSTER_START_SECONDS)
    assert lab.cluster() == "available" and lab.instances() == ["available"]
    assert lab.model.violations == []
    spans = {s.action: s for s in lab.model.spans if s.kind == "Aurora cluster"}
    assert spans["stop"].end - spans["stop"].start == pytest.approx(CLUSTER_STOP_SECONDS)  # type: ignore[operator]
    assert spans["start"].end - spans["start"].start == pytest.approx(CLUSTER_START_SECONDS)  # type: ignore[operator]


@pytest.mark.parametrize("when", ["stopping", "stopped", "starting"])
def test_changing_a_sleeping_cluster_is_a_violation(lab: Lab, when: str) -> None:
    lab.until(lab.ready)
    lab.stop()
    if when != "stopping":
        lab.until(lab.clock.now() + CLUSTER_STOP_SECONDS)
    if when == "starting":
        lab.start()
    assert lab.cluster() == when
    assert lab.add_instance() == "InvalidDBClusterStateFault"
    assert outcome(lab.rds.modify_db_cluster, DBClusterIdentifier=CLUSTER, BackupRetentionPeriod=3,
                   ApplyImmediately=True) == "InvalidDBClusterStateFault"
    assert outcome(lab.rds.delete_db_instance, DBInstanceIdentifier="lab-reader") == "InvalidDBClusterStateFault"
    assert lab.model.rule_hits() == {"change-stopped-cluster": 3}
    assert all(f"is {when}" in v for v in lab.model.violations)


def test_the_rule_can_be_relaxed(mocked: None, tmp_path: Path) -> None:
    lab = Lab(tmp_path, relax=("change-stopped-cluster",))
    lab.until(lab.ready)
    lab.stop()
    assert lab.add_instance() == "ok"
    assert lab.model.violations == [] and len(lab.model.relaxed) == 1


class Group:
    """Two instances of an Auto Scaling group in a target group whose deregistration delay is `delay`
    (None: the attribute as moto leaves it, AWS's default 300 s)."""

    def __init__(self, lab: Lab, delay: str | None):
        ec2, elbv2 = lab.ec2, lab.elbv2
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        template = ec2.create_launch_template(LaunchTemplateName="lab-lt", LaunchTemplateData={
            "ImageId": image, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
        target_group = elbv2.create_target_group(Name="lab-tg", Protocol="HTTP", Port=80, VpcId=vpc,
                                                 TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        if delay is not None:
            elbv2.modify_target_group_attributes(TargetGroupArn=target_group, Attributes=[
                {"Key": "deregistration_delay.timeout_seconds", "Value": delay}])
        self.asg = lab.asg
        self.asg.create_auto_scaling_group(AutoScalingGroupName="lab-asg", MinSize=2, MaxSize=2, DesiredCapacity=2,
                                           LaunchTemplate={"LaunchTemplateId": template, "Version": "$Default"},
                                           VPCZoneIdentifier=subnet, TargetGroupARNs=[target_group])

    def instances(self) -> list[str]:
        found = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=["lab-asg"])["AutoScalingGroups"][0]
        return [i["LifecycleState"] for i in found["Instances"]]

    def resize(self, size: int) -> None:
        self.asg.update_auto_scaling_group(AutoScalingGroupName="lab-asg", MinSize=size, DesiredCapacity=size,
                                           MaxSize=size)


@pytest.mark.parametrize(("delay", "drain"), [("30", 30.0), (None, 300.0)])
def test_a_group_scaled_to_0_drains_for_the_deregistration_delay_then_shutting_down(
        lab: Lab, delay: str | None, drain: float) -> None:
    group = Group(lab, delay)
    lab.until(lab.clock.now() + 600)
    assert group.instances() == ["InService", "InService"]
    group.resize(0)
    scaled_in = lab.model.groups["lab-asg"].drains[-1][0]
    assert group.instances() == ["Terminating", "Terminating"]
    lab.until(scaled_in + drain + EC2_TERMINATE_SECONDS - 1)
    assert group.instances() == ["Terminating", "Terminating"]
    lab.until(scaled_in + drain + EC2_TERMINATE_SECONDS)
    assert group.instances() == []
    # Scaled out again: pending for as long as a new group's instances are.
    group.resize(2)
    assert group.instances() == ["Pending", "Pending"]
    assert lab.model.violations == []


def test_a_modeled_pause_and_resume_breaks_no_rule() -> None:
    run = modeled_run(sequential=False, pause=True)
    assert run.error is None and run.violations == [], (run.error, run.violations)
    assert run.pause_violations == [] and run.resume_violations == []
    assert run.pause_seconds is not None and run.resume_seconds is not None
    # The cluster's stop and start are waited for, and the groups drain before pause is over.
    assert run.pause_seconds >= CLUSTER_STOP_SECONDS and run.resume_seconds >= CLUSTER_START_SECONDS
    assert run.pause_calls > 0 and run.resume_calls > 0
    assert {s.action for s in run.pause_spans if s.kind == "Aurora cluster"} == {"stop", "start"}
    assert len([s for s in run.pause_spans if s.kind == "Auto Scaling instances"]) == 2
    # down took down the resumed stack: a full down, as after up.
    assert run.down_seconds is not None and run.down_calls > 0
    assert all(s.start >= (run.up_seconds or 0) + run.pause_seconds + run.resume_seconds for s in run.down_spans)
