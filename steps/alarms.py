"""CloudWatch alarms of the stack, the SNS topic that receives them, and the stack's dashboard
(config.yaml `monitoring`).

Shared like balancing.py: Part 1 owns the topic (every Part's alarms point at it), Parts 3, 5 and 7
own their alarms, Part 7 the dashboard. The topic exists only with `monitoring.email`: an alarm with
no one to tell is still shown by `status`, which exits 3 while one is in ALARM.

Alarms and the dashboard are found by their deterministic names, `<stack>-<what>`: CloudWatch has no
tag filter on DescribeAlarms or GetDashboard. They are tagged all the same, at creation (PutMetricAlarm
and PutDashboard ignore the Tags of an update).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from threetier.aws import Look, tags
from threetier.engine import EXISTS, Check, Ctx

TOPIC_ROLE = "alarms"
TOPIC_PART = 1  # storage; not imported: storage imports this module
# An e-mail subscription stays "PendingConfirmation" until its owner clicks the link AWS sends.
PENDING = "PendingConfirmation"


# -- the SNS topic (Part 1) --------------------------------------------------------
def topic_name_for(stack: str) -> str:
    return f"{stack}-{TOPIC_ROLE}"


def topic_arn_for(stack: str, partition: str, region: str, account: str) -> str:
    """Deterministic: SNS topic ARNs are the region, the account and the name."""
    return f"arn:{partition}:sns:{region}:{account}:{topic_name_for(stack)}"


def topic_arn(ctx: Ctx) -> str:
    return topic_arn_for(ctx.stack, ctx.aws.partition, ctx.aws.region, ctx.aws.account)


def topic_look(ctx: Ctx) -> Look:
    return Look("sns", "get_topic_attributes", {"TopicArn": topic_arn(ctx)}, missing_ok=("NotFound",))


def subscriptions_look(ctx: Ctx) -> Look:
    return Look("sns", "list_subscriptions_by_topic", {"TopicArn": topic_arn(ctx)}, missing_ok=("NotFound",),
                key="Subscriptions")


def topic_looks(ctx: Ctx) -> list[Look]:
    looks = [topic_look(ctx)]
    if ctx.aws.peek(topic_look(ctx)) is not None:
        looks.append(subscriptions_look(ctx))
    return looks


def alarm_actions(ctx: Ctx) -> list[str]:
    """Where the alarms go: the topic when config.yaml names an e-mail, else nowhere."""
    return [topic_arn(ctx)] if ctx.config.monitoring.email else []


def ensure_topic(ctx: Ctx) -> None:
    """With `monitoring.email`: the topic and that address's subscription (AWS e-mails it a link to
    confirm); a subscription of an address config.yaml no longer names is removed. Without: the
    topic, if one was made before, is deleted with its subscriptions."""
    email, arn = ctx.config.monitoring.email, topic_arn(ctx)
    found = ctx.aws.look(topic_look(ctx), resource=f"SNS topic {topic_name_for(ctx.stack)}")
    if email is None:
        if found is not None:
            delete_topic(ctx)
        return
    if found is None:
        # CreateTopic is idempotent by name: a crash after it and a second `up` find the same topic.
        ctx.aws.call("sns", "create_topic", resource=f"SNS topic {topic_name_for(ctx.stack)}",
                     Name=topic_name_for(ctx.stack), Tags=tags(ctx.stack, ctx.part_number, topic_name_for(ctx.stack)))
        ctx.record("created", "SNS topic", topic_name_for(ctx.stack), arn)
        subscriptions: list[dict[str, Any]] = []
    else:
        subscriptions = ctx.aws.look(subscriptions_look(ctx), resource=f"SNS topic {topic_name_for(ctx.stack)}") or []
    emails = [s for s in subscriptions if s.get("Protocol") == "email"]
    if not any(s.get("Endpoint") == email for s in emails):
        ctx.aws.call("sns", "subscribe", resource=f"SNS topic {topic_name_for(ctx.stack)}", TopicArn=arn,
                     Protocol="email", Endpoint=email)
        ctx.record("created", "SNS e-mail subscription", email)
        ctx.out.info(f"  AWS sends {email} a link to confirm: alarms reach it only after that")
    for stale in emails:
        # A pending subscription has no ARN yet and cannot be removed; AWS drops it unconfirmed after 3 days.
        if stale.get("Endpoint") != email and stale.get("SubscriptionArn", PENDING) != PENDING:
            ctx.aws.call("sns", "unsubscribe", resource=f"SNS subscription {stale.get('Endpoint')}",
                         SubscriptionArn=stale["SubscriptionArn"], missing_ok=("NotFound",))
            ctx.record("deleted", "SNS e-mail subscription", str(stale.get("Endpoint")))
    ctx.resources["alarm_topic"] = arn


def check_topic(ctx: Ctx, result: Check) -> None:
    email = ctx.config.monitoring.email
    found = ctx.aws.look(topic_look(ctx), resource=f"SNS topic {topic_name_for(ctx.stack)}")
    if email is None:
        if found is not None:
            result.drift.append(f"SNS topic {topic_name_for(ctx.stack)}: monitoring.email is null (`up` deletes it)")
        return
    if not result.found(f"SNS topic {topic_name_for(ctx.stack)}", found is not None):
        result.missing.append(f"SNS e-mail subscription {email}")
        return
    ctx.resources["alarm_topic"] = topic_arn(ctx)
    subscriptions = ctx.aws.look(subscriptions_look(ctx), resource=f"SNS topic {topic_name_for(ctx.stack)}") or []
    mine = [s for s in subscriptions if s.get("Protocol") == "email" and s.get("Endpoint") == email]
    if result.found(f"SNS e-mail subscription {email}", bool(mine)) and all(
            s.get("SubscriptionArn") == PENDING for s in mine):
        result.notes.append(f"{email} has not confirmed the subscription yet: alarms reach it only after the "
                            f"link in AWS's e-mail is followed")
    others = sorted(str(s.get("Endpoint")) for s in subscriptions
                    if s.get("Protocol") == "email" and s.get("Endpoint") != email)
    if others:
        result.drift.append(f"SNS topic {topic_name_for(ctx.stack)}: also e-mails {', '.join(others)}, "
                            f"which config.yaml does not name")


def delete_topic(ctx: Ctx) -> None:
    """Deleting a topic deletes its subscriptions; gone already counts as deleted."""
    if ctx.aws.call("sns", "get_topic_attributes", resource=f"SNS topic {topic_name_for(ctx.stack)}",
                    TopicArn=topic_arn(ctx), missing_ok=("NotFound",)) is None:
        return
    ctx.aws.call("sns", "delete_topic", resource=f"SNS topic {topic_name_for(ctx.stack)}", TopicArn=topic_arn(ctx),
                 missing_ok=("NotFound",))
    ctx.record("deleted", "SNS topic", topic_name_for(ctx.stack))


# -- alarms (Parts 3, 5 and 7) ---------------------------------------------------------
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


def ensure_alarms(ctx: Ctx, wanted: list[Alarm], owned: Iterable[str]) -> None:
    """With `monitoring.alarms`: each wanted alarm, put when it is missing or differs from what the
    stack sets (PutMetricAlarm replaces an alarm whole). An owned alarm not wanted, every one with
    `monitoring.alarms: false`, is deleted."""
    if not ctx.config.monitoring.alarms:
        wanted = []
    if wanted and alarm_actions(ctx):
        ctx.need(TOPIC_PART, EXISTS)  # the topic the actions name is made by Part 1's start (steps/graph.py)
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
            result.drift.append(f"CloudWatch alarm {alarm_name(ctx, what)}: {why} (`up` deletes it)")


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


# -- the dashboard (Part 7) --------------------------------------------------------------
DASHBOARD_ROLE = "dashboard"
DASHBOARD_GONE = ("ResourceNotFound",)  # GetDashboard's and DeleteDashboards' DashboardNotFoundError
# The AWS console of each partition; the dashboard is opened in the stack's region.
CONSOLES = {"aws": "https://{region}.console.aws.amazon.com", "aws-cn": "https://{region}.console.amazonaws.cn",
            "aws-us-gov": "https://{region}.console.amazonaws-us-gov.com"}


def dashboard_name_for(stack: str, region: str) -> str:
    """Dashboards are global to the account (PutDashboard), unlike the stack: the region is in the name,
    as in the IAM names, or the same stack in two regions would share one and overwrite it."""
    return f"{stack}-{region}-{DASHBOARD_ROLE}"


def dashboard_name(ctx: Ctx) -> str:
    return dashboard_name_for(ctx.stack, ctx.aws.region)


def dashboard_url(ctx: Ctx) -> str:
    """The console's current address of a dashboard (what its address bar shows)."""
    region = ctx.aws.region
    console = CONSOLES.get(ctx.aws.partition, CONSOLES["aws"]).format(region=region)
    return f"{console}/cloudwatch/home?region={region}#dashboards/dashboard/{dashboard_name(ctx)}"


def dashboard_look(ctx: Ctx) -> Look:
    return Look("cloudwatch", "get_dashboard", {"DashboardName": dashboard_name(ctx)}, missing_ok=DASHBOARD_GONE)


def find_dashboard(ctx: Ctx) -> dict[str, Any] | None:
    """The dashboard's body, parsed; None when there is no dashboard (a body that is not JSON, from an
    edit by hand, is an empty one: it differs from the stack's)."""
    found = ctx.aws.look(dashboard_look(ctx), resource=f"CloudWatch dashboard {dashboard_name(ctx)}")
    if found is None:
        return None
    try:
        body = json.loads(found.get("DashboardBody") or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def ensure_dashboard(ctx: Ctx, body: dict[str, Any]) -> None:
    """With `monitoring.dashboard`: the dashboard with this body, put only when the one AWS has differs
    (PutDashboard replaces it whole); without, deleted."""
    name = dashboard_name(ctx)
    if not ctx.config.monitoring.dashboard:
        delete_dashboard(ctx)
        ctx.resources.pop("dashboard_url", None)
        return
    found, body = find_dashboard(ctx), as_json(body)
    if found != body:
        parameters: dict[str, Any] = {"DashboardName": name, "DashboardBody": json.dumps(body)}
        if found is None:
            parameters["Tags"] = ctx.tags(f"{ctx.aws.region}-{DASHBOARD_ROLE}")  # Name: the dashboard's name
        answer = ctx.aws.call("cloudwatch", "put_dashboard", resource=f"CloudWatch dashboard {name}", **parameters)
        for message in (answer or {}).get("DashboardValidationMessages", []):  # kept, but AWS says what it skipped
            ctx.out.info(f"  CloudWatch dashboard {name}: {message.get('DataPath', '')} {message.get('Message', '')}")
        ctx.record("created" if found is None else "changed", "CloudWatch dashboard", name)
    ctx.resources["dashboard_url"] = dashboard_url(ctx)


def check_dashboard(ctx: Ctx, body: dict[str, Any] | None, result: Check) -> None:
    """Present with the stack's body (`body` None: unknown, as a tier is missing; only its presence
    counts); one config.yaml does not want is drift."""
    name, found = dashboard_name(ctx), find_dashboard(ctx)
    if not ctx.config.monitoring.dashboard:
        if found is not None:
            result.drift.append(f"CloudWatch dashboard {name}: monitoring.dashboard is false (`up` deletes it)")
        return
    if result.found(f"CloudWatch dashboard {name}", found is not None):
        ctx.resources["dashboard_url"] = dashboard_url(ctx)
        if body is not None and found != as_json(body):
            result.drift.append(f"CloudWatch dashboard {name}: changed since `up` made it (`up` puts it back)")


def as_json(body: dict[str, Any]) -> dict[str, Any]:
    """The body as GetDashboard gives it back (tuples become lists): what it is compared as."""
    parsed: dict[str, Any] = json.loads(json.dumps(body))
    return parsed


def delete_dashboard(ctx: Ctx) -> None:
    """Gone already counts as deleted."""
    name = dashboard_name(ctx)
    if find_dashboard(ctx) is None:
        return
    ctx.aws.call("cloudwatch", "delete_dashboards", resource=f"CloudWatch dashboard {name}", DashboardNames=[name],
                 missing_ok=DASHBOARD_GONE)
    ctx.record("deleted", "CloudWatch dashboard", name)
