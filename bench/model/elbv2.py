"""Load balancers in time: ALBs provisioning 150 s; a deleted ALB gone from describe at once (as moto
has it) but its ENIs holding its subnets and security groups 60 s (vpc.py); targets the Auto Scaling
groups register healthy 30 s after max(InService, their ALB active, their target group on a listener),
`initial` before that, `unused` while on no listener.
Listeners: where each forwards, with which weights, since when (`model.forwards`; new weights are
followed LISTENER_CHANGE_SECONDS after the call, load.py), and what AWS refuses of a forward action
and moto takes: a weight outside 0..999, more than 5 target groups, a target group another load
balancer uses. (What listeners do with certificates: acm.py; web ACLs on an ALB: wafv2.py.)"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bench.model import acm, figures
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
    for listener in model.forwards.values():
        if listener.load_balancer == params.get("LoadBalancerArn") and listener.weights:
            _listener_gone(model, listener)


# -- listeners: where each one forwards, with what weights, since when ---------------------------
MAX_WEIGHT = 999               # ELBv2 API reference, TargetGroupTuple: Weight 0..999
MAX_FORWARD_TARGET_GROUPS = 5  # ELBv2 API reference, ForwardActionConfig: up to 5 target groups


@dataclass
class Listener:
    arn: str
    load_balancer: str
    weights: dict[str, int]    # target group ARN -> weight, as the last call set them ({}: no forward)
    # (in effect from, weights): what requests follow; a change is in effect LISTENER_CHANGE_SECONDS after its call
    history: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    parent: str = ""           # a listener rule's forward: its listener's ARN

    def change(self, effective: float, weights: dict[str, int]) -> None:
        self.weights = weights
        self.history.append((effective, weights))
        self.history.sort(key=lambda change: change[0])

    def weights_at(self, t: float) -> dict[str, int]:
        current: dict[str, int] = {}
        for since, weights in self.history:
            if since > t:
                break
            current = weights
        return current


def forward_tuples(actions: list[dict[str, Any]] | None) -> list[tuple[str, int]]:
    """Every (target group, weight) the forward actions name; a weight left out is 1, as AWS takes it."""
    tuples: list[tuple[str, int]] = []
    for action in actions or []:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        if groups:
            tuples += [(g.get("TargetGroupArn", ""), int(g.get("Weight", 1))) for g in groups]
        elif action.get("TargetGroupArn"):
            tuples.append((action["TargetGroupArn"], 1))
    return tuples


def learn_listener(model: LatencyModel, arn: str) -> Listener | None:
    """The model's record of a listener, learnt from moto when it was made before the model was installed."""
    if arn in model.forwards:
        return model.forwards[arn]
    try:
        found = model.raw("elbv2").describe_listeners(ListenerArns=[arn])["Listeners"]
    except ClientError:
        return None
    if not found:
        return None
    weights = dict(forward_tuples(found[0].get("DefaultActions")))
    listener = model.forwards[arn] = Listener(arn, found[0]["LoadBalancerArn"], weights, [(-1e9, weights)])
    for target_group in weights:
        model.listened.setdefault(target_group, -1e9)
    _index_target_groups(model)
    return listener


def _index_target_groups(model: LatencyModel) -> None:
    """`model.listeners` (target group -> the load balancers forwarding to it) from the listeners' weights."""
    used: dict[str, set[str]] = {}
    for listener in model.forwards.values():
        for target_group in listener.weights:
            used.setdefault(target_group, set()).add(listener.load_balancer)
    for target_group in set(model.listeners) | set(used):
        model.listeners[target_group] = used.get(target_group, set())


@before("elbv2", "CreateListener", "ModifyListener")
def listener_before(model: LatencyModel, params: dict[str, Any], operation: str, context: dict[str, Any],
                    **kwargs: Any) -> Any:
    """What AWS refuses of a forward action and moto takes: a weight over 999, more than 5 target groups, a
    target group another load balancer uses (after the certificate rules, acm.py)."""
    refused = acm.listener_certificates_before(model, params, operation=operation, context=context, **kwargs)
    if refused is not None:
        return refused
    if operation == "ModifyListener":
        listener = learn_listener(model, params.get("ListenerArn", ""))
        balancer = listener.load_balancer if listener is not None else ""
        context["bench_weights_before"] = dict(listener.weights) if listener is not None else {}
        if "DefaultActions" not in params:
            return None
    else:
        balancer = params.get("LoadBalancerArn", "")
    return _forward_refused(model, params.get("DefaultActions"), balancer, operation)


def _forward_refused(model: LatencyModel, actions: list[dict[str, Any]] | None, balancer: str, operation: str) -> Any:
    tuples = forward_tuples(actions)
    checks = [
        ("forward-weight-out-of-range", "ValidationError",
         [f"weight {w} of {tg}" for tg, w in tuples if not 0 <= w <= MAX_WEIGHT],
         f"a forward weight is 0 to {MAX_WEIGHT}"),
        ("forward-too-many-target-groups", "ValidationError",
         [f"{len(tuples)} target groups"] if len(tuples) > MAX_FORWARD_TARGET_GROUPS else [],
         f"a forward action takes {MAX_FORWARD_TARGET_GROUPS} target groups at most"),
        ("target-group-on-two-load-balancers", "TargetGroupAssociationLimit",
         [tg for tg, _ in tuples if _target_group_load_balancers(model, tg) - {balancer}],
         "a target group is used by one load balancer only"),
    ]
    for rule, code, broken, why in checks:
        if broken:
            refused = model.refuse(code, f"{why} ({', '.join(broken)})", operation=operation, service="elbv2",
                                   rule=rule)
            if refused is not None:
                return refused
    return None


@after("elbv2", "CreateListener", "ModifyListener")
def listener_changed(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    for found in parsed.get("Listeners", []):
        weights = dict(forward_tuples(found.get("DefaultActions") or params.get("DefaultActions")))
        listener = model.forwards.get(found["ListenerArn"])
        if listener is None:
            listener = model.forwards[found["ListenerArn"]] = Listener(
                found["ListenerArn"], found.get("LoadBalancerArn") or params.get("LoadBalancerArn", ""), {})
            effective = model.now  # a new listener: nothing was sent before it existed
        else:
            effective = model.now + figures.LISTENER_CHANGE_SECONDS
        listener.change(effective, weights)
        for target_group in weights:
            model.listened.setdefault(target_group, model.now)
    _index_target_groups(model)


# -- listener rules (edge.cdn: 443 forwards on the origin header's rule, its default answers 403) ----------
# A rule's forward is kept as a Listener of its own (keyed by the rule's ARN, `parent` its listener): its
# target groups are in use, its weights follow its changes, as a listener's default action's do.
@before("elbv2", "CreateRule", "ModifyRule")
def rule_before(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    if "Actions" not in params:
        return None
    if operation == "CreateRule":
        listener = learn_listener(model, params.get("ListenerArn", ""))
    else:
        listener = model.forwards.get(params.get("RuleArn", ""))
    return _forward_refused(model, params["Actions"], listener.load_balancer if listener else "", operation)


@after("elbv2", "CreateRule", "ModifyRule")
def rule_changed(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    for found in parsed.get("Rules", []):
        rule = model.forwards.get(found["RuleArn"])
        weights = dict(forward_tuples(found.get("Actions") or params.get("Actions")))
        if rule is None:
            # CreateRule names the listener; a ModifyRule of a rule made before the model: learnt from moto.
            parent = learn_listener(model, params.get("ListenerArn") or _rule_listener(model, found["RuleArn"]))
            if parent is None:
                continue
            rule = model.forwards[found["RuleArn"]] = Listener(found["RuleArn"], parent.load_balancer, {},
                                                               parent=parent.arn)
            rule.change(model.now, weights)
        else:
            rule.change(model.now + figures.LISTENER_CHANGE_SECONDS, weights)
        for target_group in weights:
            model.listened.setdefault(target_group, model.now)
    _index_target_groups(model)


def _rule_listener(model: LatencyModel, rule_arn: str) -> str:
    """A rule's listener ARN: the rule ARN's `listener-rule/app/<lb>/<id>/<listener id>/<rule id>`."""
    head, _, tail = rule_arn.partition(":listener-rule/")
    return f"{head}:listener/{tail.rsplit('/', 1)[0]}" if tail else ""


@after("elbv2", "DeleteRule")
def rule_deleted(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    rule = model.forwards.get(params.get("RuleArn", ""))
    if rule is not None:
        _listener_gone(model, rule)


@before("elbv2", "DeleteListener")
def delete_listener_before(model: LatencyModel, params: dict[str, Any], **_: Any) -> Any:
    learn_listener(model, params.get("ListenerArn", ""))
    return None


def _listener_gone(model: LatencyModel, listener: Listener) -> None:
    listener.change(model.now, {})
    _index_target_groups(model)


@after("elbv2", "DeleteListener")
def listener_deleted(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    listener = model.forwards.get(params.get("ListenerArn", ""))
    if listener is not None:
        _listener_gone(model, listener)
    for rule in [r for r in model.forwards.values() if r.parent and r.parent == params.get("ListenerArn")]:
        _listener_gone(model, rule)  # its rules go with it


def _target_group_load_balancers(model: LatencyModel, target_group: str) -> set[str]:
    """The load balancers forwarding to `target_group`; learnt from moto (its LoadBalancerArns, right
    after CreateListener) for one the model has not seen on a listener."""
    if target_group in model.listeners:
        return set(model.listeners[target_group])
    try:
        found = model.raw("elbv2").describe_target_groups(TargetGroupArns=[target_group])["TargetGroups"]
    except ClientError:
        return set()
    return set(found[0].get("LoadBalancerArns", [])) if found else set()


def healthy_at(model: LatencyModel, target_group: str) -> float | None:
    """When the targets the Auto Scaling groups put in `target_group` are healthy (None: never yet): the
    health checks start once the target group is on a listener and its load balancer is active."""
    groups = [g for g in model.groups.values() if target_group in g.target_groups and g.deleted is None]
    if not groups:
        return None
    checked = checked_from(model, target_group)
    if checked is None:
        return None
    return max(max(g.in_service_at for g in groups), checked) + figures.TARGET_HEALTHY_SECONDS


def checked_from(model: LatencyModel, target_group: str) -> float | None:
    """When the load balancer starts checking the targets of `target_group`: it is on a listener (since
    then) and the load balancer is active. None: on no listener (its targets are `unused`)."""
    arns = _target_group_load_balancers(model, target_group)
    if not arns:
        return None
    active = max((model.load_balancers[a].created + figures.ALB_CREATE_SECONDS if a in model.load_balancers
                  else -1e9) for a in arns)
    return max(active, model.listened.get(target_group, -1e9))


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
