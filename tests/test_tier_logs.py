"""The app tier's and nginx's logs to CloudWatch Logs. Part 1 owns the tiers' three log
groups (tagged, config.yaml's retention, converged when it changes, deleted by `down` once the
instances are gone) and lets each tier's role write its own groups only (`write-logs`); the
builders' CloudWatch agents (Parts 4 and 6) write exactly those groups."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import make_engine, moto
from threetier.aws import PART_TAG, STACK_TAG, Poll
from threetier.engine import GONE, Engine

STACK = "threetier"
REGION = "us-east-1"
ACCOUNT = "123456789012"
GROUPS = {"app": f"/threetier/{STACK}/app", "nginx-access": f"/threetier/{STACK}/nginx-access",
          "nginx-error": f"/threetier/{STACK}/nginx-error"}
WRITES = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]


def arn(group: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"


# Written out, not computed by the code under test.
EXPECTED_POLICY = {
    "app": {"Version": "2012-10-17", "Statement": [
        {"Sid": "WriteTierLogs", "Effect": "Allow", "Action": WRITES,
         "Resource": [arn(GROUPS["app"]), arn(GROUPS["app"]) + ":*"]}]},
    "web": {"Version": "2012-10-17", "Statement": [
        {"Sid": "WriteTierLogs", "Effect": "Allow", "Action": WRITES,
         "Resource": [arn(GROUPS["nginx-access"]), arn(GROUPS["nginx-access"]) + ":*",
                      arn(GROUPS["nginx-error"]), arn(GROUPS["nginx-error"]) + ":*"]}]},
}


@pytest.fixture
def mocked():
    with moto():
        yield


def part_1(tmp_path: Path, retention: int | None = None) -> Engine:
    """Part 1 alone (`replay storage`), with this retention in config.yaml."""
    engine = make_engine(tmp_path, {"monitoring": {"log_retention_days": retention}} if retention else None)
    engine.replay("storage")
    return engine


def stack_groups() -> dict[str, dict[str, Any]]:
    found = boto3.client("logs").describe_log_groups(logGroupNamePrefix=f"/threetier/{STACK}/")["logGroups"]
    return {g["logGroupName"]: g for g in found}


def check_part_1(tmp_path: Path, retention: int | None = None):
    engine = make_engine(tmp_path, {"monitoring": {"log_retention_days": retention}} if retention else None)
    return engine.check(engine.part("storage"))


def test_part_1_creates_the_tier_groups_tagged_with_the_configured_retention(mocked, tmp_path: Path) -> None:
    engine = part_1(tmp_path)
    logs = boto3.client("logs")
    groups = stack_groups()
    assert set(groups) == set(GROUPS.values())
    for name, group in groups.items():
        assert group["retentionInDays"] == 14, name  # config.yaml's default: monitoring.log_retention_days
        assert logs.list_tags_log_group(logGroupName=name)["tags"] == {STACK_TAG: STACK, PART_TAG: "1",
                                                                              "Name": f"{STACK}-{name.rsplit('/', 1)[1]}-log-group"}
    # Tagged and given their retention as they are created: a create, then a retention, per group.
    calls = [(c.operation, c.params.get("logGroupName")) for c in engine.ctx.aws.calls
             if c.service == "logs" and c.mutating]
    assert calls == [(op, name) for name in GROUPS.values() for op in ("CreateLogGroup", "PutRetentionPolicy")]
    seen = check_part_1(tmp_path)
    assert {f"log group {name}" for name in GROUPS.values()} <= set(seen.present)
    assert seen.missing == [] and seen.drift == []


def test_each_tier_role_gets_write_logs_on_its_own_groups_only(mocked, tmp_path: Path) -> None:
    part_1(tmp_path)
    iam = boto3.client("iam")
    for tier in ("app", "web"):
        role = f"{STACK}-{REGION}-{tier}-role"
        document = iam.get_role_policy(RoleName=role, PolicyName="write-logs")["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        assert document == EXPECTED_POLICY[tier], tier


def test_a_retention_change_converges(mocked, tmp_path: Path) -> None:
    part_1(tmp_path)
    seen = check_part_1(tmp_path, retention=30)
    assert sorted(seen.drift) == sorted(f"log group {name}: keeps logs 14 days, config.yaml says 30"
                                        for name in GROUPS.values())
    engine = part_1(tmp_path, retention=30)
    assert {n: g["retentionInDays"] for n, g in stack_groups().items()} == dict.fromkeys(GROUPS.values(), 30)
    changed = [c for c in engine.ctx.changes if c.kind == "log group retention"]
    assert sorted(c.name for c in changed) == sorted(GROUPS.values())
    assert check_part_1(tmp_path, retention=30).drift == []
    again = part_1(tmp_path, retention=30)  # converged: nothing more to do
    assert [c for c in again.ctx.aws.mutating_calls() if c.service in ("logs", "iam")] == []


def test_the_groups_are_read_with_the_inventory_once(mocked, tmp_path: Path) -> None:
    """Looking is cheap: Part 1's looks hold the stack's groups, one DescribeLogGroups for all three."""
    part_1(tmp_path)
    engine = make_engine(tmp_path)
    engine.take_inventory([engine.part("storage")])
    reads = [c for c in engine.ctx.aws.calls if c.operation == "DescribeLogGroups"]
    assert len(reads) == 1 and reads[0].params["logGroupNamePrefix"] == f"/threetier/{STACK}/"
    seen = engine.check(engine.part("storage"))
    assert {f"log group {name}" for name in GROUPS.values()} <= set(seen.present)
    assert len([c for c in engine.ctx.aws.calls if c.operation == "DescribeLogGroups"]) == 1


def test_status_reports_a_lost_group_and_a_changed_policy_and_up_repairs_them(mocked, tmp_path: Path) -> None:
    part_1(tmp_path)
    logs, iam = boto3.client("logs"), boto3.client("iam")
    logs.delete_log_group(logGroupName=GROUPS["nginx-error"])
    logs.put_retention_policy(logGroupName=GROUPS["app"], retentionInDays=3653)
    web_role = f"{STACK}-{REGION}-web-role"
    widened = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=web_role, PolicyName="write-logs", PolicyDocument=json.dumps(widened))
    iam.delete_role_policy(RoleName=f"{STACK}-{REGION}-app-role", PolicyName="write-logs")

    seen = check_part_1(tmp_path)
    assert f"log group {GROUPS['nginx-error']}" in seen.missing
    assert f"log group {GROUPS['app']}: keeps logs 3653 days, config.yaml says 14" in seen.drift
    assert f"IAM role {web_role}: policy write-logs is missing or changed" in seen.drift
    assert f"IAM role {STACK}-{REGION}-app-role: policy write-logs is missing or changed" in seen.drift

    part_1(tmp_path)
    groups = stack_groups()
    assert {n: g["retentionInDays"] for n, g in groups.items()} == dict.fromkeys(GROUPS.values(), 14)
    assert logs.list_tags_log_group(logGroupName=GROUPS["nginx-error"])["tags"][STACK_TAG] == STACK
    for tier in ("app", "web"):
        document = iam.get_role_policy(RoleName=f"{STACK}-{REGION}-{tier}-role", PolicyName="write-logs")
        assert document["PolicyDocument"] == EXPECTED_POLICY[tier]
    assert check_part_1(tmp_path).drift == []


def test_down_deletes_the_groups_and_leaves_other_stacks_alone(mocked, tmp_path: Path) -> None:
    part_1(tmp_path)
    logs = boto3.client("logs")
    for other in ("/threetier/threetier-b/app", "/threetier/threetierx/app", "/elsewhere/app"):
        logs.create_log_group(logGroupName=other)
    engine = make_engine(tmp_path)
    engine.down()
    assert stack_groups() == {}
    assert {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]} == {
        "/threetier/threetier-b/app", "/threetier/threetierx/app", "/elsewhere/app"}
    assert sorted(c.params["logGroupName"] for c in engine.ctx.aws.calls if c.operation == "DeleteLogGroup") == \
        sorted(GROUPS.values())
    again = make_engine(tmp_path)
    again.down()  # gone already: nothing to delete
    assert [c for c in again.ctx.aws.calls if c.operation == "DeleteLogGroup"] == []


def slow(destroy):
    def waits_first(ctx) -> None:
        polls = iter([Poll(False, "shutting-down"), Poll(True, "terminated")])
        ctx.aws.wait("the instances", lambda: next(polls), delay=30, timeout=600)
        destroy(ctx)
    return waits_first


def test_a_whole_stack_down_deletes_the_groups_after_every_instance(built: Path, monkeypatch) -> None:
    """The builders and the tiers' instances ship their last lines until they are gone: each tier
    group goes only once Parts 3 to 7 (Auto Scaling groups, builders, database) are gone."""
    from threetier.blocks import log_groups
    assert set(stack_groups()) >= set(GROUPS.values())
    engine = make_engine(built)
    # moto terminates at once; on AWS the ASGs' instances take minutes to go, during which the
    # other parts run: Parts 5 and 7 here wait once for theirs, as they would.
    engine.parts = tuple(dataclasses.replace(p, destroy=slow(p.destroy)) if p.number in (5, 7) else p
                         for p in engine.parts)
    real_delete, gone_at_delete = log_groups.delete, {}

    def delete(ctx, what: str) -> None:
        gone_at_delete[log_groups.name(ctx, what)] = [n for n in (3, 4, 5, 6, 7) if ctx.run.has(n, GONE)]
        real_delete(ctx, what)

    monkeypatch.setattr(log_groups, "delete", delete)
    engine.down()
    tier_groups = {name: gone for name, gone in gone_at_delete.items() if name in GROUPS.values()}
    assert tier_groups == {name: [3, 4, 5, 6, 7] for name in GROUPS.values()}
    assert not set(stack_groups()) & set(GROUPS.values())
    operations = [(c.operation, c.params.get("logGroupName")) for c in engine.ctx.aws.calls if c.mutating]
    deletes = [i for i, (op, name) in enumerate(operations) if op == "DeleteLogGroup" and name in GROUPS.values()]
    terminations = [i for i, (op, _) in enumerate(operations) if op in ("DeleteAutoScalingGroup", "TerminateInstances")]
    assert len(deletes) == 3 and terminations and max(terminations) < min(deletes)
