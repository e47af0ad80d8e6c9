"""The stack's CloudWatch alarms (Parts 3, 5 and 7) and its dashboard (Part 7), against moto.

What `up` puts (metric, dimensions, threshold, actions, tags), that a no-op `up` changes none of it,
how a changed config.yaml or a change by hand converges, what `check` reports (each alarm's state),
and that `down` leaves neither an alarm nor the dashboard.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import cli, make_engine, moto, write_config
from steps import database
from threetier.aws import PART_TAG, STACK_TAG, is_mutating
from threetier.blocks import alarms, balancing

STACK = "threetier"
EMAIL = "ops@example.com"
TIER_ALARMS = {f"{STACK}-{tier}-{what}": part for tier, part in (("app", 5), ("web", 7))
               for what in ("unhealthy-hosts", "5xx-rate")}
ALARMS = {**TIER_ALARMS, f"{STACK}-ext-alb-5xx": 7, f"{STACK}-aurora-writer-cpu": 3,
          f"{STACK}-aurora-writer-memory": 3}
DASHBOARD = f"{STACK}-us-east-1-dashboard"  # dashboards are global: the region is in the name
LOCK = ("PutParameter", "DeleteParameter")  # the stack's lock, taken and released by every `up`


def mutating(calls: list[str]) -> list[str]:
    return sorted(op for op in calls if is_mutating(op) and op not in LOCK)


# `built` (conftest): the default stack (alarms and dashboard on, no e-mail), restored as `up` left it.
@pytest.fixture
def built_with_email(stack_from) -> Path:
    """The stack with monitoring.email set to EMAIL (reference "email"), restored as `up` left it."""
    return stack_from("email")


def described() -> dict[str, dict[str, Any]]:
    """The stack's alarms as CloudWatch has them."""
    found = boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{STACK}-")["MetricAlarms"]
    return {alarm["AlarmName"]: alarm for alarm in found}


def dashboard() -> dict[str, Any]:
    return json.loads(boto3.client("cloudwatch").get_dashboard(DashboardName=DASHBOARD)["DashboardBody"])


def dashboards() -> list[str]:
    return [d["DashboardName"] for d in boto3.client("cloudwatch").list_dashboards()["DashboardEntries"]]


def suffixes() -> dict[str, str]:
    """CloudWatch's dimension values of both ALBs and target groups, from ELB itself."""
    elb = boto3.client("elbv2")
    found = {}
    for name in (f"{STACK}-ext-alb", f"{STACK}-int-alb"):
        arn = elb.describe_load_balancers(Names=[name])["LoadBalancers"][0]["LoadBalancerArn"]
        found[name] = arn.split(":loadbalancer/")[1]
        assert found[name].startswith(f"app/{name}/")
    for name in (f"{STACK}-web-tg", f"{STACK}-app-tg"):
        arn = elb.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"]
        found[name] = arn.split(":")[-1]
        assert found[name].startswith(f"targetgroup/{name}/")
    return found


def dims(alarm_or_metric: dict[str, Any]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in alarm_or_metric.get("Dimensions", [])}


def status(workdir: Path) -> tuple[int, dict[int, dict]]:
    result = cli("status", "--json", cwd=workdir)
    return result.code, {p["part"]: p for p in json.loads(result.stdout)["parts"]}


def checked_alarms(workdir: Path) -> dict[str, str]:
    """Every Part's `check` (what status and plan run): the alarm states they report."""
    engine = make_engine(workdir)
    states: dict[str, str] = {}
    for part in engine.parts:
        states.update(engine.check(part).alarms)
    return states


# -- up ----------------------------------------------------------------------------------
def test_up_makes_every_alarm_on_its_metric_with_its_threshold_and_the_topic_as_actions(built_with_email: Path) -> None:
    found = described()
    assert set(found) == set(ALARMS)
    topic = boto3.client("sns").list_topics()["Topics"]
    assert [t["TopicArn"] for t in topic] == [f"arn:aws:sns:us-east-1:123456789012:{STACK}-alarms"]
    cloudwatch = boto3.client("cloudwatch")
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [topic[0]["TopicArn"]], name
        assert alarm["ActionsEnabled"] is True
        assert len(alarm["AlarmDescription"]) > 100, name  # says what it means and where to look
        assert {t["Key"]: t["Value"] for t in cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]} \
            == {STACK_TAG: STACK, PART_TAG: str(ALARMS[name]), "Name": name}

    ids = suffixes()
    for tier, balancer in (("web", f"{STACK}-ext-alb"), ("app", f"{STACK}-int-alb")):
        unhealthy = found[f"{STACK}-{tier}-unhealthy-hosts"]
        assert (unhealthy["Namespace"], unhealthy["MetricName"], unhealthy["Statistic"]) == (
            "AWS/ApplicationELB", "UnHealthyHostCount", "Maximum")
        assert dims(unhealthy) == {"TargetGroup": ids[f"{STACK}-{tier}-tg"], "LoadBalancer": ids[balancer]}
        assert (unhealthy["Period"], unhealthy["EvaluationPeriods"], unhealthy["DatapointsToAlarm"]) == (60, 5, 5)
        assert (unhealthy["ComparisonOperator"], unhealthy["Threshold"]) == ("GreaterThanThreshold", 0)

    elb_5xx = found[f"{STACK}-ext-alb-5xx"]
    assert (elb_5xx["MetricName"], elb_5xx["Statistic"], elb_5xx["Period"]) == ("HTTPCode_ELB_5XX_Count", "Sum", 300)
    assert dims(elb_5xx) == {"LoadBalancer": ids[f"{STACK}-ext-alb"]}
    assert (elb_5xx["Threshold"], elb_5xx["TreatMissingData"]) == (5, "notBreaching")

    writer = {"DBClusterIdentifier": f"{STACK}-aurora", "Role": "WRITER"}  # follows a failover
    cpu, memory = found[f"{STACK}-aurora-writer-cpu"], found[f"{STACK}-aurora-writer-memory"]
    assert (cpu["Namespace"], cpu["MetricName"], dims(cpu)) == ("AWS/RDS", "CPUUtilization", writer)
    assert (cpu["ComparisonOperator"], cpu["Threshold"]) == ("GreaterThanThreshold", 80)
    assert (memory["Namespace"], memory["MetricName"], dims(memory)) == ("AWS/RDS", "FreeableMemory", writer)
    # db.t4g.medium, the default class: 4 GiB, and the alarm at 10 % of it.
    assert (memory["ComparisonOperator"], memory["Threshold"]) == ("LessThanThreshold", int(0.1 * 4 * 1024**3))


def test_each_tiers_5xx_alarm_is_the_share_of_its_requests_in_5_minutes(built: Path) -> None:
    found, ids = described(), suffixes()
    for tier, balancer in (("web", f"{STACK}-ext-alb"), ("app", f"{STACK}-int-alb")):
        alarm = found[f"{STACK}-{tier}-5xx-rate"]
        assert "MetricName" not in alarm or not alarm["MetricName"]
        queries = {q["Id"]: q for q in alarm["Metrics"]}
        assert set(queries) == {"errors", "requests", "rate"}
        for query_id, metric in (("errors", "HTTPCode_Target_5XX_Count"), ("requests", "RequestCount")):
            stat = queries[query_id]["MetricStat"]
            assert (stat["Metric"]["MetricName"], stat["Stat"], stat["Period"]) == (metric, "Sum", 300)
            assert dims(stat["Metric"]) == {"TargetGroup": ids[f"{STACK}-{tier}-tg"], "LoadBalancer": ids[balancer]}
            assert queries[query_id]["ReturnData"] is False
        assert "100 * FILL(errors, 0) / requests" in queries["rate"]["Expression"]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (balancing.TARGET_5XX_PERCENT, "GreaterThanThreshold")
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == alarm["OKActions"] == []  # no monitoring.email: no one to tell


def test_the_memory_threshold_follows_the_instance_class() -> None:
    gib = 1024**3
    assert database.freeable_memory_threshold("db.t4g.medium") == int(0.4 * gib)
    assert database.freeable_memory_threshold("db.t3.large") == int(0.8 * gib)
    assert database.freeable_memory_threshold("db.r6g.large") == int(1.6 * gib)
    assert database.freeable_memory_threshold("db.r7g.2xlarge") == int(6.4 * gib)
    assert database.freeable_memory_threshold("db.x2g.large") == database.FREEABLE_MEMORY_FALLBACK_BYTES
    assert database.freeable_memory_threshold("db.r6gd.large") == database.FREEABLE_MEMORY_FALLBACK_BYTES


def test_a_no_op_up_changes_no_alarm_and_reads_them_once(built_with_email: Path, calls: list[str]) -> None:
    result = cli("up", "--yes", cwd=built_with_email)
    assert result.code == 0, result.stderr
    assert mutating(calls) == []
    assert calls.count("DescribeAlarms") == 1  # one read for Parts 3, 5 and 7, from the inventory
    assert calls.count("GetDashboard") == 1


def test_an_alarm_as_aws_describes_it_is_no_difference() -> None:
    """AWS leaves out what an alarm does not use (Metrics of a one-metric alarm, Dimensions and a
    query's ReturnData of a metric-math one) where moto answers it empty; dimensions may come in
    another order. None of that is drift; another threshold or action is."""
    where = alarms.dimensions(TargetGroup="targetgroup/tg/1", LoadBalancer="app/alb/2")
    wanted = {"AlarmDescription": "d", "ActionsEnabled": True, "AlarmActions": [], "OKActions": [],
              "Metrics": [alarms.metric_query("errors", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", where,
                                              statistic="Sum", period=300),
                          {"Id": "rate", "Expression": "100 * errors", "ReturnData": True}],
              "EvaluationPeriods": 1, "Threshold": 5.0, "ComparisonOperator": "GreaterThanThreshold"}
    have = {"AlarmName": "x", "AlarmDescription": "d", "ActionsEnabled": True, "AlarmActions": [], "OKActions": [],
            "StateValue": "OK", "EvaluationPeriods": 1, "Threshold": 5, "ComparisonOperator": "GreaterThanThreshold",
            "Metrics": [{"Id": "errors", "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count",
                           "Dimensions": list(reversed(where))}, "Period": 300, "Stat": "Sum"}},
                {"Id": "rate", "Expression": "100 * errors"}]}
    assert alarms.differences(have, wanted) == []
    assert alarms.differences({**have, "Threshold": 10.0}, wanted) == ["Threshold 10, should be 5"]
    assert alarms.differences({**have, "AlarmActions": ["arn:aws:sns:us-east-1:1:t"]}, wanted) == ["AlarmActions differ"]
    one_metric = {**have, "Metrics": [], "MetricName": "RequestCount"}
    assert "watches metric RequestCount, should watch metric math" in alarms.differences(one_metric, wanted)


# -- convergence -----------------------------------------------------------------------------
def test_an_email_added_later_points_every_alarm_at_the_topic(built: Path, calls: list[str]) -> None:
    assert all(alarm["AlarmActions"] == [] for alarm in described().values())
    write_config(built, monitoring={"email": EMAIL})
    code, parts = status(built)
    assert code == 3
    for name, part in ALARMS.items():
        assert f"CloudWatch alarm {name}: AlarmActions differ; OKActions differ (`up` puts it again)" \
            in parts[part]["drift"]
    calls.clear()
    result = cli("up", "--yes", cwd=built)
    assert result.code == 0, result.stderr
    assert mutating(calls).count("PutMetricAlarm") == len(ALARMS)
    assert "DeleteAlarms" not in calls
    topic = f"arn:aws:sns:us-east-1:123456789012:{STACK}-alarms"
    assert {name: (a["AlarmActions"], a["OKActions"]) for name, a in described().items()} == {
        name: ([topic], [topic]) for name in ALARMS}
    assert status(built)[0] == 0


def test_an_alarm_changed_or_deleted_by_hand_is_drift_that_up_repairs(built: Path, calls: list[str]) -> None:
    cloudwatch = boto3.client("cloudwatch")
    cpu = described()[f"{STACK}-aurora-writer-cpu"]
    changed = {key: cpu[key] for key in ("AlarmName", "AlarmDescription", "MetricName", "Namespace", "Statistic",
                                         "Dimensions", "Period", "EvaluationPeriods", "DatapointsToAlarm",
                                         "ComparisonOperator", "TreatMissingData")}
    cloudwatch.put_metric_alarm(**changed, Threshold=95.0)
    cloudwatch.delete_alarms(AlarmNames=[f"{STACK}-web-unhealthy-hosts"])
    code, parts = status(built)
    assert code == 3
    assert parts[3]["drift"] == [f"CloudWatch alarm {STACK}-aurora-writer-cpu: Threshold 95, should be 80 "
                                 f"(`up` puts it again)"]
    assert parts[7]["drift"] == [f"missing: CloudWatch alarm {STACK}-web-unhealthy-hosts"]
    calls.clear()
    assert cli("up", "--yes", cwd=built).code == 0
    assert mutating(calls) == ["PutMetricAlarm", "PutMetricAlarm"]
    found = described()
    assert found[f"{STACK}-aurora-writer-cpu"]["Threshold"] == 80
    assert set(found) == set(ALARMS)
    assert status(built)[0] == 0


def test_alarms_false_deletes_them_and_dashboard_false_deletes_it(built: Path, calls: list[str]) -> None:
    foreign = f"{STACK}-2-web-unhealthy-hosts"  # stack threetier-2's, under the same name prefix
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=foreign, MetricName="UnHealthyHostCount", Namespace="AWS/ApplicationELB", Statistic="Maximum",
        Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold")
    write_config(built, monitoring={"alarms": False})
    code, parts = status(built)
    assert code == 3
    for name, part in ALARMS.items():
        assert f"CloudWatch alarm {name}: monitoring.alarms is false (`up` deletes it)" in parts[part]["drift"]
    # The dashboard loses its alarm widget with them.
    assert f"CloudWatch dashboard {DASHBOARD}: changed since `up` made it (`up` puts it back)" in parts[7]["drift"]
    calls.clear()
    assert cli("up", "--yes", cwd=built).code == 0
    assert mutating(calls) == ["DeleteAlarms"] * 3 + ["PutDashboard"]  # one call per Part
    assert set(described()) == {foreign}
    assert [w["type"] for w in dashboard()["widgets"]].count("alarm") == 0
    assert status(built)[0] == 0

    write_config(built, monitoring={"alarms": False, "dashboard": False})
    code, parts = status(built)
    assert code == 3 and f"CloudWatch dashboard {DASHBOARD}: monitoring.dashboard is false (`up` deletes it)" \
        in parts[7]["drift"]
    calls.clear()
    assert cli("up", "--yes", cwd=built).code == 0
    assert mutating(calls) == ["DeleteDashboards"]
    assert dashboards() == []
    code, parts = status(built)
    assert code == 0 and "dashboard_url" not in parts[7]["resources"]

    write_config(built)  # the defaults again: every alarm and the dashboard back
    calls.clear()
    assert cli("up", "--yes", cwd=built).code == 0
    assert mutating(calls) == ["PutDashboard"] + ["PutMetricAlarm"] * len(ALARMS)
    assert set(described()) == set(ALARMS) | {foreign}
    assert status(built)[0] == 0


# -- check ------------------------------------------------------------------------------------
def test_check_reports_each_alarms_state_and_one_in_alarm(built: Path) -> None:
    assert checked_alarms(built) == {name: "OK" for name in ALARMS}  # moto starts alarms OK
    boto3.client("cloudwatch").set_alarm_state(AlarmName=f"{STACK}-web-5xx-rate", StateValue="ALARM",
                                               StateReason="test: 40 % of the requests answered 500")
    states = checked_alarms(built)
    assert states[f"{STACK}-web-5xx-rate"] == "ALARM"
    assert {name: state for name, state in states.items() if state != "ALARM"} == {
        name: "OK" for name in ALARMS if name != f"{STACK}-web-5xx-rate"}
    # An alarm firing is nothing `up` changes: no drift; `status` exits 3 all the same, naming it.
    code, parts = status(built)
    assert code == 3 and all(not part["drift"] for part in parts.values())
    assert parts[7]["alarms"][f"{STACK}-web-5xx-rate"] == "ALARM"


def test_plan_lists_every_alarm_and_the_dashboard_to_create(tmp_path: Path) -> None:
    with moto():
        engine = make_engine(tmp_path)
        missing = [what for part in engine.parts for what in engine.check(part).missing]
    assert {f"CloudWatch alarm {name}" for name in ALARMS} | {f"CloudWatch dashboard {DASHBOARD}"} <= set(missing)


# -- the dashboard --------------------------------------------------------------------------------
def test_the_dashboard_draws_both_tiers_and_aurora(built: Path) -> None:
    body, ids = dashboard(), suffixes()
    graphs = {w["properties"]["title"]: w["properties"] for w in body["widgets"] if w["type"] == "metric"}
    assert all(graph["region"] == "us-east-1" for graph in graphs.values())

    def lines(title: str) -> list[tuple[Any, ...]]:
        """Each metric line: (namespace, metric, dimension values..., stat)."""
        graph = graphs[title]
        said = []
        for line in graph["metrics"]:
            options = line[-1] if isinstance(line[-1], dict) else {}
            names = [item for item in line if not isinstance(item, dict)]
            said.append((*names, options.get("stat", graph["stat"])))
        return said

    ext, int_, web_tg, app_tg = (ids[f"{STACK}-{n}"] for n in ("ext-alb", "int-alb", "web-tg", "app-tg"))
    elb = "AWS/ApplicationELB"
    assert lines("Requests per minute") == [(elb, "RequestCount", "LoadBalancer", ext, "Sum"),
                                            (elb, "RequestCount", "LoadBalancer", int_, "Sum")]
    assert set(lines("Target response time (seconds)")) == {
        (elb, "TargetResponseTime", "LoadBalancer", balancer, stat) for balancer in (ext, int_) for stat in ("p50", "p99")}
    assert set(lines("5xx per minute")) == {
        (elb, "HTTPCode_ELB_5XX_Count", "LoadBalancer", ext, "Sum"),
        (elb, "HTTPCode_Target_5XX_Count", "TargetGroup", web_tg, "LoadBalancer", ext, "Sum"),
        (elb, "HTTPCode_Target_5XX_Count", "TargetGroup", app_tg, "LoadBalancer", int_, "Sum")}
    assert {(elb, "HealthyHostCount", "TargetGroup", web_tg, "LoadBalancer", ext, "Minimum"),
            (elb, "HealthyHostCount", "TargetGroup", app_tg, "LoadBalancer", int_, "Minimum")} <= set(lines("Healthy hosts"))
    assert {("AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", f"{STACK}-{tier}-asg", "Average")
            for tier in ("web", "app")} <= set(lines("Instances in service"))
    for title, metric in (("Aurora CPU (%)", "CPUUtilization"), ("Aurora connections", "DatabaseConnections")):
        assert ("AWS/RDS", metric, "DBClusterIdentifier", f"{STACK}-aurora", "Role", "WRITER") == lines(title)[0][:6]
    [alarm_widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert alarm_widget["properties"]["alarms"] == [
        f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
        for name in (f"{STACK}-aurora-writer-cpu", f"{STACK}-aurora-writer-memory", *TIER_ALARMS, f"{STACK}-ext-alb-5xx")]

    # GroupInServiceInstances exists only for groups that collect it.
    groups = boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert len(groups) == 2
    for group in groups:
        assert {"GroupInServiceInstances", "GroupDesiredCapacity"} <= {m["Metric"] for m in group["EnabledMetrics"]}

    code, parts = status(built)
    assert code == 0
    assert parts[7]["resources"]["dashboard_url"] == (
        f"https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/{DASHBOARD}")


def test_a_dashboard_edited_by_hand_is_drift_and_up_puts_it_back(built: Path, calls: list[str]) -> None:
    made = dashboard()
    boto3.client("cloudwatch").put_dashboard(DashboardName=DASHBOARD, DashboardBody=json.dumps({"widgets": []}))
    code, parts = status(built)
    assert code == 3
    assert parts[7]["drift"] == [f"CloudWatch dashboard {DASHBOARD}: changed since `up` made it (`up` puts it back)"]
    calls.clear()
    assert cli("up", "--yes", cwd=built).code == 0
    assert mutating(calls) == ["PutDashboard"]
    assert dashboard() == made

    boto3.client("cloudwatch").delete_dashboards(DashboardNames=[DASHBOARD])
    code, parts = status(built)
    assert code == 3 and parts[7]["drift"] == [f"missing: CloudWatch dashboard {DASHBOARD}"]
    assert cli("up", "--yes", cwd=built).code == 0
    assert dashboard() == made


def test_group_metrics_no_longer_collected_are_drift_that_up_enables(built: Path, calls: list[str]) -> None:
    # moto's EnableMetricsCollection replaces the list (AWS adds to it): a way to stop collecting one.
    boto3.client("autoscaling").enable_metrics_collection(AutoScalingGroupName=f"{STACK}-app-asg",
                                                          Metrics=["GroupMinSize"], Granularity="1Minute")
    code, parts = status(built)
    assert code == 3
    assert parts[5]["drift"] == [f"Auto Scaling group {STACK}-app-asg: does not collect GroupDesiredCapacity, "
                                 f"GroupInServiceInstances, which the dashboard draws (`up` enables it)"]
    calls.clear()
    assert cli("up", "--yes", cwd=built).code == 0
    assert mutating(calls) == ["EnableMetricsCollection"]
    group = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"{STACK}-app-asg"])["AutoScalingGroups"][0]
    assert {m["Metric"] for m in group["EnabledMetrics"]} == {"GroupMinSize", *balancing.GROUP_METRICS}


# -- down ---------------------------------------------------------------------------------------
def test_down_leaves_no_alarm_and_no_dashboard(built_with_email: Path) -> None:
    foreign = f"{STACK}-2-aurora-writer-cpu"  # stack threetier-2's, under the same name prefix
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=foreign, MetricName="CPUUtilization", Namespace="AWS/RDS", Statistic="Average",
        Period=300, EvaluationPeriods=1, Threshold=80, ComparisonOperator="GreaterThanThreshold")
    result = cli("down", "--yes", "--skip-final-snapshot", cwd=built_with_email)
    assert result.code == 0, result.stderr
    assert set(described()) == {foreign}
    assert dashboards() == []
    assert boto3.client("sns").list_topics()["Topics"] == []
    again = cli("down", "--yes", "--skip-final-snapshot", cwd=built_with_email)  # gone already: nothing to do
    assert again.code == 0, again.stderr
