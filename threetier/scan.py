"""Everything still tagged with the stack, service by service.

Used after `down` to prove nothing is left (and to list what `down` will delete).
Each service is asked with its own tag filters: the Resource Groups Tagging API
misses EIPs, launch templates, ASGs, IAM and more. Resources that cannot carry
tags everywhere (S3 bucket tags at creation, IAM) are found by deterministic name.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from threetier.aws import PART_TAG, STACK_TAG, Aws, tag_filters, tag_value
from threetier.blocks.iam import TIERS, legacy_iam
from threetier.config import CDN_CERTIFICATE_REGION
from threetier.names import (
    backup_snapshot_prefix_for,
    bucket_name_for,
    dashboard_name_for,
    db_parameter_group_name_for,
    db_subnet_group_name_for,
    final_snapshot_prefix_for,
    flow_logs_role_name_for,
    instance_profile_name_for,
    log_group_prefix_for,
    role_name_for,
    topic_arn_for,
    topic_name_for,
)


@dataclass(frozen=True)
class Found:
    kind: str
    id: str
    name: str
    part: int | None = None  # from its threetier:part tag, or the part that owns the name

    @property
    def billable(self) -> bool:
        return self.kind in BILLABLE

    def describe(self) -> str:
        """"NAT gateway threetier-nat-az1 (nat-0abc…)": the name once, the ID when it says more."""
        shown = self.name or self.id
        if self.id != shown and not self.id.startswith("arn:"):
            shown += f" ({self.id})"
        return f"{self.kind} {shown}"


# What bills while it exists (by the hour, or by the GB stored): listed first by `down`.
BILLABLE = frozenset({"NAT gateway", "Elastic IP", "load balancer", "Auto Scaling group", "instance", "DB cluster",
                      "DB instance", "EBS volume", "EBS snapshot", "AMI", "DB cluster snapshot", "bucket",
                      "alarm", "dashboard", "log group", "flow log", "web ACL"})


def _part(item: dict) -> int | None:
    value = tag_value(item, PART_TAG)
    return int(value) if value and value.isdigit() else None


EC2_KINDS = (
    # (describe operation, result key, id key, kind, keep) -- keep filters out dead states
    ("describe_vpcs", "Vpcs", "VpcId", "VPC", None),
    ("describe_subnets", "Subnets", "SubnetId", "subnet", None),
    ("describe_internet_gateways", "InternetGateways", "InternetGatewayId", "internet gateway", None),
    ("describe_route_tables", "RouteTables", "RouteTableId", "route table", None),
    ("describe_security_groups", "SecurityGroups", "GroupId", "security group", None),
    ("describe_nat_gateways", "NatGateways", "NatGatewayId", "NAT gateway",
     lambda r: r["State"] not in ("deleted", "failed")),
)


def _ec2(aws: Aws, stack: str) -> Iterator[Found]:
    for operation, key, id_key, kind, keep in EC2_KINDS:
        param = "Filter" if operation == "describe_nat_gateways" else "Filters"
        by_tag: dict[str, Any] = {param: tag_filters(stack)}
        for item in aws.items("ec2", operation, key, resource=f"{kind}s of stack {stack}", **by_tag):
            # Tag filters are checked again: moto ignores them on NAT gateways.
            if tag_value(item, STACK_TAG) == stack and (keep is None or keep(item)):
                yield Found(kind, item[id_key], tag_value(item, "Name") or "", _part(item))
    for flow_log in aws.items("ec2", "describe_flow_logs", "FlowLogs", resource=f"flow logs of stack {stack}",
                              Filters=tag_filters(stack)):
        if tag_value(flow_log, STACK_TAG) == stack:
            yield Found("flow log", flow_log["FlowLogId"], tag_value(flow_log, "Name") or "", _part(flow_log))
    addresses = aws.call("ec2", "describe_addresses", resource=f"Elastic IPs of stack {stack}",
                         Filters=tag_filters(stack))["Addresses"]
    for address in addresses:
        yield Found("Elastic IP", address["AllocationId"], tag_value(address, "Name") or "", _part(address))


def _ec2_compute(aws: Aws, stack: str) -> Iterator[Found]:
    filters = tag_filters(stack)
    for reservation in aws.items("ec2", "describe_instances", "Reservations", resource=f"instances of stack {stack}",
                                 Filters=filters):
        for instance in reservation["Instances"]:
            if instance["State"]["Name"] != "terminated":
                yield Found("instance", instance["InstanceId"], tag_value(instance, "Name") or "", _part(instance))
    for image in aws.call("ec2", "describe_images", resource=f"AMIs of stack {stack}", Owners=["self"],
                          Filters=filters)["Images"]:
        yield Found("AMI", image["ImageId"], image.get("Name", ""), _part(image))
    for snapshot in aws.items("ec2", "describe_snapshots", "Snapshots", resource=f"snapshots of stack {stack}",
                              OwnerIds=["self"], Filters=filters):
        yield Found("EBS snapshot", snapshot["SnapshotId"], tag_value(snapshot, "Name") or "", _part(snapshot))
    for volume in aws.items("ec2", "describe_volumes", "Volumes", resource=f"volumes of stack {stack}", Filters=filters):
        if volume["State"] not in ("deleted", "deleting"):
            yield Found("EBS volume", volume["VolumeId"], tag_value(volume, "Name") or "", _part(volume))
    for template in aws.items("ec2", "describe_launch_templates", "LaunchTemplates",
                              resource=f"launch templates of stack {stack}", Filters=filters):
        yield Found("launch template", template["LaunchTemplateId"], template["LaunchTemplateName"], _part(template))


def _autoscaling(aws: Aws, stack: str) -> Iterator[Found]:
    for group in aws.items("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups",
                           resource=f"Auto Scaling groups of stack {stack}"):
        if tag_value(group, STACK_TAG) == stack:
            yield Found("Auto Scaling group", group["AutoScalingGroupName"], group["AutoScalingGroupName"], _part(group))


def _elbv2(aws: Aws, stack: str) -> Iterator[Found]:
    kinds = [("load balancer", "describe_load_balancers", "LoadBalancers", "LoadBalancerArn", "LoadBalancerName"),
             ("target group", "describe_target_groups", "TargetGroups", "TargetGroupArn", "TargetGroupName")]
    for kind, operation, key, arn_key, name_key in kinds:
        items = {i[arn_key]: i[name_key] for i in aws.items("elbv2", operation, key, resource=f"{kind}s of stack {stack}")}
        arns = sorted(items)
        for start in range(0, len(arns), 20):  # DescribeTags takes 20 ARNs at a time
            described = aws.call("elbv2", "describe_tags", resource=f"{kind} tags", ResourceArns=arns[start:start + 20])
            for entry in described["TagDescriptions"]:
                if tag_value(entry, STACK_TAG) == stack:
                    yield Found(kind, entry["ResourceArn"], items[entry["ResourceArn"]], _part(entry))


def _rds(aws: Aws, stack: str) -> Iterator[Found]:
    for cluster in aws.items("rds", "describe_db_clusters", "DBClusters", resource=f"DB clusters of stack {stack}"):
        if _rds_tag(cluster, stack):
            yield Found("DB cluster", cluster["DBClusterIdentifier"], cluster["DBClusterIdentifier"], 3)
    for instance in aws.items("rds", "describe_db_instances", "DBInstances", resource=f"DB instances of stack {stack}"):
        if _rds_tag(instance, stack):
            yield Found("DB instance", instance["DBInstanceIdentifier"], instance["DBInstanceIdentifier"], 3)
    group = db_subnet_group_name_for(stack)
    if aws.call("rds", "describe_db_subnet_groups", resource=f"DB subnet group {group}", DBSubnetGroupName=group,
                missing_ok=("DBSubnetGroupNotFoundFault",)):
        yield Found("DB subnet group", group, group, 3)
    parameters = db_parameter_group_name_for(stack)
    if aws.call("rds", "describe_db_cluster_parameter_groups", resource=f"DB cluster parameter group {parameters}",
                DBClusterParameterGroupName=parameters, missing_ok=("DBParameterGroupNotFound",)):
        yield Found("DB cluster parameter group", parameters, parameters, 3)
    for snapshot in aws.items("rds", "describe_db_cluster_snapshots", "DBClusterSnapshots",
                              resource=f"DB cluster snapshots of stack {stack}", SnapshotType="manual"):
        if _rds_tag(snapshot, stack) and not is_kept_snapshot(stack, snapshot["DBClusterSnapshotIdentifier"]):
            yield Found("DB cluster snapshot", snapshot["DBClusterSnapshotIdentifier"],
                        snapshot["DBClusterSnapshotIdentifier"], 3)


def _rds_tag(resource: dict, stack: str) -> bool:
    return any(t.get("Key") == STACK_TAG and t.get("Value") == stack for t in resource.get("TagList", []))


def is_kept_snapshot(stack: str, identifier: str) -> bool:
    """`down`'s final snapshots and `backup`'s: the data, kept on purpose."""
    return identifier.startswith((final_snapshot_prefix_for(stack), backup_snapshot_prefix_for(stack)))


def kept_snapshots(aws: Aws, stack: str) -> list[str]:
    """The database snapshots `down` keeps on purpose (its final one, `backup`'s): the data, not a leftover."""
    return sorted(s["DBClusterSnapshotIdentifier"] for s in aws.items(
        "rds", "describe_db_cluster_snapshots", "DBClusterSnapshots", resource=f"DB cluster snapshots of stack {stack}",
        SnapshotType="manual") if _rds_tag(s, stack) and is_kept_snapshot(stack, s["DBClusterSnapshotIdentifier"]))


def _s3(aws: Aws, stack: str) -> Iterator[Found]:
    name = bucket_name_for(stack, aws.account, aws.region)
    if aws.call("s3", "head_bucket", resource=f"bucket {name}", Bucket=name, ExpectedBucketOwner=aws.account,
                missing_ok=("404", "NoSuchBucket", "NotFound")) is not None:
        yield Found("bucket", name, name, 1)


def _iam(aws: Aws, stack: str) -> Iterator[Found]:
    """IAM names are account-wide: each tier's role and profile carry the region; the shared role
    and profile of before (no region in their names) are this region's only when their policies say
    so (iam.legacy_iam), or `down` here would report another region's as left over."""
    for tier in TIERS:
        role = role_name_for(stack, aws.region, tier)
        if aws.call("iam", "get_role", resource=f"IAM role {role}", RoleName=role, missing_ok=("NoSuchEntity",)):
            yield Found("IAM role", role, role, 1)
        profile = instance_profile_name_for(stack, aws.region, tier)
        if aws.call("iam", "get_instance_profile", resource=f"instance profile {profile}",
                    InstanceProfileName=profile, missing_ok=("NoSuchEntity",)):
            yield Found("instance profile", profile, profile, 1)
    flow_logs_role = flow_logs_role_name_for(stack, aws.region)
    if aws.call("iam", "get_role", resource=f"IAM role {flow_logs_role}", RoleName=flow_logs_role,
                missing_ok=("NoSuchEntity",)):
        yield Found("IAM role", flow_logs_role, flow_logs_role, 2)
    legacy_role, legacy_profile = legacy_iam(aws, stack)
    if legacy_role:
        yield Found("IAM role", legacy_role, legacy_role, 1)
    if legacy_profile:
        yield Found("instance profile", legacy_profile, legacy_profile, 1)


def _cloudwatch(aws: Aws, stack: str) -> Iterator[Found]:
    """Alarms carry the stack's tags (a name prefix alone would match stack `a-b`'s for stack `a`);
    the dashboard and the log groups cannot be listed by tag: their names are deterministic."""
    for alarm in aws.items("cloudwatch", "describe_alarms", "MetricAlarms", resource=f"alarms of stack {stack}",
                           AlarmNamePrefix=f"{stack}-"):
        alarm_tags = aws.call("cloudwatch", "list_tags_for_resource", resource=f"alarm {alarm['AlarmName']}",
                              ResourceARN=alarm["AlarmArn"], missing_ok=("ResourceNotFound",
                                                                         "ResourceNotFoundException"))
        if tag_value(alarm_tags or {}, STACK_TAG) == stack:
            yield Found("alarm", alarm["AlarmArn"], alarm["AlarmName"], _part(alarm_tags or {}))
    dashboard = dashboard_name_for(stack, aws.region)
    for entry in aws.items("cloudwatch", "list_dashboards", "DashboardEntries", resource=f"dashboard {dashboard}",
                           DashboardNamePrefix=dashboard):
        if entry["DashboardName"] == dashboard:
            yield Found("dashboard", dashboard, dashboard, 7)
    for group in aws.items("logs", "describe_log_groups", "logGroups", resource=f"log groups of stack {stack}",
                           logGroupNamePrefix=log_group_prefix_for(stack)):
        yield Found("log group", group["logGroupName"], group["logGroupName"],
                    2 if group["logGroupName"].endswith("/vpc-flow-logs") else 1)


def _sns(aws: Aws, stack: str) -> Iterator[Found]:
    """The alarms' topic, by its deterministic ARN, and what is subscribed to it."""
    name, arn = topic_name_for(stack), topic_arn_for(stack, aws.partition, aws.region, aws.account)
    if aws.call("sns", "get_topic_attributes", resource=f"SNS topic {name}", TopicArn=arn,
                missing_ok=("NotFound",)) is None:
        return
    yield Found("SNS topic", arn, name, 1)
    for subscription in aws.items("sns", "list_subscriptions_by_topic", "Subscriptions",
                                  resource=f"SNS topic {name}", TopicArn=arn):
        yield Found("SNS subscription", subscription["SubscriptionArn"],
                    f"{subscription.get('Protocol')} {subscription.get('Endpoint')}", 1)


def _acm(aws: Aws, stack: str, region: str | None = None) -> Iterator[Found]:
    """Certificates the stack requested (Part 7, edge.domain): tagged with it. The user's own
    certificate (edge.certificate_arn) is not, and is never the stack's to delete."""
    for summary in aws.items("acm", "list_certificates", "CertificateSummaryList", resource=f"certificates of stack {stack}",
                             region=region):
        found = aws.call("acm", "list_tags_for_certificate", resource=f"certificate {summary['CertificateArn']}",
                         CertificateArn=summary["CertificateArn"], missing_ok=("ResourceNotFoundException",),
                         region=region)
        if tag_value(found or {}, STACK_TAG) == stack:
            yield Found("certificate", summary["CertificateArn"], summary.get("DomainName", ""), _part(found or {}))


def _cloudfront(aws: Aws, stack: str) -> Iterator[Found]:
    """Part 7 with edge.cdn: the stack's CloudFront distributions (global; the API in us-east-1), and its
    certificates in us-east-1 (CloudFront's) when the stack is elsewhere (else _acm listed them)."""
    for page in aws.pages("cloudfront", "list_distributions", resource=f"distributions of stack {stack}",
                          region=CDN_CERTIFICATE_REGION):
        for summary in page.get("DistributionList", {}).get("Items") or []:
            found = aws.call("cloudfront", "list_tags_for_resource", resource=f"distribution {summary['Id']}",
                             region=CDN_CERTIFICATE_REGION, Resource=summary["ARN"],
                             missing_ok=("NoSuchDistribution",)) or {}
            tags = {"Tags": (found.get("Tags") or {}).get("Items") or []}
            if tag_value(tags, STACK_TAG) == stack:
                yield Found("distribution", summary["Id"], tag_value(tags, "Name") or summary["DomainName"], _part(tags))
    if aws.region != CDN_CERTIFICATE_REGION:
        yield from _acm(aws, stack, CDN_CERTIFICATE_REGION)


def _wafv2(aws: Aws, stack: str) -> Iterator[Found]:
    """Web ACLs tagged with the stack (Part 7, edge.waf): the regional ones, and CloudFront's
    (CLOUDFRONT scope, kept in us-east-1; edge.cdn). WAFv2 has no paginators: pages are followed by
    NextMarker."""
    for scope, region in (("REGIONAL", None), ("CLOUDFRONT", CDN_CERTIFICATE_REGION)):
        params: dict[str, Any] = {"Scope": scope, "Limit": 100}
        while True:
            page = aws.call("wafv2", "list_web_acls", resource=f"web ACLs of stack {stack}", region=region, **params)
            for summary in page.get("WebACLs", []):
                found = aws.call("wafv2", "list_tags_for_resource", resource=f"web ACL {summary['Name']}",
                                 ResourceARN=summary["ARN"], missing_ok=("WAFNonexistentItemException",),
                                 region=region) or {}
                tags = {"Tags": found.get("TagInfoForResource", {}).get("TagList", [])}
                if tag_value(tags, STACK_TAG) == stack:
                    yield Found("web ACL", summary["ARN"], summary["Name"], _part(tags))
            if not page.get("NextMarker") or not page.get("WebACLs"):
                break
            params["NextMarker"] = page["NextMarker"]


def _secrets(aws: Aws, stack: str) -> Iterator[Found]:
    """Secrets tagged with the stack (Part 7, edge.cdn: CloudFront's origin header). One scheduled
    for deletion is not listed: it is gone but for its name."""
    for secret in aws.items("secretsmanager", "list_secrets", "SecretList", resource=f"secrets of stack {stack}",
                            Filters=[{"Key": "tag-key", "Values": [STACK_TAG]}, {"Key": "tag-value", "Values": [stack]}]):
        if tag_value(secret, STACK_TAG) == stack:
            yield Found("secret", secret["ARN"], secret.get("Name", ""), _part(secret))


SCANNERS: tuple[Callable[[Aws, str], Iterator[Found]], ...] = (
    _autoscaling, _elbv2, _ec2_compute, _rds, _ec2, _s3, _iam, _cloudwatch, _sns, _acm, _cloudfront, _wafv2, _secrets)


def tagged(aws: Aws, stack: str) -> list[Found]:
    return [found for scanner in SCANNERS for found in scanner(aws, stack)]


# Inside a VPC, what keeps it from being deleted: (describe, result key, id key, filter, kind, in the way).
VPC_CONTENTS: tuple[tuple[str, str, str, str, str, Callable[[dict], bool]], ...] = (
    ("describe_subnets", "Subnets", "SubnetId", "vpc-id", "subnet", lambda r: True),
    ("describe_instances", "Reservations", "InstanceId", "vpc-id", "instance",
     lambda r: r["State"]["Name"] not in ("terminated", "shutting-down")),
    ("describe_security_groups", "SecurityGroups", "GroupId", "vpc-id", "security group",
     lambda r: r.get("GroupName") != "default"),
    ("describe_route_tables", "RouteTables", "RouteTableId", "vpc-id", "route table",
     lambda r: not any(a.get("Main") for a in r.get("Associations", []))),
    ("describe_internet_gateways", "InternetGateways", "InternetGatewayId", "attachment.vpc-id",
     "internet gateway", lambda r: True),
    ("describe_nat_gateways", "NatGateways", "NatGatewayId", "vpc-id", "NAT gateway",
     lambda r: r["State"] not in ("deleted", "deleting", "failed")),
    ("describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId", "vpc-id", "VPC endpoint",
     lambda r: r.get("State", "").lower() not in ("deleted", "deleting")),
)


@dataclass(frozen=True)
class Obstacle:
    id: str  # what down will leave in place
    reason: str


def obstacles(aws: Aws, stack: str) -> list[Obstacle]:
    """What `down` will not be able to delete, known before it starts: a VPC tagged with the stack
    that holds something which is not the stack's (made out of band: `down` leaves that alone, so
    AWS refuses to delete the VPC)."""
    found: list[Obstacle] = []
    vpcs = [v for v in aws.items("ec2", "describe_vpcs", "Vpcs", resource=f"VPCs of stack {stack}",
                                 Filters=tag_filters(stack)) if tag_value(v, STACK_TAG) == stack]
    for vpc in vpcs:
        vpc_id, foreign = vpc["VpcId"], []
        for operation, key, id_key, filter_name, kind, in_the_way in VPC_CONTENTS:
            param = "Filter" if operation == "describe_nat_gateways" else "Filters"
            in_vpc: dict[str, Any] = {param: [{"Name": filter_name, "Values": [vpc_id]}]}
            items = list(aws.items("ec2", operation, key, resource=f"{kind}s in {vpc_id}", **in_vpc))
            if operation == "describe_instances":
                items = [i for reservation in items for i in reservation["Instances"]]
            foreign += [f"{kind} {item[id_key]}" for item in items
                        if in_the_way(item) and tag_value(item, STACK_TAG) != stack]
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            found.append(Obstacle(vpc_id, f"VPC {tag_value(vpc, 'Name') or vpc_id} ({vpc_id}): it holds what is not "
                                          f"the stack's ({shown}); delete those first, or AWS refuses to delete it"))
    return found
