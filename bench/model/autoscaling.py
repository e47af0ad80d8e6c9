"""Auto Scaling groups in time: instances InService 110 s after CreateAutoScalingGroup, and after an
UpdateAutoScalingGroup/SetDesiredCapacity that adds instances (their targets' health: elbv2.py);
CreateAutoScalingGroup whose launch template's AMI is not available yet is a violation
(`asg-image-not-available`: AWS takes the call, every launch then fails); instances a scale-in removes
stay in the group (Terminating) for the target group's deregistration delay (its attribute; 300 s by
default) + 60 s shutting-down; a deleted group stays visible ("Delete in progress") 150 s and holds its
subnets and security groups (vpc.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bench.model import figures
from bench.model.core import Span, after, answer, before, tag
from bench.model.ec2 import image_state
from bench.model.elbv2 import healthy_at
from threetier.aws import PART_TAG

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


@dataclass
class AutoScalingGroup:
    name: str
    part: int | None
    vpc: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    public: bool
    target_groups: tuple[str, ...]
    created: float
    deleted: float | None = None
    gone: bool = False
    launched: float | None = None          # the last scale-out (None: its creation)
    draining: dict[str, tuple[dict[str, Any], float]] = field(default_factory=dict)  # id -> (as moto had it, gone at)
    drains: list[tuple[float, float]] = field(default_factory=list)  # every scale-in: (requested, last one gone)

    @property
    def in_service_at(self) -> float:
        return (self.created if self.launched is None else self.launched) + figures.ASG_IN_SERVICE_SECONDS


def _launch_template(model: LatencyModel, spec: dict[str, Any]) -> dict[str, Any]:
    kwargs = {"Versions": [str(spec.get("Version") or "$Default")]}
    if spec.get("LaunchTemplateId"):
        kwargs["LaunchTemplateId"] = spec["LaunchTemplateId"]
    else:
        kwargs["LaunchTemplateName"] = spec.get("LaunchTemplateName", "")
    versions = model.raw("ec2").describe_launch_template_versions(**kwargs)["LaunchTemplateVersions"]
    return versions[0]["LaunchTemplateData"] if versions else {}


@before("autoscaling", "CreateAutoScalingGroup")
def create_asg_before(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    data = _launch_template(model, params.get("LaunchTemplate") or {})
    image = data.get("ImageId", "")
    state = image_state(model, image)
    if state is not None and state != "available":
        # Real AWS takes the call; every launch then fails. A violation all the same.
        model.violation("asg-image-not-available", operation,
                        f"Auto Scaling group {params.get('AutoScalingGroupName')}: AMI {image} is {state}",
                        service="autoscaling")
    return None


@after("autoscaling", "CreateAutoScalingGroup")
def asg_created(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    name = params.get("AutoScalingGroupName", "")
    subnets = tuple(s for s in (params.get("VPCZoneIdentifier") or "").split(",") if s)
    data = _launch_template(model, params.get("LaunchTemplate") or {})
    vpc = ""
    if subnets:
        found = model.raw("ec2").describe_subnets(SubnetIds=list(subnets))["Subnets"]
        vpc = found[0]["VpcId"] if found else ""
        public = any(s.get("MapPublicIpOnLaunch") for s in found)
    else:
        public = False
    model.groups[name] = AutoScalingGroup(name, model.part(params), vpc, subnets,
                                          tuple(data.get("SecurityGroupIds") or []), public,
                                          tuple(params.get("TargetGroupARNs") or []), model.now)


@after("autoscaling", "DescribeAutoScalingGroups")
def describe_asgs(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    for group in parsed.get("AutoScalingGroups", []):
        record = model.groups.get(group["AutoScalingGroupName"])
        if record is None:
            continue
        if record.deleted is not None:
            group["Status"] = "Delete in progress"
        if model.now < record.in_service_at:
            for instance in group.get("Instances", []):
                instance["LifecycleState"] = "Pending"
        listed = {i["InstanceId"] for i in group.get("Instances", [])}
        for instance_id, (instance, gone_at) in list(record.draining.items()):
            if model.now >= gone_at:
                del record.draining[instance_id]
            elif instance_id not in listed:  # moto removed it at once; AWS drains it first
                group.setdefault("Instances", []).append({**instance, "LifecycleState": "Terminating",
                                                          "HealthStatus": "Healthy"})


def _group_record(model: LatencyModel, name: str) -> AutoScalingGroup | None:
    """The model's record of a group, learnt from moto when it was made before the model was installed."""
    if name in model.groups:
        return model.groups[name]
    found = model.raw("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not found:
        return None
    subnets = tuple(s for s in (found[0].get("VPCZoneIdentifier") or "").split(",") if s)
    spec = found[0].get("LaunchTemplate") or {}
    data = _launch_template(model, spec) if spec else {}
    sub = model.raw("ec2").describe_subnets(SubnetIds=list(subnets))["Subnets"] if subnets else []
    record = model.groups[name] = AutoScalingGroup(
        name, int(tag(found[0].get("Tags", []), PART_TAG) or 0) or None, sub[0]["VpcId"] if sub else "",
        subnets, tuple(data.get("SecurityGroupIds") or []), any(s.get("MapPublicIpOnLaunch") for s in sub),
        tuple(found[0].get("TargetGroupARNs", [])), -1e9)
    return record


def _group_instances(model: LatencyModel, name: str) -> dict[str, dict[str, Any]]:
    found = model.raw("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return {i["InstanceId"]: i for i in (found[0].get("Instances", []) if found else [])}


def drain_seconds(model: LatencyModel, group: AutoScalingGroup) -> float:
    """How long an instance a scale-in removes stays: the longest deregistration delay of the group's
    target groups (as their attribute says, 300 s by default), then shutting-down."""
    delays = [figures.DEREGISTRATION_DELAY_DEFAULT_SECONDS if not group.target_groups else 0.0]
    for arn in group.target_groups:
        try:
            attributes = model.raw("elbv2").describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
        except ClientError:
            continue
        value = next((a["Value"] for a in attributes if a["Key"] == "deregistration_delay.timeout_seconds"), None)
        delays.append(figures.DEREGISTRATION_DELAY_DEFAULT_SECONDS if value is None else float(value))
    return max(delays) + figures.EC2_TERMINATE_SECONDS


@before("autoscaling", "UpdateAutoScalingGroup", "SetDesiredCapacity")
def resize_asg_before(model: LatencyModel, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
    """The group's instances before moto resizes it (moto launches and removes at once)."""
    name = params.get("AutoScalingGroupName", "")
    if _group_record(model, name) is not None:
        context["bench_asg_before"] = _group_instances(model, name)
    return None


@after("autoscaling", "UpdateAutoScalingGroup", "SetDesiredCapacity")
def asg_resized(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], context: dict[str, Any],
                **_: Any) -> None:
    name = params.get("AutoScalingGroupName", "")
    record, before_resize = model.groups.get(name), context.get("bench_asg_before")
    if record is None or before_resize is None:
        return
    after_resize = _group_instances(model, name)
    removed = [i for i in before_resize if i not in after_resize]
    if removed:
        gone_at = model.now + drain_seconds(model, record)
        for instance_id in removed:
            record.draining.setdefault(instance_id, (before_resize[instance_id], gone_at))
        record.drains.append((model.now, gone_at))
    if any(i not in before_resize for i in after_resize):
        record.launched = model.now


@before("autoscaling", "DeleteAutoScalingGroup")
def delete_asg(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    """Answered here; the group stays (Delete in progress) 150 s, then moto deletes it."""
    name = params.get("AutoScalingGroupName", "")
    found = model.raw("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not found:
        return None  # moto answers
    record = _group_record(model, name)  # learnt now when made before the model was installed
    assert record is not None
    if record.deleted is not None:
        return answer({})
    record.deleted = model.now
    real = dict(params)

    def delete() -> None:
        model.raw("autoscaling").delete_auto_scaling_group(**{**real, "ForceDelete": True})
        record.gone = True
    model.defer(model.now + figures.ASG_DELETE_SECONDS, f"delete Auto Scaling group {name}", delete)
    return answer({})


def spans(model: LatencyModel) -> list[Span]:
    """Each group coming InService and its targets turning healthy, each scale-out, scale-in and delete."""
    spans: list[Span] = []
    for group in model.groups.values():
        if group.created > -1e8:
            spans.append(Span(group.part, "Auto Scaling group", group.name, group.created,
                              group.created + figures.ASG_IN_SERVICE_SECONDS))
            for target_group in group.target_groups:
                healthy = healthy_at(model, target_group) if group.deleted is None else None
                start = group.created + figures.ASG_IN_SERVICE_SECONDS
                spans.append(Span(group.part, "target health", f"{group.name} targets", start,
                                  healthy if healthy is not None else None))
        if group.launched is not None:
            spans.append(Span(group.part, "Auto Scaling group", group.name, group.launched, group.in_service_at))
        for start, end in group.drains:
            spans.append(Span(group.part, "Auto Scaling instances", f"{group.name} scale-in", start, end,
                              action="delete"))
        if group.deleted is not None:
            spans.append(Span(group.part, "Auto Scaling group", group.name, group.deleted,
                              group.deleted + figures.ASG_DELETE_SECONDS, action="delete"))
    return spans
