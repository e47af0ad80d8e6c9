"""A crash at any point, then `up`, ends with exactly one of everything."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from bench.faults import EXPECTED, census
from helpers import make_engine, moto, mutating

# census: how many of each kind of thing exists; EXPECTED: exactly one of everything (bench/faults.py).
CRASH_AFTER = ["CreateBucket", "PutObject", "CreateRole", "CreateInstanceProfile", "CreateVpc", "CreateSubnet",
               "CreateInternetGateway", "AllocateAddress", "CreateNatGateway", "CreateRouteTable",
               "AssociateRouteTable", "CreateSecurityGroup", "AuthorizeSecurityGroupIngress",
               "CreateDBSubnetGroup", "CreateDBCluster", "CreateDBInstance", "RunInstances", "SendCommand",
               "CreateImage", "TerminateInstances", "CreateTargetGroup", "CreateLoadBalancer", "CreateListener",
               "CreateLaunchTemplate", "CreateAutoScalingGroup",
               "CreateLogGroup", "CreateFlowLogs", "PutScalingPolicy", "PutMetricAlarm", "PutDashboard"]


class Crash(KeyboardInterrupt):
    """The process dies right after AWS did the work, before threetier saw the answer."""


def crash_up_after(engine, operation: str) -> None:
    """`up` dies right after AWS answered `operation` the first time."""
    def crash(model, **_):
        if model.name == operation:
            raise Crash(operation)
    engine.ctx.aws.session.events.register("after-call", crash)
    with pytest.raises(Crash):
        engine.up()


# The crash points test_engine.py crashes at with the other Parts mid-wait on the real-AWS model (its
# CRASH_AFTER: the same assertions and the model's rules) are not run again here, one Part at a time.
SIDE_BY_SIDE = {"CreateDBCluster", "RunInstances", "CreateLoadBalancer", "CreateImage", "CreateAutoScalingGroup",
                "CreateDBInstance", "CreateNatGateway"}


@pytest.mark.parametrize("operation", [operation for operation in CRASH_AFTER if operation not in SIDE_BY_SIDE])
def test_crash_right_after_a_create_then_up_ends_with_exactly_one_of_everything(tmp_path: Path, operation: str) -> None:
    with moto():
        crash_up_after(make_engine(tmp_path), operation)
        saved = json.loads((tmp_path / "state.json").read_text())
        assert any(p["status"] == "failed" and p["error"] == "interrupted" for p in saved["parts"].values())

        resumed = make_engine(tmp_path)
        resumed.up()
        assert census() == EXPECTED
        assert all(p.status == "done" for p in resumed.ctx.state.parts.values())
        final = make_engine(tmp_path)
        final.up()
        assert mutating(final) == []


@pytest.mark.parametrize("operation", ["CreateTopic", "Subscribe", "EnableMetricsCollection"])
def test_a_crash_in_the_alarm_topic_or_group_metrics_then_up_ends_with_one_topic_and_one_subscription(
        tmp_path: Path, operation: str) -> None:
    """With monitoring.email: the topic is found by its ARN after a crash, the subscription is listed
    again instead of made twice, and group metrics are enabled by the next `up`."""
    raw = {"monitoring": {"email": "ops@example.com"}}
    with moto():
        crash_up_after(make_engine(tmp_path, raw), operation)

        make_engine(tmp_path, raw).up()
        sns = boto3.client("sns")
        topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
        assert [t.rsplit(":", 1)[1] for t in topics] == ["threetier-alarms"]
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=topics[0])["Subscriptions"]
        assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "ops@example.com")]
        groups = boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        assert all({m["Metric"] for m in g["EnabledMetrics"]} >= {"GroupInServiceInstances"} for g in groups)
        assert census() == EXPECTED
        final = make_engine(tmp_path, raw)
        final.up()
        assert mutating(final) == []


@pytest.mark.parametrize("operation", ["RequestCertificate", "ChangeResourceRecordSets", "CreateWebACL",
                                       "AssociateWebACL"])
def test_a_crash_in_the_front_door_then_up_ends_with_one_certificate_one_record_set_and_one_web_acl(
        tmp_path: Path, operation: str) -> None:
    """With edge (issue 13): the certificate is found by its tag, the records are UPSERTed, the web
    ACL is found by its name, and its association is looked up before it is made (moto issues
    the certificate at once: conftest)."""
    raw = {"edge": {"domain": "shop.example.com", "hosted_zone": "example.com", "waf": True}}
    with moto():
        zone = boto3.client("route53").create_hosted_zone(Name="example.com", CallerReference="z")["HostedZone"]["Id"]
        crash_up_after(make_engine(tmp_path, raw), operation)

        resumed = make_engine(tmp_path, raw)
        resumed.up()
        web = resumed.ctx.state.parts[7].resources
        assert len(boto3.client("acm").list_certificates()["CertificateSummaryList"]) == 1
        records = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        assert sorted(r["Type"] for r in records) == ["A", "CNAME", "NS", "SOA"]
        acls = boto3.client("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]
        assert [a["Name"] for a in acls] == ["threetier-web-acl"]
        on = boto3.client("wafv2").get_web_acl_for_resource(ResourceArn=web["load_balancer_arn"])
        assert on["WebACL"]["ARN"] == acls[0]["ARN"]
        assert census() == {**EXPECTED, "listeners": 3, "rules": 6}  # 443, and 443 open on the external ALB's group
        final = make_engine(tmp_path, raw)
        final.up()
        assert mutating(final) == []
        # ... and `down` knows every record it wrote, the one written just before the crash too.
        down = make_engine(tmp_path, raw)
        down.ctx.skip_final_snapshot = True
        down.down()
        records = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        assert sorted(r["Type"] for r in records) == ["NS", "SOA"]


def test_the_crash_points_left_to_the_side_by_side_test_are_the_ones_it_crashes_at() -> None:
    from test_engine import CRASH_AFTER as side_by_side
    assert set(side_by_side) == SIDE_BY_SIDE and set(CRASH_AFTER) >= SIDE_BY_SIDE
