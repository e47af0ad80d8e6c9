"""VPC flow logs (Part 2, config.yaml `monitoring.flow_logs`, on by default): one flow log on the VPC,
every packet's record (accepted and rejected) to the stack's log group, delivered by the flow-logs
service as a role of the stack's own that may write only to that group. Off, or at `down`, all of it
goes.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from threetier.aws import STACK_TAG, AwsError, Look, tag_value
from threetier.blocks import iam, log_groups
from threetier.blocks.finders import name_of
from threetier.engine import Check, Ctx
from threetier.names import flow_logs_role_name_for

# VPC flow logs (monitoring.flow_logs): one flow log on the VPC, every packet's record (accepted and
# rejected) to the stack's log group, delivered by the flow-logs service as the stack's role.
FLOW_LOG_ROLE = "vpc-flow-log"  # its Name tag: <stack>-vpc-flow-log
FLOW_LOGS_POLICY_NAME = "write-flow-logs"
FLOW_LOGS_TRAFFIC = "ALL"
FLOW_LOGS_DESTINATION = "cloud-watch-logs"
# A role made a moment ago is not yet assumable by the flow-logs service: CreateFlowLogs answers
# InvalidParameter "Unable to assume given IAM role: '<role ARN>'" (hashicorp/terraform-provider-aws#29323),
# the very error and message terraform-provider-aws retries on CreateFlowLogs (internal/service/ec2/
# vpc_flow_log.go) for its IAM propagation timeout of 2 minutes.
ROLE_NOT_YET_ASSUMABLE = ("InvalidParameter",)
ROLE_NOT_YET_ASSUMABLE_MESSAGE = "Unable to assume given IAM role"
IAM_PROPAGATION_TIMEOUT = 2 * 60
FLOW_LOG_GONE = ("InvalidFlowLogId.NotFound",)


def flow_logs_role_name(ctx: Ctx) -> str:
    return flow_logs_role_name_for(ctx.stack, ctx.aws.region)


def flow_logs_trust_policy(partition: str, region: str, account: str) -> dict[str, Any]:
    """Only the flow-logs service may assume the role, and only for flow logs of this account in this
    region: the confused-deputy guard AWS's flow-logs guide recommends (aws:SourceAccount, aws:SourceArn)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"},
            },
        }],
    }


def flow_logs_write_policy(group_arn: str) -> dict[str, Any]:
    """The role may write to its log group only, and list the account's groups. AWS's flow-logs guide
    lists logs:CreateLogGroup and logs:DescribeLogGroups too. DescribeLogGroups: on "*", the only
    resource IAM authorizes it on (it lists the account's groups as a whole, maxbanton/cwh#83); it
    reads names and settings, no log event. Not CreateLogGroup: the stack makes the group before the
    flow log (tagged, with its retention), and one deleted out of band must not come back untagged and
    kept forever (`up` remakes it). Should delivery fail anyway, `status` notes the flow log's
    DeliverLogsStatus."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WriteItsLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [group_arn, f"{group_arn}:*"],
        }, {
            "Sid": "ListLogGroups",
            "Effect": "Allow",
            "Action": "logs:DescribeLogGroups",
            "Resource": "*",
        }],
    }


# -- what the finders read (the inventory) ---------------------------------------
def flow_logs_look(ctx: Ctx) -> Look:
    """Every flow log carrying the stack's tag, whatever it logs: the finder keeps those of the VPC,
    `down` and `flow_logs: false` delete them all; one read, needing no VPC ID (the first round)."""
    return Look("ec2", "describe_flow_logs", {"Filter": ctx.filters()}, key="FlowLogs")


def flow_logs_role_look(ctx: Ctx) -> Look:
    return iam.iam_look("get_role", RoleName=flow_logs_role_name(ctx))


def flow_logs_policy_look(ctx: Ctx) -> Look:
    return iam.iam_look("get_role_policy", RoleName=flow_logs_role_name(ctx), PolicyName=FLOW_LOGS_POLICY_NAME)


def looks(ctx: Ctx) -> Iterator[Look]:
    """One describe by the stack's tag, the role, and the stack's log groups (one read that Part 1's
    groups share); the role's policy only once the role is known to exist."""
    yield flow_logs_look(ctx)
    yield log_groups.groups_look(ctx)
    role = flow_logs_role_look(ctx)
    yield role
    if ctx.aws.has(role) and ctx.aws.peek(role) is not None:
        yield flow_logs_policy_look(ctx)


# -- apply -----------------------------------------------------------------------
def stack_flow_logs(ctx: Ctx) -> list[dict[str, Any]]:
    found = ctx.aws.look(flow_logs_look(ctx), resource=f"flow logs of stack {ctx.stack}") or []
    return [f for f in found if tag_value(f, STACK_TAG) == ctx.stack]  # moto may ignore the tag filter


def flow_log_differences(ctx: Ctx, flow_log: dict[str, Any], role_arn: str) -> list[str]:
    """How a flow log differs from the one the stack wants (none: it is that one)."""
    wanted = {"TrafficType": FLOW_LOGS_TRAFFIC, "LogDestinationType": FLOW_LOGS_DESTINATION,
              "LogGroupName": log_groups.name(ctx, log_groups.FLOW_LOGS), "DeliverLogsPermissionArn": role_arn}
    return [f"{key} is {flow_log.get(key) or 'not set'}, should be {value}"
            for key, value in wanted.items() if flow_log.get(key) != value]


def ensure_flow_logs(ctx: Ctx, vpc: str) -> None:
    """The log group, then the role that writes to it, then the flow log; or, with
    `monitoring.flow_logs: false`, none of them."""
    if not ctx.config.monitoring.flow_logs:
        remove_flow_logs(ctx)
        return
    group = log_groups.ensure(ctx, log_groups.FLOW_LOGS)  # before the flow log: the role may not create it
    role_arn = ensure_flow_logs_role(ctx)
    ensure_flow_log(ctx, vpc, group, role_arn)
    ctx.resources["flow_log_group"] = group


def ensure_flow_logs_role(ctx: Ctx) -> str:
    """The role the flow-logs service delivers as; returns its ARN."""
    aws, name = ctx.aws, flow_logs_role_name(ctx)
    resource = f"IAM role {name}"
    trust = flow_logs_trust_policy(aws.partition, aws.region, aws.account)
    existed = aws.look(flow_logs_role_look(ctx), resource=resource) is not None
    found = iam.find_or_create_role(ctx, name, trust, f"threetier {ctx.stack} in {aws.region}: VPC flow logs "
                                                          f"to {log_groups.name(ctx, log_groups.FLOW_LOGS)}")
    if existed and iam.policy_document(found["Role"]["AssumeRolePolicyDocument"]) != trust:
        aws.call("iam", "update_assume_role_policy", resource=resource, RoleName=name,
                 PolicyDocument=json.dumps(trust))
        ctx.record("changed", "IAM role trust policy", name)
    iam.ensure_inline_policy(ctx, name, FLOW_LOGS_POLICY_NAME,
                                 flow_logs_write_policy(log_groups.arn(ctx, log_groups.FLOW_LOGS)))
    ctx.resources["flow_logs_role"] = name
    ctx.resources["flow_logs_role_arn"] = found["Role"]["Arn"]
    return str(found["Role"]["Arn"])


def ensure_flow_log(ctx: Ctx, vpc: str, group: str, role_arn: str) -> None:
    """Exactly one flow log of the stack on the VPC, as wanted. One that logs elsewhere, as another
    role, or less traffic is replaced: deleted first, as AWS refuses a second flow log of the same
    VPC to the same log group (FlowLogAlreadyExists)."""
    aws, name = ctx.aws, ctx.name(FLOW_LOG_ROLE)
    on_vpc = [f for f in stack_flow_logs(ctx) if f.get("ResourceId") == vpc]
    keep = next((f for f in on_vpc if not flow_log_differences(ctx, f, role_arn)), None)
    for flow_log in on_vpc:
        if flow_log is not keep:
            delete_flow_log(ctx, flow_log)
    if keep is not None:
        ctx.resources["flow_log"] = keep["FlowLogId"]
        return
    # The token makes botocore's retries of this one request (a timeout after AWS made the flow log)
    # make one flow log. New for every create, not client_token's hour: a deleted flow log leaves
    # DescribeFlowLogs at once, so nothing found would tell a token's earlier, deleted flow log from
    # none, and AWS would answer a reused token with that deleted flow log's ID (EC2 idempotency: a
    # repeated request "succeeds without performing any further actions"). A crash before the answer
    # is the finder's: the tags are set at creation.
    created = aws.call("ec2", "create_flow_logs", resource=name, ResourceType="VPC", ResourceIds=[vpc],
                       TrafficType=FLOW_LOGS_TRAFFIC, LogDestinationType=FLOW_LOGS_DESTINATION,
                       LogGroupName=group, DeliverLogsPermissionArn=role_arn,
                       TagSpecifications=ctx.tag_spec("vpc-flow-log", FLOW_LOG_ROLE), ClientToken=uuid.uuid4().hex,
                       retry_codes=ROLE_NOT_YET_ASSUMABLE, retry_message=ROLE_NOT_YET_ASSUMABLE_MESSAGE,
                       retry_timeout=IAM_PROPAGATION_TIMEOUT)
    # A refusal for one of the resources comes back in Unsuccessful, not as an error.
    refused = [item.get("Error") or {} for item in created.get("Unsuccessful") or []]
    if refused or not created.get("FlowLogIds"):
        error = refused[0] if refused else {}
        raise AwsError(aws.part, "create flow log", name, error.get("Code", "Unsuccessful"),
                       error.get("Message", "CreateFlowLogs made no flow log"))
    flow_log_id = created["FlowLogIds"][0]
    ctx.record("created", "flow log", name, flow_log_id)
    ctx.resources["flow_log"] = flow_log_id


def delete_flow_log(ctx: Ctx, flow_log: dict[str, Any]) -> None:
    what = name_of(flow_log, flow_log["FlowLogId"])
    answer = ctx.aws.call("ec2", "delete_flow_logs", resource=f"flow log {what}", FlowLogIds=[flow_log["FlowLogId"]],
                          missing_ok=FLOW_LOG_GONE)
    refused = [item.get("Error") or {} for item in (answer or {}).get("Unsuccessful") or []]
    refused = [error for error in refused if error.get("Code") not in FLOW_LOG_GONE]  # gone already: deleted
    if refused:
        raise AwsError(ctx.aws.part, "delete flow log", what, refused[0].get("Code", "Unsuccessful"),
                       refused[0].get("Message", ""))
    ctx.record("deleted", "flow log", what, flow_log["FlowLogId"])


def remove_flow_logs(ctx: Ctx) -> None:
    """Every flow log of the stack, then the role (nothing delivers as it any more), then the log
    group. What is gone already counts as deleted: a second run changes nothing."""
    for flow_log in stack_flow_logs(ctx):
        delete_flow_log(ctx, flow_log)
    role = flow_logs_role_name(ctx)
    if ctx.aws.look(flow_logs_role_look(ctx), resource=f"IAM role {role}") is not None \
            and iam.release_role(ctx, role):
        ctx.aws.call("iam", "delete_role", resource=f"IAM role {role}", RoleName=role, missing_ok=("NoSuchEntity",))
        ctx.record("deleted", "IAM role", role)
    log_groups.delete(ctx, log_groups.FLOW_LOGS)
    for key in ("flow_log", "flow_logs_role", "flow_logs_role_arn", "flow_log_group"):
        ctx.resources.pop(key, None)


# -- check -----------------------------------------------------------------------
def check_flow_logs(ctx: Ctx, result: Check, vpc: str | None) -> None:
    """The log group, the role (its trust and its policy), the flow log on the VPC (vpc None: there
    is no VPC yet, and the flow log `up` puts on it is missing too). No mutating call."""
    aws, role = ctx.aws, flow_logs_role_name(ctx)
    found_role = aws.look(flow_logs_role_look(ctx), resource=f"IAM role {role}")
    if not ctx.config.monitoring.flow_logs:
        unwanted = "monitoring.flow_logs is false (`up` deletes it)"
        for flow_log in stack_flow_logs(ctx):
            result.unwanted(f"flow log {name_of(flow_log, flow_log['FlowLogId'])}: {unwanted}")
        if found_role is not None:
            result.unwanted(f"IAM role {role}: {unwanted}")
        if log_groups.find(ctx, log_groups.FLOW_LOGS) is not None:
            result.unwanted(f"log group {log_groups.name(ctx, log_groups.FLOW_LOGS)}: {unwanted}")
        return

    log_groups.check(ctx, log_groups.FLOW_LOGS, result)
    role_arn = f"arn:{aws.partition}:iam::{aws.account}:role/{role}"  # the one `up` would make
    if result.found(f"IAM role {role}", found_role is not None):
        role_arn = found_role["Role"]["Arn"]
        trust = flow_logs_trust_policy(aws.partition, aws.region, aws.account)
        if iam.policy_document(found_role["Role"]["AssumeRolePolicyDocument"]) != trust:
            result.drift.append(f"IAM role {role}: its trust policy is not the flow-logs service's of this "
                                f"account and region only")
        policy = aws.look(flow_logs_policy_look(ctx), resource=f"IAM role {role}")
        wanted = flow_logs_write_policy(log_groups.arn(ctx, log_groups.FLOW_LOGS))
        if policy is None or iam.policy_document(policy["PolicyDocument"]) != wanted:
            result.drift.append(f"IAM role {role}: policy {FLOW_LOGS_POLICY_NAME} is missing or changed")
    name = ctx.name(FLOW_LOG_ROLE)
    if vpc is None:  # `up` puts one on the VPC it makes
        result.found(f"flow log {name}", False)
        return
    on_vpc = [f for f in stack_flow_logs(ctx) if f.get("ResourceId") == vpc]
    keep = next((f for f in on_vpc if not flow_log_differences(ctx, f, role_arn)), None)
    # None as wanted: `up` deletes those there and makes one (a replacement: deleted, then created).
    result.found(f"flow log {name}", keep is not None)
    for flow_log in on_vpc:
        if flow_log is keep:
            continue
        what = f"flow log {name_of(flow_log, flow_log['FlowLogId'])} ({flow_log['FlowLogId']})"
        differences = flow_log_differences(ctx, flow_log, role_arn) if keep is None else ["a second one of the VPC"]
        result.unwanted(f"{what}: {'; '.join(differences)} (`up` {'replaces' if keep is None else 'deletes'} it)")
    if keep is not None:
        ctx.resources["flow_log"] = keep["FlowLogId"]
        if keep.get("DeliverLogsStatus") == "FAILED":
            result.notes.append(f"flow log {name}: delivery to its log group FAILED "
                                f"({keep.get('DeliverLogsErrorMessage') or 'no reason given'})")
