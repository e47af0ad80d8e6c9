"""The watch after a switch: the new color of a tier has all (or the canary's share of) the traffic;
for `deploy.watch_minutes` it is watched for problems, and the caller (threetier.blocks.colors) rolls
back when `Watched.problem` says why.

Every POLL_SECONDS (the first look at once, the last at `until`) the watch reads
- the alarms it is given (DescribeAlarms): one in ALARM is a problem, "alarm <name>";
- the new color's target group over 1-minute periods since the watch began (GetMetricData:
  UnHealthyHostCount Maximum, HTTPCode_Target_5XX_Count and RequestCount Sum), judged by `verdict`.
  The tier's own alarms (balancing.tier_alarms) cannot fire inside a 5-minute watch: unhealthy hosts
  need 5 periods of 60 s, the 5xx rate one period of 300 s, and an alarm re-pointed at the new
  color's target group starts again from INSUFFICIENT_DATA. `verdict` asks less:
    - an unhealthy target in UNHEALTHY_MINUTES (2) minutes in a row (a target is marked unhealthy
      after 3 failed checks 15 s apart and needs 2 good ones back: one minute can be a blip, two is
      a target out of service for more than a minute);
    - or a minute with at least balancing.TARGET_5XX_MIN_REQUESTS requests of which more than
      balancing.TARGET_5XX_PERCENT % were answered 5xx by the targets (the 5xx alarm's rule, on
      1 minute instead of 5).
  ALB metrics reach CloudWatch a minute or two late: a 5-minute watch judges its first 3 or 4.
- the new color's Auto Scaling group (DescribeAutoScalingGroups): the tag FINISH_TAG, which
  `request_finish` writes from another process (`deploy --finish` cannot take the lock the watching
  process holds), ends the watch early with nothing wrong, unless the same poll found a problem.
  A group that is gone is a problem.

Every wait goes through `Aws.wait`, so the benchmark's virtual clock runs through it, the parts
around it run while it sleeps, the stack lock's watch looks at the lock at each poll, and the
progress display shows it as it shows any wait: "waiting for the watch of app (green) for
problems: until 14:52 UTC; nothing wrong so far (120 requests, 0 answered 5xx)".
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from threetier.aws import Poll, WaitTimeout
from threetier.blocks import alarms
from threetier.blocks.balancing import TARGET_5XX_MIN_REQUESTS, TARGET_5XX_PERCENT
from threetier.engine import Ctx

FINISH_TAG = "threetier:deploy-finish"  # on the new color's ASG: `deploy --finish` asked to end the watch
POLL_SECONDS = 30   # alarms change state at most once a minute, ALB metrics come by the minute
PERIOD = 60         # seconds: the metrics' period
UNHEALTHY_MINUTES = 2
GREEN_SUFFIX = "-g"  # green's names are blue's + "-g" (docs: the two colors), the group's too
# The Ids of the GetMetricData queries, which `verdict` reads back.
UNHEALTHY, ERRORS, REQUESTS = "unhealthy", "errors", "requests"


@dataclass(frozen=True)
class Watched:
    # Why to roll back: "alarm <name>", or a metric verdict ("5xx 12% of 340 requests in 1 min");
    # None: the watch ran its time (or was finished early) with nothing wrong.
    problem: str | None
    finished_early: bool  # `deploy --finish` asked to end it


def watch(ctx: Ctx, *, tier: str, alarm_names: Sequence[str], target_group_arn: str,
          load_balancer_arn: str, group_name: str, until: float) -> Watched:
    """Watch the new color of `tier` until `until` (a time on ctx.aws.clock), a problem, or a finish
    request. An `until` already past watches nothing (deploy.watch_minutes 0)."""
    clock = ctx.aws.clock
    began = clock.now()
    if until <= began:
        return Watched(problem=None, finished_early=False)
    wall_began = dt.datetime.now(dt.timezone.utc)

    def wall(moment: float) -> dt.datetime:
        """A time on the AWS layer's clock (virtual in the benchmark) as a UTC time for CloudWatch."""
        return wall_began + dt.timedelta(seconds=moment - began)

    queries = metric_queries(target_group_arn, load_balancer_arn)
    ends = f"until {wall(until):%H:%M} UTC"
    outcome: list[Watched] = []

    def probe() -> Poll:
        now = clock.now()
        answers = metric_answers(ctx, queries, wall(began), wall(now), target_group_arn)
        group = auto_scaling_group(ctx, group_name)
        problem = (alarm_in_alarm(ctx, alarm_names) or verdict(answers)
                   or (f"Auto Scaling group {group_name} is gone" if group is None else None))
        finished = problem is None and group is not None and finish_requested(group)
        if problem is not None or finished or now >= until:
            outcome.append(Watched(problem=problem, finished_early=finished))
            said = problem or ("finished early" if finished else "nothing wrong")
            return Poll(True, f"{ends}; {said}")
        return Poll(False, f"{ends}; nothing wrong so far ({seen(answers)})")

    color = "green" if group_name.endswith(GREEN_SUFFIX) else "blue"
    try:
        ctx.aws.wait(f"the watch of {tier} ({color}) for problems", probe, delay=POLL_SECONDS,
                     timeout=until - began)
    except WaitTimeout:  # the last look found nothing wrong and took the watch past its time
        return Watched(problem=None, finished_early=False)
    return outcome[-1]


def request_finish(ctx: Ctx, group_name: str) -> None:
    """What `deploy --finish` does, from any process: tag the new color's group; the watch sees it at
    its next poll (within POLL_SECONDS) and ends with nothing wrong."""
    asked = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    ctx.aws.call("autoscaling", "create_or_update_tags", resource=f"Auto Scaling group {group_name}",
                 Tags=[{"ResourceId": group_name, "ResourceType": "auto-scaling-group", "Key": FINISH_TAG,
                        "Value": asked, "PropagateAtLaunch": False}])


# -- the looks ------------------------------------------------------------------------------------
def alarm_in_alarm(ctx: Ctx, names: Sequence[str]) -> str | None:
    """ "alarm <name>" for the first of `names` (sorted) in ALARM; an alarm that does not exist is not."""
    firing: list[str] = []
    for start in range(0, len(names), 100):  # DescribeAlarms takes up to 100 names
        firing += [alarm["AlarmName"] for alarm in ctx.aws.items(
            "cloudwatch", "describe_alarms", "MetricAlarms", resource="the watched alarms",
            AlarmNames=list(names[start:start + 100])) if alarm.get("StateValue") == "ALARM"]
    return f"alarm {min(firing)}" if firing else None


def auto_scaling_group(ctx: Ctx, group_name: str) -> dict[str, Any] | None:
    """The group as AWS describes it now (with its tags), None when it is gone."""
    groups = ctx.aws.call("autoscaling", "describe_auto_scaling_groups", resource=f"Auto Scaling group {group_name}",
                          AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    return groups[0] if groups else None


def finish_requested(group: Mapping[str, Any]) -> bool:
    return any(tag.get("Key") == FINISH_TAG for tag in group.get("Tags", []))


def metric_queries(target_group_arn: str, load_balancer_arn: str) -> list[dict[str, Any]]:
    where = alarms.dimensions(TargetGroup=alarms.target_group_dimension(target_group_arn),
                              LoadBalancer=alarms.load_balancer_dimension(load_balancer_arn))
    return [{**alarms.metric_query(query_id, "AWS/ApplicationELB", metric, where, statistic=statistic, period=PERIOD),
             "ReturnData": True}
            for query_id, metric, statistic in ((UNHEALTHY, "UnHealthyHostCount", "Maximum"),
                                                (ERRORS, "HTTPCode_Target_5XX_Count", "Sum"),
                                                (REQUESTS, "RequestCount", "Sum"))]


def metric_answers(ctx: Ctx, queries: list[dict[str, Any]], began: dt.datetime, now: dt.datetime,
                   target_group_arn: str) -> list[dict[str, Any]]:
    """GetMetricData's MetricDataResults from the minute the watch began to the end of this one."""
    start = began.replace(second=0, microsecond=0)
    end = now.replace(second=0, microsecond=0) + dt.timedelta(seconds=PERIOD)
    answer = ctx.aws.call("cloudwatch", "get_metric_data", resource=f"the metrics of {target_group_arn}",
                          MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending")
    return list(answer.get("MetricDataResults", []))


# -- the verdict ----------------------------------------------------------------------------------
def by_minute(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[dt.datetime, float]]:
    """Query Id -> {minute: value}. A minute with no value is no data point: ALB publishes its
    counts only when they are not zero."""
    series: dict[str, dict[dt.datetime, float]] = {}
    for result in results:
        series.setdefault(result["Id"], {}).update(zip(result.get("Timestamps", []), result.get("Values", []), strict=True))
    return series


def verdict(results: Iterable[Mapping[str, Any]]) -> str | None:
    """Why to roll back, from GetMetricData's MetricDataResults (`metric_queries`' Ids), or None.
    A pure function of the answers: see the module's docstring for the rule."""
    series = by_minute(results)
    requests, errors = series.get(REQUESTS, {}), series.get(ERRORS, {})
    rates = [(100 * errors.get(minute, 0.0) / count, count) for minute, count in requests.items()
             if count >= TARGET_5XX_MIN_REQUESTS]
    worst = max(rates, default=None)
    if worst is not None and worst[0] > TARGET_5XX_PERCENT:
        return f"5xx {worst[0]:.3g}% of {worst[1]:.0f} requests in 1 min"
    unhealthy = series.get(UNHEALTHY, {})
    step = dt.timedelta(seconds=PERIOD)
    for minute in sorted(unhealthy):
        run = [unhealthy.get(minute + step * n, 0.0) for n in range(UNHEALTHY_MINUTES)]
        if all(count > 0 for count in run):
            return f"unhealthy targets {UNHEALTHY_MINUTES} min in a row (up to {max(run):.0f})"
    return None


def seen(results: Iterable[Mapping[str, Any]]) -> str:
    """What the metrics showed so far, for the progress line."""
    series = by_minute(results)
    requests, errors = sum(series.get(REQUESTS, {}).values()), sum(series.get(ERRORS, {}).values())
    return f"{requests:.0f} requests, {errors:.0f} answered 5xx"
