"""Target-tracking scaling for both tiers, against moto.

What `up` puts on each tier's Auto Scaling group (CPU, and for the web tier requests per target),
what `status` shows of them, how a changed config.yaml converges, and that `down` leaves none.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import boto3
import pytest

from helpers import cli, moto, write_config
from threetier.aws import is_mutating
from threetier.blocks import scaling

STACK = "threetier"
# `built` (conftest): the default stack, restored as `up` left it.


def policies(tier: str) -> dict[str, dict]:
    found = boto3.client("autoscaling").describe_policies(AutoScalingGroupName=f"{STACK}-{tier}-asg")
    return {p["PolicyName"]: p for p in found["ScalingPolicies"]}


def sizes(tier: str) -> tuple[int, int, int]:
    group = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"{STACK}-{tier}-asg"])["AutoScalingGroups"][0]
    return group["MinSize"], group["DesiredCapacity"], group["MaxSize"]


def status(workdir: Path) -> tuple[int, dict[int, dict]]:
    result = cli("status", "--json", cwd=workdir)
    return result.code, {p["part"]: p for p in json.loads(result.stdout)["parts"]}


# The stack's lock (an SSM parameter) is taken and released by every `up`.
LOCK = ("PutParameter", "DeleteParameter")


def mutating(calls: list[str]) -> list[str]:
    """What a command changed, besides the lock."""
    return [op for op in calls if is_mutating(op) and op not in LOCK]


# -- up --------------------------------------------------------------------------------
def test_up_puts_the_target_tracking_policies_of_both_tiers(built: Path) -> None:
    assert sizes("app") == sizes("web") == (2, 2, 4)
    app, web = policies("app"), policies("web")
    assert set(app) == {"threetier-app-cpu"}  # app.scaling.requests_per_target is null by default
    assert set(web) == {"threetier-web-cpu", "threetier-web-requests"}
    for policy in (app["threetier-app-cpu"], web["threetier-web-cpu"]):
        assert policy["PolicyType"] == "TargetTrackingScaling"
        assert policy["TargetTrackingConfiguration"]["TargetValue"] == 60
        assert policy["TargetTrackingConfiguration"]["PredefinedMetricSpecification"] == {
            "PredefinedMetricType": "ASGAverageCPUUtilization"}
        assert policy["EstimatedInstanceWarmup"] == scaling.INSTANCE_WARMUP
    requests = web["threetier-web-requests"]["TargetTrackingConfiguration"]
    assert requests["TargetValue"] == 1000
    # The label AWS documents: app/<alb-name>/<alb-id>/targetgroup/<tg-name>/<tg-id>.
    elb = boto3.client("elbv2")
    alb_id = elb.describe_load_balancers(Names=["threetier-ext-alb"])["LoadBalancers"][0]["LoadBalancerArn"].rsplit("/", 1)[1]
    tg_id = elb.describe_target_groups(Names=["threetier-web-tg"])["TargetGroups"][0]["TargetGroupArn"].rsplit("/", 1)[1]
    assert requests["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "ALBRequestCountPerTarget",
        "ResourceLabel": f"app/threetier-ext-alb/{alb_id}/targetgroup/threetier-web-tg/{tg_id}"}


def test_status_shows_each_tiers_policies(built: Path) -> None:
    code, parts = status(built)
    assert code == 0, [(p["part"], p["drift"]) for p in parts.values()]
    assert parts[5]["resources"]["scaling"] == "cpu 60"
    assert parts[7]["resources"]["scaling"] == "cpu 60, requests 1000"
    human = cli("status", "web-tier", cwd=built)  # every resource of the Part, one `key = value` a line
    assert "    scaling = cpu 60, requests 1000" in human.stdout.splitlines()


def test_a_no_op_up_changes_no_policy(built: Path, calls: list[str]) -> None:
    assert cli("up", "--yes", cwd=built).code == 0
    assert mutating(calls) == []
    assert calls.count("DescribePolicies") == 2  # one read per tier, from the inventory


# -- convergence -----------------------------------------------------------------------
def test_a_changed_target_is_drift_and_converges_with_one_put(built: Path, calls: list[str]) -> None:
    write_config(built, web={"scaling": {"cpu_target": 75}})
    code, parts = status(built)
    assert code == 3
    assert parts[7]["drift"] == ["scaling policy threetier-web-cpu: target 60, config says 75"]
    calls.clear()
    result = cli("up", "--yes", cwd=built)
    assert result.code == 0, result.stderr
    assert mutating(calls) == ["PutScalingPolicy"]
    web = policies("web")
    assert web["threetier-web-cpu"]["TargetTrackingConfiguration"]["TargetValue"] == 75
    assert web["threetier-web-requests"]["TargetTrackingConfiguration"]["TargetValue"] == 1000
    code, parts = status(built)
    assert code == 0 and parts[7]["resources"]["scaling"] == "cpu 75, requests 1000"


def test_requests_per_target_null_deletes_that_policy(built: Path, calls: list[str]) -> None:
    write_config(built, web={"scaling": {"requests_per_target": None}})
    code, parts = status(built)
    assert code == 3
    assert parts[7]["drift"] == ["scaling policy threetier-web-requests: not in config.yaml (`up` deletes it)"]
    calls.clear()
    assert cli("up", "--yes", cwd=built).code == 0
    assert mutating(calls) == ["DeletePolicy"]
    assert set(policies("web")) == {"threetier-web-cpu"}
    assert status(built)[1][7]["resources"]["scaling"] == "cpu 60"


def test_a_missing_or_foreign_policy_is_drift_that_up_repairs(built: Path) -> None:
    autoscaling = boto3.client("autoscaling")
    autoscaling.delete_policy(AutoScalingGroupName="threetier-app-asg", PolicyName="threetier-app-cpu")
    autoscaling.put_scaling_policy(AutoScalingGroupName="threetier-web-asg", PolicyName="by-hand",
                                   PolicyType="SimpleScaling", AdjustmentType="ChangeInCapacity", ScalingAdjustment=1)
    code, parts = status(built)
    assert code == 3
    assert "missing: scaling policy threetier-app-cpu (cpu 60)" in parts[5]["drift"]
    assert parts[5]["resources"]["scaling"] == "off"
    assert parts[7]["drift"] == ["scaling policy by-hand: not in config.yaml (`up` deletes it)"]
    assert cli("up", "--yes", cwd=built).code == 0
    assert set(policies("app")) == {"threetier-app-cpu"}
    assert set(policies("web")) == {"threetier-web-cpu", "threetier-web-requests"}
    assert status(built)[0] == 0


def test_scaling_null_puts_no_policy_and_keeps_the_guides_fixed_groups(tmp_path: Path, calls: list[str]) -> None:
    fixed = {"asg": {"min": 2, "desired": 2, "max": 2}, "scaling": None}
    write_config(tmp_path, app=fixed, web=fixed)
    with moto():
        assert cli("up", "--yes", cwd=tmp_path).code == 0
        assert "PutScalingPolicy" not in calls
        assert policies("app") == policies("web") == {}
        assert sizes("app") == sizes("web") == (2, 2, 2)
        code, parts = status(tmp_path)
        assert code == 0 and parts[5]["resources"]["scaling"] == parts[7]["resources"]["scaling"] == "off"

        # The new defaults on that stack: max 2 -> 4 and the policies, desired left as it is.
        write_config(tmp_path)
        calls.clear()
        assert cli("up", "--yes", cwd=tmp_path).code == 0
        assert sorted(mutating(calls)) == ["PutScalingPolicy"] * 3 + ["UpdateAutoScalingGroup"] * 2
        assert sizes("app") == sizes("web") == (2, 2, 4)
        assert set(policies("web")) == {"threetier-web-cpu", "threetier-web-requests"}

        # And back: scaling: null deletes every policy of the tier.
        write_config(tmp_path, web={"scaling": None})
        calls.clear()
        assert cli("up", "--yes", cwd=tmp_path).code == 0
        assert sorted(mutating(calls)) == ["DeletePolicy", "DeletePolicy"]
        assert policies("web") == {} and set(policies("app")) == {"threetier-app-cpu"}


def test_up_leaves_the_desired_capacity_to_the_policies(built: Path, calls: list[str]) -> None:
    """A scale-out under load (here by hand: moto scales nothing by itself) is neither drift nor
    undone by the next `up`: with policies, config's desired is only where the group starts."""
    boto3.client("autoscaling").set_desired_capacity(AutoScalingGroupName="threetier-web-asg", DesiredCapacity=3)
    code, parts = status(built)
    assert code == 0, parts[7]["drift"]
    calls.clear()
    assert cli("up", "--yes", cwd=built).code == 0
    assert mutating(calls) == []
    assert sizes("web") == (2, 3, 4)


# -- down ------------------------------------------------------------------------------
def test_down_leaves_no_group_and_no_policy(built: Path) -> None:
    result = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert result.code == 0, result.stderr
    autoscaling = boto3.client("autoscaling")
    assert autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert autoscaling.describe_policies()["ScalingPolicies"] == []


def test_moto_keeps_policies_of_a_deleted_group() -> None:
    """Why `down` deletes what is left after the group: AWS deletes a group's policies with it, moto
    5.2 does not. When this fails, moto learned it, and that read in `balancing.destroy` may go."""
    with moto():
        ec2, autoscaling = boto3.client("ec2"), boto3.client("autoscaling")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ec2.create_launch_template(LaunchTemplateName="scaling-lt", LaunchTemplateData={"ImageId": image})
        autoscaling.create_auto_scaling_group(AutoScalingGroupName="g", MinSize=0, MaxSize=1,
                                              LaunchTemplate={"LaunchTemplateName": "scaling-lt"},
                                              AvailabilityZones=["us-east-1a"])
        autoscaling.put_scaling_policy(AutoScalingGroupName="g", PolicyName="p", PolicyType="TargetTrackingScaling",
                                       TargetTrackingConfiguration={"TargetValue": 50, "PredefinedMetricSpecification": {
                                           "PredefinedMetricType": "ASGAverageCPUUtilization"}})
        autoscaling.delete_auto_scaling_group(AutoScalingGroupName="g", ForceDelete=True)
        assert [p["PolicyName"] for p in autoscaling.describe_policies(AutoScalingGroupName="g")["ScalingPolicies"]] == ["p"]


# -- end to end: does load raise the desired capacity? -----------------------------------
@pytest.mark.xfail(strict=True, reason="moto 5.2 evaluates no target tracking: PutScalingPolicy makes no CloudWatch "
                                       "alarms, PutMetricData only stores data, no alarm changes state from data, "
                                       "and no alarm action runs a policy (see the report in this test's docstring)")
def test_cpu_above_the_target_raises_the_desired_capacity(built: Path) -> None:
    """What the issue asks end to end. On AWS, the CPU policy's TargetTracking-...-AlarmHigh alarm
    (3 minutes above 60 %) would fire and the group grow. moto 5.2.1 lacks each link of that chain:
    autoscaling/models.py `put_scaling_policy` stores the configuration and creates no alarm (only
    Application Auto Scaling makes alarms); cloudwatch/models.py `put_metric_data` appends the data
    and evaluates no alarm (`update_state` is reached only from SetAlarmState); nothing dispatches
    an alarm action to Auto Scaling; and `execute_policy` acts only on simple-scaling adjustment
    types, so even an explicit ExecutePolicy of a target-tracking policy changes nothing."""
    cloudwatch = boto3.client("cloudwatch")
    now = datetime.datetime.now(datetime.timezone.utc)
    cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=[
        {"MetricName": "CPUUtilization", "Value": 95.0, "Unit": "Percent",
         "Timestamp": now - datetime.timedelta(minutes=minute),
         "Dimensions": [{"Name": "AutoScalingGroupName", "Value": "threetier-web-asg"}]}
        for minute in range(10)])
    assert sizes("web")[1] > 2
