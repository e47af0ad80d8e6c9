"""Trust (issue 9): pending work survives a crash, and status says what is there.

Item 4: a launch template default version newer than what the Auto Scaling group's instances run
is an instance refresh due, whether or not this run made the version: `status` and `plan` name it,
and `up` starts it (or waits for the one under way). Item 6: with the internal ALB gone, Part 6 is
what it is (its AMI is there; the ALB its nginx.conf names is not), not "gone".

Each test starts from the default stack restored (conftest's `built`): building it is set-up here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, cli, make_engine, write_config
from steps import app_tier
from threetier.blocks import balancing
from threetier.cli.common import Runtime
from threetier.engine import Engine

TIER_PART = {"app": 5, "web": 7}


class Crash(KeyboardInterrupt):
    """The process dies right after AWS did the work, before threetier saw the answer."""


def crash_after(monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    """The next command's AWS layer dies right after `operation` (once)."""
    made_by = Runtime.aws

    def aws(self: Runtime, **kwargs: Any) -> Any:
        made = made_by(self, **kwargs)
        crashed: list[str] = []

        def crash(model: Any, **_: Any) -> None:
            if model.name == operation and not crashed:
                crashed.append(operation)
                raise Crash(operation)
        made.session.events.register("after-call", crash)
        return made
    monkeypatch.setattr(Runtime, "aws", aws)


def group_instance_types(tier: str) -> list[str]:
    """The instance types the tier's Auto Scaling group runs, as EC2 has them."""
    group = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"threetier-{tier}-asg"])["AutoScalingGroups"][0]
    ids = [i["InstanceId"] for i in group["Instances"]]
    found = boto3.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return sorted(i["InstanceType"] for r in found for i in r["Instances"])


def drift_of(status_stdout: str, part: int) -> list[str]:
    return json.loads(status_stdout)["parts"][part - 1]["drift"]


# -- item 4, on moto: crash, status names it, up replaces, status is clean ------------------
@pytest.mark.parametrize(("tier", "operation"), [
    ("app", "ModifyLaunchTemplate"),
    ("web", "ModifyLaunchTemplate"),
    ("app", "CreateLaunchTemplateVersion"),
])
def test_a_refresh_lost_to_a_crash_is_named_by_status_and_done_by_up(
        built: Path, monkeypatch: pytest.MonkeyPatch, tier: str, operation: str) -> None:
    part = TIER_PART[tier]
    assert group_instance_types(tier) == ["t3.micro", "t3.micro"]
    write_config(built, **{tier: {"instance_type": "t3.small"}})

    with monkeypatch.context() as patched:
        crash_after(patched, operation)
        crashed = cli("up", "--yes", cwd=built)
    assert crashed.code == 130, crashed.stderr
    assert group_instance_types(tier) == ["t3.micro", "t3.micro"]

    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    drift = drift_of(status.stdout, part)
    if operation == "ModifyLaunchTemplate":  # the new version is the default: only the refresh is left
        assert any(f"Auto Scaling group threetier-{tier}-asg: 2 of 2 instances run t3.micro" in line
                   and "is t3.small" in line and "an instance refresh is due" in line for line in drift), drift
        plan = json.loads(cli("plan", "--json", cwd=built).stdout)
        assert any("an instance refresh is due" in line for line in plan["parts"][part - 1]["change"])
    else:  # the new version is not the default yet: the template itself still differs
        assert any("instance type t3.micro, config says t3.small" in line for line in drift), drift

    resumed = cli("up", "--yes", cwd=built)
    assert resumed.code == 0, resumed.stderr
    assert "the emulator has no instance refresh" in resumed.stderr
    assert group_instance_types(tier) == ["t3.small", "t3.small"]
    clean = cli("status", "--json", cwd=built)
    assert clean.code == 0, [(p["part"], p["drift"]) for p in json.loads(clean.stdout)["parts"]]
    assert "0 mutating AWS calls" in cli("up", "--yes", cwd=built).stdout


# -- item 4, the real-AWS path under botocore's Stubber ------------------------------------
def crash_before_the_refresh() -> None:
    """What an `up` changing the app tier to t3.small leaves when it dies right after making the
    new version the default: the instances still run t3.micro."""
    ec2 = boto3.client("ec2")
    data = ec2.describe_launch_template_versions(LaunchTemplateName="threetier-app-lt", Versions=["$Default"])[
        "LaunchTemplateVersions"][0]["LaunchTemplateData"]  # moto ignores SourceVersion: the whole data
    version = ec2.create_launch_template_version(
        LaunchTemplateName="threetier-app-lt",
        LaunchTemplateData={**data, "InstanceType": "t3.small"})["LaunchTemplateVersion"]["VersionNumber"]
    ec2.modify_launch_template(LaunchTemplateName="threetier-app-lt", DefaultVersion=str(version))


def real_aws_engine(tmp_path: Path, app_instance_type: str = "t3.small") -> Engine:
    """An engine on the stack in tmp_path that takes AWS for real AWS, inside Part 5."""
    engine = make_engine(tmp_path, {"app": {"instance_type": app_instance_type}}, clock=FakeClock())
    engine.ctx.aws.emulator = False
    engine.ctx.part = next(p for p in engine.parts if p.number == app_tier.NUMBER)
    engine.ctx.aws.part = engine.ctx.part.label
    return engine


def built_then_crashed(built: Path) -> Engine:
    """The restored stack (`built`) as that crash leaves it, and a real-AWS engine on it."""
    crash_before_the_refresh()
    return real_aws_engine(built)


def the_group() -> dict[str, Any]:
    """The app group as moto describes it (the Stubber answers with it)."""
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["threetier-app-asg"])


def refreshes(*items: tuple[str, str, int]) -> dict[str, Any]:
    return {"InstanceRefreshes": [{"InstanceRefreshId": rid, "AutoScalingGroupName": "threetier-app-asg",
                                   "Status": status, "PercentageComplete": percent}
                                  for rid, status, percent in items]}


def the_policies() -> dict[str, Any]:
    """The app group's scaling policies as moto describes them (issue 12: read by check and up)."""
    found = boto3.client("autoscaling").describe_policies(AutoScalingGroupName="threetier-app-asg")
    # moto answers an empty PredictiveScalingConfiguration, which the Stubber's shape check refuses.
    return {"ScalingPolicies": [{k: v for k, v in policy.items() if v != {}} for policy in found["ScalingPolicies"]]}


GROUP = {"AutoScalingGroupNames": ["threetier-app-asg"]}
POLICIES = {"AutoScalingGroupName": "threetier-app-asg"}
STACK_GROUPS = {"Filters": [{"Name": "tag:threetier:stack", "Values": ["threetier"]}]}
LOOK_REFRESHES = {"AutoScalingGroupName": "threetier-app-asg"}
START = {"AutoScalingGroupName": "threetier-app-asg", "Strategy": "Rolling",
         "Preferences": {"MinHealthyPercentage": 50, "InstanceWarmup": 120}}


def check_part_5(engine: Engine, *refresh_answers: dict[str, Any]) -> list[str]:
    """Part 5's drift, the Auto Scaling API answering from the Stubber (every answer used)."""
    assert engine.ctx.part is not None
    with Stubber(engine.ctx.aws.client("autoscaling")) as stub:
        stub.add_response("describe_auto_scaling_groups", the_group(), GROUP)
        stub.add_response("describe_policies", the_policies(), POLICIES)
        for answer in refresh_answers:
            stub.add_response("describe_instance_refreshes", answer, LOOK_REFRESHES)
        # Last, the stack's groups, for strays (threetier/blocks/strays.py): no stray here.
        stub.add_response("describe_auto_scaling_groups", boto3.client("autoscaling").describe_auto_scaling_groups(
            **STACK_GROUPS), STACK_GROUPS)
        drift = engine.check(engine.ctx.part).drift
        stub.assert_no_pending_responses()
    return drift


def test_status_names_a_refresh_due_or_under_way_and_reads_none_when_nothing_is_due(built: Path) -> None:
    # Up to date: no refresh is looked for (the Stubber refuses any read not given here).
    assert check_part_5(real_aws_engine(built, "t3.micro")) == []

    crash_before_the_refresh()
    drift = check_part_5(real_aws_engine(built), refreshes(("r-0", "Successful", 100)))
    assert len(drift) == 1 and drift[0].startswith("Auto Scaling group threetier-app-asg: 2 of 2 instances run "
                                                   "t3.micro"), drift
    assert "the launch template's default version 2 is t3.small" in drift[0]
    assert drift[0].endswith("an instance refresh is due (`up` starts it)")

    drift = check_part_5(real_aws_engine(built), refreshes(("r-1", "InProgress", 50)))
    assert len(drift) == 1 and "an instance refresh is under way (r-1: InProgress 50%)" in drift[0], drift
    assert "is due" not in drift[0]


def test_up_starts_the_refresh_a_crash_lost_and_waits_for_it(built: Path) -> None:
    engine = built_then_crashed(built)
    ctx, clock = engine.ctx, engine.ctx.aws.clock
    with Stubber(ctx.aws.client("autoscaling")) as stub:
        stub.add_response("describe_auto_scaling_groups", the_group(), GROUP)
        stub.add_response("describe_policies", the_policies(), POLICIES)
        # Only an old refresh, long over: none under way.
        stub.add_response("describe_instance_refreshes", refreshes(("r-0", "Successful", 100)), LOOK_REFRESHES)
        stub.add_response("start_instance_refresh", {"InstanceRefreshId": "r-1"}, START)
        for status, percent in (("Pending", 0), ("InProgress", 50), ("Successful", 100)):
            stub.add_response("describe_instance_refreshes", refreshes(("r-1", status, percent)),
                              {**LOOK_REFRESHES, "InstanceRefreshIds": ["r-1"]})
        balancing.finish(ctx, app_tier.tier(ctx))
        stub.assert_no_pending_responses()
    assert next(c for c in ctx.changes if c.kind == "instance refresh").id == "r-1"
    assert isinstance(clock, FakeClock) and [s for s in clock.sleeps if s == 30] == [30, 30]
    assert "instance_refresh" not in ctx.resources


def test_a_refresh_under_way_is_waited_for_not_started_again(built: Path) -> None:
    engine = built_then_crashed(built)
    ctx = engine.ctx
    with Stubber(ctx.aws.client("autoscaling")) as stub:
        stub.add_response("describe_auto_scaling_groups", the_group(), GROUP)
        stub.add_response("describe_policies", the_policies(), POLICIES)
        stub.add_response("describe_instance_refreshes",
                          refreshes(("r-1", "InProgress", 50), ("r-0", "Successful", 100)), LOOK_REFRESHES)
        # No StartInstanceRefresh: the Stubber would refuse it. The one under way is waited for.
        for status, percent in (("InProgress", 50), ("Successful", 100)):
            stub.add_response("describe_instance_refreshes", refreshes(("r-1", status, percent)),
                              {**LOOK_REFRESHES, "InstanceRefreshIds": ["r-1"]})
        balancing.finish(ctx, app_tier.tier(ctx))
        stub.assert_no_pending_responses()
    assert "instance_refresh" not in ctx.resources
    assert not [c for c in ctx.aws.mutating_calls() if c.operation == "StartInstanceRefresh"]


def test_a_refresh_started_meanwhile_is_adopted_not_an_old_one(built: Path) -> None:
    """Between the look and the start another refresh began (InstanceRefreshInProgress): the running
    one is waited for, not the first of the group's past refreshes."""
    engine = built_then_crashed(built)
    ctx = engine.ctx
    with Stubber(ctx.aws.client("autoscaling")) as stub:
        stub.add_response("describe_auto_scaling_groups", the_group(), GROUP)
        stub.add_response("describe_policies", the_policies(), POLICIES)
        stub.add_response("describe_instance_refreshes", refreshes(), LOOK_REFRESHES)
        stub.add_client_error("start_instance_refresh", service_error_code="InstanceRefreshInProgress",
                              service_message="An Instance Refresh is already in progress", expected_params=START)
        stub.add_response("describe_instance_refreshes",
                          refreshes(("r-0", "Successful", 100), ("r-2", "Pending", 0)), LOOK_REFRESHES)
        for status, percent in (("InProgress", 50), ("Successful", 100)):
            stub.add_response("describe_instance_refreshes", refreshes(("r-2", status, percent)),
                              {**LOOK_REFRESHES, "InstanceRefreshIds": ["r-2"]})
        balancing.finish(ctx, app_tier.tier(ctx))
        stub.assert_no_pending_responses()
    assert "instance_refresh" not in ctx.resources


# -- item 6: the internal ALB gone, Part 6 is there -----------------------------------------
def test_with_the_internal_alb_gone_part_6_is_not_gone_and_its_ami_is_there(built: Path) -> None:
    state = json.loads((built / ".threetier" / "threetier.json").read_text())
    web_ami = state["parts"]["6"]["resources"]["ami"]
    elbv2 = boto3.client("elbv2")
    arn = elbv2.describe_load_balancers(Names=["threetier-int-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.delete_load_balancer(LoadBalancerArn=arn)

    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    parts = json.loads(status.stdout)["parts"]
    web_image, app = parts[5], parts[4]
    assert web_image["status"] == "drifted"
    assert "every resource of this part is gone" not in web_image["drift"], web_image["drift"]
    assert web_image["resources"]["ami"] == web_ami
    assert any("internal load balancer threetier-int-alb (Part 5) is missing" in line
               for line in web_image["drift"]), web_image["drift"]
    assert "missing: load balancer threetier-int-alb" in app["drift"], app["drift"]
    # Part 7's template runs that AMI: nothing to say about it there.
    assert not [line for line in parts[6]["drift"] if "AMI" in line], parts[6]["drift"]

    plan = json.loads(cli("plan", "--json", cwd=built).stdout)["parts"]
    assert any(web_ami in line or line.startswith("AMI threetier-web-ami-") for line in plan[5]["keep"]), plan[5]
    assert any("nginx.conf" in line for line in plan[5]["keep"]), plan[5]
    assert "load balancer threetier-int-alb" in plan[4]["create"]

    repaired = cli("up", "--yes", cwd=built)
    assert repaired.code == 0, repaired.stderr
    clean = cli("status", "--json", cwd=built)
    assert clean.code == 0, [(p["part"], p["drift"]) for p in json.loads(clean.stdout)["parts"]]
