"""A tier behind a load balancer, as Parts 5 and 7 of the guide build it.

Target group with a /health check; an application load balancer with a
listener on 80 forwarding to it; a launch template of the tier's AMI; an Auto
Scaling group over the tier's two subnets, attached to the target group, with
ELB health checks (its target tracking: threetier.blocks.scaling). A tier has
two colors of target group, template and group (blue: today's names; green: the
same with -g); which one serves, and the move from one to the other, is
threetier.blocks.colors. The functions here act on the color a `Tier` names.

What the tier stands on, the Part gives it in its `Tier`: the VPC, the subnets
and security groups of Part 2, the instance profile of Part 1, the AMI.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from threetier.aws import STACK_TAG, Look, Poll, client_token, tag_value
from threetier.blocks import alarms, baking, log_groups, scaling
from threetier.blocks.alarms import load_balancer_dimension, target_group_dimension
from threetier.config import Scaling, Spot
from threetier.engine import Check, Ctx
from threetier.errors import ThreetierError, UsageError

ALB_ACTIVE_TIMEOUT = 15 * 60      # 90-180 s typically
HEALTHY_TIMEOUT = 20 * 60         # instances boot from the AMI, then 2 passing checks
GONE_TIMEOUT = 15 * 60
DEREGISTRATION_DELAY = "30"       # seconds; the default 300 slows every scale-in and teardown
ELB_NOT_FOUND = ("LoadBalancerNotFound", "TargetGroupNotFound", "ListenerNotFound")
# Requests with header names that are not valid HTTP are dropped at the ALB, not passed to nginx
# or the app (request smuggling); AWS's default keeps them.
DROP_INVALID_HEADERS = "routing.http.drop_invalid_header_fields.enabled"
DELETION_PROTECTION = "deletion_protection.enabled"
# IMDSv2 only, and one hop: a container on the instance cannot reach the role's credentials.
METADATA_OPTIONS: dict[str, Any] = {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1}
# Auto Scaling group metrics the dashboard draws. AWS publishes them only once collection is enabled
# (free at 1-minute granularity); every group of the stack collects them.
GROUP_METRICS = ("GroupDesiredCapacity", "GroupInServiceInstances")
# A tier's 5xx alarm: the share of the requests its ALB forwarded in 5 minutes that its instances
# answered 5xx. A working tier answers next to none; 5 % is a broken release or a lost database, not
# one instance restarting behind a 30 s deregistration delay. Under 10 requests in 5 minutes (a quiet
# lab) it does not judge: one failed request of three is not 33 % of anything.
TARGET_5XX_PERCENT = 5
TARGET_5XX_MIN_REQUESTS = 10


@dataclass(frozen=True)
class Tier:
    tier: str                     # "app" or "web"
    scheme: str                   # "internal" or "internet-facing"
    port: int                     # where the instances listen
    alb_role: str                 # e.g. "int-alb" (ELB names: 32 characters at most)
    # What it stands on, as the Part found it of Parts 2 and 1 ("" while unknown: `status` of a
    # stack without them).
    vpc: str
    subnets: tuple[str, ...]      # the tier's two subnets, one per AZ
    alb_security_group: str
    instance_security_group: str
    instance_profile_arn: str     # the tier's own (Part 1)
    instance_type: str
    ami: str
    min: int
    desired: int
    max: int
    scaling: Scaling              # target tracking; while on, the policies own the group's desired capacity
    color: str = "blue"           # whose target group, template and group the functions here act on
    spot: Spot | None = None      # a mixed instances policy over the template; None: on-demand only
    # The external ALB's second group with edge.cdn (HTTPS from CloudFront only); "" without.
    origin_security_group: str = ""

    def of(self, color: str) -> Tier:
        return replace(self, color=color)

    @property
    def alb_security_groups(self) -> list[str]:
        return [self.alb_security_group, *([self.origin_security_group] if self.origin_security_group else [])]

    @property
    def suffix(self) -> str:
        """Blue keeps the names stacks had before colors; green adds -g (ELB names: 32 characters)."""
        return "" if self.color == "blue" else "-g"

    @property
    def target_group_role(self) -> str:
        return f"{self.tier}-tg{self.suffix}"

    @property
    def launch_template_role(self) -> str:
        return f"{self.tier}-lt{self.suffix}"

    @property
    def asg_role(self) -> str:
        return f"{self.tier}-asg{self.suffix}"

    @property
    def healthy_floor(self) -> int:
        """How many healthy targets mean the tier serves: with policies, the group moves between min
        and max, and only min is promised; without, the fixed desired capacity."""
        return self.min if self.scaling.on else self.desired


def elb_tags(ctx: Ctx, role: str) -> list[dict[str, str]]:
    return ctx.tags(role)


# -- what the finders read (the inventory) ---------------------------------------
def target_group_look(ctx: Ctx, tier: Tier) -> Look:
    return Look("elbv2", "describe_target_groups", {"Names": [ctx.name(tier.target_group_role)]},
                missing_ok=ELB_NOT_FOUND)


def load_balancer_look(ctx: Ctx, tier: Tier) -> Look:
    return Look("elbv2", "describe_load_balancers", {"Names": [ctx.name(tier.alb_role)]}, missing_ok=ELB_NOT_FOUND)


def both_colors(ctx: Ctx, tier: Tier, role: Callable[[Tier], str]) -> list[str]:
    return [ctx.name(role(tier.of(color))) for color in COLORS]


def launch_template_look(ctx: Ctx, tier: Tier) -> Look:
    """Both colors' templates in one read (a filter: LaunchTemplateNames refuses a name not found)."""
    names = both_colors(ctx, tier, lambda each: each.launch_template_role)
    return Look("ec2", "describe_launch_templates", {"Filters": [{"Name": "launch-template-name", "Values": names}]},
                missing_ok=("InvalidLaunchTemplateName.NotFoundException",))


def auto_scaling_group_look(ctx: Ctx, tier: Tier) -> Look:
    """Both colors' groups in one read."""
    names = both_colors(ctx, tier, lambda each: each.asg_role)
    return Look("autoscaling", "describe_auto_scaling_groups", {"AutoScalingGroupNames": names})


def attributes_look(arn: str) -> Look:
    return Look("elbv2", "describe_target_group_attributes", {"TargetGroupArn": arn})


def load_balancer_attributes_look(arn: str) -> Look:
    return Look("elbv2", "describe_load_balancer_attributes", {"LoadBalancerArn": arn}, missing_ok=ELB_NOT_FOUND)


def health_look(arn: str) -> Look:
    return Look("elbv2", "describe_target_health", {"TargetGroupArn": arn})


def listeners_look(arn: str) -> Look:
    return Look("elbv2", "describe_listeners", {"LoadBalancerArn": arn}, missing_ok=ELB_NOT_FOUND)


def rules_look(listener_arn: str) -> Look:
    return Look("elbv2", "describe_rules", {"ListenerArn": listener_arn}, missing_ok=ELB_NOT_FOUND)


def tags_look(arns: list[str]) -> Look:
    # A rule deleted between DescribeRules and this read fails the whole read: none known as the stack's.
    return Look("elbv2", "describe_tags", {"ResourceArns": arns}, missing_ok=(*ELB_NOT_FOUND, "RuleNotFound"))


def versions_look(template_id: str) -> Look:
    return Look("ec2", "describe_launch_template_versions", {"LaunchTemplateId": template_id, "Versions": ["$Default"]})


COLORS = ("blue", "green")


def looks(ctx: Ctx, tier: Tier) -> Iterator[Look]:
    """Both colors' three resources by name, the load balancer, and the stack's instances (one
    read, shared with the bakes); then, for those found, what hangs off them."""
    aws = ctx.aws
    colored = [tier.of(color) for color in COLORS]
    yield load_balancer_look(ctx, tier)
    yield baking.instances_look(ctx)
    yield from (launch_template_look(ctx, tier), auto_scaling_group_look(ctx, tier))
    yield from (target_group_look(ctx, each) for each in colored)
    for balancer in (aws.peek(load_balancer_look(ctx, tier)) or {}).get("LoadBalancers", []):
        yield listeners_look(balancer["LoadBalancerArn"])
        yield load_balancer_attributes_look(balancer["LoadBalancerArn"])
        for listener in (aws.peek(listeners_look(balancer["LoadBalancerArn"])) or {}).get("Listeners", []):
            if answers_itself(listener["DefaultActions"]):  # 443 with edge.cdn: its rule forwards
                yield rules_look(listener["ListenerArn"])
    for each in colored:
        for group in (aws.peek(target_group_look(ctx, each)) or {}).get("TargetGroups", []):
            yield attributes_look(group["TargetGroupArn"])
            yield health_look(group["TargetGroupArn"])
    for template in (aws.peek(launch_template_look(ctx, tier)) or {}).get("LaunchTemplates", []):
        yield versions_look(template["LaunchTemplateId"])
    for group in (aws.peek(auto_scaling_group_look(ctx, tier)) or {}).get("AutoScalingGroups", []):
        # Read even with scaling off: a policy left from before is deleted.
        yield scaling.policies_look(ctx, next(each for each in colored
                                              if ctx.name(each.asg_role) == group["AutoScalingGroupName"]))


# -- start -----------------------------------------------------------------------
def start(ctx: Ctx, tier: Tier, keep_actions: tuple[list[dict[str, Any]], ...] = ()) -> None:
    """What needs only the network: the (live color's) target group, the load balancer and its
    listener (whose DNS name is known at once, though the ALB takes minutes to become active).
    keep_actions: other default actions listener 80 may keep (the external ALB's redirect to HTTPS,
    set once 443 exists)."""
    target_group = ensure_target_group(ctx, tier, tier.vpc)
    balancer = ensure_load_balancer(ctx, tier, list(tier.subnets), tier.alb_security_groups)
    ensure_listener(ctx, tier, balancer, target_group, keep_actions)


def start_instances(ctx: Ctx, tier: Tier, desired: int | None = None) -> None:
    """What needs the tier's AMI, for the color `tier` names: the launch template (a change is a new
    default version: only for a group with no instance to serve, threetier.blocks.colors sees to
    that) and the Auto Scaling group on the target group in ctx.resources, with its policies."""
    target_group = ctx.resources["target_group_arn"]
    template, _ = ensure_launch_template(ctx, tier, tier.instance_security_group)
    existed = ensure_auto_scaling_group(ctx, tier, template, target_group, list(tier.subnets), desired)
    scaling.ensure_scaling_policies(ctx, tier, group_existed=existed)


def listed(key: str, found: dict[str, Any] | None) -> dict[str, Any] | None:
    """`found` in the shape of a create's answer that lists what it made under `key` (None: nothing found)."""
    return {key: [found]} if found is not None else None


def find_target_group(ctx: Ctx, tier: Tier, *, live: bool = False) -> dict[str, Any] | None:
    found = ctx.aws.look(target_group_look(ctx, tier), resource=f"target group {ctx.name(tier.target_group_role)}",
                         live=live)
    return found["TargetGroups"][0] if found and found["TargetGroups"] else None


def ensure_target_group(ctx: Ctx, tier: Tier, vpc: str) -> str:
    aws, name = ctx.aws, ctx.name(tier.target_group_role)
    group = find_target_group(ctx, tier)
    if group is None:
        group = aws.call("elbv2", "create_target_group", resource=f"target group {name}", Name=name,
                         Protocol="HTTP", Port=tier.port, VpcId=vpc, TargetType="instance",
                         HealthCheckProtocol="HTTP", HealthCheckPath=ctx.config.app.health_path if tier.tier == "app" else "/health", HealthCheckPort="traffic-port",
                         HealthCheckIntervalSeconds=15, HealthCheckTimeoutSeconds=5,
                         HealthyThresholdCount=2, UnhealthyThresholdCount=3, Matcher={"HttpCode": "200"},
                         Tags=elb_tags(ctx, tier.target_group_role), exists=("DuplicateTargetGroupName",),
                         found=lambda: listed("TargetGroups", find_target_group(ctx, tier, live=True)))["TargetGroups"][0]
        ctx.record("created", "target group", name)
    elif group["Port"] != tier.port or group["VpcId"] != vpc:
        assert ctx.part is not None  # `up` runs this inside a part (as Ctx.part_number asserts)
        raise ThreetierError(f"{ctx.part.label}: target group {name} listens on {group['Port']} in {group['VpcId']}, "
                             f"not on {tier.port} in {vpc}; `threetier down`, then `up`")
    arn = group["TargetGroupArn"]
    attributes = {a["Key"]: a["Value"] for a in aws.look(attributes_look(arn), resource=f"target group {name}")["Attributes"]}
    if attributes.get("deregistration_delay.timeout_seconds") != DEREGISTRATION_DELAY:
        aws.call("elbv2", "modify_target_group_attributes", resource=f"target group {name}", TargetGroupArn=arn,
                 Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": DEREGISTRATION_DELAY}])
        ctx.record("changed", "target group attribute", f"{name} deregistration delay")
    ctx.resources["target_group_arn"] = arn
    return arn


def find_load_balancer(ctx: Ctx, tier: Tier, *, live: bool = False) -> dict[str, Any] | None:
    found = ctx.aws.look(load_balancer_look(ctx, tier), resource=f"load balancer {ctx.name(tier.alb_role)}", live=live)
    return found["LoadBalancers"][0] if found and found["LoadBalancers"] else None


def ensure_load_balancer(ctx: Ctx, tier: Tier, subnets: list[str], security_groups: list[str]) -> str:
    aws, name = ctx.aws, ctx.name(tier.alb_role)
    balancer = find_load_balancer(ctx, tier)
    if balancer is None:
        balancer = aws.call("elbv2", "create_load_balancer", resource=f"load balancer {name}", Name=name,
                            Subnets=subnets, SecurityGroups=security_groups, Scheme=tier.scheme,
                            Type="application", IpAddressType="ipv4",
                            Tags=elb_tags(ctx, tier.alb_role), exists=("DuplicateLoadBalancerName",),
                            found=lambda: listed("LoadBalancers", find_load_balancer(ctx, tier, live=True)))["LoadBalancers"][0]
        ctx.record("created", f"{tier.scheme} load balancer", name)
        # CreateLoadBalancer takes no attributes: those not at AWS's defaults are set in the next call.
        changed = attribute_changes({}, wanted_load_balancer_attributes(ctx))
    else:
        if sorted(balancer.get("SecurityGroups", [])) != sorted(security_groups):
            aws.call("elbv2", "set_security_groups", resource=f"load balancer {name}",
                     LoadBalancerArn=balancer["LoadBalancerArn"], SecurityGroups=security_groups)
            ctx.record("changed", "load balancer security groups", name, ", ".join(security_groups))
        # Gone since it was found (None): the change is asked for all the same, and AWS says so.
        changed = attribute_changes(load_balancer_attributes(ctx, tier, balancer["LoadBalancerArn"]) or {},
                                    wanted_load_balancer_attributes(ctx))
    if changed:
        aws.call("elbv2", "modify_load_balancer_attributes", resource=f"load balancer {name}",
                 LoadBalancerArn=balancer["LoadBalancerArn"],
                 Attributes=[{"Key": key, "Value": value} for key, value in changed.items()])
        ctx.record("changed", "load balancer attributes", name,
                   ", ".join(f"{key}={value}" for key, value in changed.items()))
    ctx.resources["load_balancer_arn"] = balancer["LoadBalancerArn"]
    ctx.resources["load_balancer_dns"] = balancer["DNSName"]
    return balancer["LoadBalancerArn"]


def wanted_load_balancer_attributes(ctx: Ctx) -> dict[str, str]:
    protected = ctx.config.load_balancers.deletion_protection
    return {DROP_INVALID_HEADERS: "true", DELETION_PROTECTION: "true" if protected else "false"}


def load_balancer_attributes(ctx: Ctx, tier: Tier, arn: str) -> dict[str, str] | None:
    """The ALB's attributes as AWS has them; None when it vanished since it was found."""
    found = ctx.aws.look(load_balancer_attributes_look(arn), resource=f"load balancer {ctx.name(tier.alb_role)}")
    return None if found is None else {a["Key"]: a["Value"] for a in found.get("Attributes", [])}


def attribute_changes(current: dict[str, str], wanted: dict[str, str]) -> dict[str, str]:
    """The wanted attributes the ALB does not have; one AWS leaves out is at its default, false."""
    return {key: value for key, value in wanted.items() if current.get(key, "false") != value}


def forward_to(target_group: str) -> list[dict[str, Any]]:
    return [{"Type": "forward", "TargetGroupArn": target_group}]


# AWS's bounds on a weighted forward (moto checks neither): each weight 0-999, 5 target groups.
MAX_WEIGHT = 999
MAX_FORWARD_GROUPS = 5


def weighted_forward(weights: dict[str, int]) -> list[dict[str, Any]]:
    """A forward to these target groups (ARN -> weight); one alone is a plain forward. A group at
    weight 0 is on the listener, so its targets are health-checked, and gets no request. No
    stickiness: a client's next request may go to either color while both have weight."""
    if len(weights) == 1:
        return forward_to(next(iter(weights)))
    if len(weights) > MAX_FORWARD_GROUPS or any(not 0 <= w <= MAX_WEIGHT for w in weights.values()) \
            or not any(weights.values()):
        raise ThreetierError(f"internal error: a forward with weights {weights} (0-{MAX_WEIGHT} each, "
                             f"{MAX_FORWARD_GROUPS} target groups at most, not all 0)")
    return [{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in weights.items()],
        "TargetGroupStickinessConfig": {"Enabled": False}}}]


def forward_weights(actions: list[dict[str, Any]]) -> dict[str, int] | None:
    """The target groups a listener's default action forwards to, ARN -> weight (a plain forward:
    weight 1); None when it does not forward (a redirect, say)."""
    if len(actions) != 1 or actions[0].get("Type") != "forward":
        return None
    action = actions[0]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
    return {action["TargetGroupArn"]: 1} if action.get("TargetGroupArn") else {}


def shares(weights: dict[str, int]) -> dict[str, float]:
    """Weights as shares of the traffic: {a: 1} and {a: 100} forward the same way."""
    total = sum(weights.values())
    return {arn: round(weight / total, 6) if total else 0.0 for arn, weight in weights.items()}


def serves(actions: list[dict[str, Any]], target_group: str) -> bool:
    """Whether the actions forward to `target_group` at least as much as to any other group: a
    listener mid-deploy ({live: 100, new: 0}) serves the live color and is left as it is."""
    weights = forward_weights(actions)
    return weights is not None and target_group in weights and weights[target_group] == max(weights.values()) > 0


def same_actions(current: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
    """Whether a listener's default actions are these: the keys we set, ignoring what AWS adds
    (an Order, a ForwardConfig echoing the target group)."""
    def essence(actions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        weights = forward_weights(actions)
        if weights is not None:
            return [("forward", tuple(sorted(shares(weights).items())))]
        return [(a["Type"], a.get("TargetGroupArn"),
                 tuple(sorted((a.get("RedirectConfig") or a.get("FixedResponseConfig") or {}).items())))
                for a in actions]
    return essence(current) == essence(wanted)


def answers_itself(actions: list[dict[str, Any]]) -> bool:
    """A fixed response (443's 403 with edge.cdn, whose rule forwards): neither a forward nor a redirect."""
    return any(action.get("Type") == "fixed-response" for action in actions)


@dataclass(frozen=True)
class Forward:
    """Where an ALB forwards to a tier's target groups: a listener's default action, or, on a listener
    that answers itself by default (443 with edge.cdn: 403), one of its rules."""
    listener: dict[str, Any]
    rule: dict[str, Any] | None = None

    @property
    def actions(self) -> list[dict[str, Any]]:
        return self.rule["Actions"] if self.rule is not None else self.listener["DefaultActions"]

    def where(self, ctx: Ctx, tier: Tier) -> str:
        rule = f" rule {self.rule['Priority']}" if self.rule is not None else ""
        return f"{ctx.name(tier.alb_role)}:{self.listener['Port']}{rule}"


def listener_rules(ctx: Ctx, tier: Tier, listener: dict[str, Any], *, live: bool = False) -> list[dict[str, Any]]:
    """The listener's rules but its default one."""
    found = ctx.aws.look(rules_look(listener["ListenerArn"]), live=live,
                         resource=f"rules of listener {ctx.name(tier.alb_role)}:{listener['Port']}") or {}
    return [rule for rule in found.get("Rules", []) if not rule.get("IsDefault")]


# edge.cdn: 443's rule forwarding on the origin header, tagged with this role at CreateRule (threetier.blocks.https).
ORIGIN_RULE = "origin-rule"
DESCRIBE_TAGS_ARNS = 20  # DescribeTags takes at most 20 ARNs


def origin_rule_role(tier: Tier) -> str:
    return f"{tier.alb_role}-{ORIGIN_RULE}"


def stack_rules(ctx: Ctx, tier: Tier, listener: dict[str, Any], *, live: bool = False) -> list[dict[str, Any]]:
    """The listener's rules that are the stack's: tagged at CreateRule with the stack and the origin rule's
    Name. Any other rule, whatever its priority or conditions, is the user's: never changed or deleted."""
    rules = listener_rules(ctx, tier, listener, live=live)
    mine: set[str] = set()
    for start in range(0, len(rules), DESCRIBE_TAGS_ARNS):
        arns = [rule["RuleArn"] for rule in rules[start:start + DESCRIBE_TAGS_ARNS]]
        found = ctx.aws.look(tags_look(arns), live=live,
                             resource=f"tags of the rules of listener {ctx.name(tier.alb_role)}:{listener['Port']}")
        mine |= {described["ResourceArn"] for described in (found or {}).get("TagDescriptions", [])
                 if tag_value(described, STACK_TAG) == ctx.stack
                 and tag_value(described, "Name") == ctx.name(origin_rule_role(tier))}
    return [rule for rule in rules if rule["RuleArn"] in mine]


def forwards(ctx: Ctx, tier: Tier, listeners: list[dict[str, Any]]) -> list[Forward]:
    """What of these listeners forwards (not 80's redirect to HTTPS, not 443's 403: there, the stack's origin
    rule; a user's rules are not the stack's to move), 443 first: it decides."""
    found = []
    for listener in listeners:
        if forward_weights(listener["DefaultActions"]) is not None:
            found.append(Forward(listener))
        elif answers_itself(listener["DefaultActions"]):  # rules read only here: no call for other stacks
            found += [Forward(listener, rule) for rule in stack_rules(ctx, tier, listener)
                      if forward_weights(rule["Actions"]) is not None]
    return sorted(found, key=lambda forward: (forward.listener["Port"] != 443, forward.listener["Port"]))


def set_forward(ctx: Ctx, tier: Tier, forward: Forward, actions: list[dict[str, Any]], said: str) -> None:
    where = forward.where(ctx, tier)
    if forward.rule is not None:
        ctx.aws.call("elbv2", "modify_rule", resource=f"listener rule {where}", RuleArn=forward.rule["RuleArn"],
                     Actions=actions)
        ctx.record("changed", "listener rule", where, said)
    else:
        ctx.aws.call("elbv2", "modify_listener", resource=f"listener {where}",
                     ListenerArn=forward.listener["ListenerArn"], DefaultActions=actions)
        ctx.record("changed", "listener", where, said)


def find_listener(ctx: Ctx, tier: Tier, balancer: str, port: int, *, live: bool = False) -> dict[str, Any] | None:
    listeners = (ctx.aws.look(listeners_look(balancer), resource=f"listeners of {ctx.name(tier.alb_role)}", live=live)
                 or {}).get("Listeners", [])
    return next((listener for listener in listeners if listener["Port"] == port), None)


def ensure_listener(ctx: Ctx, tier: Tier, balancer: str, target_group: str,
                    keep_actions: tuple[list[dict[str, Any]], ...] = ()) -> None:
    aws, name = ctx.aws, ctx.name(tier.alb_role)
    http = find_listener(ctx, tier, balancer, 80)
    forward = forward_to(target_group)
    if http is None:
        http = aws.call("elbv2", "create_listener", resource=f"listener {name}:80", LoadBalancerArn=balancer,
                        Protocol="HTTP", Port=80, DefaultActions=forward,
                        Tags=elb_tags(ctx, f"{tier.alb_role}-http"), exists=("DuplicateListener",),
                        found=lambda: listed("Listeners", find_listener(ctx, tier, balancer, 80, live=True)))["Listeners"][0]
        ctx.record("created", "listener", f"{name}:80")
    elif not serves(http["DefaultActions"], target_group) and \
            not any(same_actions(http["DefaultActions"], wanted) for wanted in keep_actions):
        aws.call("elbv2", "modify_listener", resource=f"listener {name}:80", ListenerArn=http["ListenerArn"],
                 DefaultActions=forward)
        ctx.record("changed", "listener", f"{name}:80")
    ctx.resources["listener_arn"] = http["ListenerArn"]


def launch_template_data(ctx: Ctx, tier: Tier, security_group: str) -> dict[str, Any]:
    instance_tags = ctx.tags(tier.tier)
    return {
        "ImageId": tier.ami,
        "InstanceType": tier.instance_type,
        "SecurityGroupIds": [security_group],
        "IamInstanceProfile": {"Arn": tier.instance_profile_arn},
        "MetadataOptions": dict(METADATA_OPTIONS),
        "TagSpecifications": [{"ResourceType": "instance", "Tags": instance_tags},
                              {"ResourceType": "volume", "Tags": instance_tags}],
    }


def find_launch_template(ctx: Ctx, tier: Tier) -> dict[str, Any] | None:
    found = ctx.aws.look(launch_template_look(ctx, tier), resource=ctx.name(tier.launch_template_role))
    name = ctx.name(tier.launch_template_role)
    return next((t for t in (found or {}).get("LaunchTemplates", []) if t["LaunchTemplateName"] == name), None)


def ensure_launch_template(ctx: Ctx, tier: Tier, security_group: str) -> tuple[str, bool]:
    """One template per tier; a change (new AMI, instance type, security group, instance profile,
    metadata options) becomes a new default version. Returns (template ID, whether a new version
    was made)."""
    aws, name = ctx.aws, ctx.name(tier.launch_template_role)
    data = launch_template_data(ctx, tier, security_group)
    content = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    template = find_launch_template(ctx, tier)
    new_version = False
    if template is None:
        # Same within the hour, so a create retried after a crash returns the template it made; a
        # new token after that, or EC2 (which remembers tokens for a day) could answer a template
        # deleted by `down` and made again with the same data with the deleted one.
        template = aws.call("ec2", "create_launch_template", resource=name, LaunchTemplateName=name,
                            VersionDescription=f"{tier.tier} tier", LaunchTemplateData=data,
                            ClientToken=client_token(name, content),
                            TagSpecifications=ctx.tag_spec("launch-template", tier.launch_template_role))["LaunchTemplate"]
        ctx.record("created", "launch template", name, template["LaunchTemplateId"])
    else:
        versions = aws.look(versions_look(template["LaunchTemplateId"]), resource=name)["LaunchTemplateVersions"]
        current = versions[0]["LaunchTemplateData"] if versions else {}
        differ = template_differences(current, data)
        if differ:
            token = client_token(name, template["LaunchTemplateId"], content)  # as above, per template
            version = aws.call("ec2", "create_launch_template_version", resource=name,
                               LaunchTemplateId=template["LaunchTemplateId"], LaunchTemplateData=data,
                               ClientToken=token)["LaunchTemplateVersion"]
            aws.call("ec2", "modify_launch_template", resource=name, LaunchTemplateId=template["LaunchTemplateId"],
                     DefaultVersion=str(version["VersionNumber"]))
            ctx.record("changed", "launch template", name,
                       f"version {version['VersionNumber']}: {', '.join(differ)}")
            new_version = True
    ctx.resources["launch_template"] = template["LaunchTemplateId"]
    return template["LaunchTemplateId"], new_version


def template_data(ctx: Ctx, tier: Tier) -> dict[str, Any] | None:
    """What the color's launch template launches (its default version); None without one."""
    template = find_launch_template(ctx, tier)
    if template is None:
        return None
    versions = ctx.aws.look(versions_look(template["LaunchTemplateId"]),
                            resource=ctx.name(tier.launch_template_role))["LaunchTemplateVersions"]
    return versions[0]["LaunchTemplateData"] if versions else {}


def template_differences(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The fields of `wanted` launch template data that the `current` version does not have."""
    differ: list[str] = [key for key in ("ImageId", "InstanceType", "SecurityGroupIds")
                         if key in wanted and current.get(key) != wanted[key]]
    differ += [key for key in ("IamInstanceProfile", "MetadataOptions")
               if key in wanted and lacks(current.get(key), wanted[key])]
    return differ


def lacks(have: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Whether `have` differs from `wanted` in a key `wanted` sets: AWS fills in options nobody gave
    it (MetadataOptions' HttpProtocolIpv6, say), and those are no difference."""
    return any((have or {}).get(key) != value for key, value in wanted.items())


def find_auto_scaling_group(ctx: Ctx, tier: Tier, *, live: bool = False) -> dict[str, Any] | None:
    found = ctx.aws.look(auto_scaling_group_look(ctx, tier), resource=ctx.name(tier.asg_role),
                         live=live)["AutoScalingGroups"]
    name = ctx.name(tier.asg_role)
    return next((group for group in found if group["AutoScalingGroupName"] == name), None)


def ensure_auto_scaling_group(ctx: Ctx, tier: Tier, template: str, target_group: str, subnets: list[str],
                              desired: int | None = None) -> bool:
    """Returns whether the group existed already. desired: what a new group starts at instead of
    config's (a new color starts at the live one's size, so a scaled-out tier stays scaled out)."""
    aws, name = ctx.aws, ctx.name(tier.asg_role)
    group = find_auto_scaling_group(ctx, tier)
    if group is None:
        start_at = tier.desired if desired is None else min(max(desired, tier.min), tier.max)
        aws.call("autoscaling", "create_auto_scaling_group", resource=f"Auto Scaling group {name}",
                 AutoScalingGroupName=name, **instances_source(tier, template),
                 MinSize=tier.min, DesiredCapacity=start_at, MaxSize=tier.max,
                 VPCZoneIdentifier=",".join(subnets), TargetGroupARNs=[target_group],
                 HealthCheckType="ELB", HealthCheckGracePeriod=300,
                 Tags=[{**tag, "PropagateAtLaunch": True, "ResourceId": name, "ResourceType": "auto-scaling-group"}
                       for tag in ctx.tags(tier.tier)], exists=("AlreadyExists",),
                 found=lambda: find_auto_scaling_group(ctx, tier, live=True))
        ctx.record("created", "Auto Scaling group", name)
        enable_group_metrics(ctx, tier, set())
    else:
        enable_group_metrics(ctx, tier, collected_metrics(group))
        changed: dict[str, Any] = {k: v for k, v in managed_sizes(tier).items() if group.get(k) != v}
        if group.get("DesiredCapacity", 0) < tier.min or group.get("MaxSize") == 0:
            # Paused (max 0; config's max is 1 at least) or below min: it starts again where a new
            # group does. Not min alone: with min 0 a paused tier would stay at 0 instances.
            changed["DesiredCapacity"] = tier.desired
        if changed:
            aws.call("autoscaling", "update_auto_scaling_group", resource=f"Auto Scaling group {name}",
                     AutoScalingGroupName=name, **changed)
            ctx.record("changed", "Auto Scaling group size", name, ", ".join(f"{k}={v}" for k, v in changed.items()))
        said = spot_drift(tier, group, template)
        if said is not None:
            aws.call("autoscaling", "update_auto_scaling_group", resource=f"Auto Scaling group {name}",
                     AutoScalingGroupName=name, **{"CapacityRebalance": False, **instances_source(tier, template)})
            ctx.record("changed", "Auto Scaling group instances", name, said)
        if target_group not in group.get("TargetGroupARNs", []):
            aws.call("autoscaling", "attach_load_balancer_target_groups", resource=f"Auto Scaling group {name}",
                     AutoScalingGroupName=name, TargetGroupARNs=[target_group])
            ctx.record("changed", "Auto Scaling group target group", name)
    ctx.resources["auto_scaling_group"] = name
    return group is not None


# Spot capacity from the pools both cheapest and least likely to be interrupted (AWS's recommended
# strategy), and a Spot instance AWS warns is at risk replaced before it is taken away.
SPOT_ALLOCATION = "price-capacity-optimized"


def mixed_instances_policy(template: str, spot: Spot) -> dict[str, Any]:
    """The group's policy for `spot`: the tier's launch template, one override per instance type (in
    config's order: the on-demand instances are the first type's, AWS's `prioritized` default)."""
    return {"LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": template, "Version": "$Default"},
                               "Overrides": [{"InstanceType": each} for each in spot.instance_types]},
            "InstancesDistribution": {"OnDemandBaseCapacity": spot.on_demand_base,
                                      "OnDemandPercentageAboveBaseCapacity": spot.on_demand_percent,
                                      "SpotAllocationStrategy": SPOT_ALLOCATION}}


def instances_source(tier: Tier, template: str) -> dict[str, Any]:
    """What a create or update of the group launches from: the template alone, or with `tier.spot` a
    mixed instances policy over it, capacity rebalancing on (an update back to the template alone turns
    it off: `ensure_auto_scaling_group`)."""
    if tier.spot is None:
        return {"LaunchTemplate": {"LaunchTemplateId": template, "Version": "$Default"}}
    return {"MixedInstancesPolicy": mixed_instances_policy(template, tier.spot), "CapacityRebalance": True}


def spot_said(policy: dict[str, Any] | None, rebalance: bool) -> str:
    if not policy:
        return "on-demand only"
    distribution = policy.get("InstancesDistribution", {})
    types = [o.get("InstanceType") for o in policy.get("LaunchTemplate", {}).get("Overrides", [])]
    return (f"Spot: on-demand base {distribution.get('OnDemandBaseCapacity', 0)}, "
            f"{distribution.get('OnDemandPercentageAboveBaseCapacity', 100)} % above it, "
            f"{distribution.get('SpotAllocationStrategy')}, {', '.join(map(str, types))}, "
            f"capacity rebalance {'on' if rebalance else 'off'}")


def spot_drift(tier: Tier, group: dict[str, Any], template: str | None) -> str | None:
    """How the group's instances policy differs from what `tier.spot` wants, in words; None: it does not."""
    policy = group.get("MixedInstancesPolicy")
    rebalance = bool(group.get("CapacityRebalance"))
    if tier.spot is None:
        return None if not policy else f"{spot_said(policy, rebalance)}, config says on-demand only"
    wanted = mixed_instances_policy(template or "", tier.spot)
    have = policy or {}
    spec = have.get("LaunchTemplate", {}).get("LaunchTemplateSpecification", {})
    distribution = have.get("InstancesDistribution", {})
    same = (bool(policy) and rebalance
            and (template is None or spec.get("LaunchTemplateId") == template)
            and [o.get("InstanceType") for o in have.get("LaunchTemplate", {}).get("Overrides", [])]
            == list(tier.spot.instance_types)
            and all(distribution.get(key) == value for key, value in wanted["InstancesDistribution"].items()))
    return None if same else f"{spot_said(policy, rebalance)}, config says {spot_said(wanted, True)}"


def collected_metrics(group: dict[str, Any]) -> set[str]:
    return {metric["Metric"] for metric in group.get("EnabledMetrics", [])}


def enable_group_metrics(ctx: Ctx, tier: Tier, collected: set[str]) -> None:
    """GROUP_METRICS collected, at 1-minute granularity. The call names the ones already collected too:
    AWS adds to them, moto replaces them with what it is given."""
    name = ctx.name(tier.asg_role)
    missing = sorted(set(GROUP_METRICS) - collected)
    if not missing:
        return
    ctx.aws.call("autoscaling", "enable_metrics_collection", resource=f"Auto Scaling group {name}",
                 AutoScalingGroupName=name, Metrics=sorted(collected | set(GROUP_METRICS)), Granularity="1Minute")
    ctx.record("changed", "Auto Scaling group metrics", name, ", ".join(missing))


def managed_sizes(tier: Tier) -> dict[str, int]:
    """The group sizes `up` keeps as config.yaml says. With scaling policies the desired capacity is
    theirs (config's desired is the size the group starts at): setting it back on every `up` would
    undo a scale-out under load. AWS itself keeps it between min and max when those change."""
    if tier.scaling.on:
        return {"MinSize": tier.min, "MaxSize": tier.max}
    return {"MinSize": tier.min, "DesiredCapacity": tier.desired, "MaxSize": tier.max}


def size_drift(tier: Tier, group: dict[str, Any], name: str) -> str | None:
    if all(group.get(key) == value for key, value in managed_sizes(tier).items()):
        return None
    if tier.scaling.on:
        return (f"Auto Scaling group {name}: min/max {(group['MinSize'], group['MaxSize'])}, config says "
                f"{(tier.min, tier.max)}")
    sizes = (group["MinSize"], group["DesiredCapacity"], group["MaxSize"])
    return f"Auto Scaling group {name}: min/desired/max {sizes}, config says {(tier.min, tier.desired, tier.max)}"


PAUSED_SIZES: dict[str, Any] = {"MinSize": 0, "DesiredCapacity": 0, "MaxSize": 0}


def paused_size_drift(group: dict[str, Any], name: str) -> str | None:
    """A paused group is at 0/0/0; anything else bills."""
    if all(group.get(key) == value for key, value in PAUSED_SIZES.items()):
        return None
    sizes = (group["MinSize"], group["DesiredCapacity"], group["MaxSize"])
    return (f"Auto Scaling group {name}: min/desired/max {sizes} while the stack is paused, which wants 0 "
            f"(a pause or resume did not finish: run the one you meant again)")


def sizes_said(tier: Tier) -> str:
    return f"min {tier.min}, desired {tier.desired}, max {tier.max}"


# -- pause -------------------------------------------------------------------------
PAUSE_TIMEOUT = 15 * 60  # the deregistration delay (30 s), then terminating (30-90 s)


def pause(ctx: Ctx, tier: Tier, tier_alarms: Callable[[Ctx], list[alarms.Alarm]]) -> None:
    """The group to min = desired = max = 0, then wait until its last instance is gone. Max goes to 0
    too, rather than suspending the group's processes: then nothing can scale it out again, neither
    a target-tracking policy nor a desired capacity set by hand, what it is paused at reads in one
    DescribeAutoScalingGroups, and `up` puts min and max back from config.yaml as it always does
    (and desired, below min: `ensure_auto_scaling_group`), with no suspended process left for it
    to know about. The tier's alarms are silenced first (`alarms.silence`)."""
    group, balancer = find_target_group(ctx, tier), find_load_balancer(ctx, tier)
    if group is not None and balancer is not None:  # what the alarms watch, when the state file does not say
        ctx.resources["target_group_arn"], ctx.resources["load_balancer_arn"] = \
            group["TargetGroupArn"], balancer["LoadBalancerArn"]
    alarms.silence(ctx, tier_alarms(ctx))
    scale_to_zero(ctx, tier, "paused")


def scale_to_zero(ctx: Ctx, tier: Tier, why: str = "retired") -> None:
    """The color's group to 0/0/0, then wait until its last instance is gone (each deregisters and
    drains first, for the deregistration delay)."""
    name = ctx.name(tier.asg_role)
    found = find_auto_scaling_group(ctx, tier)
    if found is None:
        return
    if paused_size_drift(found, name) is not None:
        ctx.aws.call("autoscaling", "update_auto_scaling_group", resource=f"Auto Scaling group {name}",
                     AutoScalingGroupName=name, **PAUSED_SIZES)
        ctx.record("changed", "Auto Scaling group size", name, f"min=0, desired=0, max=0 ({why})")

    def probe() -> Poll:
        left = (find_auto_scaling_group(ctx, tier) or {}).get("Instances", [])
        return Poll(not left, f"{len(left)} instances left")

    ctx.aws.wait(f"the instances of {name} to go", probe, delay=15, timeout=PAUSE_TIMEOUT)


# -- alarms ----------------------------------------------------------------------------
def alarm_whats(tier_name: str) -> tuple[str, str]:
    """The alarms of a tier (named <stack>-<what>): unhealthy hosts, and its instances' 5xx rate."""
    return f"{tier_name}-unhealthy-hosts", f"{tier_name}-5xx-rate"


def tier_alarms(ctx: Ctx, tier: Tier) -> list[alarms.Alarm]:
    """Both watch the tier's target group on its load balancer (CloudWatch's TargetGroup and
    LoadBalancer dimensions), known once the Part's `start` found or made them."""
    unhealthy, errors = alarm_whats(tier.tier)
    group_arn, balancer_arn = ctx.resources.get("target_group_arn"), ctx.resources.get("load_balancer_arn")
    where = alarms.dimensions(TargetGroup=target_group_dimension(group_arn),
                              LoadBalancer=load_balancer_dimension(balancer_arn)) if group_arn and balancer_arn else None
    balancer, group = ctx.name(tier.alb_role), ctx.name(tier.target_group_role)
    logs = log_groups.name(ctx, log_groups.APP if tier.tier == "app" else log_groups.NGINX_ERROR)
    if tier.tier == "app":
        errors_mean = ("Usually the database: the app answers 500 when Aurora does not (see the alarms "
                       f"{ctx.name('aurora-writer-cpu')} and -memory); else the app's errors are in log group {logs}.")
    else:
        errors_mean = ("nginx answers 502/504 when the internal load balancer or the app tier does not: look at "
                       f"the app tier's alarms first, then nginx's error log, log group {logs}.")
    return [
        alarms.Alarm(unhealthy, (
            f"The {tier.tier} tier: at least one instance behind {balancer} has failed its health check (GET "
            f"/health on port {tier.port}) for 5 minutes. The Auto Scaling group {ctx.name(tier.asg_role)} "
            f"replaces instances that stay unhealthy; if this stays in ALARM the new ones fail too: see the "
            f"health reason of each target (EC2 console: Target groups, {group}, Targets) and the instances' "
            f"log group {logs}."),
            None if where is None else alarms.watching(
                "AWS/ApplicationELB", "UnHealthyHostCount", where, statistic="Maximum", period=60, periods=5,
                threshold=0, comparison="GreaterThanThreshold", missing_data=alarms.MISSING)),
        alarms.Alarm(errors, (
            f"The {tier.tier} tier answered more than {TARGET_5XX_PERCENT} % of the requests {balancer} forwarded "
            f"to it in 5 minutes with a 5xx (counted when at least {TARGET_5XX_MIN_REQUESTS} came in). {errors_mean}"),
            None if where is None else {
                "Metrics": [
                    alarms.metric_query("errors", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", where,
                                        statistic="Sum", period=300),
                    alarms.metric_query("requests", "AWS/ApplicationELB", "RequestCount", where,
                                        statistic="Sum", period=300),
                    # No 5xx at all is no data point (ALB counts are published when not zero): FILL makes it 0 %.
                    {"Id": "rate", "Label": f"{tier.tier} tier 5xx, % of requests", "ReturnData": True,
                     "Expression": f"IF(requests >= {TARGET_5XX_MIN_REQUESTS}, 100 * FILL(errors, 0) / requests, 0)"},
                ],
                "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": float(TARGET_5XX_PERCENT),
                "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": alarms.NOT_BREACHING}),
    ]


# -- finish ----------------------------------------------------------------------
def wait_active(ctx: Ctx, tier: Tier) -> None:
    def probe() -> Poll:
        balancer = find_load_balancer(ctx, tier)
        state = balancer["State"]["Code"] if balancer else "missing"
        if state in ("failed", "missing"):
            return Poll(False, state, failed=(balancer or {}).get("State", {}).get("Reason", state))
        return Poll(state == "active", state)

    ctx.aws.wait(f"load balancer {ctx.name(tier.alb_role)}", probe, delay=15, timeout=ALB_ACTIVE_TIMEOUT)


def target_states(ctx: Ctx, tier: Tier) -> list[dict[str, Any]]:
    return ctx.aws.look(health_look(ctx.resources["target_group_arn"]),
                        resource=f"target group {ctx.name(tier.target_group_role)}")["TargetHealthDescriptions"]


def wait_healthy(ctx: Ctx, tier: Tier) -> None:
    def probe() -> Poll:
        targets = target_states(ctx, tier)
        healthy = sum(1 for t in targets if t["TargetHealth"]["State"] == "healthy")
        others = [f"{t['Target']['Id']} {t['TargetHealth']['State']} ({t['TargetHealth'].get('Reason', '')})"
                  for t in targets if t["TargetHealth"]["State"] != "healthy"]
        floor = tier.healthy_floor
        summary = f"{healthy}/{floor} healthy" + (f"; {', '.join(others)}" if others else "")
        return Poll(healthy >= max(floor, 1) or floor == 0, summary)

    ctx.aws.wait(f"healthy targets in {ctx.name(tier.target_group_role)}", probe, delay=15, timeout=HEALTHY_TIMEOUT)


# -- check -----------------------------------------------------------------------
def check(ctx: Ctx, tier: Tier, result: Check) -> None:
    group = find_target_group(ctx, tier)
    result.found(f"target group {ctx.name(tier.target_group_role)}", group is not None)
    unhealthy = None  # too few healthy targets: said below unless the group's own line says why
    if group is not None:
        ctx.resources["target_group_arn"] = group["TargetGroupArn"]
        targets = target_states(ctx, tier)
        healthy = sum(1 for t in targets if t["TargetHealth"]["State"] == "healthy")
        ctx.resources["healthy_targets"] = f"{healthy}/{len(targets)}"
        if healthy < tier.healthy_floor and not ctx.paused:
            unhealthy = f"target group {ctx.name(tier.target_group_role)}: {healthy} of {tier.healthy_floor} targets healthy"
    balancer = find_load_balancer(ctx, tier)
    result.found(f"load balancer {ctx.name(tier.alb_role)}", balancer is not None)
    if balancer is None:  # `up` gives the one it makes its listener
        result.found(f"listener {ctx.name(tier.alb_role)}:80", False)
    else:
        ctx.resources["load_balancer_arn"] = balancer["LoadBalancerArn"]
        ctx.resources["load_balancer_dns"] = balancer["DNSName"]
        listeners = (ctx.aws.look(listeners_look(balancer["LoadBalancerArn"]),
                                  resource=f"listeners of {ctx.name(tier.alb_role)}") or {}).get("Listeners", [])
        result.found(f"listener {ctx.name(tier.alb_role)}:80", any(listener["Port"] == 80 for listener in listeners))
        groups = sorted(balancer.get("SecurityGroups") or [])
        # Each known (not a stack missing Part 2), and said by AWS (a Stubber's answer may leave it out).
        if all(tier.alb_security_groups) and "SecurityGroups" in balancer and groups != sorted(tier.alb_security_groups):
            result.drift.append(f"load balancer {ctx.name(tier.alb_role)}: security groups {', '.join(groups)}, "
                                f"should be {', '.join(sorted(tier.alb_security_groups))}")
        current = load_balancer_attributes(ctx, tier, balancer["LoadBalancerArn"])
        if current is not None:  # None: gone since it was found (its listener shows as missing)
            for key, value in attribute_changes(current, wanted_load_balancer_attributes(ctx)).items():
                result.drift.append(f"load balancer {ctx.name(tier.alb_role)}: {key} is "
                                    f"{current.get(key, 'false')}, should be {value}")
    template = find_launch_template(ctx, tier)
    result.found(f"launch template {ctx.name(tier.launch_template_role)}", template is not None)
    if template is not None:  # what it launches, against what is wanted: threetier.blocks.colors.check
        ctx.resources["launch_template"] = template["LaunchTemplateId"]
    asg = find_auto_scaling_group(ctx, tier)
    result.found(f"Auto Scaling group {ctx.name(tier.asg_role)}", asg is not None)
    if asg is not None:
        ctx.resources["auto_scaling_group"] = asg["AutoScalingGroupName"]
        drift = paused_size_drift(asg, ctx.name(tier.asg_role)) if ctx.paused else \
            size_drift(tier, asg, ctx.name(tier.asg_role))
        # A group missing, or of another size than config says, is what `up` changes, and why the
        # targets are too few: one change, not two (`plan` counts what `up` then counts).
        if drift is None and unhealthy is not None:
            result.awaited(f"{unhealthy} (`up` waits for them: the group replaces unhealthy instances)")
        if drift is not None:
            result.drift.append(drift)
        elif ctx.paused:
            result.notes.append(f"Auto Scaling group {ctx.name(tier.asg_role)}: 0 instances while paused "
                                f"(`threetier resume` brings back {sizes_said(tier)})")
        spot = spot_drift(tier, asg, template["LaunchTemplateId"] if template is not None else None)
        if spot is not None:
            result.drift.append(f"Auto Scaling group {ctx.name(tier.asg_role)}: {spot} (`up` puts it back)")
        uncollected = sorted(set(GROUP_METRICS) - collected_metrics(asg))
        if uncollected:
            result.drift.append(f"Auto Scaling group {ctx.name(tier.asg_role)}: does not collect "
                                f"{', '.join(uncollected)}, which the dashboard draws (`up` enables it)")
        scaling.check_scaling_policies(ctx, tier, result)
    else:  # `up` puts them with the group (plan lists them to create)
        for name, policy in scaling.wanted_policies(ctx, tier).items():
            result.found(f"scaling policy {name} ({policy.summary})", False)


# -- destroy ---------------------------------------------------------------------
def before_down(ctx: Ctx, tier: Tier) -> None:
    """Checked before `down` deletes anything: a protected load balancer stops it at the start, not
    after the Auto Scaling group and the instances are gone."""
    balancer = find_load_balancer(ctx, tier)
    attributes = load_balancer_attributes(ctx, tier, balancer["LoadBalancerArn"]) if balancer else None
    if (attributes or {}).get(DELETION_PROTECTION) == "true":
        raise UsageError(f"down: load balancer {ctx.name(tier.alb_role)} has deletion protection on; set "
                         f"load_balancers.deletion_protection: false, run `threetier up`, then `down` again")


def destroy(ctx: Ctx, tier_name: str, alb_role: str) -> None:
    """Both colors' groups (deregistration delay 0 first), the listeners, the ALB, both colors'
    target groups and launch templates."""
    aws = ctx.aws
    alb_name = ctx.name(alb_role)
    colored = [(f"{tier_name}-tg{suffix}", f"{tier_name}-asg{suffix}", f"{tier_name}-lt{suffix}")
               for suffix in ("", "-g")]
    target_groups = [(tg_role, group) for tg_role, _, _ in colored for group in found_target_groups(ctx, tg_role)]
    for tg_role, group in target_groups:  # nothing left to drain: do not wait 300 s per target
        aws.call("elbv2", "modify_target_group_attributes", resource=f"target group {ctx.name(tg_role)}",
                 TargetGroupArn=group["TargetGroupArn"], missing_ok=ELB_NOT_FOUND,
                 Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])

    # The groups and the load balancer go at once (2-5 min and ~1 min), then what they hold.
    groups = [asg_role for _, asg_role, _ in colored if start_deleting_group(ctx, ctx.name(asg_role))]
    found = aws.call("elbv2", "describe_load_balancers", resource=f"load balancer {alb_name}", Names=[alb_name],
                     missing_ok=ELB_NOT_FOUND)
    balancers = (found or {}).get("LoadBalancers", [])
    for balancer in balancers:
        arn = balancer["LoadBalancerArn"]
        listeners = (aws.call("elbv2", "describe_listeners", resource=f"listeners of {alb_name}",
                              LoadBalancerArn=arn, missing_ok=ELB_NOT_FOUND) or {}).get("Listeners", [])
        for listener in listeners:
            aws.call("elbv2", "delete_listener", resource=f"listener {alb_name}:{listener['Port']}",
                     ListenerArn=listener["ListenerArn"], missing_ok=ELB_NOT_FOUND)
            ctx.record("deleted", "listener", f"{alb_name}:{listener['Port']}")
        aws.call("elbv2", "delete_load_balancer", resource=f"load balancer {alb_name}", LoadBalancerArn=arn,
                 missing_ok=ELB_NOT_FOUND)
        ctx.record("deleted", "load balancer", alb_name)
    if balancers:
        wait_gone(ctx, f"load balancer {alb_name}", lambda: (aws.call(
            "elbv2", "describe_load_balancers", resource=alb_name, Names=[alb_name],
            missing_ok=ELB_NOT_FOUND) or {}).get("LoadBalancers"))
    for asg_role in groups:
        finish_deleting_group(ctx, ctx.name(asg_role))
    for tg_role, group in target_groups:
        delete_target_group(ctx, ctx.name(tg_role), group["TargetGroupArn"])
    for _, _, lt_role in colored:
        delete_launch_template(ctx, ctx.name(lt_role))


def found_target_groups(ctx: Ctx, role: str) -> list[dict[str, Any]]:
    name = ctx.name(role)
    found = ctx.aws.call("elbv2", "describe_target_groups", resource=f"target group {name}", Names=[name],
                         missing_ok=ELB_NOT_FOUND)
    return found["TargetGroups"] if found else []


def start_deleting_group(ctx: Ctx, name: str) -> bool:
    """ForceDelete: its instances go with it. Whether there was a group."""
    asgs = ctx.aws.call("autoscaling", "describe_auto_scaling_groups", resource=name,
                        AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if asgs:
        ctx.aws.call("autoscaling", "delete_auto_scaling_group", resource=f"Auto Scaling group {name}",
                     AutoScalingGroupName=name, ForceDelete=True,
                     missing_ok=("ValidationError",), retry_codes=("ScalingActivityInProgress", "ResourceInUse"),
                     retry_timeout=5 * 60, retry_delay=10)
        ctx.record("deleted", "Auto Scaling group", name)
    return bool(asgs)


def finish_deleting_group(ctx: Ctx, name: str) -> None:
    aws = ctx.aws
    wait_gone(ctx, f"Auto Scaling group {name}", lambda: aws.call(
        "autoscaling", "describe_auto_scaling_groups", resource=name,
        AutoScalingGroupNames=[name])["AutoScalingGroups"])
    # AWS deletes a group's scaling policies (and their alarms) with the group; moto 5.2 keeps
    # them (its DeleteAutoScalingGroup leaves its policy table alone), and so would the sandbox.
    # One read confirms they went, and deletes any that did not.
    left = aws.call("autoscaling", "describe_policies", resource=f"scaling policies of {name}",
                    AutoScalingGroupName=name, missing_ok=("ValidationError",))
    for policy in (left or {}).get("ScalingPolicies", []):
        scaling.delete_scaling_policy(ctx, name, policy["PolicyName"])


def delete_target_group(ctx: Ctx, name: str, arn: str) -> None:
    """AWS refuses while any listener forwards to it, at weight 0 too (ResourceInUse): retried while
    a deleted load balancer lets go of it."""
    ctx.aws.call("elbv2", "delete_target_group", resource=f"target group {name}", TargetGroupArn=arn,
                 missing_ok=ELB_NOT_FOUND, retry_codes=("ResourceInUse",), retry_timeout=5 * 60, retry_delay=10)
    ctx.record("deleted", "target group", name)


def delete_launch_template(ctx: Ctx, name: str) -> None:
    found = ctx.aws.call("ec2", "describe_launch_templates", resource=f"launch template {name}",
                         LaunchTemplateNames=[name], missing_ok=("InvalidLaunchTemplateName.NotFoundException",))
    for template in (found or {}).get("LaunchTemplates", []):
        ctx.aws.call("ec2", "delete_launch_template", resource=f"launch template {name}",
                     LaunchTemplateId=template["LaunchTemplateId"],
                     missing_ok=("InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException"))
        ctx.record("deleted", "launch template", name, template["LaunchTemplateId"])


def wait_gone(ctx: Ctx, what: str, describe: Any) -> None:
    ctx.aws.wait(f"{what} deletion", lambda: Poll(not describe(), "deleting"), delay=10, timeout=GONE_TIMEOUT)
