"""The VPC's dependencies: what holds subnets, security groups and public addresses (ENIs), and the
deletes AWS refuses while they are held (DependencyViolation): DeleteSubnet and DeleteSecurityGroup
while ENIs remain (`delete-subnet-in-use`, `delete-sg-in-use`), DeleteSecurityGroup referenced by another
group (`delete-sg-referenced`), DetachInternetGateway while public addresses are mapped
(`detach-igw-mapped`), DeleteVpc with subnets, groups, route tables or an attached gateway
(`delete-vpc-dependencies`). A deleted ALB's ENIs hold its subnets and security groups 60 s, a deleted
Auto Scaling group's until it is gone, an instance's until it is terminated.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.model import figures
from bench.model.core import before, tag
from bench.model.ec2 import live_nats

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


def holders(model: LatencyModel) -> list[dict[str, Any]]:
    """Everything with ENIs now: {what, vpc, subnets, security_groups, public}."""
    now, held = model.now, []
    for nat in live_nats(model):
        held.append({"what": f"NAT gateway {nat['NatGatewayId']}", "vpc": nat.get("VpcId"),
                     "subnets": {nat.get("SubnetId")}, "security_groups": set(), "public": True})
    seen_lbs = set()
    for lb in model.load_balancers.values():
        seen_lbs.add(lb.arn)
        if lb.deleted is None or now - lb.deleted < figures.ALB_ENI_RELEASE_SECONDS:
            held.append({"what": f"load balancer {lb.name}", "vpc": lb.vpc, "subnets": set(lb.subnets),
                         "security_groups": set(lb.security_groups), "public": lb.internet_facing})
    for lb in model.raw("elbv2").describe_load_balancers()["LoadBalancers"]:
        if lb["LoadBalancerArn"] not in seen_lbs:
            held.append({"what": f"load balancer {lb['LoadBalancerName']}", "vpc": lb.get("VpcId"),
                         "subnets": {z.get("SubnetId") for z in lb.get("AvailabilityZones", [])},
                         "security_groups": set(lb.get("SecurityGroups", [])),
                         "public": lb.get("Scheme") == "internet-facing"})
    for group in model.groups.values():
        if not group.gone:
            held.append({"what": f"instances of Auto Scaling group {group.name}", "vpc": group.vpc,
                         "subnets": set(group.subnets), "security_groups": set(group.security_groups),
                         "public": group.public})
    for instance in model.instances.values():
        if instance.terminated is None or now - instance.terminated < figures.EC2_TERMINATE_SECONDS:
            held.append({"what": f"instance {instance.id}", "vpc": instance.vpc, "subnets": {instance.subnet},
                         "security_groups": set(instance.security_groups), "public": instance.public})
    for reservation in model.raw("ec2").describe_instances()["Reservations"]:
        for i in reservation["Instances"]:
            group_name = tag(i.get("Tags", []), "aws:autoscaling:groupName")
            if i["InstanceId"] in model.instances or group_name in model.groups or \
                    i["State"]["Name"] in ("terminated", "shutting-down"):
                continue
            held.append({"what": f"instance {i['InstanceId']}", "vpc": i.get("VpcId"),
                         "subnets": {i.get("SubnetId")},
                         "security_groups": {g["GroupId"] for g in i.get("SecurityGroups", [])},
                         "public": bool(i.get("PublicIpAddress"))})
    subnet_groups: dict[str, list[str]] = {}
    for db in model.raw("rds").describe_db_instances()["DBInstances"]:
        record = model.db_instances.get(db["DBInstanceIdentifier"])
        if record is not None and record.gone:
            continue
        name = (db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName", "")
        if name and name not in subnet_groups:
            subnet_groups[name] = [s["SubnetIdentifier"] for s in (db.get("DBSubnetGroup") or {}).get("Subnets", [])]
        held.append({"what": f"DB instance {db['DBInstanceIdentifier']}",
                     "vpc": (db.get("DBSubnetGroup") or {}).get("VpcId"),
                     "subnets": set(subnet_groups.get(name, [])),
                     "security_groups": {g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])},
                     "public": bool(db.get("PubliclyAccessible"))})
    return held


@before("ec2", "DetachInternetGateway")
def detach_igw(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    vpc = params.get("VpcId")
    mapped = [h["what"] for h in holders(model) if h["public"] and h["vpc"] == vpc]
    if mapped:
        return model.refuse("DependencyViolation", f"Network {vpc} has some mapped public address(es) "
                            f"({', '.join(mapped)})", operation=operation, rule="detach-igw-mapped")
    return None


@before("ec2", "DeleteSubnet")
def delete_subnet(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    subnet = params.get("SubnetId")
    using = [h["what"] for h in holders(model) if subnet in h["subnets"]]
    if using:
        return model.refuse("DependencyViolation", f"The subnet '{subnet}' has dependencies and cannot be "
                            f"deleted ({', '.join(using)})", operation=operation, rule="delete-subnet-in-use")
    return None


@before("ec2", "DeleteSecurityGroup")
def delete_security_group(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    group = params.get("GroupId")
    for other in model.raw("ec2").describe_security_groups()["SecurityGroups"]:
        for permission in other.get("IpPermissions", []):
            if other["GroupId"] != group and any(p.get("GroupId") == group
                                                 for p in permission.get("UserIdGroupPairs", [])):
                return model.refuse("DependencyViolation", f"resource {group} has a dependent object "
                                    f"({other['GroupId']})", operation=operation, rule="delete-sg-referenced")
    using = [h["what"] for h in holders(model) if group in h["security_groups"]]
    if using:
        return model.refuse("DependencyViolation", f"resource {group} has a dependent object "
                            f"({', '.join(using)})", operation=operation, rule="delete-sg-in-use")
    return None


@before("ec2", "DeleteVpc")
def delete_vpc(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    vpc = params.get("VpcId")
    ec2 = model.raw("ec2")
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc]}]
    subnets = ec2.describe_subnets(Filters=vpc_filter)["Subnets"]
    groups = [g for g in ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"]
              if g["GroupName"] != "default"]
    tables = [t for t in ec2.describe_route_tables(Filters=vpc_filter)["RouteTables"]
              if not any(a.get("Main") for a in t.get("Associations", []))]
    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])
    if subnets or groups or tables or igws["InternetGateways"]:
        return model.refuse("DependencyViolation", f"The vpc '{vpc}' has dependencies and cannot be deleted",
                            operation=operation, rule="delete-vpc-dependencies")
    return None
