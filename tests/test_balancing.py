"""What real AWS does to the load-balanced tiers that moto does not.

Item 7: the launch template's ClientToken changes with the hour (EC2 remembers tokens for a day and
would answer a template made again after `down` with the deleted one), and a new instance profile
or new metadata options are deployed on the other color (blue/green). Item 8: `down` and `status` carry on when an
ALB vanishes between two reads. Item 12: both ALBs drop invalid header fields, and their deletion
protection follows `load_balancers.deletion_protection`, with `down` refusing before it deletes
anything while it is on.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from helpers import FakeClock, cli, make_engine, moto, mutating, write_config
from steps import app_tier, storage
from threetier import aws as awslib
from threetier import scan
from threetier.blocks import balancing
from threetier.config import NO_SCALING
from threetier.engine import Check, Engine

STACK = "threetier"
PROFILE = "arn:aws:iam::123456789012:instance-profile/threetier-us-east-1-app-profile"
ALB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/threetier-int-alb/50dc6c495c0c9188"
TEMPLATE_ID = "lt-0123456789abcdef0"
LB_ATTRIBUTES = (balancing.DROP_INVALID_HEADERS, balancing.DELETION_PROTECTION)


@pytest.fixture
def mocked():
    with moto():
        yield


def at(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """The wall-clock time `client_token` reads (UTC)."""
    moment = time.strptime(when, "%Y-%m-%d %H:%M")
    monkeypatch.setattr(awslib, "time", SimpleNamespace(strftime=time.strftime, gmtime=lambda: moment))


def app_part_engine(tmp_path: Path) -> Engine:
    """An engine running Part 5, with Part 1's instance profile as a past run found it."""
    engine = make_engine(tmp_path, clock=FakeClock())
    engine.ctx.state.part(storage.NUMBER, "storage").resources[storage.profile_arn_key("app")] = PROFILE
    engine.ctx.part = next(p for p in engine.parts if p.number == app_tier.NUMBER)
    engine.ctx.aws.part = engine.ctx.part.label
    return engine


def app_tier_of(ami: str = "ami-12345678") -> balancing.Tier:
    return balancing.Tier(tier="app", scheme="internal", port=4000, alb_role="int-alb", vpc="vpc-1",
                          subnets=("subnet-1", "subnet-2"), alb_security_group="sg-1", instance_security_group="sg-2",
                          instance_profile_arn=PROFILE,
                          instance_type="t3.micro", ami=ami, min=2, desired=2, max=2, scaling=NO_SCALING)


def tokens(engine: Engine, operation: str) -> list[str]:
    return [c.params["ClientToken"] for c in engine.ctx.aws.calls if c.operation == operation]


# -- item 7: the launch template's ClientToken ----------------------------------------------
def create_template_token(tmp_path: Path) -> str:
    """The ClientToken of the CreateLaunchTemplate that `ensure_launch_template` sends when no
    template exists (a first `up`, one retried after a crash, or an `up` after `down`)."""
    engine = app_part_engine(tmp_path)
    with Stubber(engine.ctx.aws.client("ec2")) as ec2:
        ec2.add_client_error("describe_launch_templates", service_error_code="InvalidLaunchTemplateName.NotFoundException")
        ec2.add_response("create_launch_template", {"LaunchTemplate": {"LaunchTemplateId": TEMPLATE_ID}},
                         {"LaunchTemplateName": "threetier-app-lt", "VersionDescription": "app tier",
                          "LaunchTemplateData": ANY, "ClientToken": ANY, "TagSpecifications": ANY})
        assert balancing.ensure_launch_template(engine.ctx, app_tier_of(), "sg-0123456789abcdef0") == (TEMPLATE_ID, False)
        ec2.assert_no_pending_responses()
    [token] = tokens(engine, "CreateLaunchTemplate")
    return token


def new_version_token(tmp_path: Path) -> str:
    """The ClientToken of the CreateLaunchTemplateVersion for a new AMI."""
    engine = app_part_engine(tmp_path)
    with Stubber(engine.ctx.aws.client("ec2")) as ec2:
        ec2.add_response("describe_launch_templates", {"LaunchTemplates": [
            {"LaunchTemplateId": TEMPLATE_ID, "LaunchTemplateName": "threetier-app-lt"}]})
        ec2.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
            {"LaunchTemplateId": TEMPLATE_ID, "VersionNumber": 1, "LaunchTemplateData": {"ImageId": "ami-00000001"}}]})
        ec2.add_response("create_launch_template_version", {"LaunchTemplateVersion": {"VersionNumber": 2}},
                         {"LaunchTemplateId": TEMPLATE_ID, "LaunchTemplateData": ANY, "ClientToken": ANY})
        ec2.add_response("modify_launch_template", {}, {"LaunchTemplateId": TEMPLATE_ID, "DefaultVersion": "2"})
        assert balancing.ensure_launch_template(engine.ctx, app_tier_of(), "sg-0123456789abcdef0") == (TEMPLATE_ID, True)
        ec2.assert_no_pending_responses()
    [token] = tokens(engine, "CreateLaunchTemplateVersion")
    return token


def test_the_template_token_is_kept_by_a_retry_within_the_hour_and_new_an_hour_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, "2026-11-21 09:05")
    first = create_template_token(tmp_path)
    at(monkeypatch, "2026-11-21 09:55")  # a crash, then `up` again: EC2 answers with what it made
    assert create_template_token(tmp_path) == first
    at(monkeypatch, "2026-11-21 10:05")  # `down`, then `up` with the same data: a new template
    later = create_template_token(tmp_path)
    assert later != first
    assert len(first) == len(later) == 64

    at(monkeypatch, "2026-11-21 09:05")
    version = new_version_token(tmp_path)
    assert version not in (first, later)  # the same data as a version of a template is another request
    at(monkeypatch, "2026-11-21 09:55")
    assert new_version_token(tmp_path) == version
    at(monkeypatch, "2026-11-21 10:05")
    assert new_version_token(tmp_path) != version


# -- item 7: the instance profile and metadata options make a new version ------------------
def default_version(template_name: str) -> dict[str, Any]:
    ec2 = boto3.client("ec2")
    return ec2.describe_launch_template_versions(LaunchTemplateName=template_name,
                                                 Versions=["$Default"])["LaunchTemplateVersions"][0]


def make_default_by_hand(template_name: str, **changes: Any) -> None:
    """A new default version of the template that differs from the current one in `changes`."""
    ec2 = boto3.client("ec2")
    data = {**default_version(template_name)["LaunchTemplateData"], **changes}
    made = ec2.create_launch_template_version(LaunchTemplateName=template_name, LaunchTemplateData=data)
    ec2.modify_launch_template(LaunchTemplateName=template_name,
                               DefaultVersion=str(made["LaunchTemplateVersion"]["VersionNumber"]))


def drift_of(tmp_path: Path, part: int) -> list[str]:
    """What `status` finds of `part`, with the state file of `make_engine` when that made the stack."""
    state = tmp_path / "state.json"
    result = cli(*(["--state", str(state)] if state.exists() else []), "status", "--json", cwd=tmp_path)
    return next(p for p in json.loads(result.stdout)["parts"] if p["part"] == part)["drift"]


@pytest.mark.parametrize("field,old,said", [
    ("IamInstanceProfile", {"Arn": "arn:aws:iam::123456789012:instance-profile/threetier-profile"},
     "new instance profile"),
    ("MetadataOptions", {"HttpTokens": "optional", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
     "new metadata options"),
])
def test_an_old_instance_profile_or_metadata_options_are_deployed_on_the_other_color(
        built: Path, field: str, old: dict[str, Any], said: str) -> None:
    """A stack from before per-tier instance profiles (or with IMDSv1 left on) gets instances with the
    wanted ones on its next `up`, not only when its AMI next changes: on green, beside blue."""
    (built / "config.yaml").write_text("deploy: {watch_minutes: 0}\n")
    wanted = default_version("threetier-app-lt")["LaunchTemplateData"][field]
    make_default_by_hand("threetier-app-lt", **{field: old})
    assert default_version("threetier-app-lt")["LaunchTemplateData"][field] == old
    drift = drift_of(built, app_tier.NUMBER)
    assert len(drift) == 1 and drift[0].startswith(f"deploy app: {said}"), drift

    engine = make_engine(built, {"deploy": {"watch_minutes": 0}})
    engine.up()
    assert "CreateLaunchTemplateVersion" not in mutating(engine)  # the live color's template is left alone
    now = default_version("threetier-app-lt-g")
    assert now["VersionNumber"] == 1 and now["LaunchTemplateData"][field] == wanted
    assert [g["AutoScalingGroupName"] for g in boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["threetier-app-asg", "threetier-app-asg-g"])["AutoScalingGroups"]] == ["threetier-app-asg-g"]
    assert drift_of(built, app_tier.NUMBER) == []
    again = make_engine(built, {"deploy": {"watch_minutes": 0}})
    again.up()
    assert mutating(again) == []  # what AWS adds to the options it was given is no difference


# -- item 8: an ALB deleted by someone else between two reads -------------------------------
def test_down_carries_on_when_the_alb_vanishes_between_its_reads(tmp_path: Path) -> None:
    engine = app_part_engine(tmp_path)
    aws = engine.ctx.aws
    balancer = {"LoadBalancerArn": ALB_ARN, "LoadBalancerName": "threetier-int-alb", "DNSName": "x"}
    with Stubber(aws.client("elbv2")) as elbv2, Stubber(aws.client("autoscaling")) as autoscaling, \
            Stubber(aws.client("ec2")) as ec2:
        for _ in ("blue", "green"):  # each color's target group and Auto Scaling group
            elbv2.add_client_error("describe_target_groups", service_error_code="TargetGroupNotFound")
            autoscaling.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []})
        elbv2.add_response("describe_load_balancers", {"LoadBalancers": [balancer]})
        elbv2.add_client_error("describe_listeners", service_error_code="LoadBalancerNotFound")
        elbv2.add_client_error("delete_load_balancer", service_error_code="LoadBalancerNotFound")
        elbv2.add_client_error("describe_load_balancers", service_error_code="LoadBalancerNotFound")
        for _ in ("blue", "green"):
            ec2.add_client_error("describe_launch_templates",
                                 service_error_code="InvalidLaunchTemplateName.NotFoundException")
        balancing.destroy(engine.ctx, "app", app_tier.ALB_ROLE)
        for stub in (elbv2, autoscaling, ec2):
            stub.assert_no_pending_responses()
    assert [(c.action, c.kind) for c in engine.ctx.changes] == [("deleted", "load balancer")]


def test_status_and_up_carry_on_when_the_alb_vanishes_between_its_reads(tmp_path: Path) -> None:
    """`check` says the listener is missing (not a TypeError, not a drift of attributes it cannot
    read); `ensure_listener` makes one, and AWS then says what is wrong."""
    engine = app_part_engine(tmp_path)
    aws = engine.ctx.aws
    balancer = {"LoadBalancerArn": ALB_ARN, "LoadBalancerName": "threetier-int-alb", "DNSName": "x"}
    result = Check()
    with Stubber(aws.client("elbv2")) as elbv2, Stubber(aws.client("autoscaling")) as autoscaling, \
            Stubber(aws.client("ec2")) as ec2:
        elbv2.add_client_error("describe_target_groups", service_error_code="TargetGroupNotFound")
        elbv2.add_response("describe_load_balancers", {"LoadBalancers": [balancer]})
        elbv2.add_client_error("describe_listeners", service_error_code="LoadBalancerNotFound")
        elbv2.add_client_error("describe_load_balancer_attributes", service_error_code="LoadBalancerNotFound")
        ec2.add_client_error("describe_launch_templates", service_error_code="InvalidLaunchTemplateName.NotFoundException")
        autoscaling.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []})
        balancing.check(engine.ctx, app_tier_of(), result)
        for stub in (elbv2, autoscaling, ec2):
            stub.assert_no_pending_responses()
    assert "listener threetier-int-alb:80" in result.missing
    assert "load balancer threetier-int-alb" in result.present
    assert result.drift == []

    engine = app_part_engine(tmp_path)
    with Stubber(engine.ctx.aws.client("elbv2")) as elbv2:
        elbv2.add_client_error("describe_listeners", service_error_code="LoadBalancerNotFound")
        elbv2.add_client_error("create_listener", service_error_code="LoadBalancerNotFound")
        with pytest.raises(awslib.AwsError, match=r"create listener .*threetier-int-alb:80 failed: LoadBalancerNotFound"):
            balancing.ensure_listener(engine.ctx, app_tier_of(), ALB_ARN, "arn:tg")
        elbv2.assert_no_pending_responses()


# -- item 12: load balancer attributes -----------------------------------------------------
def alb_attributes() -> dict[str, dict[str, str]]:
    """Each of the stack's ALBs by name: the attributes this stack sets, as AWS has them."""
    elbv2 = boto3.client("elbv2")
    found = {}
    for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
        attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=balancer["LoadBalancerArn"])["Attributes"]
        found[balancer["LoadBalancerName"]] = {a["Key"]: a["Value"] for a in attributes if a["Key"] in LB_ATTRIBUTES}
    return found


def set_alb_attribute(name: str, key: str, value: str) -> None:
    elbv2 = boto3.client("elbv2")
    arn = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": key, "Value": value}])


def test_both_albs_drop_invalid_headers_and_a_change_by_hand_is_drift_that_up_puts_back(
        reference_stacks, built: Path) -> None:
    # The build's calls are the default reference stack's (its `up --yes`); the rest starts from its stack.
    tmp_path = built
    build = reference_stacks.build("default")
    on = {balancing.DROP_INVALID_HEADERS: "true", balancing.DELETION_PROTECTION: "false"}
    assert alb_attributes() == {"threetier-int-alb": on, "threetier-ext-alb": on}
    # At creation, one call per ALB sets what is not AWS's default.
    sets = [params for (_, operation), params in zip(build.up_calls, build.up_params, strict=True)
            if operation == "ModifyLoadBalancerAttributes"]
    assert [s["Attributes"] for s in sets] == [[{"Key": balancing.DROP_INVALID_HEADERS, "Value": "true"}]] * 2

    set_alb_attribute("threetier-ext-alb", balancing.DROP_INVALID_HEADERS, "false")
    assert drift_of(tmp_path, 7) == [
        f"load balancer threetier-ext-alb: {balancing.DROP_INVALID_HEADERS} is false, should be true"]
    assert drift_of(tmp_path, 5) == []

    again = make_engine(tmp_path)
    again.up()
    assert mutating(again) == ["ModifyLoadBalancerAttributes"]
    assert alb_attributes()["threetier-ext-alb"] == on
    assert drift_of(tmp_path, 7) == []


def test_down_refuses_a_protected_alb_before_deleting_anything_until_up_turns_it_off(
        mocked, tmp_path: Path) -> None:
    write_config(tmp_path, load_balancers={"deletion_protection": True})
    assert cli("up", "--yes", cwd=tmp_path).code == 0
    protected = {balancing.DROP_INVALID_HEADERS: "true", balancing.DELETION_PROTECTION: "true"}
    assert alb_attributes() == {"threetier-int-alb": protected, "threetier-ext-alb": protected}
    before = len(scan.tagged(make_engine(tmp_path).ctx.aws, STACK))

    result = cli("down", "--yes", cwd=tmp_path)
    assert result.code == 2
    assert ("load balancer threetier-ext-alb has deletion protection on; set "
            "load_balancers.deletion_protection: false, run `threetier up`, then `down` again") in result.stderr
    assert len(scan.tagged(make_engine(tmp_path).ctx.aws, STACK)) == before  # nothing was deleted
    assert len(boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]) == 2

    # Only one ALB protected (turned on by hand): refused all the same, naming that one.
    write_config(tmp_path, load_balancers={"deletion_protection": False})
    assert cli("up", "--yes", cwd=tmp_path).code == 0  # converges: protection off on both
    off = {balancing.DROP_INVALID_HEADERS: "true", balancing.DELETION_PROTECTION: "false"}
    assert alb_attributes() == {"threetier-int-alb": off, "threetier-ext-alb": off}
    set_alb_attribute("threetier-int-alb", balancing.DELETION_PROTECTION, "true")
    assert drift_of(tmp_path, 5) == [
        f"load balancer threetier-int-alb: {balancing.DELETION_PROTECTION} is true, should be false"]
    result = cli("down", "--yes", cwd=tmp_path)
    assert result.code == 2 and "load balancer threetier-int-alb has deletion protection on" in result.stderr
    assert len(scan.tagged(make_engine(tmp_path).ctx.aws, STACK)) == before

    assert cli("up", "--yes", cwd=tmp_path).code == 0
    assert cli("down", "--yes", "--skip-final-snapshot", cwd=tmp_path).code == 0
    assert boto3.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
