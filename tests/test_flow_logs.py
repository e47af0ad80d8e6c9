"""VPC flow logs, built by Part 2 — the log group, a role that may write only to it, one
flow log on the VPC; shown by status, idempotent, converged, removed by `flow_logs: false` and `down`."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, make_engine, moto, mutating
from steps import network
from test_crash_recovery import Crash
from threetier import names, scan
from threetier.aws import PART_TAG, STACK_TAG, AwsError, tag_value
from threetier.blocks import flow_logs
from threetier.engine import Check, Engine

STACK = "threetier"
ACCOUNT = "123456789012"
REGION = "us-east-1"
GROUP = f"/threetier/{STACK}/vpc-flow-logs"
GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}"
ROLE = f"{STACK}-{REGION}-flow-logs-role"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
FLOW_LOG = f"{STACK}-vpc-flow-log"
# What `up` may call on the flow logs, their role and their log group.
FLOW_LOG_WRITES = {"CreateFlowLogs", "DeleteFlowLogs", "CreateRole", "UpdateAssumeRolePolicy", "PutRolePolicy",
                   "DeleteRolePolicy", "DeleteRole", "CreateLogGroup", "PutRetentionPolicy", "DeleteLogGroup"}
OFF = {"monitoring": {"flow_logs": False}}


@pytest.fixture
def mocked():
    """An empty moto, for the tests about building; the others start from `built` (conftest): the
    default stack restored as `up` left it."""
    with moto():
        yield


def up(tmp_path: Path, raw: dict | None = None) -> Engine:
    engine = make_engine(tmp_path, raw)
    engine.up()
    return engine


def check(tmp_path: Path, raw: dict | None = None) -> tuple[Check, Engine]:
    """What `status` and `plan` see of Part 2, after the same inventory they take."""
    engine = make_engine(tmp_path, raw)
    engine.take_inventory()
    return engine.check(next(p for p in engine.parts if p.number == network.NUMBER)), engine


def flow_log_writes(engine: Engine) -> Counter:
    return Counter(op for op in mutating(engine) if op in FLOW_LOG_WRITES)


def stack_flow_logs() -> list[dict[str, Any]]:
    found = boto3.client("ec2").describe_flow_logs()["FlowLogs"]
    return [f for f in found if tag_value(f, STACK_TAG) == STACK]


def the_vpc(engine: Engine) -> str:
    return engine.ctx.state.parts[2].resources["vpc"]


def the_group() -> dict[str, Any] | None:
    groups = boto3.client("logs").describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    return next((g for g in groups if g["logGroupName"] == GROUP), None)


def the_role() -> dict[str, Any] | None:
    try:
        return boto3.client("iam").get_role(RoleName=ROLE)["Role"]
    except boto3.client("iam").exceptions.NoSuchEntityException:
        return None


def add_flow_log(vpc: str, *, traffic: str = "ALL", group: str = GROUP, role_arn: str = ROLE_ARN) -> str:
    """A flow log made out of band with the stack's tags."""
    made = boto3.client("ec2").create_flow_logs(
        ResourceType="VPC", ResourceIds=[vpc], TrafficType=traffic, LogDestinationType="cloud-watch-logs",
        LogGroupName=group, DeliverLogsPermissionArn=role_arn,
        TagSpecifications=[{"ResourceType": "vpc-flow-log", "Tags": [
            {"Key": STACK_TAG, "Value": STACK}, {"Key": PART_TAG, "Value": "2"}, {"Key": "Name", "Value": FLOW_LOG}]}])
    return made["FlowLogIds"][0]


# -- what `up` makes --------------------------------------------------------------------------
def test_up_makes_the_log_group_a_role_that_writes_only_to_it_and_one_flow_log_on_the_vpc(
        mocked, tmp_path: Path) -> None:
    engine = up(tmp_path)
    vpc = the_vpc(engine)

    group = the_group()
    assert group is not None and group["retentionInDays"] == 14
    group_tags = boto3.client("logs").list_tags_log_group(logGroupName=GROUP)["tags"]
    assert group_tags == {STACK_TAG: STACK, PART_TAG: "2", "Name": f"{STACK}-vpc-flow-logs-log-group"}

    iam = boto3.client("iam")
    role = the_role()
    assert role is not None and role["Arn"] == ROLE_ARN
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    # The confused-deputy guard: only flow logs of this account (and region) may have it assumed.
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert trust["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-flow-log/*"}
    # Tagged in CreateRole itself, not afterwards.
    [create_role] = [c.params for c in engine.ctx.aws.calls
                     if c.operation == "CreateRole" and c.params["RoleName"] == ROLE]
    assert {t["Key"]: t["Value"] for t in create_role["Tags"]} == {STACK_TAG: STACK, PART_TAG: "2", "Name": ROLE}
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == ["write-flow-logs"]
    document = iam.get_role_policy(RoleName=ROLE, PolicyName="write-flow-logs")["PolicyDocument"]
    statement, listing = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    assert sorted(statement["Resource"]) == [GROUP_ARN, f"{GROUP_ARN}:*"]  # its own group, no other
    # And, as AWS's flow-logs guide lists, DescribeLogGroups: on "*", the only resource it can have.
    assert listing == {"Sid": "ListLogGroups", "Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"}

    [flow_log] = stack_flow_logs()
    assert flow_log["ResourceId"] == vpc
    assert flow_log["TrafficType"] == "ALL"
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    assert flow_log["LogGroupName"] == GROUP
    assert flow_log["DeliverLogsPermissionArn"] == ROLE_ARN
    assert {t["Key"]: t["Value"] for t in flow_log["Tags"]} == {STACK_TAG: STACK, PART_TAG: "2", "Name": FLOW_LOG}
    [create] = [c.params for c in engine.ctx.aws.calls if c.operation == "CreateFlowLogs"]
    assert create["ResourceType"] == "VPC" and create["ResourceIds"] == [vpc]
    assert create["TagSpecifications"][0]["ResourceType"] == "vpc-flow-log"
    assert len(create["ClientToken"]) >= 32
    # The group and the role come before the flow log that uses them.
    at = {(c.operation, c.params.get("logGroupName") or c.params.get("RoleName")): i
          for i, c in enumerate(engine.ctx.aws.calls)}
    assert at[("CreateLogGroup", GROUP)] < at[("PutRetentionPolicy", GROUP)] < at[("CreateFlowLogs", None)]
    assert at[("CreateRole", ROLE)] < at[("PutRolePolicy", ROLE)] < at[("CreateFlowLogs", None)]

    resources = engine.ctx.state.parts[2].resources
    assert resources["flow_log"] == flow_log["FlowLogId"]
    assert resources["flow_logs_role_arn"] == ROLE_ARN and resources["flow_log_group"] == GROUP


def test_the_role_name_scan_looks_for_is_the_one_up_makes() -> None:
    assert names.flow_logs_role_name_for(STACK, REGION) == ROLE
    assert names.flow_logs_role_name_for("shop", "ap-southeast-2") == "shop-ap-southeast-2-flow-logs-role"


# -- status and idempotence -----------------------------------------------------------------------
def test_status_shows_them_and_a_second_up_changes_and_reads_nothing_more(built: Path) -> None:
    seen, engine = check(built)
    assert {f"flow log {FLOW_LOG}", f"IAM role {ROLE}", f"log group {GROUP}"} <= set(seen.present)
    assert seen.missing == [] and seen.drift == [] and seen.notes == []
    assert mutating(engine) == []

    again = make_engine(built)
    real_take = again.take_inventory
    after_inventory: list[int] = []

    def take_inventory(parts: Any = None) -> None:
        real_take(parts)
        after_inventory.append(len(again.ctx.aws.calls))

    again.take_inventory = take_inventory  # type: ignore[method-assign]
    again.up()
    assert mutating(again) == [] and again.ctx.changes == []
    # Every read of them came from the inventory: one describe of the flow logs, the role read once.
    later = [c.operation for c in again.ctx.aws.calls[after_inventory[0]:]]
    assert not {"DescribeFlowLogs", "GetRole", "GetRolePolicy", "DescribeLogGroups"} & set(later), later
    operations = Counter(c.operation for c in again.ctx.aws.calls)
    assert operations["DescribeFlowLogs"] == 1
    # One read of the stack's log groups, shared with Part 1's.
    assert [c.params for c in again.ctx.aws.calls if c.operation == "DescribeLogGroups"] == [
        {"logGroupNamePrefix": f"/threetier/{STACK}/"}]
    assert len([c for c in again.ctx.aws.calls if c.operation == "GetRole" and c.params["RoleName"] == ROLE]) == 1


def test_a_retention_change_converges(built: Path) -> None:
    longer = {"monitoring": {"log_retention_days": 30}}
    seen, _ = check(built, longer)
    assert any(d.startswith(f"log group {GROUP}: keeps logs 14 days") for d in seen.drift), seen.drift
    changed = up(built, longer)
    puts = [c.params for c in changed.ctx.aws.calls if c.operation == "PutRetentionPolicy"
            and c.params["logGroupName"] == GROUP]
    assert puts == [{"logGroupName": GROUP, "retentionInDays": 30}]
    assert the_group()["retentionInDays"] == 30
    assert set(flow_log_writes(changed)) == {"PutRetentionPolicy"}  # nothing else of theirs
    assert len(stack_flow_logs()) == 1
    assert flow_log_writes(up(built, longer)) == Counter()


# -- drift, and what `up` does about it -----------------------------------------------------------
def _delete_the_flow_log(engine: Engine) -> None:
    boto3.client("ec2").delete_flow_logs(FlowLogIds=[engine.ctx.state.parts[2].resources["flow_log"]])


def _rejected_traffic_only(engine: Engine) -> None:
    _delete_the_flow_log(engine)
    add_flow_log(the_vpc(engine), traffic="REJECT")


def _to_another_log_group(engine: Engine) -> None:
    boto3.client("logs").create_log_group(logGroupName="/elsewhere")
    _delete_the_flow_log(engine)
    add_flow_log(the_vpc(engine), group="/elsewhere")


def _as_another_role(engine: Engine) -> None:
    _delete_the_flow_log(engine)
    add_flow_log(the_vpc(engine), role_arn=f"arn:aws:iam::{ACCOUNT}:role/someone-else")


def _a_second_flow_log(engine: Engine) -> None:
    boto3.client("logs").create_log_group(logGroupName="/elsewhere")
    add_flow_log(the_vpc(engine), group="/elsewhere")  # AWS refuses a second one to the same group


def _policy_on_every_group(_engine: Engine) -> None:
    boto3.client("iam").put_role_policy(RoleName=ROLE, PolicyName="write-flow-logs", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}))


def _the_policy_before_describe_log_groups(_engine: Engine) -> None:
    """The role's policy as an earlier threetier put it: writing to the group, no DescribeLogGroups."""
    boto3.client("iam").put_role_policy(RoleName=ROLE, PolicyName="write-flow-logs", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "WriteItsLogGroupOnly", "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [GROUP_ARN, f"{GROUP_ARN}:*"]}]}))


def _trust_without_the_guard(_engine: Engine) -> None:
    boto3.client("iam").update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}}]}))


def _delete_the_log_group(_engine: Engine) -> None:
    boto3.client("logs").delete_log_group(logGroupName=GROUP)


@pytest.mark.parametrize("damage,seen,repair", [
    (_delete_the_flow_log, f"missing: flow log {FLOW_LOG}", {"CreateFlowLogs": 1}),
    (_rejected_traffic_only, "drift: TrafficType is REJECT, should be ALL", {"DeleteFlowLogs": 1, "CreateFlowLogs": 1}),
    (_to_another_log_group, f"drift: LogGroupName is /elsewhere, should be {GROUP}",
     {"DeleteFlowLogs": 1, "CreateFlowLogs": 1}),
    (_as_another_role, f"drift: DeliverLogsPermissionArn is arn:aws:iam::{ACCOUNT}:role/someone-else",
     {"DeleteFlowLogs": 1, "CreateFlowLogs": 1}),
    (_a_second_flow_log, "drift: a second one of the VPC", {"DeleteFlowLogs": 1}),
    (_policy_on_every_group, f"drift: IAM role {ROLE}: policy write-flow-logs is missing or changed",
     {"PutRolePolicy": 1}),
    (_the_policy_before_describe_log_groups, f"drift: IAM role {ROLE}: policy write-flow-logs is missing or changed",
     {"PutRolePolicy": 1}),
    (_trust_without_the_guard, f"drift: IAM role {ROLE}: its trust policy", {"UpdateAssumeRolePolicy": 1}),
    (_delete_the_log_group, f"missing: log group {GROUP}", {"CreateLogGroup": 1, "PutRetentionPolicy": 1}),
], ids=lambda v: v.__name__.strip("_") if callable(v) else "")
def test_status_reports_drift_and_up_repairs_only_that(built: Path, damage, seen: str, repair: dict[str, int]) -> None:
    engine = make_engine(built)  # the restored stack's state: its IDs
    damage(engine)
    found, _ = check(built)
    kind, text = seen.split(": ", 1)
    reported = found.missing if kind == "missing" else found.drift
    assert any(text in line for line in reported), (kind, reported)

    repaired = up(built)
    assert flow_log_writes(repaired) == Counter(repair)
    [flow_log] = stack_flow_logs()
    assert (flow_log["ResourceId"], flow_log["TrafficType"], flow_log["LogGroupName"],
            flow_log["DeliverLogsPermissionArn"]) == (the_vpc(engine), "ALL", GROUP, ROLE_ARN)
    after, _ = check(built)
    assert after.drift == [] and after.missing == []
    assert flow_log_writes(up(built)) == Counter()


def test_a_flow_log_that_fails_to_deliver_is_noted_by_status(built: Path) -> None:
    engine = make_engine(built)
    _delete_the_flow_log(engine)
    _delete_the_log_group(engine)
    add_flow_log(the_vpc(engine))  # moto, like AWS, takes it and fails the delivery: no such group
    seen, _ = check(built)
    assert f"log group {GROUP}" in seen.missing
    assert seen.notes == [f"flow log {FLOW_LOG}: delivery to its log group FAILED (Access error)"]


# -- monitoring.flow_logs: false, and down ---------------------------------------------------------
def test_flow_logs_false_removes_them_and_true_brings_them_back(built: Path) -> None:
    seen, engine = check(built, OFF)
    unwanted = "monitoring.flow_logs is false (`up` deletes it)"
    assert sorted(seen.drift) == sorted([f"flow log {FLOW_LOG}: {unwanted}", f"IAM role {ROLE}: {unwanted}",
                                         f"log group {GROUP}: {unwanted}"])
    assert mutating(engine) == []

    off = up(built, OFF)
    assert flow_log_writes(off) == Counter({"DeleteFlowLogs": 1, "DeleteRolePolicy": 1, "DeleteRole": 1,
                                            "DeleteLogGroup": 1})
    order = [c.operation for c in off.ctx.aws.calls]
    assert order.index("DeleteFlowLogs") < order.index("DeleteRole")  # nothing delivers as it any more
    assert stack_flow_logs() == [] and the_role() is None and the_group() is None
    assert "flow_log" not in off.ctx.state.parts[2].resources
    assert flow_log_writes(up(built, OFF)) == Counter()
    seen, _ = check(built, OFF)
    assert seen.drift == [] and not [p for p in seen.present if "flow" in p]

    on = up(built)
    assert flow_log_writes(on) == Counter({"CreateLogGroup": 1, "PutRetentionPolicy": 1, "CreateRole": 1,
                                           "PutRolePolicy": 1, "CreateFlowLogs": 1})
    assert len(stack_flow_logs()) == 1


def test_down_deletes_the_flow_log_before_the_vpc_and_leaves_none_of_them(built: Path) -> None:
    down = make_engine(built)
    down.down()
    order = [c.operation for c in down.ctx.aws.calls]
    assert order.index("DeleteFlowLogs") < order.index("DeleteVpc")
    assert order.index("DeleteFlowLogs") < order.index("DeleteRole")
    assert stack_flow_logs() == [] and the_role() is None and the_group() is None
    assert [f for f in scan.tagged(down.ctx.aws, STACK) if "flow" in f.kind or f.name in (ROLE, GROUP)] == []
    again = make_engine(built)
    again.down()  # gone is success: nothing to delete, nothing refused
    assert mutating(again) == []


def test_down_with_flow_logs_false_in_config_still_deletes_them(built: Path) -> None:
    make_engine(built, OFF).down()
    assert stack_flow_logs() == [] and the_role() is None and the_group() is None


# -- a crash in the middle -------------------------------------------------------------------------
def _is_flow_logs_role(model: Any, parsed: dict[str, Any]) -> bool:
    return model.name == "CreateRole" and parsed.get("Role", {}).get("RoleName") == ROLE


def _is_flow_log(model: Any, parsed: dict[str, Any]) -> bool:
    return model.name == "CreateFlowLogs"


@pytest.mark.parametrize("after", [_is_flow_logs_role, _is_flow_log], ids=["CreateRole", "CreateFlowLogs"])
def test_a_crash_right_after_a_create_then_up_ends_with_exactly_one_flow_log(mocked, tmp_path: Path, after) -> None:
    engine = make_engine(tmp_path)

    def crash(model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if after(model, parsed):
            raise Crash(model.name)
    engine.ctx.aws.session.events.register("after-call", crash)
    with pytest.raises(Crash):
        engine.up()
    assert the_role() is not None  # the crash came after AWS made it
    if after is _is_flow_logs_role:
        assert stack_flow_logs() == []

    resumed = up(tmp_path)
    assert len([c for c in resumed.ctx.aws.calls if c.operation == "CreateRole" and c.params["RoleName"] == ROLE]) == 0
    [flow_log] = stack_flow_logs()
    assert flow_log["DeliverLogsPermissionArn"] == ROLE_ARN and flow_log["ResourceId"] == the_vpc(resumed)
    assert resumed.ctx.state.parts[2].resources["flow_log"] == flow_log["FlowLogId"]
    assert flow_log_writes(up(tmp_path)) == Counter()


# -- IAM's eventual consistency, on the real-AWS path (botocore's Stubber) -------------------------
UNABLE = f"Unable to assume given IAM role: '{ROLE_ARN}'"


def stubbed_part_2(tmp_path: Path, clock: FakeClock) -> Engine:
    engine = make_engine(tmp_path, clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == network.NUMBER)
    return engine


def test_a_role_not_yet_assumable_is_retried_with_the_same_token(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = stubbed_part_2(tmp_path, clock)
    aws = engine.ctx.aws
    with Stubber(aws.client("ec2")) as ec2:
        ec2.add_response("describe_flow_logs", {"FlowLogs": []})
        for _ in range(3):  # a role made a moment ago: the flow-logs service cannot assume it yet
            ec2.add_client_error("create_flow_logs", service_error_code="InvalidParameter", service_message=UNABLE,
                                 http_status_code=400)
        ec2.add_response("create_flow_logs", {"FlowLogIds": ["fl-0123456789abcdef0"], "Unsuccessful": []})
        flow_logs.ensure_flow_log(engine.ctx, "vpc-0123456789abcdef0", GROUP, ROLE_ARN)
        ec2.assert_no_pending_responses()
    assert clock.sleeps == [5, 5, 5]
    tokens = {c.params["ClientToken"] for c in aws.calls if c.operation == "CreateFlowLogs"}
    assert len([c for c in aws.calls if c.operation == "CreateFlowLogs"]) == 4 and len(tokens) == 1
    assert engine.ctx.resources["flow_log"] == "fl-0123456789abcdef0"
    assert [(c.action, c.kind, c.id) for c in engine.ctx.changes] == [("created", "flow log", "fl-0123456789abcdef0")]


def test_a_role_never_assumable_gives_up_after_the_iam_propagation_timeout(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = stubbed_part_2(tmp_path, clock)
    with Stubber(engine.ctx.aws.client("ec2")) as ec2:
        ec2.add_response("describe_flow_logs", {"FlowLogs": []})
        for _ in range(40):
            ec2.add_client_error("create_flow_logs", service_error_code="InvalidParameter", service_message=UNABLE,
                                 http_status_code=400)
        with pytest.raises(AwsError, match=r"create flow logs .*InvalidParameter: Unable to assume given IAM role"):
            flow_logs.ensure_flow_log(engine.ctx, "vpc-0123456789abcdef0", GROUP, ROLE_ARN)
    assert flow_logs.IAM_PROPAGATION_TIMEOUT <= clock.t < flow_logs.IAM_PROPAGATION_TIMEOUT + 10


def test_another_invalid_parameter_is_not_retried(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = stubbed_part_2(tmp_path, clock)
    with Stubber(engine.ctx.aws.client("ec2")) as ec2:
        ec2.add_response("describe_flow_logs", {"FlowLogs": []})
        ec2.add_client_error("create_flow_logs", service_error_code="InvalidParameter",
                             service_message="LogGroupName is invalid", http_status_code=400)
        with pytest.raises(AwsError, match="LogGroupName is invalid"):
            flow_logs.ensure_flow_log(engine.ctx, "vpc-0123456789abcdef0", GROUP, ROLE_ARN)
    assert clock.sleeps == []


def test_a_refusal_in_unsuccessful_is_an_error_not_a_flow_log(tmp_path: Path) -> None:
    engine = stubbed_part_2(tmp_path, FakeClock())
    with Stubber(engine.ctx.aws.client("ec2")) as ec2:
        ec2.add_response("describe_flow_logs", {"FlowLogs": []})
        ec2.add_response("create_flow_logs", {"FlowLogIds": [], "Unsuccessful": [{
            "ResourceId": "vpc-0123456789abcdef0",
            "Error": {"Code": "FlowLogsLimitExceeded", "Message": "too many flow logs"}}]})
        with pytest.raises(AwsError, match="FlowLogsLimitExceeded: too many flow logs"):
            flow_logs.ensure_flow_log(engine.ctx, "vpc-0123456789abcdef0", GROUP, ROLE_ARN)
    assert engine.ctx.changes == [] and "flow_log" not in engine.ctx.resources
