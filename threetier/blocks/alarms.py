"""CloudWatch metric alarms of the stack (config.yaml `monitoring.alarms`): put as each Part wants
them, compared with AWS's, silenced while paused, deleted.

Parts 3, 5 and 7 own their alarms; their actions name the SNS topic of Part 1 (threetier.blocks.topic)
when config.yaml names an e-mail. Alarms are found by their deterministic names, `<stack>-<what>`:
CloudWatch has no tag filter on DescribeAlarms. They are tagged all the same, at creation
(PutMetricAlarm ignores the Tags of an update).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from threetier.aws import Look
from threetier.blocks.topic import topic_arn
from threetier.engine import Check, Ctx


def alarm_actions(ctx: Ctx) -> list[str]:
    """Where the alarms go: the topic when config.yaml names an e-mail, else nowhere."""
    return [topic_arn(ctx)] if ctx.config.monitoring.email else []


# CloudWatch's TreatMissingData: a metric AWS publishes only when it is not zero (the 5xx counts) is
# zero when missing; one it publishes every minute (health, CPU, memory) is unknown when missing.
NOT_BREACHING = "notBreaching"
MISSING = "missing"


@dataclass(frozen=True)
class Alarm:
    """One alarm as the stack wants it, named `<stack>-<what>`. `watches`: the rest of PutMetricAlarm's
    parameters (the metric or metric math, statistic, periods, threshold, comparison, missing data);
    None while what it watches is unknown (`status` on a stack whose load balancer is missing): then
    only its presence and state are looked at."""
    what: str
    description: str
    watches: dict[str, Any] | None


def dimensions(**values: str) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in values.items()]


def load_balancer_dimension(arn: str) -> str:
    """CloudWatch's LoadBalancer dimension: app/<name>/<id>, the end of ...:loadbalancer/app/<name>/<id>."""
    return arn.split(":loadbalancer/", 1)[1]


def target_group_dimension(arn: str) -> str:
    """CloudWatch's TargetGroup dimension: targetgroup/<name>/<id>, the end of the ARN."""
    return arn.split(":", 5)[5]


def watching(namespace: str, metric: str, metric_dimensions: list[dict[str, str]], *, statistic: str, period: int,
             periods: int, threshold: float, comparison: str, missing_data: str) -> dict[str, Any]:
    """What an alarm on one metric watches: it fires after `periods` periods in a row past `threshold`."""
    return {"Namespace": namespace, "MetricName": metric, "Dimensions": metric_dimensions, "Statistic": statistic,
            "Period": period, "EvaluationPeriods": periods, "DatapointsToAlarm": periods,
            "Threshold": float(threshold), "ComparisonOperator": comparison, "TreatMissingData": missing_data}


def metric_query(query_id: str, namespace: str, metric: str, metric_dimensions: list[dict[str, str]], *,
                 statistic: str, period: int) -> dict[str, Any]:
    """One metric of a metric-math alarm, not itself the value alarmed on."""
    return {"Id": query_id, "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": metric_dimensions},
        "Period": period, "Stat": statistic}}


def alarm_name(ctx: Ctx, what: str) -> str:
    return ctx.name(what)


def alarms_look(ctx: Ctx) -> Look:
    """Every alarm whose name starts with the stack's, in one read that the inventory holds once for
    Parts 3, 5 and 7. The prefix of stack `a` also matches stack `a-b`'s alarms: each Part looks only
    at the names it owns."""
    return Look("cloudwatch", "describe_alarms", {"AlarmNamePrefix": f"{ctx.stack}-"}, key="MetricAlarms")


def find_alarms(ctx: Ctx) -> dict[str, dict[str, Any]]:
    found = ctx.aws.look(alarms_look(ctx), resource=f"CloudWatch alarms of stack {ctx.stack}")
    return {alarm["AlarmName"]: alarm for alarm in found or []}


def alarm_parameters(ctx: Ctx, alarm: Alarm, actions_enabled: bool = True) -> dict[str, Any]:
    """PutMetricAlarm's parameters but the name and the tags; also what `up` compares with AWS.
    actions_enabled False: while the stack is paused (`silence`)."""
    actions = alarm_actions(ctx)
    # OK too: whoever was told of the alarm is told when it is over.
    return {"AlarmDescription": alarm.description, "ActionsEnabled": actions_enabled, "AlarmActions": actions,
            "OKActions": actions, **(alarm.watches or {})}


def silence(ctx: Ctx, wanted: list[Alarm]) -> None:
    """`pause`: the alarms stay (and keep their state), but tell no one: with no instance behind it the
    external ALB answers 503 to every visitor, which is the stack paused, not an outage. Put again
    whole with ActionsEnabled false (moto has no DisableAlarmActions); `up` (and so `resume`) finds
    ActionsEnabled false is not what the stack sets, and puts them back on."""
    if not ctx.config.monitoring.alarms:
        return
    found = find_alarms(ctx)
    for alarm in wanted:
        name, have = alarm_name(ctx, alarm.what), found.get(alarm_name(ctx, alarm.what))
        if have is None or alarm.watches is None or not have.get("ActionsEnabled", True):
            continue
        ctx.aws.call("cloudwatch", "put_metric_alarm", resource=f"CloudWatch alarm {name}", AlarmName=name,
                     **alarm_parameters(ctx, alarm, actions_enabled=False))
        ctx.record("changed", "CloudWatch alarm", name, "actions off while paused")


def canonical(value: Any) -> Any:
    """A parameter as PutMetricAlarm takes it and DescribeAlarms answers it, in one spelling: no
    empty lists (AWS leaves out Metrics and Dimensions not used; moto answers them empty), numbers
    as floats, dimensions by name, a metric query's ReturnData at its default, true."""
    if isinstance(value, dict):
        if "Id" in value:
            value = {"ReturnData": True, **value}
        kept = {key: canonical(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item is not None}
    if isinstance(value, list):
        items = [canonical(item) for item in value]
        if not items:
            return None
        if all(isinstance(item, dict) and "Name" in item for item in items):
            return sorted(items, key=lambda item: item["Name"])
        return items
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def matches(wanted: Any, have: Any) -> bool:
    """Whether `have` (AWS's) says what `wanted` says; a key AWS adds that the stack does not set is
    no difference."""
    if isinstance(wanted, dict):
        return isinstance(have, dict) and all(matches(value, have.get(key)) for key, value in wanted.items())
    if isinstance(wanted, list):
        return isinstance(have, list) and len(have) == len(wanted) and all(map(matches, wanted, have))
    return wanted == have


def differences(have: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What of `wanted` (PutMetricAlarm's parameters) the alarm AWS has does not match, in words."""
    said = []
    for key, value in wanted.items():
        mine, theirs = canonical(value), canonical(have.get(key))
        if not matches(mine, theirs):
            simple = not isinstance(mine, (dict, list)) and not isinstance(theirs, (dict, list))
            said.append(f"{key} {shown(theirs)}, should be {shown(mine)}" if simple else f"{key} differ")
    # One metric or metric math: the other kind left on the alarm is a difference too.
    if "Metrics" in wanted and have.get("MetricName"):
        said.append(f"watches metric {have['MetricName']}, should watch metric math")
    if "MetricName" in wanted and canonical(have.get("Metrics")):
        said.append(f"watches metric math, should watch metric {wanted['MetricName']}")
    return said


def shown(value: Any) -> str:
    return "unset" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def notify(ctx: Ctx, wanted: list[Alarm]) -> bool:
    """Whether `ensure_alarms` would put alarms whose actions name the SNS topic: then the Part first
    waits for Part 1's start, which makes the topic (a declared edge of the Parts' graph)."""
    return bool(ctx.config.monitoring.alarms and wanted and alarm_actions(ctx))


def ensure_alarms(ctx: Ctx, wanted: list[Alarm], owned: Iterable[str]) -> None:
    """With `monitoring.alarms`: each wanted alarm, put when it is missing or differs from what the
    stack sets (PutMetricAlarm replaces an alarm whole). An owned alarm not wanted, every one with
    `monitoring.alarms: false`, is deleted."""
    if not ctx.config.monitoring.alarms:
        wanted = []
    found = find_alarms(ctx)
    for alarm in wanted:
        name, parameters = alarm_name(ctx, alarm.what), alarm_parameters(ctx, alarm)
        have = found.get(name)
        differ = differences(have, parameters) if have is not None else []
        if have is not None and not differ:
            continue
        ctx.aws.call("cloudwatch", "put_metric_alarm", resource=f"CloudWatch alarm {name}", AlarmName=name,
                     Tags=ctx.tags(alarm.what), **parameters)
        if have is None:
            ctx.record("created", "CloudWatch alarm", name)
        else:
            ctx.record("changed", "CloudWatch alarm", name, "; ".join(differ))
    unwanted = [what for what in owned if what not in {alarm.what for alarm in wanted}]
    if unwanted:  # with what was found before the puts: they emptied the inventory, not changed these
        delete_alarms(ctx, unwanted, found)


def check_alarms(ctx: Ctx, wanted: list[Alarm], owned: Iterable[str], result: Check) -> None:
    """Each wanted alarm present, as the stack sets it, and its state (`result.alarms`); one that
    config.yaml does not want is drift (`up` deletes it)."""
    if not ctx.config.monitoring.alarms:
        wanted = []
    found = find_alarms(ctx)
    for alarm in wanted:
        name = alarm_name(ctx, alarm.what)
        have = found.get(name)
        if not result.found(f"CloudWatch alarm {name}", have is not None) or have is None:
            continue
        result.alarms[name] = have.get("StateValue", "INSUFFICIENT_DATA")
        if alarm.watches is not None:
            # Paused: off is how `pause` leaves them, on how a pause that did not get that far left them.
            differ = [d for d in differences(have, alarm_parameters(ctx, alarm))
                      if not (ctx.paused and d.startswith("ActionsEnabled "))]
            if differ:
                result.drift.append(f"CloudWatch alarm {name}: {'; '.join(differ)} (`up` puts it again)")
    why = "monitoring.alarms is false" if not ctx.config.monitoring.alarms else "not in config.yaml"
    for what in owned:
        if what not in {alarm.what for alarm in wanted} and alarm_name(ctx, what) in found:
            result.unwanted(f"CloudWatch alarm {alarm_name(ctx, what)}: {why} (`up` deletes it)")


def delete_alarms(ctx: Ctx, whats: Iterable[str], found: dict[str, dict[str, Any]] | None = None) -> None:
    """Gone already counts as deleted. One call for all of them (DeleteAlarms takes up to 100 names)."""
    found = find_alarms(ctx) if found is None else found
    present = [alarm_name(ctx, what) for what in whats if alarm_name(ctx, what) in found]
    if not present:
        return
    ctx.aws.call("cloudwatch", "delete_alarms", resource=f"CloudWatch alarms {', '.join(present)}",
                 AlarmNames=present, missing_ok=("ResourceNotFound",))
    for name in present:
        ctx.record("deleted", "CloudWatch alarm", name)
