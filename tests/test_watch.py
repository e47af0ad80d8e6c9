"""The watch after a switch (threetier/blocks/watch.py): alarms, the new color's metrics, a finish
request from another process; every poll on the virtual clock. No built stack: moto holds an Auto
Scaling group and the alarms, botocore's Stubber answers GetMetricData where moto has no ALB metrics."""
from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from helpers import FakeClock, moto
from threetier import config as configlib
from threetier import state as statelib
from threetier.aws import Aws
from threetier.blocks.balancing import TARGET_5XX_MIN_REQUESTS
from threetier.blocks.watch import FINISH_TAG, POLL_SECONDS, Watched, request_finish, verdict, watch
from threetier.display import Display
from threetier.engine import Ctx
from threetier.output import Output

GROUP = "threetier-app-asg-g"
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/threetier-app-tg-g/0123456789abcdef"
BALANCER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/threetier-internal-alb/fedcba9876543210"
ALARMS = ("threetier-app-unhealthy-hosts", "threetier-app-5xx-rate")
T0 = dt.datetime(2026, 12, 7, 14, 0, tzinfo=dt.timezone.utc)


class HookedClock(FakeClock):
    """Virtual time; `hooks[n]` runs during the n-th sleep (1-based), i.e. just before poll n+1."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks: dict[int, Callable[[], None]] = {}
        self.sleep = self._hooked

    def _hooked(self, seconds: float) -> None:
        self._sleep(seconds)
        hook = self.hooks.get(len(self.sleeps))
        if hook is not None:
            hook()


def make_ctx(clock: FakeClock | None = None) -> Ctx:
    config = configlib.parse({})
    aws = Aws(config.region, clock=clock or HookedClock(), emulator=True, read_threads=1)
    return Ctx(config=config, aws=aws, out=Output(stdout=io.StringIO(), stderr=io.StringIO()),
               state=statelib.State(stack=config.stack, region=config.region))


@pytest.fixture
def group() -> Iterator[str]:
    """The new color's Auto Scaling group (empty) and the tier's alarms, all OK, in moto."""
    with moto():
        ec2, autoscaling = boto3.client("ec2"), boto3.client("autoscaling")
        template = ec2.create_launch_template(LaunchTemplateName="threetier-app-lt-g", LaunchTemplateData={
            "ImageId": "ami-12345678", "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
        autoscaling.create_auto_scaling_group(AutoScalingGroupName=GROUP, MinSize=0, MaxSize=0, DesiredCapacity=0,
                                              LaunchTemplate={"LaunchTemplateId": template},
                                              AvailabilityZones=["us-east-1a"])
        cloudwatch = boto3.client("cloudwatch")
        for name in ALARMS:
            cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/ApplicationELB", MetricName="RequestCount",
                                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                        ComparisonOperator="GreaterThanThreshold")
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="test: quiet")
        yield GROUP


def run_watch(ctx: Ctx, seconds: float, alarm_names: tuple[str, ...] = ALARMS, group_name: str = GROUP) -> Watched:
    return watch(ctx, tier="app", alarm_names=alarm_names, target_group_arn=TARGET_GROUP,
                 load_balancer_arn=BALANCER, group_name=group_name, until=ctx.aws.clock.now() + seconds)


def polls(ctx: Ctx) -> int:
    return sum(1 for call in ctx.aws.calls if call.operation == "GetMetricData")


# -- moto: alarms, the finish tag, the time ------------------------------------------------------------
def test_an_alarm_that_fires_at_the_third_poll_is_the_problem(group: str) -> None:
    ctx = make_ctx()
    assert isinstance(ctx.aws.clock, HookedClock)
    ctx.aws.clock.hooks[2] = lambda: boto3.client("cloudwatch").set_alarm_state(
        AlarmName=ALARMS[1], StateValue="ALARM", StateReason="test: 40 % of the requests answered 500")
    assert run_watch(ctx, 300) == Watched(problem=f"alarm {ALARMS[1]}", finished_early=False)
    assert polls(ctx) == 3 and ctx.aws.clock.now() == 2 * POLL_SECONDS  # it stopped at once
    assert [c.params["AlarmNames"] for c in ctx.aws.calls if c.operation == "DescribeAlarms"] == [list(ALARMS)] * 3
    assert not ctx.aws.mutating_calls()


def test_a_finish_request_from_another_process_ends_the_watch_early(group: str) -> None:
    ctx, other = make_ctx(), make_ctx(FakeClock())  # `deploy --finish`: its own AWS layer
    assert isinstance(ctx.aws.clock, HookedClock)
    ctx.aws.clock.hooks[1] = lambda: request_finish(other, group)
    assert run_watch(ctx, 300) == Watched(problem=None, finished_early=True)
    assert polls(ctx) == 2 and ctx.aws.clock.now() == POLL_SECONDS
    [tagged] = boto3.client("autoscaling").describe_tags(Filters=[{"Name": "key", "Values": [FINISH_TAG]}])["Tags"]
    assert tagged["ResourceId"] == group and tagged["PropagateAtLaunch"] is False
    assert dt.datetime.fromisoformat(tagged["Value"]).tzinfo is not None  # when it was asked, UTC


def test_a_problem_wins_over_a_finish_request_seen_at_the_same_poll(group: str) -> None:
    ctx, other = make_ctx(), make_ctx(FakeClock())
    assert isinstance(ctx.aws.clock, HookedClock)

    def both() -> None:
        request_finish(other, group)
        boto3.client("cloudwatch").set_alarm_state(AlarmName=ALARMS[0], StateValue="ALARM", StateReason="test")
    ctx.aws.clock.hooks[1] = both
    assert run_watch(ctx, 300) == Watched(problem=f"alarm {ALARMS[0]}", finished_early=False)


@pytest.mark.parametrize(("seconds", "expected_polls", "last_sleep"), [(300, 11, 30), (100, 5, 10)])
def test_a_quiet_watch_runs_its_time_with_a_poll_every_interval(group: str, seconds: int, expected_polls: int,
                                                                 last_sleep: int) -> None:
    ctx = make_ctx()
    assert run_watch(ctx, seconds) == Watched(problem=None, finished_early=False)
    assert polls(ctx) == expected_polls  # the first at once, the last at `until`
    assert isinstance(ctx.aws.clock, FakeClock)
    assert ctx.aws.clock.sleeps == [POLL_SECONDS] * (expected_polls - 2) + [last_sleep]
    assert ctx.aws.clock.now() == seconds


def test_a_last_look_that_takes_the_watch_past_its_time_ends_it_quietly(group: str) -> None:
    """Aws.wait gives up once a poll that began before `until` ends after it: that is the watch's end."""
    clock = FakeClock()
    ctx = make_ctx(clock)

    def slow(call: Any) -> None:  # each metrics read takes 40 s of the clock
        if call.operation == "GetMetricData":
            clock.t += 40
    ctx.aws.on_call = slow
    assert run_watch(ctx, 100) == Watched(problem=None, finished_early=False)
    assert polls(ctx) == 2 and clock.now() == 110  # looks at 0 and 70, each 40 s long


def test_a_watch_whose_time_is_past_looks_at_nothing(group: str) -> None:
    ctx = make_ctx()
    assert run_watch(ctx, 0) == Watched(problem=None, finished_early=False)
    assert ctx.aws.calls == []


def test_the_new_colors_group_gone_is_a_problem_and_no_alarm_names_no_describe(group: str) -> None:
    ctx = make_ctx()
    watched = run_watch(ctx, 300, alarm_names=(), group_name="threetier-app-asg")
    assert watched == Watched(problem="Auto Scaling group threetier-app-asg is gone", finished_early=False)
    assert polls(ctx) == 1 and not [c for c in ctx.aws.calls if c.operation == "DescribeAlarms"]


def test_the_watch_shows_as_a_wait_in_the_progress_lines(group: str) -> None:
    ctx = make_ctx()
    ctx.aws.part = "Part 5 (app-tier)"
    stderr = io.StringIO()
    with Display(Output(stdout=io.StringIO(), stderr=stderr, progress="plain", no_color=True), ctx.aws,
                 ctx.aws.clock):
        run_watch(ctx, 300)
    lines = stderr.getvalue().splitlines()
    first = re.compile(r"Part 5 \(app-tier\): waiting for the watch of app \(green\) for problems: until \d\d:\d\d UTC; "
                       r"nothing wrong so far \(0 requests, 0 answered 5xx\)$")
    assert [line for line in lines if first.search(line)], lines
    assert sum("still waiting for the watch of app (green) for problems" in line for line in lines) >= 4


# -- Stubber: the metrics across polls ----------------------------------------------------------------
def answer(unhealthy: dict[int, float] | None = None, errors: dict[int, float] | None = None,
           requests: dict[int, float] | None = None) -> list[dict[str, Any]]:
    """GetMetricData's MetricDataResults, written by hand: {minute after T0: value} per query."""
    def result(query_id: str, values: dict[int, float] | None) -> dict[str, Any]:
        minutes = sorted(values or {})
        return {"Id": query_id, "Label": query_id, "StatusCode": "Complete",
                "Timestamps": [T0 + dt.timedelta(minutes=m) for m in minutes],
                "Values": [(values or {})[m] for m in minutes]}
    return [result("unhealthy", unhealthy), result("errors", errors), result("requests", requests)]


@pytest.mark.parametrize(("answers", "problem"), [
    ([answer(unhealthy={0: 0}), answer(unhealthy={0: 0, 1: 1}), answer(unhealthy={0: 0, 1: 1, 2: 2})],
     "unhealthy targets 2 min in a row (up to 2)"),
    ([answer(requests={0: 40}), answer(requests={0: 40, 1: 50}, errors={1: 30})],
     "5xx 60% of 50 requests in 1 min"),
], ids=["unhealthy", "5xx"])
def test_the_metrics_across_polls_decide_when_to_roll_back(group: str, answers: list[list[dict[str, Any]]],
                                                           problem: str) -> None:
    ctx = make_ctx()
    with Stubber(ctx.aws.client("cloudwatch")) as cloudwatch:
        for results in answers:
            cloudwatch.add_response("get_metric_data", {"MetricDataResults": results},
                                    {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY,
                                     "ScanBy": "TimestampAscending"})
            cloudwatch.add_response("describe_alarms", {"MetricAlarms": [
                {"AlarmName": name, "StateValue": "OK"} for name in ALARMS]}, {"AlarmNames": list(ALARMS)})
        assert run_watch(ctx, 300) == Watched(problem=problem, finished_early=False)
        cloudwatch.assert_no_pending_responses()
    assert ctx.aws.clock.now() == (len(answers) - 1) * POLL_SECONDS
    first, last = [c.params for c in ctx.aws.calls if c.operation == "GetMetricData"][::len(answers) - 1]
    # The new color's target group on its load balancer, by the minute, from the watch's first minute on.
    assert [(q["Id"], q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"], q["MetricStat"]["Period"])
            for q in first["MetricDataQueries"]] == [
        ("unhealthy", "UnHealthyHostCount", "Maximum", 60), ("errors", "HTTPCode_Target_5XX_Count", "Sum", 60),
        ("requests", "RequestCount", "Sum", 60)]
    assert first["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "TargetGroup", "Value": "targetgroup/threetier-app-tg-g/0123456789abcdef"},
        {"Name": "LoadBalancer", "Value": "app/threetier-internal-alb/fedcba9876543210"}]
    assert first["StartTime"] == last["StartTime"] and first["StartTime"].second == 0
    assert last["EndTime"].second == 0 and last["EndTime"] >= first["EndTime"]
    assert last["EndTime"] - last["StartTime"] > dt.timedelta(seconds=ctx.aws.clock.now())  # all the time watched


# -- the verdict, a pure function of the answers ------------------------------------------------------
ENOUGH = TARGET_5XX_MIN_REQUESTS


@pytest.mark.parametrize(("results", "problem"), [
    ([], None),
    (answer(), None),
    (answer(unhealthy={0: 0, 1: 0, 2: 0}, requests={0: 100, 1: 100}), None),
    (answer(unhealthy={0: 1}), None),                            # one minute: a blip
    (answer(unhealthy={0: 1, 1: 0, 2: 3}), None),                # two, not in a row
    (answer(unhealthy={0: 1, 2: 1}), None),                      # a minute with no data between them
    (answer(unhealthy={3: 1, 4: 2}), "unhealthy targets 2 min in a row (up to 2)"),
    (answer(unhealthy={0: 0, 1: 1, 2: 1, 3: 0}), "unhealthy targets 2 min in a row (up to 1)"),
    (answer(errors={0: 12}, requests={0: 100}), "5xx 12% of 100 requests in 1 min"),
    (answer(errors={0: 5}, requests={0: 100}), None),            # 5 %: not more than the alarm's 5 %
    (answer(errors={0: 6}, requests={0: 111}), "5xx 5.41% of 111 requests in 1 min"),
    (answer(errors={0: ENOUGH - 1}, requests={0: ENOUGH - 1}), None),  # too few requests to judge
    (answer(errors={0: ENOUGH}, requests={0: ENOUGH}), f"5xx 100% of {ENOUGH} requests in 1 min"),
    (answer(requests={0: 500, 1: 500}), None),                   # no 5xx data point: none answered 5xx
    (answer(errors={0: 30}), None),                              # 5xx with no request count: not judged
    (answer(errors={0: 10, 1: 40}, requests={0: 100, 1: 100}), "5xx 40% of 100 requests in 1 min"),  # the worst
    (answer(unhealthy={0: 1, 1: 1}, errors={0: 50}, requests={0: 100}), "5xx 50% of 100 requests in 1 min"),
])
def test_verdict(results: list[dict[str, Any]], problem: str | None) -> None:
    assert verdict(results) == problem
