"""Trust (issue 9): pending work survives a crash, and status says what is there.

Item 4: a change of what a tier's instances run is deployed on the other color (blue/green,
threetier/blocks/colors.py; issue 25 replaced the instance refresh): a deploy cut short by a crash
is named by `status` and `plan` ("deploy app: ...", a second color with no deploy running), and the
next `up` finishes it. Item 6: with the internal ALB gone, Part 6 is what it is (its AMI is there;
the ALB its nginx.conf names is not), not "gone".

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


def group_instance_types(group: str) -> list[str]:
    """The instance types an Auto Scaling group runs, as EC2 has them."""
    found = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    ids = [i["InstanceId"] for i in found["Instances"]]
    reservations = boto3.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return sorted(i["InstanceType"] for r in reservations for i in r["Instances"])


def drift_of(status_stdout: str, part: int) -> list[str]:
    return json.loads(status_stdout)["parts"][part - 1]["drift"]


# -- item 4, on moto: crash, status names it, up finishes it, status is clean ------------------
@pytest.mark.parametrize("tier", ["app", "web"])
def test_a_deploy_lost_to_a_crash_is_named_by_status_and_finished_by_up(
        built: Path, monkeypatch: pytest.MonkeyPatch, tier: str) -> None:
    part = TIER_PART[tier]
    assert group_instance_types(f"threetier-{tier}-asg") == ["t3.micro", "t3.micro"]
    write_config(built, **{tier: {"instance_type": "t3.small"}}, deploy={"watch_minutes": 0})

    with monkeypatch.context() as patched:
        crash_after(patched, "CreateAutoScalingGroup")  # green's group: its instances launched, no traffic yet
        crashed = cli("up", "--yes", cwd=built)
    assert crashed.code == 130, crashed.stderr
    assert group_instance_types(f"threetier-{tier}-asg") == ["t3.micro", "t3.micro"]

    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    drift = drift_of(status.stdout, part)
    assert f"deploy {tier}: new instance type t3.small (was t3.micro) (`up` starts it on the green color)" in drift
    assert any(f"{tier} tier: a second color, green, beside the live blue with no deploy running" in line
               for line in drift), drift
    plan = json.loads(cli("plan", "--json", cwd=built).stdout)
    assert any(line.startswith(f"deploy {tier}: new instance type") for line in plan["parts"][part - 1]["change"])

    resumed = cli("up", "--yes", cwd=built)
    assert resumed.code == 0, resumed.stderr
    assert group_instance_types(f"threetier-{tier}-asg-g") == ["t3.small", "t3.small"]
    clean = cli("status", "--json", cwd=built)
    assert clean.code == 0, [(p["part"], p["drift"]) for p in json.loads(clean.stdout)["parts"]]
    assert "0 mutating AWS calls" in cli("up", "--yes", cwd=built).stdout


# -- item 4, real AWS under botocore's Stubber: no instance refresh is ever looked for ----------
def real_aws_engine(tmp_path: Path, app_instance_type: str) -> Engine:
    """An engine on the stack in tmp_path that takes AWS for real AWS, inside Part 5."""
    engine = make_engine(tmp_path, {"app": {"instance_type": app_instance_type}}, clock=FakeClock())
    engine.ctx.aws.emulator = False
    engine.ctx.part = next(p for p in engine.parts if p.number == app_tier.NUMBER)
    engine.ctx.aws.part = engine.ctx.part.label
    return engine


def the_policies() -> dict[str, Any]:
    """The app group's scaling policies as moto describes them (issue 12: read by check and up)."""
    found = boto3.client("autoscaling").describe_policies(AutoScalingGroupName="threetier-app-asg")
    # moto answers an empty PredictiveScalingConfiguration, which the Stubber's shape check refuses.
    return {"ScalingPolicies": [{k: v for k, v in policy.items() if v != {}} for policy in found["ScalingPolicies"]]}


def check_part_5(engine: Engine) -> list[str]:
    """Part 5's drift, the Auto Scaling API answering from the Stubber (every answer used, and none
    but these: DescribeInstanceRefreshes would be refused)."""
    assert engine.ctx.part is not None
    autoscaling = boto3.client("autoscaling")
    stack_groups = {"Filters": [{"Name": "tag:threetier:stack", "Values": ["threetier"]}]}
    with Stubber(engine.ctx.aws.client("autoscaling")) as stub:
        for name in ("threetier-app-asg", "threetier-app-asg-g"):  # blue, then green (none)
            stub.add_response("describe_auto_scaling_groups",
                              autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name]),
                              {"AutoScalingGroupNames": [name]})
        stub.add_response("describe_policies", the_policies(), {"AutoScalingGroupName": "threetier-app-asg"})
        # Last, the stack's groups, for strays (threetier/blocks/strays.py): no stray here.
        stub.add_response("describe_auto_scaling_groups", autoscaling.describe_auto_scaling_groups(**stack_groups),
                          stack_groups)
        drift = engine.check(engine.ctx.part).drift
        stub.assert_no_pending_responses()
    return drift


def test_status_names_a_deploy_due_and_nothing_when_none_is(built: Path) -> None:
    assert check_part_5(real_aws_engine(built, "t3.micro")) == []
    assert check_part_5(real_aws_engine(built, "t3.small")) == [
        "deploy app: new instance type t3.small (was t3.micro) (`up` starts it on the green color)"]


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
