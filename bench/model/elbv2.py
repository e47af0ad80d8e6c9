"""Load balancers in time: ALBs provisioning 150 s; a deleted ALB gone from describe at once (as moto
has it) but its ENIs holding its subnets and security groups 60 s (vpc.py); targets the Auto Scaling
groups register healthy 30 s after max(InService, their ALB active), `initial` before that.
(What listeners do with certificates: acm.py; web ACLs on an ALB: wafv2.py.)"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.model import figures
from bench.model.core import Span, after, before, override

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


@dataclass
class LoadBalancer:
    arn: str
    name: str
    part: int | None
    vpc: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    internet_facing: bool
    created: float
    deleted: float | None = None


def load_balancer_state(model: LatencyModel, arn: str) -> str | None:
    lb = model.load_balancers.get(arn)
    if lb is None:
        return None
    return "provisioning" if model.now - lb.created < figures.ALB_CREATE_SECONDS else "active"


@after("elbv2", "CreateLoadBalancer")
def load_balancer_created(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    for lb in parsed.get("LoadBalancers", []):
        if lb["LoadBalancerArn"] not in model.load_balancers:
            model.load_balancers[lb["LoadBalancerArn"]] = LoadBalancer(
                lb["LoadBalancerArn"], lb["LoadBalancerName"], model.part(params), lb.get("VpcId", ""),
                tuple(params.get("Subnets") or [z.get("SubnetId") for z in lb.get("AvailabilityZones", [])]),
                tuple(params.get("SecurityGroups") or lb.get("SecurityGroups", [])),
                lb.get("Scheme", params.get("Scheme")) == "internet-facing", model.now)
        lb["State"] = {"Code": "provisioning"}


@after("elbv2", "DescribeLoadBalancers")
def describe_load_balancers(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    override(parsed.get("LoadBalancers", []), "LoadBalancerArn", "State",
             lambda arn: load_balancer_state(model, arn), lambda state: {"Code": state})


@before("elbv2", "DeleteLoadBalancer")
def delete_load_balancer_before(model: LatencyModel, params: dict[str, Any], **_: Any) -> Any:
    arn = params.get("LoadBalancerArn", "")
    if arn not in model.load_balancers:  # made before the model was installed: learn its ENIs now
        found = model.raw("elbv2").describe_load_balancers()["LoadBalancers"]
        lb = next((b for b in found if b["LoadBalancerArn"] == arn), None)
        if lb is not None:
            model.load_balancers[arn] = LoadBalancer(
                arn, lb["LoadBalancerName"], None, lb.get("VpcId", ""),
                tuple(z.get("SubnetId") for z in lb.get("AvailabilityZones", [])),
                tuple(lb.get("SecurityGroups", [])), lb.get("Scheme") == "internet-facing", -1e9)
    return None


@after("elbv2", "DeleteLoadBalancer")
def load_balancer_deleted(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    lb = model.load_balancers.get(params.get("LoadBalancerArn", ""))
    if lb is not None and lb.deleted is None:
        lb.deleted = model.now  # gone from describe at once (moto); its ENIs stay 60 s


@after("elbv2", "CreateListener")
def listener_created(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    for action in params.get("DefaultActions") or []:
        if action.get("TargetGroupArn"):
            model.listeners.setdefault(action["TargetGroupArn"], set()).add(params.get("LoadBalancerArn", ""))


def _target_group_load_balancers(model: LatencyModel, target_group: str) -> set[str]:
    arns = set(model.listeners.get(target_group, set()))
    if not arns:
        found = model.raw("elbv2").describe_target_groups(TargetGroupArns=[target_group])["TargetGroups"]
        arns = set(found[0].get("LoadBalancerArns", [])) if found else set()
    return arns


def healthy_at(model: LatencyModel, target_group: str) -> float | None:
    """When the targets the Auto Scaling groups put in `target_group` are healthy (None: never yet)."""
    groups = [g for g in model.groups.values() if target_group in g.target_groups and g.deleted is None]
    if not groups:
        return None
    arns = _target_group_load_balancers(model, target_group)
    if not arns:
        return None
    active = max((model.load_balancers[a].created + figures.ALB_CREATE_SECONDS if a in model.load_balancers
                  else -1e9) for a in arns)
    return max(max(g.in_service_at for g in groups), active) + figures.TARGET_HEALTHY_SECONDS


@after("elbv2", "DescribeTargetHealth")
def describe_target_health(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    target_group = params.get("TargetGroupArn", "")
    if not any(target_group in g.target_groups for g in model.groups.values()):
        return
    healthy = healthy_at(model, target_group)
    for target in parsed.get("TargetHealthDescriptions", []):
        if healthy is None:
            target["TargetHealth"] = {"State": "unused", "Reason": "Target.NotInUse",
                                      "Description": "Target group is not configured to receive traffic"}
        elif model.now < healthy:
            target["TargetHealth"] = {"State": "initial", "Reason": "Elb.InitialHealthChecking",
                                      "Description": "Initial health checks in progress"}


def spans(model: LatencyModel) -> list[Span]:
    spans = []
    for lb in model.load_balancers.values():
        if lb.created > -1e8:
            spans.append(Span(lb.part, "load balancer", lb.name, lb.created, lb.created + figures.ALB_CREATE_SECONDS))
        if lb.deleted is not None:
            spans.append(Span(lb.part, "load balancer", lb.name, lb.deleted,
                              lb.deleted + figures.ALB_ENI_RELEASE_SECONDS, action="delete"))
    return spans
