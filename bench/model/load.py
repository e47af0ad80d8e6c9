"""A steady request load through the load balancers, on the virtual clock: what a deploy does to users.

Each tier gets `rate` requests per second at its load balancer (the web tier from outside; the app tier a
share of what the web tier served: its `/api/` requests). Time is integrated in 1 s steps between the
model's ticks (every call, before its handlers change anything): in a step, each forwarding listener of the tier's load balancer takes an equal
part of the tier's requests and sends each target group the share weight / sum of weights, as the weights
in effect then say (a ModifyListener is in effect LISTENER_CHANGE_SECONDS after its call). The requests
sent to a target group with no eligible target (autoscaling.eligible_targets: registered, healthy, not
draining, not terminated) fail: a real ALB "fails open" to unhealthy targets, the model counts them as
failed, to be conservative. `min_healthy` is the lowest, over the steps, of the eligible targets summed
over the target groups with weight > 0. What is in effect at a step's start holds for the step: the
weights and times are looked up at that moment, the groups' members are as the last call left them.

The rules of a deploy under load (core.RULES): `shift-to-unhealthy` (a ModifyListener raises the share
of a target group with no eligible target: AWS takes it, the requests fail) and `terminate-while-serving`
(TerminateInstances here; DeleteAutoScalingGroup in autoscaling.py): each lost in-flight request is one
failure, the requests the instance would take in one step (at least 1).

    start(model, [Tier("web", web_alb_arn, 20.0), Tier("app", app_alb_arn, fed_by=("web", 0.5))])
    ...  # calls
    finish(model)  # integrates up to now; model.load.tiers[...].failed / min_healthy
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.model.autoscaling import eligible_targets, group_record, members, terminated_while_serving
from bench.model.core import after, before, on_tick
from bench.model.elbv2 import learn_listener

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel

STEP_SECONDS = 1.0
WEB_REQUESTS_PER_SECOND = 20.0   # the steady load of design25.md §2.6
API_SHARE = 0.5                  # of the web tier's requests, those to /api/ (they reach the app tier)


@dataclass
class Tier:
    name: str
    load_balancer: str                        # ARN: where its requests arrive
    rate: float = 0.0                         # requests/s from outside
    fed_by: tuple[str, float] | None = None   # (tier, share): a share of what that tier served, too
    requests: float = 0.0
    failed: float = 0.0
    min_healthy: int | None = None            # None: no step yet
    lowest_at: float | None = None            # when min_healthy was first reached

    @property
    def failed_requests(self) -> int:
        """Whole requests, rounded up: a fraction of one failed is one failed."""
        return math.ceil(self.failed - 1e-9)


class Load:
    def __init__(self, tiers: list[Tier], start: float):
        self.tiers = {tier.name: tier for tier in tiers}
        self.integrated_to = start
        self.terminations_seen = 0

    def step(self, model: LatencyModel, t: float, seconds: float, instances: dict[str, list[str]]) -> None:
        """The requests of [t, t + seconds), as the listeners and targets are at t."""
        served: dict[str, float] = {}
        for tier in self.tiers.values():  # in order: a tier fed by another comes after it
            arriving = tier.rate * seconds
            if tier.fed_by is not None:
                arriving += served.get(tier.fed_by[0], 0.0) * tier.fed_by[1]
            listeners = [w for w in (lsn.weights_at(t) for lsn in model.forwards.values()
                                     if lsn.load_balancer == tier.load_balancer) if sum(w.values()) > 0]
            eligible: dict[str, int] = {}
            failed = 0.0 if listeners else arriving
            for weights in listeners:
                total = sum(weights.values())
                for target_group, weight in weights.items():
                    if weight <= 0:
                        continue
                    if target_group not in eligible:
                        eligible[target_group] = len(eligible_targets(model, target_group, t, instances))
                    if eligible[target_group] == 0:
                        failed += arriving / len(listeners) * weight / total
            tier.requests += arriving
            tier.failed += failed
            served[tier.name] = arriving - failed
            healthy = sum(eligible.values())
            if tier.min_healthy is None or healthy < tier.min_healthy:
                tier.min_healthy, tier.lowest_at = healthy, t

    def rate(self, name: str) -> float:
        """A tier's requests per second when every one is served."""
        tier = self.tiers[name]
        return tier.rate + (self.rate(tier.fed_by[0]) * tier.fed_by[1] if tier.fed_by else 0.0)

    def lose_in_flight(self, model: LatencyModel, when: float, target_group: str,
                       instances: dict[str, list[str]]) -> None:
        """An instance of `target_group` terminated at `when` while serving: its requests in flight (what
        it takes in one step, at least 1) fail."""
        for tier in self.tiers.values():
            for listener in model.forwards.values():
                weights = listener.weights_at(when)
                if listener.load_balancer != tier.load_balancer or weights.get(target_group, 0) <= 0:
                    continue
                targets = len(eligible_targets(model, target_group, when, instances)) + 1  # + the terminated one
                share = self.rate(tier.name) * STEP_SECONDS * weights[target_group] / sum(weights.values()) / targets
                tier.failed += max(1.0, math.ceil(share))
                return


def integrate(model: LatencyModel, until: float) -> None:
    """Serve the load in steps of 1 s (the last one shorter when `until` falls between) up to `until`."""
    load = model.load
    if load is None:
        return
    instances: dict[str, list[str]] | None = None
    while load.integrated_to < until - 1e-9:
        seconds = min(STEP_SECONDS, until - load.integrated_to)
        instances = members(model) if instances is None else instances
        load.step(model, load.integrated_to, seconds, instances)
        load.integrated_to += seconds
    for when, _, target_group in model.serving_terminations[load.terminations_seen:]:
        instances = members(model) if instances is None else instances
        load.lose_in_flight(model, when, target_group, instances)
    load.terminations_seen = len(model.serving_terminations)


@on_tick
def serve_the_load(model: LatencyModel) -> None:
    """At every call, before it changes anything: the requests since the last call."""
    integrate(model, model.now)


def start(model: LatencyModel, tiers: list[Tier]) -> Load:
    """Start serving `tiers` now. The groups and listeners made before the model was installed (a
    reference stack) are learnt from moto first: their instances serve from the start."""
    with model.lock:
        for name in (g["AutoScalingGroupName"] for g in
                     model.raw("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]):
            group_record(model, name)
        for tier in tiers:
            for listener in model.raw("elbv2").describe_listeners(LoadBalancerArn=tier.load_balancer)["Listeners"]:
                learn_listener(model, listener["ListenerArn"])
        model.load = Load(tiers, model.now)
        return model.load


def finish(model: LatencyModel) -> Load | None:
    """Serve the load up to now and stop it; the load (None: there was none)."""
    with model.lock:
        load = model.load
        if load is not None:
            integrate(model, model.now)
            model.load = None
        return load


@after("elbv2", "ModifyListener")
def shift_checked(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], context: dict[str, Any],
                  **_: Any) -> None:
    """A ModifyListener that raises the share of a target group with no eligible target (its requests fail)."""
    old, instances = context.get("bench_weights_before") or {}, None
    for found in parsed.get("Listeners", []):
        listener = model.forwards.get(found["ListenerArn"])
        if listener is None:
            continue
        new = listener.weights
        for target_group, weight in new.items():
            if weight <= 0 or _share(new, target_group) <= _share(old, target_group):
                continue
            instances = members(model) if instances is None else instances
            if not eligible_targets(model, target_group, model.now, instances):
                model.violation("shift-to-unhealthy", "ModifyListener",
                                f"listener {listener.arn}: {target_group} to weight {weight} of "
                                f"{sum(new.values())} with no eligible target", service="elbv2")


def _share(weights: dict[str, int], target_group: str) -> float:
    total = sum(weights.values())
    return weights.get(target_group, 0) / total if total else 0.0


@before("ec2", "TerminateInstances")
def terminate_instances_before(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    """An Auto Scaling group's instance terminated directly skips the deregistration delay."""
    ids = set(params.get("InstanceIds") or [])
    if not ids or not model.groups:
        return None
    for name, instances in members(model).items():
        hit = [i for i in instances if i in ids]
        if hit:
            terminated_while_serving(model, model.groups[name], hit, operation)
    return None
