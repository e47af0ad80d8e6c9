"""Auto Scaling groups in time: instances InService 110 s after CreateAutoScalingGroup, and after an
UpdateAutoScalingGroup/SetDesiredCapacity that adds instances (their targets' health: elbv2.py);
CreateAutoScalingGroup whose launch template's AMI is not available yet is a violation
(`asg-image-not-available`: AWS takes the call, every launch then fails); instances a scale-in removes
stay in the group (Terminating) for the target group's deregistration delay (its attribute; 300 s by
default) + 60 s shutting-down; a deleted group stays visible ("Delete in progress") 150 s and holds its
subnets and security groups (vpc.py). Which instances a target group sends requests to
(`eligible_targets`, for load.py); CreateAutoScalingGroup into a target group on no listener
(`asg-target-group-off-listener`) and, under load, ForceDelete of serving instances
(`terminate-while-serving`) are violations."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bench.model import figures
from bench.model.core import Span, after, answer, before, tag
from bench.model.ec2 import image_state
from bench.model.elbv2 import checked_from, healthy_at
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
    joined: dict[str, float] = field(default_factory=dict)       # instance -> launched (at creation or a scale-out)
    terminated: dict[str, float] = field(default_factory=dict)   # instance -> terminated directly (not drained)

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
    name = params.get("AutoScalingGroupName")
    data = _launch_template(model, params.get("LaunchTemplate") or {})
    image = data.get("ImageId", "")
    state = image_state(model, image)
    if state is not None and state != "available":
        # Real AWS takes the call; every launch then fails. A violation all the same.
        model.violation("asg-image-not-available", operation, f"Auto Scaling group {name}: AMI {image} is {state}",
                        service="autoscaling")
    for target_group in params.get("TargetGroupARNs") or []:
        if checked_from(model, target_group) is None and _load_balancers_in_vpc_of(model, target_group):
            # AWS takes it; the targets stay `unused`, never health-checked, until a listener forwards there.
            model.violation("asg-target-group-off-listener", operation,
                            f"Auto Scaling group {name}: target group {target_group} is on no listener",
                            service="autoscaling")
    return None


def _load_balancers_in_vpc_of(model: LatencyModel, target_group: str) -> list[str]:
    """The load balancers (not deleted) in the target group's VPC: the listeners it could be on."""
    try:
        found = model.raw("elbv2").describe_target_groups(TargetGroupArns=[target_group])["TargetGroups"]
    except ClientError:
        return []
    vpc = found[0].get("VpcId") if found else None
    return [lb.arn for lb in model.load_balancers.values() if lb.vpc == vpc and lb.deleted is None]


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
    record = model.groups[name] = AutoScalingGroup(name, model.part(params), vpc, subnets,
                                                   tuple(data.get("SecurityGroupIds") or []), public,
                                                   tuple(params.get("TargetGroupARNs") or []), model.now)
    record.joined = dict.fromkeys(_group_instances(model, name), model.now)


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


def group_record(model: LatencyModel, name: str) -> AutoScalingGroup | None:
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
    record.joined = {i["InstanceId"]: -1e9 for i in found[0].get("Instances", [])}
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
    if group_record(model, name) is not None:
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
        record.joined.update((i, model.now) for i in after_resize if i not in before_resize)


@before("autoscaling", "DeleteAutoScalingGroup")
def delete_asg(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    """Answered here; the group stays (Delete in progress) 150 s, then moto deletes it."""
    name = params.get("AutoScalingGroupName", "")
    found = model.raw("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not found:
        return None  # moto answers
    record = group_record(model, name)  # learnt now when made before the model was installed
    assert record is not None
    if record.deleted is not None:
        return answer({})
    # ForceDelete terminates the instances without the deregistration delay a scale-in gives them.
    terminated_while_serving(model, record, list(_group_instances(model, name)), operation)
    record.deleted = model.now
    real = dict(params)

    def delete() -> None:
        model.raw("autoscaling").delete_auto_scaling_group(**{**real, "ForceDelete": True})
        record.gone = True
    model.defer(model.now + figures.ASG_DELETE_SECONDS, f"delete Auto Scaling group {name}", delete)
    return answer({})


# -- targets that serve: what the load balancer sends requests to (load.py) ---------------------
def members(model: LatencyModel) -> dict[str, list[str]]:
    """Each group's instances as moto has them now (a scale-in removed its drained ones already). One not
    seen before (moto replacing a terminated instance) joined now: it serves once in service and healthy."""
    found = {name: list(_group_instances(model, name)) for name, group in model.groups.items() if not group.gone}
    for name, instances in found.items():
        for instance in instances:
            model.groups[name].joined.setdefault(instance, model.now)
    return found


def eligible_targets(model: LatencyModel, target_group: str, t: float,
                     instances: dict[str, list[str]] | None = None) -> list[str]:
    """The instances `target_group` sends requests to at `t`: registered (a member of a group attached to it,
    not draining: a scale-in removed it), healthy (checked since its launch, its load balancer active and the
    target group on a listener), its group not deleted, not terminated. `instances`: `members(model)`."""
    checked = checked_from(model, target_group)
    if checked is None:
        return []
    instances = members(model) if instances is None else instances
    eligible = []
    for name, group in model.groups.items():
        if target_group not in group.target_groups or (group.deleted is not None and group.deleted <= t):
            continue
        launched = group.created if group.launched is None else group.launched
        for instance in instances.get(name, []):
            if instance in group.terminated and group.terminated[instance] <= t:
                continue
            in_service = group.joined.get(instance, launched) + figures.ASG_IN_SERVICE_SECONDS
            if t >= max(in_service, checked) + figures.TARGET_HEALTHY_SECONDS:
                eligible.append(instance)
    return eligible


def weighted_target_groups(model: LatencyModel, t: float) -> set[str]:
    """The target groups some listener sends requests to at `t` (a weight > 0 in effect)."""
    return {tg for listener in model.forwards.values() for tg, w in listener.weights_at(t).items() if w > 0}


def terminated_while_serving(model: LatencyModel, group: AutoScalingGroup, instances: list[str],
                             operation: str) -> None:
    """Instances of `group` about to be terminated at once: while a request load runs (load.py), each still
    eligible in a target group with weight > 0 is a violation, and the requests it had in flight fail
    (load.py counts them). With no load (`down`: the stack goes, users with it) only the time is kept."""
    now = model.now
    if model.load is not None:
        instances_now, serving = members(model), weighted_target_groups(model, now)
        for target_group in (tg for tg in group.target_groups if tg in serving):
            for instance in sorted(set(instances) & set(eligible_targets(model, target_group, now, instances_now))):
                model.violation("terminate-while-serving", operation,
                                f"instance {instance} of {group.name} was serving {target_group}",
                                service="autoscaling")
                model.serving_terminations.append((now, instance, target_group))
    for instance in instances:
        group.terminated.setdefault(instance, now)


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
