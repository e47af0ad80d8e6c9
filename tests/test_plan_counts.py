"""Counts a user can check: what `plan` says `up` would create and change is what the `up` after it
says it created and changed, Part by Part and by name; what the plan cannot know before `up` runs
it lists apart (`unknown`), and the test accounts for it there."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from helpers import cli, moto
from reference_stacks import CONFIGS

# Every config the tests build stacks from, as the issue lists them, and the Parts replayed before
# the plan: one build stops after Part 1 (Part 3 then changes Part 1's role, Part 6 writes nginx.conf
# to a bucket that was there: changes, not part of creating something). A name is a reference stack's
# config: its build (once per session) ran the same plan and up, and recorded both.
BUILDS: dict[str, tuple[str | dict[str, Any], tuple[str, ...]]] = {
    "default": ("default", ()),
    "single NAT, after Part 1": ({"network": {"nat_gateways": "single"}}, ("storage",)),
    "edge and WAF": ("edge_waf", ()),
    "edge and CloudFront": ("edge_cdn", ()),
    "monitoring e-mail": ("email", ()),
}
# What `up` names only as it makes it: an AMI's name ends with the fingerprint of what Parts 1, 3 and
# 5 make first (the plan lists "app AMI (it is baked from Parts 1 and 3)"); ACM names the validation
# record once the certificate is requested (the plan lists it under `unknown`).
NAMED_AS_MADE = ("AMI", "validation record")


def plan_then_up(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    plan = cli("plan", "--json", cwd=directory)
    assert plan.code == 0, plan.stderr
    up = cli("up", "--yes", "--json", cwd=directory)
    assert up.code == 0, up.stderr
    return json.loads(plan.stdout), json.loads(up.stdout)


def assert_up_did_what_plan_said(plan: dict[str, Any], up: dict[str, Any]) -> None:
    ran = {part["part"]: part for part in up["parts"]}
    for planned in plan["parts"]:
        number, did = planned["part"], ran[planned["part"]]
        made = [c for c in did["changes"] if c["action"] == "created"]
        said_later = [c for c in made if c["kind"] == "validation record"]
        # The counts: each create and change the plan listed, and each it could not know, said so.
        assert did["created"] == len(planned["create"]) + len(said_later), (number, planned["create"], made)
        assert len(said_later) <= len([line for line in planned["unknown"] if "validation record" in line])
        assert did["changed"] == len(planned["change"]), (number, planned["change"], did["changes"])
        assert did["deleted"] == len(planned["delete"]), (number, planned["delete"], did["changes"])
        # By name: what up made is what the plan named.
        for change in made:
            if not change["kind"].endswith(NAMED_AS_MADE):
                assert any(change["name"] in line for line in planned["create"]), (number, change, planned["create"])
        for change in (c for c in did["changes"] if c["action"] == "deleted"):
            assert any(change["name"] in line for line in planned["delete"]), (number, change, planned["delete"])
    assert sum(p["created"] for p in up["parts"]) == up["created"]  # and the totals are the Parts'


@pytest.mark.parametrize(("built_from", "first"), BUILDS.values(), ids=BUILDS.keys())
def test_plan_from_nothing_counts_what_up_then_creates(tmp_path: Path, reference_stacks,
                                                      built_from: str | dict[str, Any], first) -> None:
    if isinstance(built_from, str):  # its reference stack's build: plan --json, then up --yes --json
        config = CONFIGS[built_from]
        build = reference_stacks.build(built_from)
        plan, up = build.plan, build.up
    else:
        config = built_from
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        with moto():
            for part in first:
                assert cli("replay", part, cwd=tmp_path).code == 0
            plan, up = plan_then_up(tmp_path)
    assert sum(len(p["create"]) for p in plan["parts"]) > 50  # every resource, not "everything inside the VPC"
    assert sum(len(p["change"]) for p in plan["parts"]) == (2 if first else 0)
    # up's "2 deleted" on a new stack: the builders it bakes the AMIs on, then terminates.
    assert [line for p in plan["parts"] for line in p["delete"]] == [
        "app builder instance threetier-app-builder, once its AMI is baked",
        "web builder instance threetier-web-builder, once its AMI is baked"]
    assert_up_did_what_plan_said(plan, up)
    unknown = [line for p in plan["parts"] for line in p["unknown"]]
    if config.get("edge"):
        # With cdn the ALB's certificate covers origin.<domain> too: a record of its own (CloudFront's
        # certificate, for the domain, shares the domain's).
        names = [("certificate for shop.example.com", "")] + (
            [("certificate for shop.example.com, for origin.shop.example.com", "")] if config["edge"].get("cdn") else [])
        assert unknown == [f"the validation record of the {what}: ACM names it once the certificate is requested; "
                           f"`up` writes it in example.com unless it is there" for what, _ in names]
        assert [c["kind"] for c in up["parts"][6]["changes"]].count("validation record") == len(names)
    else:
        assert unknown == []


def test_plan_of_a_drifted_stack_counts_what_up_then_changes(stack_from) -> None:
    """What was lost or changed out of band, and a config changed: a route, an association, two
    rules, a log group, an alarm, a scaling policy, nginx.conf and a group's size (whose targets are
    then too few: the size is the one change, not the target group); what up deletes: the second NAT
    gateway and its address, the flow log with its role and log group, the dashboard."""
    workdir = stack_from("default")
    ec2, logs, cloudwatch, s3 = (boto3.client(s) for s in ("ec2", "logs", "cloudwatch", "s3"))
    state = json.loads((workdir / ".threetier" / "threetier.json").read_text())
    network = state["parts"]["2"]["resources"]
    ec2.delete_route(RouteTableId=network["route_tables"]["private-app-rt-az1"], DestinationCidrBlock="0.0.0.0/0")
    logs.delete_log_group(logGroupName="/threetier/threetier/app")
    cloudwatch.delete_alarms(AlarmNames=["threetier-app-5xx-rate"])
    s3.delete_object(Bucket=state["parts"]["1"]["resources"]["bucket"], Key="nginx.conf")
    table = ec2.describe_route_tables(RouteTableIds=[network["route_tables"]["public-rt"]])["RouteTables"][0]
    ec2.disassociate_route_table(AssociationId=next(a["RouteTableAssociationId"] for a in table["Associations"]))
    autoscaling = boto3.client("autoscaling")
    autoscaling.delete_policy(AutoScalingGroupName="threetier-web-asg", PolicyName="threetier-web-cpu")
    (workdir / "config.yaml").write_text(yaml.safe_dump({
        "app": {"asg": {"min": 3, "desired": 3, "max": 4}}, "access": {"admin_cidr": "203.0.113.7/32"},
        "network": {"nat_gateways": "single"}, "monitoring": {"flow_logs": False, "dashboard": False}}))
    plan, up = plan_then_up(workdir)
    assert [(len(p["create"]), len(p["change"]), len(p["delete"])) for p in plan["parts"]] == [
        (1, 0, 0), (0, 5, 5), (0, 0, 0), (0, 0, 0), (1, 1, 0), (0, 1, 0), (1, 0, 1)]  # each drift above, once
    assert_up_did_what_plan_said(plan, up)


def test_plan_of_a_web_acl_taken_off_and_a_flow_log_replaced_counts_what_up_does(stack_from) -> None:
    """A change (the ACL put back on its ALB) and a replacement (a flow log of the wrong traffic type,
    with the stack's tags: deleted, and one as wanted created)."""
    workdir = stack_from("waf")
    state = json.loads((workdir / ".threetier" / "threetier.json").read_text())
    boto3.client("wafv2").disassociate_web_acl(ResourceArn=state["parts"]["7"]["resources"]["load_balancer_arn"])
    ec2 = boto3.client("ec2")
    [flow_log] = [f for f in ec2.describe_flow_logs()["FlowLogs"] if f["ResourceId"] == state["parts"]["2"]["resources"]["vpc"]]
    ec2.delete_flow_logs(FlowLogIds=[flow_log["FlowLogId"]])
    ec2.create_flow_logs(ResourceType="VPC", ResourceIds=[flow_log["ResourceId"]], TrafficType="REJECT",
                         LogDestinationType="cloud-watch-logs", LogGroupName=flow_log["LogGroupName"],
                         DeliverLogsPermissionArn=flow_log["DeliverLogsPermissionArn"],
                         TagSpecifications=[{"ResourceType": "vpc-flow-log", "Tags": flow_log["Tags"]}])
    plan, up = plan_then_up(workdir)
    assert plan["parts"][6]["change"] == [
        "web ACL threetier-web-acl: not on load balancer threetier-ext-alb (`up` puts it there)"]
    assert (plan["parts"][1]["create"], len(plan["parts"][1]["delete"])) == (["flow log threetier-vpc-flow-log"], 1)
    assert_up_did_what_plan_said(plan, up)


def test_targets_up_only_waits_for_are_drift_to_status_and_a_note_to_plan(built: Path, monkeypatch) -> None:
    """Too few healthy targets in a group of the right size: `up` changes nothing (the group replaces
    them; it waits), so plan counts no change; status still says the tier does not serve as it should."""
    from threetier.blocks import balancing
    real = balancing.target_states

    def one_unhealthy(ctx, tier):
        targets = [dict(t) for t in real(ctx, tier)]
        if tier.target_group_role == "app-tg":
            targets[0] = {**targets[0], "TargetHealth": {"State": "unhealthy"}}
        return targets
    monkeypatch.setattr(balancing, "target_states", one_unhealthy)
    said = "target group threetier-app-tg: 1 of 2 targets healthy (`up` waits for them"
    plan = json.loads(cli("plan", "--json", cwd=built).stdout)["parts"][4]
    assert plan["change"] == [] and any(note.startswith(said) for note in plan["notes"])
    assert cli("plan", "--detailed-exitcode", cwd=built).code == 0  # nothing for up to change
    status = cli("status", "--json", cwd=built)
    assert status.code == 3 and any(line.startswith(said) for line in json.loads(status.stdout)["parts"][4]["drift"])
