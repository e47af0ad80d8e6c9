"""bench.model under a deploy (issue 25, item 5): listeners with forward weights (ModifyListener), a steady
request load served through them (bench/model/load.py), and the rules a blue/green switch must keep.
Hand-made call sequences through the clients of a model-hooked Aws, on a virtual clock; then the
benchmark's wiring (`modeled_deploy`, the four JSON keys) with a stand-in for the deploy command."""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bench.__main__ as bench_main
import bench.runs
from bench.model import (
    ALB_CREATE_SECONDS,
    ASG_IN_SERVICE_SECONDS,
    DNF_SECONDS,
    EC2_TERMINATE_SECONDS,
    INSTALL_SECONDS,
    LISTENER_CHANGE_SECONDS,
    NPM_CI_SECONDS,
    TARGET_HEALTHY_SECONDS,
    LatencyModel,
    VirtualClock,
    bootstrap_actions,
    load,
)
from bench.runs import Deployed, Modeled
from helpers import make_engine, moto
from test_bench_pause import outcome

RATE = 20.0        # the web tier's requests per second
DRAIN = 30         # the stack's deregistration delay


def weighted(weights: dict[str, int]) -> list[dict[str, Any]]:
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": arn, "Weight": weight} for arn, weight in weights.items()]}}]


class Stage:
    """moto behind the model, on a virtual clock: an ALB (active at 150 s) whose listener forwards to the
    blue target group, blue's Auto Scaling group of 2 serving (healthy at about 190 s), and a launch template
    for green. `load()` starts 20 requests/s at the ALB."""

    def __init__(self, tmp_path: Path, relax: tuple[str, ...] = ()):
        self.clock = VirtualClock()
        aws = make_engine(tmp_path, clock=self.clock).ctx.aws
        self.model = LatencyModel(aws, self.clock, relax=relax)
        self.ec2, self.elbv2, self.asg = (aws.client(s) for s in ("ec2", "elbv2", "autoscaling"))
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24",
                                               AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
                        for i, az in enumerate("ab")]
        self.alb = self.elbv2.create_load_balancer(Name="stage", Subnets=self.subnets, Scheme="internet-facing",
                                                   Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        image = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        self.template = self.ec2.create_launch_template(LaunchTemplateName="stage-lt", LaunchTemplateData={
            "ImageId": image, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
        self.blue = self.target_group("stage-tg")
        self.listener = self.elbv2.create_listener(LoadBalancerArn=self.alb, Protocol="HTTP", Port=80, DefaultActions=[
            {"Type": "forward", "TargetGroupArn": self.blue}])["Listeners"][0]["ListenerArn"]
        self.group("stage-asg", self.blue)
        self.until(self.healthy(self.blue))
        self.green = self.target_group("stage-tg-g")

    def target_group(self, name: str) -> str:
        arn = self.elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=self.vpc,
                                             TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        self.elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(DRAIN)}])
        return arn

    def group(self, name: str, target_group: str, size: int = 2) -> None:
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=size, MaxSize=size, DesiredCapacity=size,
            LaunchTemplate={"LaunchTemplateId": self.template, "Version": "$Default"},
            VPCZoneIdentifier=",".join(self.subnets), TargetGroupARNs=[target_group])

    def resize(self, name: str, size: int) -> None:
        self.asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=size, DesiredCapacity=size,
                                           MaxSize=size)

    def forward(self, weights: dict[str, int]) -> str:
        return outcome(self.elbv2.modify_listener, ListenerArn=self.listener, DefaultActions=weighted(weights))

    def healthy(self, target_group: str) -> float:
        """When the targets of `target_group` are healthy, as DescribeTargetHealth will say."""
        group = next(g for g in self.model.groups.values() if target_group in g.target_groups and g.deleted is None)
        return max(group.created + ASG_IN_SERVICE_SECONDS, self.model.listened[target_group],
                   self.model.load_balancers[self.alb].created + ALB_CREATE_SECONDS) + TARGET_HEALTHY_SECONDS

    def states(self, target_group: str) -> list[str]:
        found = self.elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
        return sorted({t["TargetHealth"]["State"] for t in found})

    def until(self, t: float) -> None:
        self.clock.advance(t - self.clock.now())
        self.elbv2.describe_load_balancers()  # a call: the model's tick serves the load up to now

    def load(self) -> None:
        load.start(self.model, [load.Tier("web", self.alb, rate=RATE)])

    def served(self) -> load.Tier:
        served = load.finish(self.model)
        assert served is not None
        return served.tiers["web"]


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    with moto():
        yield Stage(tmp_path)


def test_a_blue_green_switch_in_order_loses_no_request_and_keeps_two_serving(stage: Stage) -> None:
    stage.load()
    started = stage.clock.now()
    assert stage.forward({stage.blue: 100, stage.green: 0}) == "ok"  # green on the listener first: checked
    stage.group("stage-asg-g", stage.green)
    assert stage.states(stage.green) == ["initial"]
    green_healthy = stage.healthy(stage.green)
    stage.until(green_healthy)
    assert stage.states(stage.green) == ["healthy"]
    assert stage.forward({stage.blue: 0, stage.green: 100}) == "ok"
    listener = stage.model.forwards[stage.listener]
    shifted = stage.clock.now()
    assert listener.weights_at(shifted + LISTENER_CHANGE_SECONDS - 1) == {stage.blue: 100, stage.green: 0}
    assert listener.weights_at(shifted + LISTENER_CHANGE_SECONDS) == {stage.blue: 0, stage.green: 100}
    stage.until(shifted + LISTENER_CHANGE_SECONDS)
    stage.resize("stage-asg", 0)  # blue drains (deregistration delay), then terminates
    stage.until(stage.clock.now() + DRAIN + EC2_TERMINATE_SECONDS)
    assert stage.forward({stage.green: 1}) == "ok"
    stage.asg.delete_auto_scaling_group(AutoScalingGroupName="stage-asg", ForceDelete=True)
    stage.until(stage.clock.now() + 60)
    assert stage.model.listeners[stage.blue] == set() and stage.model.listeners[stage.green] == {stage.alb}
    web = stage.served()
    assert stage.model.violations == [], stage.model.violations
    assert web.failed_requests == 0 and web.requests == pytest.approx(RATE * (stage.clock.now() - started))
    assert web.min_healthy == 2  # blue's 2 until the shift took effect, green's 2 after
    assert stage.elbv2.delete_target_group(TargetGroupArn=stage.blue) is not None


def test_draining_blue_before_the_shift_is_in_effect_fails_the_requests_still_sent_to_it(stage: Stage) -> None:
    """The listener follows new weights LISTENER_CHANGE_SECONDS after the call: blue drained at once (a
    deploy with no watch) still gets requests until then, and has no target left to serve them."""
    stage.load()
    stage.forward({stage.blue: 100, stage.green: 0})
    stage.group("stage-asg-g", stage.green)
    stage.until(stage.healthy(stage.green))
    stage.forward({stage.blue: 0, stage.green: 100})
    effective = stage.clock.now() + LISTENER_CHANGE_SECONDS
    stage.resize("stage-asg", 0)
    drained = stage.clock.now()
    stage.until(effective + 60)
    web = stage.served()
    assert stage.model.violations == []  # no rule broken; the requests say it
    assert math.isclose(web.failed, RATE * (effective - drained), abs_tol=RATE) and web.failed_requests > 0
    assert web.min_healthy == 0


def test_a_shift_to_a_group_with_no_eligible_target_is_a_violation_and_its_requests_fail(stage: Stage) -> None:
    stage.load()
    stage.forward({stage.blue: 100, stage.green: 0})
    stage.group("stage-asg-g", stage.green)
    assert stage.forward({stage.blue: 0, stage.green: 100}) == "ok"  # AWS takes it; green is not healthy yet
    assert stage.model.rule_hits() == {"shift-to-unhealthy": 1}
    effective, green_healthy = stage.clock.now() + LISTENER_CHANGE_SECONDS, stage.healthy(stage.green)
    stage.until(green_healthy + 60)
    web = stage.served()
    lost = RATE * (green_healthy - effective)  # every request from the shift taking effect to green healthy
    assert math.isclose(web.failed, lost, abs_tol=RATE) and web.failed_requests > 0
    assert web.min_healthy == 0


def test_a_canary_share_to_a_group_not_yet_healthy_loses_that_share_only(stage: Stage) -> None:
    """Weights split the requests (a redirecting listener takes none: its clients come back on the other)."""
    stage.elbv2.create_listener(LoadBalancerArn=stage.alb, Protocol="HTTP", Port=8080, DefaultActions=[
        {"Type": "redirect", "RedirectConfig": {"Port": "80", "StatusCode": "HTTP_301"}}])
    stage.load()
    stage.forward({stage.blue: 100, stage.green: 0})
    stage.group("stage-asg-g", stage.green)
    assert stage.forward({stage.blue: 75, stage.green: 25}) == "ok"
    assert stage.model.rule_hits() == {"shift-to-unhealthy": 1}
    effective, green_healthy = stage.clock.now() + LISTENER_CHANGE_SECONDS, stage.healthy(stage.green)
    stage.until(green_healthy + 60)
    web = stage.served()
    assert math.isclose(web.failed, RATE * 0.25 * (green_healthy - effective), abs_tol=RATE)
    assert web.min_healthy == 2  # blue's 2 serve throughout; green adds 2 once healthy


def test_the_live_group_scaled_to_0_while_it_takes_traffic_fails_requests(stage: Stage) -> None:
    """A drained (deregistered) target gets no new requests: no other target, so they fail."""
    stage.load()
    stage.until(stage.clock.now() + 10)
    stage.resize("stage-asg", 0)
    stage.until(stage.clock.now() + 10)
    web = stage.served()
    assert web.min_healthy == 0 and math.isclose(web.failed, RATE * 10, abs_tol=RATE)
    assert stage.model.violations == []  # a drain is no violation: the requests say it


@pytest.mark.parametrize("how", ["TerminateInstances", "DeleteAutoScalingGroup"])
def test_terminating_a_serving_instance_is_a_violation_and_loses_its_requests(stage: Stage, how: str) -> None:
    stage.load()
    instances = [i["InstanceId"] for i in stage.asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=["stage-asg"])["AutoScalingGroups"][0]["Instances"]]
    if how == "TerminateInstances":
        stage.ec2.terminate_instances(InstanceIds=instances[:1])
        assert stage.model.rule_hits() == {"terminate-while-serving": 1}
    else:
        stage.asg.delete_auto_scaling_group(AutoScalingGroupName="stage-asg", ForceDelete=True)
        assert stage.model.rule_hits() == {"terminate-while-serving": 2}
    stage.until(stage.clock.now() + 5)
    web = stage.served()
    if how == "TerminateInstances":  # its in-flight share lost; the other instance serves the rest
        assert web.failed_requests == math.ceil(RATE / 2) and web.min_healthy == 1
    else:  # both lost in flight, then nothing serves
        assert web.failed_requests >= 2 * math.ceil(RATE / 2) + RATE * 4 and web.min_healthy == 0


def test_terminating_with_no_load_is_no_violation(stage: Stage) -> None:
    """`down` takes the stack down with its users: nothing is serving requests."""
    stage.asg.delete_auto_scaling_group(AutoScalingGroupName="stage-asg", ForceDelete=True)
    assert stage.model.violations == []


def test_a_group_made_before_its_target_group_is_on_a_listener_is_a_violation(stage: Stage) -> None:
    stage.group("stage-asg-g", stage.green)
    assert stage.model.rule_hits() == {"asg-target-group-off-listener": 1}
    stage.until(stage.clock.now() + 600)
    assert stage.states(stage.green) == ["unused"]  # never checked while on no listener
    stage.forward({stage.blue: 100, stage.green: 0})
    on = stage.clock.now()
    assert stage.states(stage.green) == ["initial"]  # checked from now on
    assert stage.healthy(stage.green) == on + TARGET_HEALTHY_SECONDS


@pytest.mark.parametrize(("rule", "code"), [
    ("forward-weight-out-of-range", "ValidationError"),
    ("forward-too-many-target-groups", "ValidationError"),
    ("target-group-on-two-load-balancers", "TargetGroupAssociationLimit"),
])
def test_what_aws_refuses_of_a_forward_action_and_moto_takes(stage: Stage, rule: str, code: str) -> None:
    if rule == "forward-weight-out-of-range":
        assert stage.forward({stage.blue: 1000, stage.green: 0}) == code
    elif rule == "forward-too-many-target-groups":
        more = [stage.target_group(f"stage-tg-{n}") for n in range(4)]
        assert stage.forward({stage.blue: 1, stage.green: 1, **dict.fromkeys(more, 0)}) == code
    else:
        other = stage.elbv2.create_load_balancer(Name="other", Subnets=stage.subnets, Type="application")[
            "LoadBalancers"][0]["LoadBalancerArn"]
        assert outcome(stage.elbv2.create_listener, LoadBalancerArn=other, Protocol="HTTP", Port=80,
                       DefaultActions=[{"Type": "forward", "TargetGroupArn": stage.blue}]) == code
    assert stage.model.rule_hits() == {rule: 1}
    assert stage.model.forwards[stage.listener].weights == {stage.blue: 1}  # refused: nothing changed


def test_a_custom_app_install_is_charged_by_what_it_runs() -> None:
    """The custom bootstrap's install step (config app.install, run as `bash -c "$APP_INSTALL"` in
    bootstrap/app-custom.sh): an estimate per tool, charged once, and not at all when there is none."""
    def charged(install: str, *lines: str) -> list[tuple[str, float]]:
        return bootstrap_actions("\n".join(("#!/bin/bash", f"APP_INSTALL={install}", *lines,
                                             '(cd "$APP_DIR" && retry runuser -u threetier -- env HOME="$HOME" \\',
                                             '  /bin/bash -c "$APP_INSTALL")', "")), "app")

    assert charged("'pip install -r requirements.txt --target vendor'", "install_packages python3.12 python3.12-pip") \
        == [("dnf", DNF_SECONDS), ("install", INSTALL_SECONDS["pip"])]
    assert charged("'npm ci --omit=dev'") == [("install", INSTALL_SECONDS["npm"])]  # its setting runs nothing
    assert charged("./build.sh") == [("install", INSTALL_SECONDS["other"])]
    assert charged("''", "install_packages nodejs24 nodejs24-npm") == [("dnf", DNF_SECONDS)]  # no app.install
    assert bootstrap_actions("#!/bin/bash\nrun_install \"$CMD\"\ninstall_packages nodejs24-npm\n", "app")[0] == \
        ("install", INSTALL_SECONDS["npm"])  # the tool known from the runtime's packages
    assert bootstrap_actions("#!/bin/bash\nnpm ci\n", "app") == [("npm ci", NPM_CI_SECONDS["app"])]  # the demo's


# -- the benchmark's wiring ------------------------------------------------------------------------------
def test_each_deploy_gets_the_stand_in_source_with_one_byte_changed(tmp_path: Path) -> None:
    for tier, changed in bench.runs.CHANGED_FILE.items():
        first, second = (bench.runs.changed_source(tier, tmp_path) for _ in range(2))
        original = (bench.runs.FIXTURES / tier / changed).read_bytes()
        for copy, version in ((first, b"1"), (second, b"2")):
            made = (copy / changed).read_bytes()
            assert len(made) == len(original) and made == original.replace(b"version 0", b"version " + version)
            assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in (bench.runs.FIXTURES / tier).iterdir())
        assert bench.runs.source_config(tier, first)[tier]["source"] == str(first)


def test_the_keys_of_modeled_deploys() -> None:
    run = Modeled(sequential=False, deploy=True, deploys={
        "app": Deployed("app", floor=2, seconds=540.0, failed_requests=0, min_healthy=2),
        "web": Deployed("web", floor=2, seconds=600.0, failed_requests=3, min_healthy=1)})
    keys = bench_main.deploy_keys(run)
    assert (keys["deploy_app_minutes"], keys["deploy_web_minutes"]) == (9.0, 10.0)
    assert (keys["deploy_failed_requests"], keys["deploy_min_healthy"], keys["deploy_skipped"]) == (3, 1, None)
    assert bench_main.deploy_failed(run)  # requests lost and below min: python -m bench exits 1


def test_modeled_deploy_serves_the_load_through_a_stand_in_switch(stack_from: Any, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`modeled_deploy` on a built stack (the model installed after it was built: its groups and listeners
    are learnt), with a stand-in for `threetier deploy app`: blue/green on the internal ALB, in order."""
    directory = stack_from("default")
    clock = VirtualClock()
    engine = make_engine(directory, clock=clock)
    model = LatencyModel(engine.ctx.aws, clock)
    aws = engine.ctx.aws

    def deploy(engine: Any, tier: str, scratch: Path) -> None:
        assert tier == "app" and scratch == tmp_path
        elbv2, asg = aws.client("elbv2"), aws.client("autoscaling")
        blue = elbv2.describe_target_groups(Names=["threetier-app-tg"])["TargetGroups"][0]
        green = elbv2.create_target_group(Name="threetier-app-tg-g", Protocol="HTTP", Port=blue["Port"],
                                          VpcId=blue["VpcId"], TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        listener = elbv2.describe_listeners(LoadBalancerArn=blue["LoadBalancerArns"][0])["Listeners"][0]["ListenerArn"]
        elbv2.modify_listener(ListenerArn=listener, DefaultActions=weighted({blue["TargetGroupArn"]: 100, green: 0}))
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["threetier-app-asg"])["AutoScalingGroups"][0]
        template = aws.client("ec2").describe_launch_templates(LaunchTemplateNames=["threetier-app-lt"])[
            "LaunchTemplates"][0]["LaunchTemplateId"]
        asg.create_auto_scaling_group(AutoScalingGroupName="threetier-app-asg-g", MinSize=2, MaxSize=2,
                                      DesiredCapacity=2,
                                      LaunchTemplate={"LaunchTemplateId": template, "Version": "$Default"},
                                      VPCZoneIdentifier=group["VPCZoneIdentifier"], TargetGroupARNs=[green])
        while {t["TargetHealth"]["State"] for t in
               elbv2.describe_target_health(TargetGroupArn=green)["TargetHealthDescriptions"]} != {"healthy"}:
            clock.advance(15)
        elbv2.modify_listener(ListenerArn=listener, DefaultActions=weighted({blue["TargetGroupArn"]: 0, green: 100}))
        clock.advance(60)  # a (short) watch
        asg.update_auto_scaling_group(AutoScalingGroupName="threetier-app-asg", MinSize=0, MaxSize=0,
                                      DesiredCapacity=0)
        clock.advance(DRAIN + EC2_TERMINATE_SECONDS)
        elbv2.modify_listener(ListenerArn=listener, DefaultActions=weighted({green: 1}))
        asg.delete_auto_scaling_group(AutoScalingGroupName="threetier-app-asg", ForceDelete=True)

    monkeypatch.setattr(bench.runs, "deploy_in_process", deploy)
    deployed = bench.runs.modeled_deploy(engine, model, clock, "app", tmp_path)
    assert deployed.error is None and deployed.violations == [], (deployed.error, deployed.violations)
    assert deployed.failed_requests == 0 and deployed.min_healthy == deployed.floor == 2
    assert deployed.seconds is not None and deployed.seconds > ASG_IN_SERVICE_SECONDS + DRAIN
    assert deployed.requests == pytest.approx(load.WEB_REQUESTS_PER_SECOND * deployed.seconds, rel=0.01)
    assert model.load is None  # the load stops with the deploy


@pytest.mark.parametrize("watch_minutes", [5, 0])
def test_threetier_deploy_app_under_the_load_loses_no_request(stack_from: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, watch_minutes: int) -> None:
    """The real `deploy app` (bench.runs.deploy_in_process: a changed source baked, green made, the
    listeners shifted, the watch, blue drained and deleted) on a built stack under the modeled load.
    With no watch, blue would start draining before the load balancer applied the shift, but for
    colors.settle."""
    directory = stack_from("default")
    clock = VirtualClock()
    engine = make_engine(directory, clock=clock)
    engine.ctx.aws.listener_changes_at_once = False  # as the benchmark's engine: the model applies it later
    model = LatencyModel(engine.ctx.aws, clock)
    with_source = bench.runs.source_config
    monkeypatch.setattr(bench.runs, "source_config", lambda tier, source: {
        **with_source(tier, source), "deploy": {"watch_minutes": watch_minutes}})
    deployed = bench.runs.modeled_deploy(engine, model, clock, "app", tmp_path)
    assert deployed.error is None and deployed.violations == [], (deployed.error, deployed.violations)
    assert deployed.failed_requests == 0 and deployed.min_healthy is not None
    assert deployed.min_healthy >= deployed.floor == 2
    assert deployed.seconds is not None and deployed.seconds >= watch_minutes * 60
    tgs = {g["TargetGroupName"] for g in engine.ctx.aws.client("elbv2").describe_target_groups()["TargetGroups"]}
    assert {"threetier-app-tg-g"} <= tgs and "threetier-app-tg" not in tgs  # green took over, blue is gone
