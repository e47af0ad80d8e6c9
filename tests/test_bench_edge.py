"""bench.model's front door (Part 7, config `edge`): an ACM certificate pending until its validation
CNAME is in a Route 53 zone and ISSUED 240 s later, not known to ELB for 20 s after, in use for 10 s
after its listener went; a WAFv2 web ACL that cannot be associated with a provisioning ALB or for
30 s after it was made, nor deleted while associated or for 20 s after. Raw boto3 calls through the
clients of a model-hooked Aws; then one modeled `up` + `down` with the front door."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.model import (
    ALB_CREATE_SECONDS,
    CALL_SECONDS,
    CERT_PROPAGATION_SECONDS,
    CERT_RECORD_SHOWN_SECONDS,
    CERT_RELEASE_SECONDS,
    CERT_VALIDATION_SECONDS,
    WAF_ACL_USABLE_SECONDS,
    WAF_DISASSOCIATE_SECONDS,
    LatencyModel,
    VirtualClock,
)
from bench.runs import EDGE_DOMAIN, modeled_run
from helpers import make_engine, moto

DOMAIN = "shop.example.com"
FORWARD = "forward"


def outcome(call: Callable[..., Any], **params: Any) -> str:
    """"ok", or the error code AWS (the model) answered."""
    try:
        call(**params)
        return "ok"
    except ClientError as exc:
        return exc.response["Error"]["Code"]


def create_web_acl(wafv2: Any, name: str, scope: str = "REGIONAL") -> dict[str, Any]:
    """An empty web ACL (test_bench_cdn.py: CloudFront's, scope CLOUDFRONT)."""
    return wafv2.create_web_acl(Name=name, Scope=scope, DefaultAction={"Allow": {}}, Rules=[], VisibilityConfig={
        "SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": name})["Summary"]


def delete_web_acl(wafv2: Any, acl: dict[str, Any], scope: str = "REGIONAL") -> str:
    token = wafv2.get_web_acl(Name=acl["Name"], Scope=scope, Id=acl["Id"])["LockToken"]
    return outcome(wafv2.delete_web_acl, Name=acl["Name"], Scope=scope, Id=acl["Id"], LockToken=token)


class Front:
    """moto behind the model, on a virtual clock: a VPC, an internet-facing ALB created at once (so
    provisioning for 150 s), its target group and the public zone example.com."""

    def __init__(self, tmp_path: Path, relax: tuple[str, ...] = ()):
        self.clock = VirtualClock()
        aws = make_engine(tmp_path, clock=self.clock).ctx.aws
        self.model = LatencyModel(aws, self.clock, relax=relax)
        self.acm, self.route53, self.elbv2, self.wafv2 = (aws.client(s) for s in ("acm", "route53", "elbv2", "wafv2"))
        ec2 = aws.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")
                   ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
        self.alb = self.elbv2.create_load_balancer(Name="front", Subnets=subnets, Scheme="internet-facing",
                                                   Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        self.alb_active = self.model.load_balancers[self.alb].created + ALB_CREATE_SECONDS
        self.target_group = self.elbv2.create_target_group(Name="front-tg", Protocol="HTTP", Port=80, VpcId=vpc,
                                                           TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        self.zone = self.route53.create_hosted_zone(Name="example.com", CallerReference="bench-edge-test")[
            "HostedZone"]["Id"]

    def until(self, t: float) -> None:
        self.clock.advance(t - self.clock.now())

    # -- ACM and Route 53 --
    def request(self) -> str:
        return self.acm.request_certificate(DomainName=DOMAIN, ValidationMethod="DNS")["CertificateArn"]

    def describe(self, arn: str) -> dict[str, Any]:
        return self.acm.describe_certificate(CertificateArn=arn)["Certificate"]

    def record(self, arn: str) -> dict[str, str] | None:
        return self.describe(arn)["DomainValidationOptions"][0].get("ResourceRecord")

    def listed(self, **params: Any) -> dict[str, str]:
        return {s["CertificateArn"]: s["Status"] for s in self.acm.list_certificates(**params)["CertificateSummaryList"]}

    def write(self, name: str, value: str, action: str = "UPSERT") -> None:
        self.route53.change_resource_record_sets(HostedZoneId=self.zone, ChangeBatch={"Changes": [{
            "Action": action, "ResourceRecordSet": {"Name": name, "Type": "CNAME", "TTL": 300,
                                                    "ResourceRecords": [{"Value": value}]}}]})

    def issued_certificate(self) -> tuple[str, float]:
        """A certificate whose CNAME was written 5 s after the request: (ARN, when ISSUED)."""
        arn = self.request()
        self.until(self.clock.now() + CERT_RECORD_SHOWN_SECONDS)
        record = self.record(arn)
        assert record is not None
        self.write(record["Name"], record["Value"])
        issued = self.model.certificates[arn].issued
        assert issued is not None
        self.until(issued)
        assert self.describe(arn)["Status"] == "ISSUED"
        return arn, issued

    def https_listener(self, arn: str) -> str:
        return outcome(self.elbv2.create_listener, LoadBalancerArn=self.alb, Protocol="HTTPS", Port=443,
                       Certificates=[{"CertificateArn": arn}],
                       DefaultActions=[{"Type": FORWARD, "TargetGroupArn": self.target_group}])

    # -- WAFv2 --
    def web_acl(self, name: str) -> dict[str, Any]:
        return create_web_acl(self.wafv2, name)

    def associate(self, acl: dict[str, Any]) -> str:
        return outcome(self.wafv2.associate_web_acl, WebACLArn=acl["ARN"], ResourceArn=self.alb)

    def delete_web_acl(self, acl: dict[str, Any]) -> str:
        return delete_web_acl(self.wafv2, acl)

    def rules_broken(self) -> list[str | None]:
        return [r.rule for r in self.model.refusals if r.violation]


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    with moto():
        yield Front(tmp_path)


def test_acm_route53_and_wafv2_calls_cost_a_round_trip(front: Front) -> None:
    calls, started = front.model.calls, front.clock.now()
    front.acm.list_certificates()
    front.route53.list_hosted_zones()
    front.wafv2.list_web_acls(Scope="REGIONAL")
    assert front.model.calls == calls + 3
    assert front.clock.now() - started == pytest.approx(3 * CALL_SECONDS)


def test_a_certificate_is_pending_until_its_cname_is_in_the_zone_then_issued_240_s_later(front: Front) -> None:
    arn = front.request()
    requested = front.model.certificates[arn].requested
    first = front.describe(arn)  # moto (MOTO_ACM_VALIDATION_WAIT=0) says ISSUED; the model does not
    assert first["Status"] == "PENDING_VALIDATION" and "IssuedAt" not in first
    assert "ResourceRecord" not in first["DomainValidationOptions"][0]
    front.until(requested + CERT_RECORD_SHOWN_SECONDS)
    record = front.record(arn)
    assert record is not None and record["Type"] == "CNAME"
    front.write(record["Name"], "_not-the-value.acm-validations.aws.")  # the name alone does not validate
    front.until(requested + 3600)
    assert front.describe(arn)["Status"] == "PENDING_VALIDATION"
    assert front.listed() == {arn: "PENDING_VALIDATION"}
    assert front.listed(CertificateStatuses=["ISSUED"]) == {}  # filtered by the model's status, not moto's

    front.write(record["Name"], record["Value"].upper().rstrip("."))  # DNS names: any case, final dot or not
    validated = front.clock.now()
    assert front.model.certificates[arn].validated == validated
    front.until(validated + CERT_VALIDATION_SECONDS - 3 * CALL_SECONDS)
    assert front.describe(arn)["Status"] == "PENDING_VALIDATION"
    front.until(validated + CERT_VALIDATION_SECONDS)
    described = front.describe(arn)
    assert described["Status"] == "ISSUED"
    assert described["DomainValidationOptions"][0]["ValidationStatus"] == "SUCCESS"
    assert front.listed(CertificateStatuses=["ISSUED"]) == {arn: "ISSUED"}
    span = next(s for s in front.model.spans if s.kind == "certificate")
    assert (span.name, span.start, span.end) == (DOMAIN, requested, validated + CERT_VALIDATION_SECONDS)
    assert [label for label, _, _ in span.segments] == ["validation record", "DNS validation"]
    assert front.model.violations == []


def test_a_cname_deleted_before_the_certificate_is_issued_stops_its_validation(front: Front) -> None:
    arn = front.request()
    front.until(front.clock.now() + CERT_RECORD_SHOWN_SECONDS)
    record = front.record(arn)
    assert record is not None
    front.write(record["Name"], record["Value"])
    front.until(front.clock.now() + 60)
    front.write(record["Name"], record["Value"], action="DELETE")
    front.until(front.clock.now() + CERT_VALIDATION_SECONDS + 60)
    assert front.describe(arn)["Status"] == "PENDING_VALIDATION"


def test_a_listener_on_a_pending_certificate_is_a_violation(front: Front) -> None:
    arn = front.request()
    front.until(front.clock.now() + 60)
    assert front.https_listener(arn) == "UnsupportedCertificate"
    assert front.rules_broken() == ["listener-on-pending-certificate"]


def test_the_rule_can_be_relaxed(tmp_path: Path) -> None:
    with moto():
        front = Front(tmp_path, relax=("listener-on-pending-certificate",))
        assert front.https_listener(front.request()) == "ok"
    assert front.model.violations == [] and front.model.relaxed[0].startswith("listener-on-pending-certificate")


def test_elb_knows_an_issued_certificate_20_s_later_and_acm_frees_it_10_s_after_its_listener(front: Front) -> None:
    arn, issued = front.issued_certificate()
    assert front.https_listener(arn) == "CertificateNotFound"
    front.until(issued + CERT_PROPAGATION_SECONDS - 2 * CALL_SECONDS)
    assert front.https_listener(arn) == "CertificateNotFound"
    front.until(issued + CERT_PROPAGATION_SECONDS)
    assert front.https_listener(arn) == "ok"
    assert front.model.violations == []  # refused, and retried: eventual consistency

    assert outcome(front.acm.delete_certificate, CertificateArn=arn) == "ResourceInUseException"
    assert front.rules_broken() == ["delete-certificate-in-use"]  # its listener is still there
    listener = front.elbv2.describe_listeners(LoadBalancerArn=front.alb)["Listeners"][0]["ListenerArn"]
    front.elbv2.delete_listener(ListenerArn=listener)
    released = front.model.certificates[arn].released
    assert released == front.clock.now()
    assert outcome(front.acm.delete_certificate, CertificateArn=arn) == "ResourceInUseException"
    assert front.rules_broken() == ["delete-certificate-in-use"]  # no second violation: a moment after
    front.until(released + CERT_RELEASE_SECONDS)
    assert outcome(front.acm.delete_certificate, CertificateArn=arn) == "ok"
    assert outcome(front.acm.describe_certificate, CertificateArn=arn) == "ResourceNotFoundException"


def test_a_web_acl_is_associated_once_the_alb_is_active_and_the_acl_30_s_old(front: Front) -> None:
    early = front.web_acl("front-early")
    assert front.associate(early) == "WAFNonexistentItemException"  # the ALB is provisioning
    assert front.rules_broken() == ["waf-on-provisioning-alb"]
    front.until(front.alb_active)
    acl = front.web_acl("front-acl")
    created = front.model.web_acls[acl["ARN"]].created
    assert front.associate(acl) == "WAFUnavailableEntityException"
    front.until(created + WAF_ACL_USABLE_SECONDS - 2 * CALL_SECONDS)
    assert front.associate(acl) == "WAFUnavailableEntityException"
    front.until(created + WAF_ACL_USABLE_SECONDS)
    assert front.associate(acl) == "ok"
    assert front.wafv2.get_web_acl_for_resource(ResourceArn=front.alb)["WebACL"]["ARN"] == acl["ARN"]
    assert front.rules_broken() == ["waf-on-provisioning-alb"]  # the new ACL's refusals are retried, not broken


def test_a_web_acl_is_deleted_20_s_after_its_association_went(front: Front) -> None:
    acl = front.web_acl("front-acl")
    front.until(front.alb_active)
    assert front.associate(acl) == "ok"
    assert front.delete_web_acl(acl) == "WAFAssociatedItemException"
    assert front.rules_broken() == ["delete-web-acl-associated"]
    front.wafv2.disassociate_web_acl(ResourceArn=front.alb)
    released = front.clock.now()
    assert front.delete_web_acl(acl) == "WAFAssociatedItemException"
    front.until(released + WAF_DISASSOCIATE_SECONDS - 3 * CALL_SECONDS)  # GetWebACL for the token costs one
    assert front.delete_web_acl(acl) == "WAFAssociatedItemException"
    front.until(released + WAF_DISASSOCIATE_SECONDS)
    assert front.delete_web_acl(acl) == "ok"
    assert front.rules_broken() == ["delete-web-acl-associated"]


def test_deleting_the_alb_ends_its_web_acl_association(front: Front) -> None:
    acl = front.web_acl("front-acl")
    front.until(front.alb_active)
    assert front.associate(acl) == "ok"
    front.elbv2.delete_load_balancer(LoadBalancerArn=front.alb)  # moto keeps the association; AWS does not
    gone = front.clock.now()
    assert front.delete_web_acl(acl) == "WAFAssociatedItemException"
    front.until(gone + WAF_DISASSOCIATE_SECONDS)
    assert front.delete_web_acl(acl) == "ok"
    assert front.model.violations == []


def test_a_modeled_up_and_down_with_the_front_door_breaks_no_rule() -> None:
    run = modeled_run(sequential=False, edge=True, waf=True)
    assert run.error is None and run.violations == [], (run.error, run.violations)
    assert run.up_seconds is not None and run.down_seconds is not None
    certificate = next(s for s in run.spans if s.kind == "certificate")
    assert certificate.name == EDGE_DOMAIN and certificate.end is not None
    assert certificate.end - certificate.start >= CERT_RECORD_SHOWN_SECONDS + CERT_VALIDATION_SECONDS
    # Requested in Part 7's start, waited for in its finish: it overlaps the web image's bake.
    web_ami = next(s for s in run.spans if s.kind == "AMI" and "web" in s.name)
    assert web_ami.end is not None and certificate.end < web_ami.end
