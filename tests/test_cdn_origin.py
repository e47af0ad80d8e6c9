"""Only CloudFront reaches the external ALB (issue 26, edge.cdn): cdn-origin-sg admits CloudFront's
origin-facing prefix list on 443 and external-alb-sg no client; 443 answers 403 but to the origin
header's rule, whose value is the stack's secret (threetier/blocks/origin.py) and never written to
the state file; a blue/green deploy moves that rule's weights. Turned off, all of it goes again.

Each test starts from the `edge` reference stack (HTTPS on the ALB) and turns cdn on with one `up`:
the distribution itself is threetier/blocks/cdn.py's (not part of these tests).
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, cli, make_engine, write_config
from reference_stacks import recording_calls
from steps import web_tier
from threetier import config as configlib
from threetier import permissions, scan
from threetier.aws import AwsError
from threetier.blocks import balancing, cdn, colors, https, origin, security_groups
from threetier.permissions import actions_called, actions_for

EDGE = {"domain": "shop.example.com", "hosted_zone": "example.com"}
CDN = {**EDGE, "cdn": True}
SECRET = "threetier-cdn-origin-header"
NO_WATCH = {"watch_minutes": 0}


def group(name: str) -> dict[str, Any] | None:
    found = boto3.client("ec2").describe_security_groups(
        Filters=[{"Name": "tag:Name", "Values": [f"threetier-{name}"]}])["SecurityGroups"]
    return found[0] if found else None


def ingress(name: str) -> list[tuple[int, str]]:
    """The group's inbound rules as (port, source): a CIDR, a prefix list or a group ID."""
    found = group(name)
    assert found is not None, name
    rules = boto3.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [found["GroupId"]]}])["SecurityGroupRules"]
    return sorted((r["FromPort"], r.get("CidrIpv4") or r.get("PrefixListId")
                   or (r.get("ReferencedGroupInfo") or {}).get("GroupId", "?")) for r in rules if not r["IsEgress"])


def balancer() -> dict[str, Any]:
    return boto3.client("elbv2").describe_load_balancers(Names=["threetier-ext-alb"])["LoadBalancers"][0]


def https_listener() -> dict[str, Any]:
    listeners = boto3.client("elbv2").describe_listeners(LoadBalancerArn=balancer()["LoadBalancerArn"])["Listeners"]
    return next(listener for listener in listeners if listener["Port"] == 443)


def rules() -> list[dict[str, Any]]:
    found = boto3.client("elbv2").describe_rules(ListenerArn=https_listener()["ListenerArn"])["Rules"]
    return sorted((rule for rule in found if not rule["IsDefault"]), key=lambda rule: int(rule["Priority"]))


# A rule of the user's on 443, at the priority the stack's would take on its own.
USERS_RULE = {"Priority": 1, "Conditions": [{"Field": "path-pattern", "Values": ["/maintenance*"]}],
              "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {
                  "StatusCode": "503", "ContentType": "text/plain", "MessageBody": "back soon"}}]}


def users_rule() -> tuple[str, list[dict[str, Any]], list[str]]:
    """The user's rule as 443 has it: priority, conditions' paths, actions' type and status."""
    (rule,) = [rule for rule in rules() if rule["Conditions"][0]["Field"] == "path-pattern"]
    return (rule["Priority"], [{"Field": c["Field"], "Values": c.get("Values")} for c in rule["Conditions"]],
            [f"{a['Type']} {a['FixedResponseConfig']['StatusCode']}" for a in rule["Actions"]])


USERS_RULE_AS_MADE = ("1", [{"Field": "path-pattern", "Values": ["/maintenance*"]}], ["fixed-response 503"])


def weights(actions: list[dict[str, Any]]) -> dict[str, int]:
    """Target group name -> weight of a forward."""
    return {arn.split("/")[-2]: weight for arn, weight in (balancing.forward_weights(actions) or {}).items()}


def secret_value() -> str:
    return str(boto3.client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"])


def origin_secrets() -> list[str]:
    found = boto3.client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]
    return [s["Name"] for s in found if s["Name"] == SECRET]


def state_text(directory: Path) -> str:
    return (directory / ".threetier" / "threetier.json").read_text()


def drift(directory: Path) -> list[str]:
    status = cli("status", "--json", cwd=directory)
    return [line for part in json.loads(status.stdout)["parts"] for line in part["drift"]]


def cloudfront_prefix_list() -> str:
    return boto3.client("ec2").describe_managed_prefix_lists(Filters=[{
        "Name": "prefix-list-name", "Values": ["com.amazonaws.global.cloudfront.origin-facing"]}])[
        "PrefixLists"][0]["PrefixListId"]


def test_cdn_on_admits_cloudfront_only_drift_is_repaired_and_cdn_off_undoes_it_all(
        stack_from: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = stack_from("edge")
    boto3.client("elbv2").create_rule(ListenerArn=https_listener()["ListenerArn"], **USERS_RULE)
    write_config(directory, edge=CDN)
    # Turning cdn on for a stack that serves: viewers reach the ALB until CloudFront serves the domain.
    while_deploying: list[list[tuple[int, str]]] = []
    real_wait = cdn.wait_deployed

    def wait_deployed(ctx: Any, distribution_id: str | None = None) -> None:
        while_deploying.append(ingress("external-alb-sg"))
        real_wait(ctx, distribution_id)
    monkeypatch.setattr(cdn, "wait_deployed", wait_deployed)
    with recording_calls() as calls:
        up = cli("up", "--yes", cwd=directory)
    assert up.code == 0, up.stderr
    assert while_deploying == [[(80, "0.0.0.0/0"), (443, "0.0.0.0/0")]]
    order = [operation for _, operation, _ in calls]
    (revoke,) = [i for i, operation in enumerate(order) if operation == "RevokeSecurityGroupIngress"]
    made = [i for i, operation in enumerate(order) if operation in ("CreateDistributionWithTags", "ChangeResourceRecordSets")]
    assert "CreateDistributionWithTags" in order and max(made) < revoke, order
    value = secret_value()
    # The groups: CloudFront's prefix list on 443 alone; no client on external-alb-sg, which web-sg still admits.
    origin_sg, external_sg = group("cdn-origin-sg"), group("external-alb-sg")
    assert origin_sg is not None and external_sg is not None
    assert ingress("cdn-origin-sg") == [(443, cloudfront_prefix_list())]
    assert ingress("external-alb-sg") == []
    assert ingress("web-sg") == [(80, external_sg["GroupId"])]
    assert sorted(balancer()["SecurityGroups"]) == sorted([external_sg["GroupId"], origin_sg["GroupId"]])
    # 443: 403 by default; the stack's rule forwards on the header whose value is the secret's, at the first
    # priority free: the user's rule at 1 is theirs, left as it was.
    default = https_listener()["DefaultActions"]
    assert [(a["Type"], a["FixedResponseConfig"]["StatusCode"]) for a in default] == [("fixed-response", "403")]
    assert users_rule() == USERS_RULE_AS_MADE
    (_, rule) = rules()
    assert rule["Priority"] == "2" and weights(rule["Actions"]) == {"threetier-web-tg": 1}
    assert rule["Conditions"] == [{"Field": "http-header", "HttpHeaderConfig": {
        "HttpHeaderName": "X-Origin-Verify", "Values": [value]}}]
    # The value is in Secrets Manager and the rule only.
    assert value not in state_text(directory) and value not in up.stdout + up.stderr
    # What `up` called is what the policy grants for that config (the secret's own statement too).
    config = configlib.parse({"edge": CDN})
    made = actions_called([SimpleNamespace(service=service, operation=operation) for service, operation, _ in calls])
    assert made - set(actions_for("up", config)) - permissions.NEEDS_NO_PERMISSION == set()
    assert drift(directory) == []

    # Changed by hand: the header's value, a client admitted on external-alb-sg, cdn-origin-sg off the ALB.
    # Said (the value never), repaired.
    elbv2, ec2 = boto3.client("elbv2"), boto3.client("ec2")
    elbv2.modify_rule(RuleArn=rule["RuleArn"], Conditions=[{"Field": "http-header", "HttpHeaderConfig": {
        "HttpHeaderName": "X-Origin-Verify", "Values": ["guessed"]}}])
    ec2.authorize_security_group_ingress(GroupId=external_sg["GroupId"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]}])
    elbv2.set_security_groups(LoadBalancerArn=balancer()["LoadBalancerArn"], SecurityGroups=[external_sg["GroupId"]])
    status = cli("status", "--json", cwd=directory)
    said = [line for part in json.loads(status.stdout)["parts"] for line in part["drift"]]
    assert any("X-Origin-Verify value differs from the secret's" in line for line in said), said
    assert "security group threetier-external-alb-sg: admits tcp 443 from 203.0.113.0/24 past CloudFront (`up` " \
           "revokes it once the distribution is deployed)" in said, said
    assert any(line.startswith("load balancer threetier-ext-alb: security groups ") for line in said), said
    assert value not in status.stdout and "guessed" not in status.stdout
    assert cli("up", "--yes", cwd=directory).code == 0
    assert rules()[1]["Conditions"][0]["HttpHeaderConfig"]["Values"] == [value]
    assert users_rule() == USERS_RULE_AS_MADE
    assert ingress("external-alb-sg") == []
    assert sorted(balancer()["SecurityGroups"]) == sorted([external_sg["GroupId"], origin_sg["GroupId"]])
    # cdn-origin-sg taken off the ALB and deleted: missing, and made again.
    elbv2.set_security_groups(LoadBalancerArn=balancer()["LoadBalancerArn"], SecurityGroups=[external_sg["GroupId"]])
    ec2.delete_security_group(GroupId=origin_sg["GroupId"])
    assert "missing: security group threetier-cdn-origin-sg" in drift(directory)
    assert cli("up", "--yes", cwd=directory).code == 0
    origin_sg = group("cdn-origin-sg")
    assert origin_sg is not None and ingress("cdn-origin-sg") == [(443, cloudfront_prefix_list())]
    assert sorted(balancer()["SecurityGroups"]) == sorted([external_sg["GroupId"], origin_sg["GroupId"]])
    assert drift(directory) == [] and value not in state_text(directory)

    # cdn off: the ALB back on external-alb-sg alone, clients admitted again, 443 forwarding, the rest gone.
    write_config(directory, edge=EDGE)
    said = drift(directory)
    assert any("threetier-cdn-origin-sg: present, and edge.cdn is off" in line for line in said), said
    with recording_calls() as calls:
        off = cli("up", "--yes", cwd=directory)
    assert off.code == 0, off.stderr
    # In an order AWS accepts (moto would take any): a group in use, or a secret 443 still needs, is not deleted.
    order = [operation for _, operation, _ in calls]
    assert order.index("SetSecurityGroups") < order.index("DeleteSecurityGroup")
    assert order.index("ModifyListener") < order.index("DeleteRule") < order.index("DeleteSecret")
    assert group("cdn-origin-sg") is None and balancer()["SecurityGroups"] == [external_sg["GroupId"]]
    assert ingress("external-alb-sg") == [(80, "0.0.0.0/0"), (443, "0.0.0.0/0")]
    assert users_rule() == USERS_RULE_AS_MADE and len(rules()) == 1  # the stack's went, the user's stays
    assert weights(https_listener()["DefaultActions"]) == {"threetier-web-tg": 1}
    assert not origin_secrets()
    assert drift(directory) == []
    assert "0 mutating AWS calls" in cli("up", "--yes", cwd=directory).stdout


def test_a_deploy_moves_the_origin_rules_weights_and_down_leaves_no_secret_or_group(
        stack_from: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = stack_from("edge")
    # cdn on and a new web instance type in one `up`: the rule is made (edge.finish), then the deploy moves it.
    write_config(directory, edge=CDN, web={"instance_type": "t3.small"}, deploy=NO_WATCH)
    moved: list[tuple[str, dict[str, int]]] = []
    real = balancing.set_forward

    def recorded(ctx: Any, tier: Any, forward: balancing.Forward, actions: list[dict[str, Any]], said: str) -> None:
        moved.append((forward.where(ctx, tier), weights(actions)))
        real(ctx, tier, forward, actions, said)
    monkeypatch.setattr(balancing, "set_forward", recorded)
    up = cli("up", "--yes", cwd=directory)
    assert up.code == 0, up.stderr
    on_rule = [said for where, said in moved if where == "threetier-ext-alb:443 rule 1"]
    assert on_rule[:2] == [{"threetier-web-tg": 100, "threetier-web-tg-g": 0},
                           {"threetier-web-tg-g": 100, "threetier-web-tg": 0}], moved
    (rule,) = rules()
    assert weights(rule["Actions"]) == {"threetier-web-tg-g": 1}
    assert https_listener()["DefaultActions"][0]["Type"] == "fixed-response"
    assert json.loads(state_text(directory))["parts"]["7"]["resources"]["color"] == colors.GREEN
    assert drift(directory) == []

    found = {(f.kind, f.name) for f in scan.tagged(make_engine(directory).ctx.aws, "threetier")}
    assert {("secret", SECRET), ("security group", "threetier-cdn-origin-sg")} <= found
    down = cli("down", "--yes", cwd=directory)  # its final scan finds nothing left, or it fails
    assert down.code == 0, down.stderr
    assert not origin_secrets()
    assert group("cdn-origin-sg") is None


def test_cdn_origin_sg_is_deleted_once_aws_lets_go_of_it(tmp_path: Path) -> None:
    """AWS refuses to delete a group a load balancer's ENIs still hold, for seconds after SetSecurityGroups
    (moto deletes it at once): DependencyViolation is waited out, not a failure."""
    engine = make_engine(tmp_path, {"edge": EDGE}, clock=FakeClock())
    engine.ctx.part = next(p for p in engine.parts if p.number == web_tier.NUMBER)
    group_id = "sg-0123456789abcdef0"
    tags = [{"Key": "threetier:stack", "Value": "threetier"}, {"Key": "Name", "Value": "threetier-cdn-origin-sg"}]
    with Stubber(engine.ctx.aws.client("ec2")) as ec2:
        ec2.add_response("describe_security_groups", {"SecurityGroups": [
            {"GroupId": group_id, "GroupName": "threetier-cdn-origin-sg", "VpcId": "vpc-1", "Tags": tags}]})
        ec2.add_client_error("delete_security_group", service_error_code="DependencyViolation",
                             expected_params={"GroupId": group_id})
        ec2.add_response("delete_security_group", {}, {"GroupId": group_id})
        security_groups.delete_cdn_origin_group(engine.ctx, "vpc-1")
        ec2.assert_no_pending_responses()
    assert [(c.action, c.kind, c.id) for c in engine.ctx.changes] == [("deleted", "security group", group_id)]


def test_create_rule_answered_priority_in_use_adopts_the_stacks_rule_never_a_users(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PriorityInUse: the stack's own create whose answer was lost (found by its tags: adopted), or a rule of
    the user's made meanwhile at that priority (not the stack's: the error is said, nothing taken over)."""
    monkeypatch.setattr(origin, "required_value", lambda ctx: "s3cret")
    listener_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/threetier-ext-alb/1/2"
    rule_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/threetier-ext-alb/1/2/3"
    forward = balancing.forward_to("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/threetier-web-tg/4")
    at_1 = {"RuleArn": rule_arn, "Priority": "1", "IsDefault": False, "Conditions": [], "Actions": forward}
    stacks = [{"Key": "threetier:stack", "Value": "threetier"}, {"Key": "Name", "Value": "threetier-ext-alb-origin-rule"}]
    for tags, adopted in ((stacks, True), ([{"Key": "Name", "Value": "maintenance"}], False)):
        engine = make_engine(tmp_path / str(adopted), {"edge": CDN}, clock=FakeClock())
        ctx = engine.ctx
        ctx.part = next(p for p in engine.parts if p.number == web_tier.NUMBER)
        listener = {"ListenerArn": listener_arn, "Port": 443, "DefaultActions": https.refused(ctx)}
        with Stubber(ctx.aws.client("elbv2")) as elbv2:
            elbv2.add_response("describe_rules", {"Rules": []}, {"ListenerArn": listener_arn})  # priority 1 free
            elbv2.add_client_error("create_rule", service_error_code="PriorityInUse")
            elbv2.add_response("describe_rules", {"Rules": [at_1]}, {"ListenerArn": listener_arn})  # read again
            elbv2.add_response("describe_tags", {"TagDescriptions": [{"ResourceArn": rule_arn, "Tags": tags}]},
                               {"ResourceArns": [rule_arn]})
            if adopted:
                https.ensure_origin_rule(ctx, web_tier.tier(ctx), listener, [], forward)
            else:
                with pytest.raises(AwsError, match="PriorityInUse"):
                    https.ensure_origin_rule(ctx, web_tier.tier(ctx), listener, [], forward)
            elbv2.assert_no_pending_responses()
        assert [(c.action, c.kind) for c in ctx.changes] == ([("created", "listener rule")] if adopted else [])
