"""Target tracking of a tier's Auto Scaling group (Parts 5 and 7, config.yaml `app.scaling` and
`web.scaling`): its policies exactly as config.yaml asks for them, and how they compare with AWS's.

While the policies are on, they own the group's desired capacity (threetier.blocks.balancing leaves it
to them). Deleting a target-tracking policy deletes the CloudWatch alarms AWS made for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from threetier.aws import Look
from threetier.blocks.alarms import load_balancer_dimension, target_group_dimension
from threetier.engine import Check, Ctx

if TYPE_CHECKING:
    from threetier.blocks.balancing import Tier

# Target tracking: a new instance counts in the group's metrics only after this warm-up, because
# until it serves, its boot-time CPU and its missing requests would skew the average and make the
# policy add still more. Launch to passing the target group's check: ~110 s to InService (EC2
# pending -> running, boot, the baked service up; docs/aws-latency.md) + 2 passing checks 15 s apart.
INSTANCE_WARMUP = 140
CPU_METRIC = "ASGAverageCPUUtilization"
REQUESTS_METRIC = "ALBRequestCountPerTarget"


def policies_look(ctx: Ctx, tier: Tier) -> Look:
    return Look("autoscaling", "describe_policies", {"AutoScalingGroupName": ctx.name(tier.asg_role)})


@dataclass(frozen=True)
class Policy:
    """A target-tracking policy as config.yaml asks for it."""
    name: str
    metric: str                   # the predefined metric
    target: float
    label: str | None             # ALBRequestCountPerTarget's target group; None for CPU

    @property
    def summary(self) -> str:
        return f"{'cpu' if self.metric == CPU_METRIC else 'requests'} {self.target:g}"


def resource_label(load_balancer_arn: str, target_group_arn: str) -> str:
    """ALBRequestCountPerTarget's ResourceLabel, app/<alb-name>/<alb-id>/targetgroup/<tg-name>/<tg-id>:
    the ends of the two ARNs (...:loadbalancer/app/<name>/<id> and ...:targetgroup/<name>/<id>)."""
    return f"{load_balancer_dimension(load_balancer_arn)}/{target_group_dimension(target_group_arn)}"


def wanted_policies(ctx: Ctx, tier: Tier) -> dict[str, Policy]:
    """By name. The requests policy needs the ALB and the target group; when either is unknown (status
    on a stack missing one), its label is None: compared as "anything"."""
    wanted: dict[str, Policy] = {}
    if tier.scaling.cpu_target is not None:
        name = ctx.name(f"{tier.tier}-cpu")
        wanted[name] = Policy(name, CPU_METRIC, tier.scaling.cpu_target, None)
    if tier.scaling.requests_per_target is not None:
        name = ctx.name(f"{tier.tier}-requests")
        balancer, group = ctx.resources.get("load_balancer_arn"), ctx.resources.get("target_group_arn")
        label = resource_label(balancer, group) if balancer and group else None
        wanted[name] = Policy(name, REQUESTS_METRIC, float(tier.scaling.requests_per_target), label)
    return wanted


def find_scaling_policies(ctx: Ctx, tier: Tier) -> dict[str, dict[str, Any]]:
    found = ctx.aws.look(policies_look(ctx, tier), resource=f"scaling policies of {ctx.name(tier.asg_role)}")
    return {p["PolicyName"]: p for p in found.get("ScalingPolicies", [])}


def policy_differences(have: dict[str, Any], wanted: Policy) -> list[str]:
    """What of `wanted` the policy AWS has does not match, in words."""
    config = have.get("TargetTrackingConfiguration") or {}
    metric = config.get("PredefinedMetricSpecification") or {}
    differ = []
    if have.get("PolicyType") != "TargetTrackingScaling" or metric.get("PredefinedMetricType") != wanted.metric:
        differ.append(f"is {have.get('PolicyType')} on {metric.get('PredefinedMetricType')}, should track {wanted.metric}")
    elif float(config.get("TargetValue", -1)) != wanted.target:
        differ.append(f"target {float(config.get('TargetValue', -1)):g}, config says {wanted.target:g}")
    if wanted.label is not None and metric.get("ResourceLabel") != wanted.label:
        differ.append(f"counts requests of {metric.get('ResourceLabel')}, should count {wanted.label}")
    if have.get("EstimatedInstanceWarmup") != INSTANCE_WARMUP:
        differ.append(f"instance warm-up {have.get('EstimatedInstanceWarmup')} s, should be {INSTANCE_WARMUP} s")
    return differ


def scaling_summary(policies: dict[str, dict[str, Any]]) -> str:
    """What status shows: e.g. "cpu 60, requests 1000"; "off" with no policy."""
    said = []
    for name, policy in sorted(policies.items()):
        config = policy.get("TargetTrackingConfiguration") or {}
        metric = (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
        kind = {CPU_METRIC: "cpu", REQUESTS_METRIC: "requests"}.get(metric or "")
        said.append(f"{kind} {float(config.get('TargetValue', 0)):g}" if kind else name)
    return ", ".join(said) or "off"


def ensure_scaling_policies(ctx: Ctx, tier: Tier, group_existed: bool) -> None:
    """The group's policies exactly as config.yaml says: a missing one or one with another target is
    put (PutScalingPolicy creates or replaces), one config.yaml no longer asks for is deleted."""
    group = ctx.name(tier.asg_role)
    wanted = wanted_policies(ctx, tier)
    current = find_scaling_policies(ctx, tier) if group_existed else {}  # a group made just now has none
    for name, policy in wanted.items():
        have = current.get(name)
        differ = policy_differences(have, policy) if have is not None else []
        if have is not None and not differ:
            continue
        specification: dict[str, Any] = {"PredefinedMetricType": policy.metric}
        if policy.label is not None:
            specification["ResourceLabel"] = policy.label
        ctx.aws.call("autoscaling", "put_scaling_policy", resource=f"scaling policy {name}",
                     AutoScalingGroupName=group, PolicyName=name, PolicyType="TargetTrackingScaling",
                     EstimatedInstanceWarmup=INSTANCE_WARMUP,
                     TargetTrackingConfiguration={"PredefinedMetricSpecification": specification,
                                                  "TargetValue": policy.target})
        if have is None:
            ctx.record("created", "scaling policy", name, policy.summary)
        else:
            ctx.record("changed", "scaling policy", name, "; ".join(differ))
    for name in sorted(current.keys() - wanted.keys()):
        delete_scaling_policy(ctx, group, name)


def delete_scaling_policy(ctx: Ctx, group: str, name: str) -> None:
    # Deleting a target-tracking policy deletes the CloudWatch alarms AWS made for it too.
    ctx.aws.call("autoscaling", "delete_policy", resource=f"scaling policy {name}", AutoScalingGroupName=group,
                 PolicyName=name, missing_ok=("ValidationError",))
    ctx.record("deleted", "scaling policy", name)


def check_scaling_policies(ctx: Ctx, tier: Tier, result: Check) -> None:
    current = find_scaling_policies(ctx, tier)
    # What status shows, like healthy_targets: a description, not an ID, so `up` does not put it in
    # the state file (whose IDs status compares with AWS's: the drift lines below say it already).
    ctx.resources["scaling"] = scaling_summary(current)
    for name, policy in wanted_policies(ctx, tier).items():
        if result.found(f"scaling policy {name} ({policy.summary})", name in current):
            result.drift += [f"scaling policy {name}: {d}" for d in policy_differences(current[name], policy)]
    result.drift += [f"scaling policy {name}: not in config.yaml (`up` deletes it)"
                     for name in sorted(current.keys() - wanted_policies(ctx, tier).keys())]
