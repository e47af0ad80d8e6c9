"""HTTPS and DNS in front of the external ALB (config.yaml `edge`)."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, cli, make_engine, moto, mutating, write_config
from threetier import config as configlib
from threetier.aws import STACK_TAG, WaitTimeout, client_token, tag_value
from threetier.blocks import certificates, dns
from threetier.blocks import https as https_listener
from threetier.errors import ThreetierError
from threetier.scan import tagged

ZONE = "example.com"
DOMAIN = "shop.example.com"
CERT_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def edge_config(**edge_keys) -> dict:
    return {"edge": {"domain": DOMAIN, "hosted_zone": ZONE, **edge_keys}}


def make_zone(name: str = ZONE) -> str:
    return boto3.client("route53").create_hosted_zone(Name=name, CallerReference=name)["HostedZone"]["Id"].split("/")[-1]


def the_zone() -> str:
    """The ID of the zone made before `up` (by make_zone, or for the reference stack "edge")."""
    return boto3.client("route53").list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"][0]["Id"].split("/")[-1]


def edge_added(directory: Path, **edge_keys) -> Any:
    """`up` with the edge turned on, on the restored default stack: the edge's first `up` (Part 7's, the
    same as in a new stack) meets the zone as the test left it, without building Parts 1-6 for it.
    The engine, whose calls and changes the test reads."""
    engine = make_engine(directory, edge_config(**edge_keys))
    engine.up()
    return engine


def engine_state_only(directory: Path) -> None:
    """The reference's CLI state file removed (the engine's runs, in state.json, leave it stale): the CLI
    finds the stack by its tags, as it did when the test built the stack with the engine."""
    (directory / ".threetier" / "threetier.json").unlink()


def zone_records(zone_id: str) -> list[dict]:
    return boto3.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]


def listeners(engine) -> dict[int, dict]:
    arn = engine.ctx.state.parts[7].resources["load_balancer_arn"]
    return {item["Port"]: item for item in boto3.client("elbv2").describe_listeners(LoadBalancerArn=arn)["Listeners"]}


def external_ports(engine) -> set[tuple[int, str]]:
    group = engine.ctx.state.parts[2].resources["security_groups"]["external-alb-sg"]
    found = boto3.client("ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    return {(p["FromPort"], r["CidrIp"]) for p in found["IpPermissions"] for r in p.get("IpRanges", [])}


def stack_certificates() -> list[dict]:
    acm = boto3.client("acm")
    return [c for c in acm.list_certificates()["CertificateSummaryList"]
            if tag_value(acm.list_tags_for_certificate(CertificateArn=c["CertificateArn"]), STACK_TAG) == "threetier"]


# -- config validation, before any AWS call ----------------------------------------------
@pytest.mark.parametrize("edge_keys,message", [
    ({"domain": "shop.example.com"}, "edge.domain: needs edge.hosted_zone"),
    ({"hosted_zone": "example.com"}, "edge.hosted_zone: needs edge.domain"),
    ({"domain": "shop_1.example.com", "hosted_zone": "example.com"}, "edge.domain: 'shop_1.example.com' is not a DNS hostname"),
    ({"domain": "localhost", "hosted_zone": "example.com"}, "edge.domain: 'localhost' is not a DNS hostname"),
    ({"domain": "shop.example.org", "hosted_zone": "example.com"}, "edge.domain: shop.example.org is not inside"),
    ({"domain": "shop.example.com", "hosted_zone": "not a zone"}, "edge.hosted_zone: 'not a zone' is neither"),
    ({"domain": "shop.example.com", "hosted_zone": "example.com", "certificate_arn": "arn:aws:iam::1:server-certificate/x"},
     "edge.certificate_arn: 'arn:aws:iam::1:server-certificate/x' is not an ACM certificate ARN"),
    ({"domain": "shop.example.com", "hosted_zone": "example.com",
      "certificate_arn": CERT_ARN.replace("us-east-1", "eu-west-1")}, "edge.certificate_arn: the certificate is in eu-west-1"),
    ({"certificate_arn": CERT_ARN}, "edge.certificate_arn: needs edge.domain"),
    ({"waf_rate_limit": 9}, "edge.waf_rate_limit: requests per 5 minutes per client IP, 10 to 2_000_000_000, got 9"),
    ({"waf_rate_limit": 2_000_000_001}, "edge.waf_rate_limit:"),
    ({"waf": "yes"}, "edge.waf: expected true or false"),
    ({"https_redirect": None}, "edge.https_redirect: expected true or false"),
    ({"domain": 7, "hosted_zone": "example.com"}, "edge.domain: expected a string or null"),
    ({"wafs": True}, "edge.wafs: unknown key"),
    # ACM's DomainName takes 64 characters (without a certificate_arn, one is requested for it).
    ({"domain": f"{'a' * 53}.example.com", "hosted_zone": "example.com"},
     "edge.domain: ACM requests a certificate for a name of 64 characters at most"),
    ({"domain": "shop.example.c", "hosted_zone": "example.c"}, "edge.domain: 'shop.example.c' is not a DNS hostname"),
])
def test_config_refuses_a_bad_edge_with_the_key(edge_keys: dict, message: str) -> None:
    with pytest.raises(configlib.ConfigError) as refused:
        configlib.parse({"edge": edge_keys})
    assert str(refused.value).startswith(message), str(refused.value)


def test_config_accepts_the_edge_and_its_bounds() -> None:
    parsed = configlib.parse({"edge": {"domain": "Shop.Example.com.", "hosted_zone": "Z0123456789ABCDEFGHIJ",
                                       "certificate_arn": CERT_ARN, "waf": False, "waf_rate_limit": 10}})
    assert parsed.edge.domain == "shop.example.com" and parsed.edge.https and not parsed.edge.waf
    # A zone ID in any case, with or without its prefix: upper case, bare.
    for zone in ("z0123456789abcdefghij", "/hostedzone/Z0123456789abcdefGHIJ"):
        assert configlib.parse({"edge": {"domain": DOMAIN, "hosted_zone": zone}}).edge.hosted_zone == "Z0123456789ABCDEFGHIJ"
    # A longer name than ACM requests certificates for is fine with the user's own certificate.
    long_name = f"{'a' * 53}.example.com"
    assert configlib.parse({"edge": {"domain": long_name, "hosted_zone": ZONE,
                                     "certificate_arn": CERT_ARN}}).edge.domain == long_name
    assert configlib.parse({"edge": {"domain": f"{'a' * 52}.example.com", "hosted_zone": ZONE}}).edge.https
    assert configlib.parse({"edge": {"waf_rate_limit": 2_000_000_000}}).edge.waf_rate_limit == 2_000_000_000
    assert configlib.parse({"edge": {"waf": True}}).edge.waf and not configlib.parse({"edge": {"waf": True}}).edge.https
    assert not configlib.parse({}).edge.https  # off by default: the guide's HTTP-only stack


@pytest.mark.parametrize("edge_keys,key", [
    ({"domain": "shop.example.com"}, "edge.domain"),
    ({"waf": True, "waf_rate_limit": 5}, "edge.waf_rate_limit"),
])
def test_a_bad_edge_exits_2_with_one_line_before_any_aws_call(tmp_path, edge_keys: dict, key: str) -> None:
    write_config(tmp_path, edge=edge_keys)
    result = cli("--config", str(tmp_path / "config.yaml"), "plan", cwd=tmp_path)  # no moto: a call would fail
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0 and key in result.stderr


# -- with edge off, nothing changes ----------------------------------------------------------
def test_edge_and_waf_off_make_no_edge_or_waf_call_and_no_443(reference_stacks, built: Path) -> None:
    # The calls of a new stack's `up` are what is asserted: those of the default reference stack's
    # build (its `up --yes`), read, not made again. One build for the edge and the WAF
    # (test_waf.py's test_a_stack_without_waf_makes_no_waf_call is merged in).
    up_calls = reference_stacks.build("default").up_calls
    services = {service for service, _ in up_calls}
    assert "elbv2" in services and "ec2" in services  # the build's calls, recorded
    assert "acm" not in services and "route53" not in services
    assert "wafv2" not in services
    assert "DescribeListenerAttributes" not in {operation for _, operation in up_calls}
    engine = make_engine(built)  # the stack that build made
    for part in engine.parts:  # and what status sees
        engine.check(part)
    services = {c.service for c in engine.ctx.aws.calls}
    assert "acm" not in services and "route53" not in services
    assert "wafv2" not in services
    assert "DescribeListenerAttributes" not in {c.operation for c in engine.ctx.aws.calls}
    assert set(listeners(engine)) == {80}
    assert {port for port, _ in external_ports(engine)} == {80}
    assert engine.ctx.state.parts[7].resources["url"].startswith("http://threetier-ext-alb-")
    assert "waf" not in engine.ctx.state.parts[7].resources


# -- the whole edge against moto -----------------------------------------------------------------
def test_edge_up_again_status_converge_and_down(reference_stacks, stack_from) -> None:
    # The calls of a new stack's `up` are asserted (the certificate requested before the bake): those
    # of the "edge" reference stack's build (its `up --yes`, the zone made first), read, not made again.
    tmp_path = stack_from("edge")
    build = reference_stacks.build("edge")
    (tmp_path / ".threetier" / "threetier.json").unlink()  # as built by make_engine: its state.json alone
    zone_id = the_zone()
    engine = make_engine(tmp_path, edge_config())  # the stack that build made
    web = engine.ctx.state.parts[7].resources

    # The certificate: requested once, DNS-validated, tagged with the stack, ISSUED.
    requests = [params for (_, operation), params in zip(build.up_calls, build.up_params, strict=True)
                if operation == "RequestCertificate"]
    assert len(requests) == 1
    assert requests[0]["DomainName"] == DOMAIN and requests[0]["ValidationMethod"] == "DNS"
    assert len(requests[0]["IdempotencyToken"]) <= 32
    assert tag_value({"Tags": requests[0]["Tags"]}, STACK_TAG) == "threetier"
    certificate = boto3.client("acm").describe_certificate(CertificateArn=web["certificate_arn"])["Certificate"]
    assert certificate["Status"] == "ISSUED"
    # Its validation records are in the zone.
    names = {(r["Name"], r["Type"]) for r in zone_records(zone_id)}
    for option in certificate["DomainValidationOptions"]:
        assert (option["ResourceRecord"]["Name"], "CNAME") in names

    # 443 with the TLS policy and the certificate, forwarding; 80 redirects with a 301.
    found = listeners(engine)
    assert found[443]["Protocol"] == "HTTPS" and found[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert found[443]["Certificates"][0]["CertificateArn"] == web["certificate_arn"]
    assert found[443]["DefaultActions"][0]["TargetGroupArn"] == web["target_group_arn"]
    redirect = found[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS" and redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    # The external ALB's security group opens 443 to the same clients as 80.
    assert external_ports(engine) == {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    # The alias record to the ALB, and the stack's URL.
    balancer = boto3.client("elbv2").describe_load_balancers(LoadBalancerArns=[web["load_balancer_arn"]])["LoadBalancers"][0]
    alias = next(r for r in zone_records(zone_id) if r["Name"] == f"{DOMAIN}." and r["Type"] == "A")
    assert alias["AliasTarget"]["HostedZoneId"] == balancer["CanonicalHostedZoneId"]
    assert alias["AliasTarget"]["DNSName"].rstrip(".") == balancer["DNSName"]
    assert web["url"] == f"https://{DOMAIN}"

    # The certificate is waited for before the web image is needed (it overlaps the bake).
    operations = [operation for _, operation in build.up_calls]
    assert operations.index("RequestCertificate") < operations.index("CreateImage")

    # A second up changes nothing.
    again = make_engine(tmp_path, edge_config())
    again.up()
    assert mutating(again) == []

    # status shows it all, with no drift.
    write_config(tmp_path, **edge_config())
    result = cli("status", "--json", cwd=tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    shown = json.loads(result.stdout)
    assert shown["outputs"]["url"] == f"https://{DOMAIN}"
    resources = shown["parts"][6]["resources"]
    assert resources["certificate_status"] == "ISSUED" and resources["http_redirect"] is True

    # https_redirect off: 80 forwards again; status before that up shows the drift.
    write_config(tmp_path, **edge_config(https_redirect=False))
    drifted = cli("status", "--json", cwd=tmp_path)
    assert drifted.code == 3
    assert json.loads(drifted.stdout)["parts"][6]["drift"] == [
        "listener threetier-ext-alb:80: redirects to https, edge.https_redirect is false"]
    forward = make_engine(tmp_path, edge_config(https_redirect=False))
    forward.up()
    assert listeners(forward)[80]["DefaultActions"][0]["Type"] == "forward"
    assert [c.operation for c in forward.ctx.aws.mutating_calls()] == ["ModifyListener"]

    # A new domain: a new certificate, the new record, the old record and certificate gone.
    old_certificate = web["certificate_arn"]
    moved = make_engine(tmp_path, edge_config(domain=f"www.{ZONE}"))
    moved.up()
    after = {(r["Name"], r["Type"]) for r in zone_records(zone_id)}
    assert (f"www.{ZONE}.", "A") in after and (f"{DOMAIN}.", "A") not in after
    assert [c["DomainName"] for c in stack_certificates()] == [f"www.{ZONE}"]
    assert old_certificate not in {c["CertificateArn"] for c in boto3.client("acm").list_certificates()["CertificateSummaryList"]}
    assert listeners(moved)[443]["Certificates"][0]["CertificateArn"] == moved.ctx.state.parts[7].resources["certificate_arn"]

    # down: the records it wrote and the certificate it requested go; the zone stays.
    down = make_engine(tmp_path, edge_config(domain=f"www.{ZONE}"))
    down.ctx.skip_final_snapshot = True
    down.down()
    left = zone_records(zone_id)
    assert {r["Type"] for r in left} == {"NS", "SOA"}, left
    assert boto3.client("route53").get_hosted_zone(Id=zone_id)["HostedZone"]["Name"] == f"{ZONE}."
    assert stack_certificates() == []
    assert [f for f in tagged(down.ctx.aws, "threetier") if f.kind == "certificate"] == []
    # The certificate went after the listener that used it.
    operations = [c.operation for c in down.ctx.aws.calls]
    assert operations.index("DeleteListener") < operations.index("DeleteCertificate")


def test_up_down_and_up_again_within_the_hour_gets_a_new_certificate(stack_from) -> None:
    """ACM (and moto, which fails on it) remembers a request's token for an hour, with the certificate
    it made: the second build asks with another token (its VPC's), and gets a new certificate."""
    tmp_path = stack_from("edge")
    first_vpc = make_engine(tmp_path).ctx.state.parts[2].resources["vpc"]
    [first] = stack_certificates()
    down = make_engine(tmp_path, edge_config())
    down.ctx.skip_final_snapshot = True
    down.down()
    assert stack_certificates() == []

    again = make_engine(tmp_path, edge_config())
    again.up()
    [second] = stack_certificates()
    assert second["CertificateArn"] != first["CertificateArn"]
    assert boto3.client("acm").describe_certificate(CertificateArn=second["CertificateArn"])["Certificate"][
        "Status"] == "ISSUED"
    vpc = again.ctx.state.parts[2].resources["vpc"]
    assert vpc != first_vpc
    [request] = [c.params for c in again.ctx.aws.calls if c.operation == "RequestCertificate"]
    assert request["IdempotencyToken"] == client_token("threetier", vpc, DOMAIN)[:32]
    assert listeners(again)[443]["Certificates"][0]["CertificateArn"] == second["CertificateArn"]


def test_a_given_certificate_is_used_and_kept(built: Path) -> None:
    zone_id = make_zone()
    acm = boto3.client("acm")
    mine = acm.request_certificate(DomainName=f"*.{ZONE}", ValidationMethod="DNS")["CertificateArn"]
    assert acm.describe_certificate(CertificateArn=mine)["Certificate"]["Status"] == "ISSUED"
    engine = edge_added(built, certificate_arn=mine, https_redirect=False)
    assert "RequestCertificate" not in mutating(engine)
    assert listeners(engine)[443]["Certificates"][0]["CertificateArn"] == mine
    assert listeners(engine)[80]["DefaultActions"][0]["Type"] == "forward"
    # Only the alias record was written: no validation records for a certificate we did not request.
    assert {r["Type"] for r in zone_records(zone_id)} == {"NS", "SOA", "A"}
    down = make_engine(built, edge_config(certificate_arn=mine))
    down.ctx.skip_final_snapshot = True
    down.down()
    assert acm.describe_certificate(CertificateArn=mine)["Certificate"]["Status"] == "ISSUED"  # kept
    assert {r["Type"] for r in zone_records(zone_id)} == {"NS", "SOA"}


def test_a_given_certificate_for_another_name_is_refused(built: Path) -> None:
    # The edge's first `up` on the built stack: no 443 yet, and none made.
    make_zone()
    other = boto3.client("acm").request_certificate(DomainName="other.example.net")["CertificateArn"]
    engine = make_engine(built, edge_config(certificate_arn=other))
    with pytest.raises(ThreetierError, match=re.escape(f"is for other.example.net, not {DOMAIN}")):
        engine.up()
    assert "CreateListener" not in [c.operation for c in engine.ctx.aws.calls if c.params.get("Port") == 443]


def test_a_missing_zone_is_never_created(built: Path) -> None:
    engine = make_engine(built, edge_config())
    with pytest.raises(ThreetierError, match=r"no public Route 53 hosted zone example\.com in this account; "
                                             r"threetier never creates one"):
        engine.up()
    # Refused before anything of the edge: no Route 53 change, no certificate requested.
    assert not [c for c in engine.ctx.aws.mutating_calls() if c.service in ("route53", "acm")]
    write_config(built, **edge_config())
    result = cli("up", "--yes", "--state", str(built / "state.json"), cwd=built)
    # The preflight refuses it before any change (exit 2), saying how to make the zone.
    assert result.code == 2 and "no public Route 53 hosted zone example.com" in result.stderr
    assert boto3.client("route53").list_hosted_zones()["HostedZones"] == []


# -- the certificate's wait, which moto does not show (it issues at once) -----------------------------
def pending_then(engine, *statuses: str) -> Stubber:
    stub = Stubber(engine.ctx.aws.client("acm"))
    for status in statuses:
        stub.add_response("describe_certificate", {"Certificate": {
            "CertificateArn": CERT_ARN, "DomainName": DOMAIN, "Status": status}}, {"CertificateArn": CERT_ARN})
    return stub


def test_the_certificate_wait_polls_until_issued(tmp_path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, edge_config(), clock=clock)
    with pending_then(engine, "PENDING_VALIDATION", "PENDING_VALIDATION", "ISSUED") as stub:
        certificates.wait_issued(engine.ctx, CERT_ARN)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [certificates.CERTIFICATE_POLL, certificates.CERTIFICATE_POLL]


def test_a_failed_validation_stops_the_wait(tmp_path) -> None:
    engine = make_engine(tmp_path, edge_config())
    with pending_then(engine, "PENDING_VALIDATION", "VALIDATION_TIMED_OUT"), \
            pytest.raises(ThreetierError, match="VALIDATION_TIMED_OUT"):
        certificates.wait_issued(engine.ctx, CERT_ARN)


def test_a_certificate_never_issued_times_out(tmp_path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, edge_config(), clock=clock)
    polls = certificates.CERTIFICATE_ISSUED_TIMEOUT // certificates.CERTIFICATE_POLL + 1
    with pending_then(engine, *["PENDING_VALIDATION"] * polls), pytest.raises(WaitTimeout) as timed_out:
        certificates.wait_issued(engine.ctx, CERT_ARN)
    assert clock.t == certificates.CERTIFICATE_ISSUED_TIMEOUT
    # The likeliest cause, said: the registrar does not delegate the domain to the zone.
    assert "PENDING_VALIDATION" in str(timed_out.value) and f"name servers of hosted zone {ZONE}" in str(timed_out.value)


# -- the review's defects -------------------------------------------------------------------------
OTHER_REGION_ALB = "dualstack.threetier-ext-alb-1234567890.eu-west-1.elb.amazonaws.com."
VALIDATION_NAME = f"_d930b28be6c5927595552b219965053e.{DOMAIN}."  # moto's, per domain like ACM's
VALIDATION_VALUE = "_c9edd76ee4a0e2a74388032f3861cc50.ykybfrwcxw.acm-validations.aws."


def put_record(zone_id: str, record_set: dict) -> None:
    boto3.client("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": record_set}]})


def record_types(zone_id: str) -> set[tuple[str, str]]:
    return {(r["Name"], r["Type"]) for r in zone_records(zone_id)}


def remembered(engine) -> set[tuple[str, str, str]]:
    """The records Part 7's state says the stack wrote: (zone ID, name., type)."""
    return {(e.zone_id, e.name, e.type) for e in dns.recorded(dataclasses.replace(engine.ctx, part=engine.part("7")))}


def test_edge_turned_off_removes_the_records_and_the_certificate(stack_from) -> None:
    tmp_path = stack_from("edge")
    zone_id = the_zone()
    assert (f"{DOMAIN}.", "A") in record_types(zone_id) and len(stack_certificates()) == 1
    assert remembered(make_engine(tmp_path)) == {(zone_id, f"{DOMAIN}.", "A"), (zone_id, VALIDATION_NAME, "CNAME")}

    # status with edge off: the listener, both records and the certificate are drift.
    write_config(tmp_path)
    shown = cli("status", "--json", "--state", str(tmp_path / "state.json"), cwd=tmp_path)
    assert shown.code == 3, shown.stdout + shown.stderr
    drift = json.loads(shown.stdout)["parts"][6]["drift"]
    assert any(d.startswith(f"alias record {DOMAIN}: present") for d in drift), drift
    assert any(d.startswith(f"validation record {VALIDATION_NAME.rstrip('.')}: present") for d in drift), drift
    assert any(d.startswith(f"certificate {DOMAIN} (") for d in drift), drift

    off = make_engine(tmp_path)
    off.up()
    assert {t for _, t in record_types(zone_id)} == {"NS", "SOA"}
    assert stack_certificates() == []
    assert set(listeners(off)) == {80}
    operations = [c.operation for c in off.ctx.aws.calls]
    assert operations.index("DeleteListener") < operations.index("DeleteCertificate")
    assert dns.RECORDS not in off.ctx.state.parts[7].resources
    # And then an up with edge off asks ACM and Route 53 nothing.
    again = make_engine(tmp_path)
    again.up()
    assert not {c.service for c in again.ctx.aws.calls} & {"acm", "route53"}


def test_records_remembered_without_their_value_by_an_older_threetier_are_still_the_stack_s(stack_from) -> None:
    """A state file written before the value was kept ("<zone> <name.> <type>"): any record of that
    name and type is the stack's, as then; `up` keeps knowing them and `down` removes them."""
    tmp_path = stack_from("edge")
    zone_id = the_zone()
    state = json.loads((tmp_path / "state.json").read_text())
    state["parts"]["7"]["resources"][dns.RECORDS] = [f"{zone_id} {DOMAIN}. A", f"{zone_id} {VALIDATION_NAME} CNAME"]
    (tmp_path / "state.json").write_text(json.dumps(state))
    engine = make_engine(tmp_path, edge_config())
    engine.up()
    assert mutating(engine) == []
    assert remembered(engine) == {(zone_id, f"{DOMAIN}.", "A"), (zone_id, VALIDATION_NAME, "CNAME")}
    down(tmp_path)
    assert {t for _, t in record_types(zone_id)} == {"NS", "SOA"}


def test_the_alias_to_an_alb_of_the_stack_since_replaced_is_still_its_own(stack_from) -> None:
    """Remembered with its target: the alias the stack wrote to its ALB, deleted and made again since
    (another DNS name), is the stack's: `up` aims it at the new ALB (no refusal), and forgets the old target."""
    tmp_path = stack_from("edge")
    zone_id = the_zone()
    old_alb = "threetier-ext-alb-0.us-east-1.elb.amazonaws.com."
    alias = next(r for r in zone_records(zone_id) if r["Type"] == "A")
    put_record(zone_id, {**alias, "AliasTarget": {**alias["AliasTarget"], "DNSName": f"dualstack.{old_alb}"}})
    state = json.loads((tmp_path / "state.json").read_text())
    state["parts"]["7"]["resources"][dns.RECORDS] = [
        e if " A " not in e else f"{zone_id} {DOMAIN}. A {old_alb}" for e in state["parts"]["7"]["resources"][dns.RECORDS]]
    (tmp_path / "state.json").write_text(json.dumps(state))
    engine = make_engine(tmp_path, edge_config())
    engine.up()
    assert [c.operation for c in engine.ctx.aws.mutating_calls()] == ["ChangeResourceRecordSets"]
    now = next(r for r in zone_records(zone_id) if r["Type"] == "A")["AliasTarget"]["DNSName"]
    assert dns.balancer_name(now) == dns.balancer_name(engine.ctx.state.parts[7].resources["load_balancer_dns"])
    entries = [e for e in engine.ctx.state.parts[7].resources[dns.RECORDS] if " A " in e]
    assert entries == [f"{zone_id} {DOMAIN}. A {dns.balancer_name(now)}"]


def test_down_without_the_zone_in_config_removes_what_the_state_recorded(stack_from) -> None:
    tmp_path = stack_from("edge")
    down = make_engine(tmp_path)  # config without edge
    down.ctx.skip_final_snapshot = True
    down.down()
    assert {t for _, t in record_types(the_zone())} == {"NS", "SOA"}
    assert stack_certificates() == []


def test_down_with_the_state_lost_finds_the_alias_by_the_certificate_and_names_the_validation_record(
        stack_from) -> None:
    """No state and no edge in config: the stack's certificate (tagged) names its domain, whose zone
    holds the alias to the stack's ALB: deleted. Its validation record may validate another
    certificate of the account in another region, which cannot be told: left, and named."""
    tmp_path = stack_from("edge")
    zone_id = the_zone()
    (tmp_path / "state.json").unlink()
    down = make_engine(tmp_path)  # no state, no edge in config
    down.ctx.skip_final_snapshot = True
    down.down()
    assert record_types(zone_id) == {(f"{ZONE}.", "NS"), (f"{ZONE}.", "SOA"), (VALIDATION_NAME, "CNAME")}
    assert stack_certificates() == []
    said = down.ctx.out.stderr.getvalue()
    assert f"validation record(s) {VALIDATION_NAME.rstrip('.')}" in said and "left in Route 53" in said


def test_an_alias_of_the_same_stack_in_another_region_is_not_ours(built: Path) -> None:
    # The record is there before the edge's first `up`, as before the stack's.
    zone_id = make_zone()
    other = {"Name": f"eu.{ZONE}.", "Type": "A", "AliasTarget": {
        "HostedZoneId": "Z32O12XQLNTSW2", "DNSName": OTHER_REGION_ALB, "EvaluateTargetHealth": True}}
    put_record(zone_id, other)
    edge_added(built)
    assert (f"eu.{ZONE}.", "A") in record_types(zone_id)
    down = make_engine(built, edge_config())
    down.ctx.skip_final_snapshot = True
    down.down()
    assert record_types(zone_id) == {(f"{ZONE}.", "NS"), (f"{ZONE}.", "SOA"), (f"eu.{ZONE}.", "A")}


@pytest.mark.parametrize("existing", [None, "an older certificate"])
def test_a_just_issued_certificate_is_retried_on_the_listener(tmp_path, existing: str | None) -> None:
    from steps import web_tier
    clock = FakeClock()
    engine = make_engine(tmp_path, edge_config(), clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == 7)
    balancer = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/threetier-ext-alb/0123456789abcdef"
    group = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/threetier-web-tg/0123456789abcdef"
    engine.ctx.resources.update(load_balancer_arn=balancer, target_group_arn=group)
    https = {"ListenerArn": f"{balancer.replace(':loadbalancer/', ':listener/')}/1", "Port": 443, "Protocol": "HTTPS",
             "SslPolicy": https_listener.TLS_POLICY, "Certificates": [{"CertificateArn": CERT_ARN.replace("1234-1234", "0000-1234")}],
             "DefaultActions": [{"Type": "forward", "TargetGroupArn": group}]}
    operation = "modify_listener" if existing else "create_listener"
    with Stubber(engine.ctx.aws.client("elbv2")) as stub:
        stub.add_response("describe_listeners", {"Listeners": [https] if existing else []})
        for _ in range(2):
            stub.add_client_error(operation, "CertificateNotFound", "Certificate not found", 400)
        stub.add_response(operation, {"Listeners": [https]})
        if existing:  # its HSTS header is read (and is right); a new listener gets it set at once
            stub.add_response("describe_listener_attributes", {"Attributes": [{"Key": https_listener.HSTS, "Value": https_listener.HSTS_HEADER}]})
        else:
            stub.add_response("modify_listener_attributes", {})
        stub.add_response("describe_listeners", {"Listeners": []})
        https_listener.ensure_https_listener(engine.ctx, web_tier.tier(engine.ctx), CERT_ARN)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [10, 10]
    # Not for ever: 300 s, then the error.
    clock2 = FakeClock()
    engine2 = make_engine(tmp_path, edge_config(), clock=clock2)
    engine2.ctx.part = engine.ctx.part
    engine2.ctx.resources.update(load_balancer_arn=balancer, target_group_arn=group)
    with Stubber(engine2.ctx.aws.client("elbv2")) as stub:
        stub.add_response("describe_listeners", {"Listeners": [https] if existing else []})
        for _ in range(https_listener.CERTIFICATE_PROPAGATION_TIMEOUT // 10 + 1):
            stub.add_client_error(operation, "CertificateNotFound", "Certificate not found", 400)
        with pytest.raises(ThreetierError, match="CertificateNotFound"):
            https_listener.ensure_https_listener(engine2.ctx, web_tier.tier(engine2.ctx), CERT_ARN)
    assert clock2.t == https_listener.CERTIFICATE_PROPAGATION_TIMEOUT


@pytest.mark.parametrize("record_set,shown", [
    ({"Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.10"}]}, "192.0.2.10"),
    ({"Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": "shop.hosting.example.net"}]}, "shop.hosting.example.net"),
    ({"Type": "A", "AliasTarget": {"HostedZoneId": "Z32O12XQLNTSW2", "DNSName": OTHER_REGION_ALB,
                                   "EvaluateTargetHealth": False}}, "an alias to " + OTHER_REGION_ALB.rstrip(".")),
])
def test_someone_elses_record_at_the_domain_is_refused_not_overwritten(built: Path, record_set: dict, shown: str) -> None:
    zone_id = make_zone()
    put_record(zone_id, {"Name": f"{DOMAIN}.", **record_set})
    before = zone_records(zone_id)
    write_config(built, **edge_config())
    result = cli("up", "--yes", "--state", str(built / "state.json"), cwd=built)
    assert result.code == 2, result.stdout + result.stderr  # the preflight's refusal, before any change
    assert f"the {record_set['Type']} record {DOMAIN} ({shown}) that threetier did not write" in result.stderr
    assert "nothing was changed" in result.stderr
    assert zone_records(zone_id) == before
    assert stack_certificates() == []  # refused before the certificate was requested


def test_a_validation_record_that_was_there_already_is_left(built: Path) -> None:
    """ACM gives one validation CNAME per domain and account (any region): one already in the zone
    validates another certificate, which would stop renewing without it."""
    zone_id = make_zone()
    put_record(zone_id, {"Name": VALIDATION_NAME, "Type": "CNAME", "TTL": 300,
                         "ResourceRecords": [{"Value": VALIDATION_VALUE}]})
    engine = edge_added(built)
    assert remembered(engine) == {(zone_id, f"{DOMAIN}.", "A")}
    down = make_engine(built, edge_config())
    down.ctx.skip_final_snapshot = True
    down.down()
    assert stack_certificates() == []
    assert record_types(zone_id) == {(f"{ZONE}.", "NS"), (f"{ZONE}.", "SOA"), (VALIDATION_NAME, "CNAME")}


# -- HSTS on 443 ----------------------------------------------------------------------------------
def hsts(listener_arn: str) -> str | None:
    attributes = boto3.client("elbv2").describe_listener_attributes(ListenerArn=listener_arn)["Attributes"]
    return {a["Key"]: a["Value"] for a in attributes}.get(https_listener.HSTS)


def reads_after_the_inventory(engine) -> list[str]:
    """The reads of a no-op `up`, then of every part's check (status), after its inventory."""
    real_take = engine.take_inventory
    after_inventory: list[int] = []

    def take_inventory(parts: Any = None) -> None:
        real_take(parts)
        after_inventory.append(len(engine.ctx.aws.calls))

    engine.take_inventory = take_inventory
    engine.up()
    for part in engine.parts:
        engine.check(part)
    return [c.operation for c in engine.ctx.aws.calls[after_inventory[0]:]]


def test_443_sends_hsts_converges_it_and_status_shows_it_drifting(built: Path) -> None:
    make_zone()
    engine = edge_added(built)  # makes 443
    engine_state_only(built)
    https = listeners(engine)[443]["ListenerArn"]
    assert hsts(https) == "max-age=31536000"
    # Set on the listener made this run: part of making it, not a change of its own.
    assert [(c.action, c.name) for c in engine.ctx.changes if c.kind == "listener attributes"] == [
        ("configured", "threetier-ext-alb:443")]

    # Someone turns it off: status says so, up puts it back (that call alone), as a change.
    boto3.client("elbv2").modify_listener_attributes(ListenerArn=https, Attributes=[
        {"Key": https_listener.HSTS, "Value": "max-age=0"}])
    write_config(built, **edge_config())
    drifted = cli("status", "--json", cwd=built)
    assert drifted.code == 3, drifted.stdout + drifted.stderr
    assert json.loads(drifted.stdout)["parts"][6]["drift"] == [
        "listener threetier-ext-alb:443: Strict-Transport-Security max-age=0, should be max-age=31536000"]
    fixed = make_engine(built, edge_config())
    fixed.up()
    assert mutating(fixed) == ["ModifyListenerAttributes"] and hsts(https) == "max-age=31536000"
    assert [(c.action, c.name) for c in fixed.ctx.changes if c.kind == "listener attributes"] == [
        ("changed", "threetier-ext-alb:443")]

    # A no-op up and status read it (and all of the edge) in the inventory, not one by one.
    again = make_engine(built, edge_config())
    assert reads_after_the_inventory(again) == []
    assert mutating(again) == []
    assert [c.operation for c in again.ctx.aws.calls].count("DescribeListenerAttributes") == 1


# -- the certificate request's idempotency token --------------------------------------------------
FAILED_ARN = CERT_ARN.replace("12345678-1234", "00000000-1234")
NEW_ARN = CERT_ARN.replace("12345678-1234", "11111111-1234")


def certificate_shown(arn: str, status: str) -> dict:
    return {"Certificate": {"CertificateArn": arn, "DomainName": DOMAIN, "Status": status, "DomainValidationOptions": [
        {"DomainName": DOMAIN, "ResourceRecord": {"Name": VALIDATION_NAME, "Type": "CNAME", "Value": VALIDATION_VALUE}}]}}


VPC = "vpc-0123456789abcdef0"
# What DescribeCertificate answers of a certificate ACM handed back deleted: nothing, for the minute
# a certificate just requested may stay unknown.
UNKNOWN_FOR_A_MINUTE = [None] * (certificates.REQUESTED_VISIBLE_TIMEOUT // certificates.REQUESTED_VISIBLE_POLL + 1)


def tokens_requested(tmp_path, listed: dict[str, str], handed_back: list[tuple[str, list[str | None]]],
                     vpc: str = VPC, clock: FakeClock | None = None) -> list[str]:
    """ensure_certificate against moto's Route 53 and a stubbed ACM: the stack's certificates for
    the domain (ARN: status) are listed; each request returns the next certificate of handed_back
    (ARN, what DescribeCertificate answers of it poll after poll: a status, or None: not known). The
    idempotency tokens of its requests."""
    engine = make_engine(tmp_path, edge_config(), clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == 7)
    with Stubber(engine.ctx.aws.client("acm")) as stub:
        stub.add_response("list_certificates", {"CertificateSummaryList": [
            {"CertificateArn": arn, "DomainName": DOMAIN} for arn in listed]})
        for _ in listed:
            stub.add_response("list_tags_for_certificate", {"Tags": [{"Key": STACK_TAG, "Value": "threetier"}]})
        for arn, status in listed.items():
            stub.add_response("describe_certificate", certificate_shown(arn, status), {"CertificateArn": arn})
        for arn, statuses in handed_back:
            stub.add_response("request_certificate", {"CertificateArn": arn})
            for status in statuses:
                if status is None:
                    stub.add_client_error("describe_certificate", "ResourceNotFoundException", "not known", 400)
                else:
                    stub.add_response("describe_certificate", certificate_shown(arn, status), {"CertificateArn": arn})
        assert certificates.ensure_certificate(engine.ctx, vpc) == handed_back[-1][0]
        stub.assert_no_pending_responses()
    return [c.params["IdempotencyToken"] for c in engine.ctx.aws.calls if c.operation == "RequestCertificate"]


def test_a_failed_certificate_salts_the_request_token_and_a_retry_keeps_it(tmp_path) -> None:
    """ACM answers a token it saw within the hour with the certificate it made then: the same
    token after a failed certificate would hand that one back."""
    with moto():
        make_zone()
        plain = client_token("threetier", VPC, DOMAIN)[:32]
        # Nothing failed: the token of the hour, the same when the request is made again (a crash).
        assert tokens_requested(tmp_path, {}, [(NEW_ARN, ["PENDING_VALIDATION"])]) == [plain]
        assert tokens_requested(tmp_path, {}, [(NEW_ARN, ["PENDING_VALIDATION"])]) == [plain]
        # The stack's certificate for the domain failed: another token, again the same on a retry.
        salted = client_token("threetier", VPC, DOMAIN, FAILED_ARN)[:32]
        assert salted != plain
        for _ in range(2):
            assert tokens_requested(tmp_path, {FAILED_ARN: "FAILED"}, [(NEW_ARN, ["PENDING_VALIDATION"])]) == [salted]


def test_the_request_token_is_another_in_another_build_of_the_stack(tmp_path) -> None:
    """After `down`, ACM still answers the last build's token (for an hour) with its deleted certificate:
    the next build's VPC, made before the certificate, is another, and so is the token."""
    with moto():
        make_zone()
        first = tokens_requested(tmp_path, {}, [(NEW_ARN, ["PENDING_VALIDATION"])], vpc=VPC)
        second = tokens_requested(tmp_path, {}, [(NEW_ARN, ["PENDING_VALIDATION"])], vpc="vpc-0fedcba9876543210")
        assert first != second and len(second[0]) == 32


@pytest.mark.parametrize("handed_back", [["FAILED"], UNKNOWN_FOR_A_MINUTE])
def test_a_certificate_acm_hands_back_failed_or_deleted_is_requested_again(tmp_path, handed_back: list) -> None:
    """One deleted (edge turned off and on again within the hour) is listed no more: it can only be
    seen in what ACM answers, and only as not known for longer than a new one may be."""
    with moto():
        make_zone()
        assert tokens_requested(tmp_path, {}, [(FAILED_ARN, handed_back), (NEW_ARN, ["PENDING_VALIDATION"])]) == [
            client_token("threetier", VPC, DOMAIN)[:32], client_token("threetier", VPC, DOMAIN, FAILED_ARN)[:32]]


def test_a_certificate_not_known_yet_right_after_its_request_is_waited_for_not_requested_again(tmp_path) -> None:
    """DescribeCertificate may not know a certificate for a moment after RequestCertificate: a second
    request, with a salted token, would make a second certificate."""
    clock = FakeClock()
    with moto():
        make_zone()
        assert tokens_requested(tmp_path, {}, [(NEW_ARN, [None, None, "PENDING_VALIDATION"])], clock=clock) == [
            client_token("threetier", VPC, DOMAIN)[:32]]
    assert clock.sleeps == [certificates.REQUESTED_VISIBLE_POLL] * 2


def test_validation_records_shown_minutes_after_the_request_are_waited_for(tmp_path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, edge_config(), clock=clock)
    late = 4 * 60  # past the 2 minutes once allowed
    with Stubber(engine.ctx.aws.client("acm")) as stub:
        for _ in range(late // certificates.VALIDATION_RECORD_POLL):
            stub.add_response("describe_certificate", {"Certificate": {
                "CertificateArn": CERT_ARN, "DomainName": DOMAIN, "Status": "PENDING_VALIDATION",
                "DomainValidationOptions": [{"DomainName": DOMAIN}]}}, {"CertificateArn": CERT_ARN})
        stub.add_response("describe_certificate", certificate_shown(CERT_ARN, "PENDING_VALIDATION"),
                          {"CertificateArn": CERT_ARN})
        records = certificates.validation_records(engine.ctx, CERT_ARN)
        stub.assert_no_pending_responses()
    assert records == [{"Name": VALIDATION_NAME, "Type": "CNAME", "Value": VALIDATION_VALUE}]
    assert clock.t == late


@pytest.mark.parametrize("in_use_for,deleted", [(15 * 60, True), (certificates.CERTIFICATE_RELEASE_TIMEOUT + 60, False)])
def test_a_certificate_the_load_balancer_still_holds_is_deleted_once_it_lets_go(tmp_path, in_use_for: int,
                                                                               deleted: bool) -> None:
    """An ALB lets go of a certificate lazily after its listener went or moved to another one: more
    than 10 minutes has been seen. Up to 20 minutes are waited out; then the run fails, saying why."""
    clock = FakeClock()
    engine = make_engine(tmp_path, edge_config(), clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == 7)
    refusals = min(in_use_for, certificates.CERTIFICATE_RELEASE_TIMEOUT) // certificates.CERTIFICATE_RELEASE_POLL + \
        (0 if deleted else 1)
    with Stubber(engine.ctx.aws.client("acm")) as stub:
        stub.add_response("describe_certificate", certificate_shown(CERT_ARN, "ISSUED"), {"CertificateArn": CERT_ARN})
        stub.add_response("list_certificates", {"CertificateSummaryList": [
            {"CertificateArn": CERT_ARN, "DomainName": DOMAIN}]})
        for _ in range(refusals):
            stub.add_client_error("delete_certificate", "ResourceInUseException", "in use", 400)
        if deleted:
            stub.add_response("delete_certificate", {}, {"CertificateArn": CERT_ARN})
            certificates.delete_certificate(engine.ctx, CERT_ARN)
            assert [c.kind for c in engine.ctx.changes] == ["certificate"]
        else:
            with pytest.raises(ThreetierError, match="ResourceInUseException"):
                certificates.delete_certificate(engine.ctx, CERT_ARN)
        stub.assert_no_pending_responses()
    assert clock.t == min(in_use_for, certificates.CERTIFICATE_RELEASE_TIMEOUT)


# -- records in the zone that are not the stack's -------------------------------------------------
def down(tmp_path) -> None:
    engine = make_engine(tmp_path, edge_config())
    engine.ctx.skip_final_snapshot = True
    engine.down()


def test_another_alias_of_the_user_s_to_the_alb_survives_up_and_down(stack_from) -> None:
    """www.example.com aimed by the user at the stack's ALB (another name for the same site) is not
    the stack's: a domain change, `up` and `down` leave it (down says it points at a going ALB)."""
    tmp_path = stack_from("edge")
    zone_id = the_zone()
    engine = make_engine(tmp_path, edge_config())
    balancer = boto3.client("elbv2").describe_load_balancers(
        LoadBalancerArns=[engine.ctx.state.parts[7].resources["load_balancer_arn"]])["LoadBalancers"][0]
    www = {"Name": f"www.{ZONE}.", "Type": "A", "AliasTarget": {
        "HostedZoneId": balancer["CanonicalHostedZoneId"], "DNSName": balancer["DNSName"], "EvaluateTargetHealth": False}}
    put_record(zone_id, www)
    again = make_engine(tmp_path, edge_config(domain=f"api.{ZONE}"))
    again.up()
    assert (f"www.{ZONE}.", "A") in record_types(zone_id) and (f"{DOMAIN}.", "A") not in record_types(zone_id)
    engine = make_engine(tmp_path, edge_config(domain=f"api.{ZONE}"))
    engine.ctx.skip_final_snapshot = True
    engine.down()
    assert (f"www.{ZONE}.", "A") in record_types(zone_id) and (f"api.{ZONE}.", "A") not in record_types(zone_id)
    assert f"alias record www.{ZONE} in hosted zone {ZONE} points at threetier-ext-alb" in engine.ctx.out.stderr.getvalue()


def test_a_validation_record_written_without_its_final_dot_is_the_same_record(built: Path) -> None:
    zone_id = make_zone()
    put_record(zone_id, {"Name": VALIDATION_NAME, "Type": "CNAME", "TTL": 300,
                         "ResourceRecords": [{"Value": VALIDATION_VALUE.rstrip(".")}]})
    engine = edge_added(built)
    assert "ChangeResourceRecordSets" in mutating(engine)  # the alias ...
    assert remembered(engine) == {(zone_id, f"{DOMAIN}.", "A")}  # ... only
    down(built)
    assert (VALIDATION_NAME, "CNAME") in record_types(zone_id)


def test_another_value_at_the_validation_record_s_name_is_refused_not_overwritten(built: Path) -> None:
    zone_id = make_zone()
    put_record(zone_id, {"Name": VALIDATION_NAME, "Type": "CNAME", "TTL": 300,
                         "ResourceRecords": [{"Value": "elsewhere.example.net."}]})
    engine = make_engine(built, edge_config())
    with pytest.raises(ThreetierError, match=f"has the CNAME record {VALIDATION_NAME.rstrip('.')} "
                                             r"\(elsewhere.example.net.\)"):
        engine.up()
    left = [r for r in zone_records(zone_id) if r["Name"] == VALIDATION_NAME]
    assert left[0]["ResourceRecords"] == [{"Value": "elsewhere.example.net."}]
