"""CloudFront in front of the external ALB (config.yaml `edge.cdn`): the distribution, its certificate in
us-east-1, the records; status and drift; cdn turned off; `down`; a crash right after the create.

moto keeps a distribution's settings but reports it Deployed at once, deletes one still enabled and takes
any ETag (docs/moto.md): what AWS does there is tested with botocore's Stubber."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from helpers import cli, make_engine, mutating, write_config
from test_crash_recovery import crash_up_after
from threetier.aws import STACK_TAG, client_token, tag_value
from threetier.blocks import cdn, dns, edge, origin
from threetier.engine import Check
from threetier.scan import tagged

ZONE = "example.com"
DOMAIN = "shop.example.com"
ORIGIN = f"origin.{DOMAIN}"


def cdn_config(**edge_keys: Any) -> dict:
    return {"edge": {"domain": DOMAIN, "hosted_zone": ZONE, "cdn": True, **edge_keys}}


def edge_config() -> dict:
    return {"edge": {"domain": DOMAIN, "hosted_zone": ZONE}}


def the_zone() -> str:
    return boto3.client("route53").list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"][0]["Id"].split("/")[-1]


def aliases(zone_id: str) -> dict[tuple[str, str], str]:
    """(name, type) -> the alias's target, for the zone's alias records."""
    found = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(r["Name"].rstrip("."), r["Type"]): f"{r['AliasTarget']['HostedZoneId']} {r['AliasTarget']['DNSName'].rstrip('.')}"
            for r in found if r.get("AliasTarget")}


def distributions() -> list[dict]:
    """The stack's distributions (by its tag), with their config."""
    client = boto3.client("cloudfront", region_name="us-east-1")
    found = []
    for summary in client.list_distributions()["DistributionList"].get("Items") or []:
        tags = {"Tags": client.list_tags_for_resource(Resource=summary["ARN"])["Tags"]["Items"]}
        if tag_value(tags, STACK_TAG) == "threetier":
            found.append(client.get_distribution(Id=summary["Id"])["Distribution"])
    return found


def cloudfront_certificates() -> list[dict]:
    acm = boto3.client("acm", region_name="us-east-1")
    return [c for c in acm.list_certificates()["CertificateSummaryList"]
            if tag_value(acm.list_tags_for_certificate(CertificateArn=c["CertificateArn"]), "Name") == "threetier-cdn-certificate"]


def secret_value() -> str:
    return boto3.client("secretsmanager").get_secret_value(SecretId="threetier-cdn-origin-header")["SecretString"]


def balancer_target(engine) -> str:
    arn = engine.ctx.state.parts[7].resources["load_balancer_arn"]
    balancer = boto3.client("elbv2").describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]
    return f"{balancer['CanonicalHostedZoneId']} {balancer['DNSName']}"


def part7(engine):
    """The engine's context as Part 7 sees it (its resources)."""
    return dataclasses.replace(engine.ctx, part=engine.part("7"))


def cdn_added(directory: Path, **edge_keys: Any):
    """`up` with cdn turned on, on the restored edge stack."""
    engine = make_engine(directory, cdn_config(**edge_keys))
    engine.up()
    return engine


def test_up_with_cdn_builds_the_distribution_then_changes_nothing_repairs_drift_and_turned_off_goes(stack_from) -> None:
    tmp_path = stack_from("edge")
    zone_id = the_zone()
    engine = cdn_added(tmp_path)
    web = engine.ctx.state.parts[7].resources

    # One distribution, as the design says.
    [distribution] = distributions()
    config = distribution["DistributionConfig"]
    assert config["Aliases"]["Items"] == [DOMAIN]
    [certificate] = cloudfront_certificates()
    assert certificate["CertificateArn"].split(":")[3] == "us-east-1"
    assert config["ViewerCertificate"]["ACMCertificateArn"] == certificate["CertificateArn"] == web["cdn_certificate_arn"]
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert (config["HttpVersion"], config["IsIPV6Enabled"], config["Enabled"]) == ("http2and3", True, True)
    behaviors = {b.get("PathPattern", "*"): (b["CachePolicyId"], b.get("OriginRequestPolicyId") or None, len(b["AllowedMethods"]["Items"]))
                 for b in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]["Items"]]}
    assert behaviors == {"*": (cdn.USE_ORIGIN_CACHE_CONTROL_HEADERS, None, 3),
                         "/assets/*": (cdn.CACHING_OPTIMIZED, None, 2),
                         "/api/*": (cdn.CACHING_DISABLED, cdn.ALL_VIEWER, 7)}
    [made] = config["Origins"]["Items"]
    assert made["DomainName"] == ORIGIN and made["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert made["CustomHeaders"]["Items"] == [{"HeaderName": origin.HEADER, "HeaderValue": secret_value()}]
    # The regional certificate covers origin.<domain> too (a new one: the edge stack's lacked it; the old one went).
    regional = boto3.client("acm").describe_certificate(CertificateArn=web["certificate_arn"])["Certificate"]
    assert set(regional["SubjectAlternativeNames"]) == {DOMAIN, ORIGIN}
    # The records: the domain's A and AAAA to CloudFront, origin.<domain> to the ALB; remembered as the stack's.
    to_cloudfront = f"{dns.CLOUDFRONT_ZONE} {distribution['DomainName']}"
    found = aliases(zone_id)
    assert (found[(DOMAIN, "A")], found[(DOMAIN, "AAAA")], found[(ORIGIN, "A")]) == (
        to_cloudfront, to_cloudfront, balancer_target(engine))
    assert {(e.name, e.type) for e in dns.recorded_aliases(part7(engine))} == {
        (f"{DOMAIN}.", "A"), (f"{DOMAIN}.", "AAAA"), (f"{ORIGIN}.", "A")}
    assert web["url"] == f"https://{DOMAIN}" and web[cdn.ID] == distribution["Id"]
    # The domain was served by the ALB: its records moved to the distribution only once it was deployed (moto
    # answers InProgress to the create, Deployed to the wait's first GetDistribution); origin.<domain> before.
    calls = engine.ctx.aws.calls
    moved = next(i for i, c in enumerate(calls) if c.operation == "ChangeResourceRecordSets" and any(
        change["ResourceRecordSet"]["Name"] == f"{DOMAIN}." for change in c.params["ChangeBatch"]["Changes"]))
    operations = [c.operation for c in calls]
    assert operations.index("ChangeResourceRecordSets") < operations.index("CreateDistributionWithTags") \
        < operations.index("GetDistribution") < moved

    # A second up changes nothing: no mutating call at all.
    again = make_engine(tmp_path, cdn_config())
    again.up()
    assert mutating(again) == []

    # status: the distribution's id, domain name and status in Part 7's resources, never the header's value.
    write_config(tmp_path, **cdn_config())
    shown = cli("status", "--json", "--state", str(tmp_path / "state.json"), cwd=tmp_path)
    assert shown.code == 0, shown.stdout + shown.stderr
    resources = json.loads(shown.stdout)["parts"][6]["resources"]
    assert (resources[cdn.ID], resources[cdn.DOMAIN_NAME], resources[cdn.STATUS]) == (
        distribution["Id"], distribution["DomainName"], "Deployed")
    assert secret_value() not in shown.stdout

    # Changed by hand: HTTP/1.1 only, another header value, the API cached -> drift; `up` puts it back.
    client = boto3.client("cloudfront", region_name="us-east-1")
    current = client.get_distribution_config(Id=distribution["Id"])
    edited = current["DistributionConfig"]
    edited["HttpVersion"] = "http1.1"
    edited["Origins"]["Items"][0]["CustomHeaders"]["Items"][0]["HeaderValue"] = "guessed"
    edited["CacheBehaviors"]["Items"][1]["CachePolicyId"] = cdn.CACHING_OPTIMIZED
    client.update_distribution(Id=distribution["Id"], IfMatch=current["ETag"], DistributionConfig=edited)
    drifted = cli("status", "--json", "--state", str(tmp_path / "state.json"), cwd=tmp_path)
    assert drifted.code == 3
    drift = [d for d in json.loads(drifted.stdout)["parts"][6]["drift"] if d.startswith("distribution threetier-cdn:")]
    assert len(drift) == 3, drift
    assert any("HTTP version http1.1, should be http2and3" in d for d in drift)
    assert any("origin header X-Origin-Verify: not the value of secret" in d for d in drift)
    assert "guessed" not in drifted.stdout and secret_value() not in drifted.stdout
    repaired = make_engine(tmp_path, cdn_config())
    repaired.up()
    assert mutating(repaired) == ["UpdateDistribution"]
    [after] = distributions()
    assert after["DistributionConfig"]["HttpVersion"] == "http2and3"
    assert after["DistributionConfig"]["Origins"]["Items"][0]["CustomHeaders"]["Items"][0]["HeaderValue"] == secret_value()

    # cdn turned off: status says what `up` will delete (the state file remembers the distribution: status
    # asks CloudFront only then) ...
    write_config(tmp_path, **edge_config())
    shown = cli("status", "--json", "--state", str(tmp_path / "state.json"), cwd=tmp_path)
    drift = json.loads(shown.stdout)["parts"][6]["drift"]
    for going in (f"distribution threetier-cdn ({distribution['Id']}): present, and edge.cdn is off",
                  f"CloudFront certificate {DOMAIN} ({certificate['CertificateArn']}): requested by the stack",
                  f"alias record {DOMAIN} (AAAA): written by the stack", f"alias record {ORIGIN} (A): written by the stack"):
        assert any(d.startswith(going) for d in drift), (going, drift)
    # ... and `up` points the domain back at the ALB, removes origin and AAAA, disables then deletes the
    # distribution, and deletes CloudFront's certificate.
    off = make_engine(tmp_path, edge_config())
    off.up()
    found = aliases(zone_id)
    assert found == {(DOMAIN, "A"): balancer_target(off)}
    assert distributions() == [] and cloudfront_certificates() == []
    operations = [c.operation for c in off.ctx.aws.mutating_calls()]
    assert operations.index("ChangeResourceRecordSets") < operations.index("UpdateDistribution") \
        < operations.index("DeleteDistribution") < operations.index("DeleteCertificate")
    assert cdn.ID not in off.ctx.state.parts[7].resources


def test_down_after_cdn_leaves_nothing_a_scan_finds(stack_from) -> None:
    tmp_path = stack_from("edge_cdn")  # built with cdn from nothing (its plan's counts: tests/test_plan_counts.py)
    [distribution] = distributions()
    down = make_engine(tmp_path, cdn_config())
    cdn_certificate = down.ctx.state.parts[7].resources[cdn.CERTIFICATE]
    assert down.ctx.state.parts[7].resources[cdn.ID] == distribution["Id"]
    down.ctx.skip_final_snapshot = True
    down.down()
    assert distributions() == [] and cloudfront_certificates() == []
    left = {(f.kind, f.name) for f in tagged(down.ctx.aws, "threetier")}
    assert not {kind for kind, _ in left} & {"distribution", "certificate"}, left
    assert {r["Type"] for r in boto3.client("route53").list_resource_record_sets(
        HostedZoneId=the_zone())["ResourceRecordSets"]} == {"NS", "SOA"}
    # Disabled first (before the load balancer went), deleted after; then CloudFront's certificate.
    calls = down.ctx.aws.mutating_calls()
    operations = [c.operation for c in calls]
    last = max(i for i, c in enumerate(calls) if c.operation == "DeleteCertificate")
    assert calls[last].params["CertificateArn"] == cdn_certificate
    assert operations.index("UpdateDistribution") < operations.index("DeleteLoadBalancer") \
        < operations.index("DeleteDistribution") < last


def test_edge_turned_off_altogether_removes_cloudfront_too_and_then_asks_nothing(stack_from) -> None:
    tmp_path = stack_from("edge_cdn")
    off = make_engine(tmp_path)
    off.up()
    assert distributions() == [] and cloudfront_certificates() == []
    assert {r["Type"] for r in boto3.client("route53").list_resource_record_sets(
        HostedZoneId=the_zone())["ResourceRecordSets"]} == {"NS", "SOA"}
    assert not {cdn.ID, dns.RECORDS} & set(off.ctx.state.parts[7].resources)
    again = make_engine(tmp_path)
    again.up()
    assert not {c.service for c in again.ctx.aws.calls} & {"acm", "route53", "cloudfront"}


def test_a_crash_right_after_the_create_then_up_ends_with_one_distribution(stack_from) -> None:
    tmp_path = stack_from("edge")
    crash_up_after(make_engine(tmp_path, cdn_config()), "CreateDistributionWithTags")
    assert len(distributions()) == 1
    resumed = make_engine(tmp_path, cdn_config())
    resumed.up()
    assert len(distributions()) == 1
    assert "CreateDistributionWithTags" not in mutating(resumed)
    assert resumed.ctx.state.parts[7].resources[cdn.ID] == distributions()[0]["Id"]


# -- what moto does not do: CloudFront's status, and deleting an enabled distribution ----------------------
def stubbed(engine) -> Stubber:
    client = engine.ctx.aws.client("cloudfront", "us-east-1")
    return Stubber(client)


def test_down_disables_first_then_waits_for_deployed_before_deleting(tmp_path, monkeypatch) -> None:
    """AWS refuses DeleteDistribution while the distribution is enabled or still deploying
    (DistributionNotDisabled): `remove` (down's, cdn turned off's) finds it by its tags, disables it, polls
    GetDistribution every 30 s until Deployed, deletes it with the ETag of the disabled version, and only
    then CloudFront's certificate."""
    engine = make_engine(tmp_path, cdn_config())
    ctx = part7(engine)
    arn = "arn:aws:cloudfront::123456789012:distribution/E1"
    config = a_config(ctx)
    certificates_deleted: list[float] = []
    monkeypatch.setattr(cdn, "destroy_cdn_certificates", lambda _: certificates_deleted.append(engine.ctx.aws.clock.now()))
    stub = stubbed(engine)
    stub.add_response("list_distributions", {"DistributionList": {
        "Marker": "", "MaxItems": 100, "IsTruncated": False, "Quantity": 1, "Items": [summary_of(ctx, arn)]}}, {})
    stub.add_response("list_tags_for_resource", {"Tags": {"Items": ctx.tags(cdn.ROLE)}}, {"Resource": arn})
    stub.add_response("get_distribution_config", {"DistributionConfig": config, "ETag": "E-ENABLED"}, {"Id": "E1"})
    stub.add_response("update_distribution", {"Distribution": distribution_answer(ctx, "InProgress", False), "ETag": "E-OFF"},
                      {"Id": "E1", "IfMatch": "E-ENABLED", "DistributionConfig": {**config, "Enabled": False}})
    for status in ("InProgress", "InProgress", "Deployed"):
        stub.add_response("get_distribution", {"Distribution": distribution_answer(ctx, status, False), "ETag": "E-OFF"},
                          {"Id": "E1"})
    stub.add_response("get_distribution_config", {"DistributionConfig": {**config, "Enabled": False}, "ETag": "E-OFF"},
                      {"Id": "E1"})
    stub.add_response("delete_distribution", {}, {"Id": "E1", "IfMatch": "E-OFF"})
    with stub:
        cdn.remove(ctx)
    stub.assert_no_pending_responses()
    assert certificates_deleted == [2 * cdn.DEPLOYED_POLL]  # after two polls InProgress, 30 s apart


def summary_of(ctx, arn: str) -> dict:
    """A ListDistributions item, as AWS answers it."""
    answer = distribution_answer(ctx, "InProgress", True)
    config = answer["DistributionConfig"]
    return {"Id": "E1", "ARN": arn, "ETag": "E-ENABLED", "Status": "Deployed", "LastModifiedTime": "2026-01-01T00:00:00Z",
            "DomainName": "d1.cloudfront.net", **{key: config[key] for key in (
                "Aliases", "Origins", "DefaultCacheBehavior", "CacheBehaviors", "Comment", "PriceClass", "Enabled",
                "ViewerCertificate", "WebACLId", "HttpVersion", "IsIPV6Enabled")},
            "Restrictions": {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}},
            "CustomErrorResponses": {"Quantity": 0}, "Staging": False}


def a_config(ctx, enabled: bool = True) -> dict:
    """A DistributionConfig as the stack makes it (any certificate and header value)."""
    wanted = cdn.wanted_settings(ctx, "arn:aws:acm:us-east-1:123456789012:certificate/x", "v")
    return {"CallerReference": "r", **wanted, "Enabled": enabled}


def distribution_answer(ctx, status: str, enabled: bool) -> dict:
    return {"Id": "E1", "ARN": "arn:aws:cloudfront::123456789012:distribution/E1", "Status": status,
            "LastModifiedTime": "2026-01-01T00:00:00Z", "InProgressInvalidationBatches": 0,
            "DomainName": "d1.cloudfront.net", "DistributionConfig": a_config(ctx, enabled)}


def test_a_stale_etag_is_read_again(tmp_path) -> None:
    """Another writer between our GetDistributionConfig and our change: PreconditionFailed, read again."""
    engine = make_engine(tmp_path, cdn_config())
    ctx = part7(engine)
    config = a_config(ctx)
    stub = stubbed(engine)
    stub.add_response("get_distribution_config", {"DistributionConfig": config, "ETag": "OLD"}, {"Id": "E1"})
    stub.add_client_error("update_distribution", "PreconditionFailed", http_status_code=412,
                          expected_params={"Id": "E1", "IfMatch": "OLD", "DistributionConfig": ANY})
    stub.add_response("get_distribution_config", {"DistributionConfig": config, "ETag": "NEW"}, {"Id": "E1"})
    stub.add_response("update_distribution", {"Distribution": distribution_answer(ctx, "InProgress", False), "ETag": "X"},
                      {"Id": "E1", "IfMatch": "NEW", "DistributionConfig": ANY})
    with stub:
        cdn.disable(ctx, {"Id": "E1"})
    stub.assert_no_pending_responses()


def test_a_distribution_still_deploying_is_awaited_not_drift_to_change(tmp_path, monkeypatch) -> None:
    engine = make_engine(tmp_path, cdn_config())
    ctx = part7(engine)
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/x"
    ctx.resources[cdn.CERTIFICATE] = certificate
    found = {"Id": "E1", "ARN": "a", "Status": "InProgress", "DomainName": "d1.cloudfront.net",
             "DistributionConfig": cdn.wanted_settings(ctx, certificate, "v"), "ETag": "e"}
    monkeypatch.setattr(cdn, "find", lambda *_, **__: found)
    monkeypatch.setattr(cdn, "extras", lambda *_, **__: [])
    monkeypatch.setattr(origin, "value", lambda *_: "v")
    monkeypatch.setattr(origin, "check", lambda *_: None)  # no AWS here
    result = Check()
    cdn.check(ctx, result)
    assert result.drift == result.waits == ["distribution threetier-cdn: InProgress (`up` waits until it is deployed)"]
    assert result.present == ["distribution threetier-cdn"]


def test_in_another_region_cloudfronts_certificate_is_requested_in_us_east_1_and_shares_the_validation_record(
        tmp_path) -> None:
    """A stack in eu-west-1: CloudFront's certificate is requested in us-east-1, the regional one (for the
    domain and origin.<domain>) in eu-west-1; the domain's validation record is written once, and deleting
    one certificate leaves the record the other still validates with."""
    from helpers import moto
    from threetier.blocks import certificates
    with moto():
        boto3.client("route53").create_hosted_zone(Name=ZONE, CallerReference=ZONE)
        engine = make_engine(tmp_path, {"region": "eu-west-1", **cdn_config()})
        ctx = part7(engine)
        cloudfront = certificates.ensure_certificate(ctx, "vpc-1", certificates.cloudfront(ctx))
        regional = certificates.ensure_certificate(ctx, "vpc-1")
        assert (cloudfront.split(":")[3], regional.split(":")[3]) == ("us-east-1", "eu-west-1")
        [listed] = cloudfront_certificates()
        assert listed["CertificateArn"] == cloudfront
        # Each is its own kind: the regional list has not CloudFront's, nor CloudFront's the regional one.
        assert [c["CertificateArn"] for c in certificates.stack_certificates(ctx)] == [regional]
        assert [c["CertificateArn"] for c in certificates.cdn_certificates(ctx)] == [cloudfront]
        writes = [c for c in engine.ctx.aws.calls if c.operation == "ChangeResourceRecordSets"]
        written = [change["ResourceRecordSet"]["Name"] for c in writes for change in c.params["ChangeBatch"]["Changes"]]
        assert sorted(written) == sorted({*written}) and len(written) == 2  # the domain's and origin's, once each
        shared = next(name for name in written if not name.rstrip(".").endswith(ORIGIN))
        certificates.destroy_cdn_certificates(ctx)
        names = {r["Name"] for r in boto3.client("route53").list_resource_record_sets(
            HostedZoneId=the_zone())["ResourceRecordSets"]}
        assert shared in names and cloudfront_certificates() == []


# -- the review's fixes: the web ACL named only while wanted, a reused CallerReference, the Comment filter --------
ACL_ARN = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/threetier-cdn-web-acl/1"


def test_the_distribution_names_cloudfront_s_acl_only_while_waf_and_cdn_are_both_on(tmp_path, monkeypatch) -> None:
    """edge.waf turned off, cdn on: the state keeps the ACL's ARN until the ACL is deleted, which WAF refuses
    while a distribution names it (WAFAssociatedItemException: moto does not enforce it). So the distribution
    should name none: `status` says it does (drift), and `up` drops it, after which the ACL can go."""
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/x"
    monkeypatch.setattr(origin, "value", lambda *_: "v")
    monkeypatch.setattr(cdn, "extras", lambda *_, **__: [])
    for waf_on, drift in ((True, []), (False, [f"distribution threetier-cdn: web ACL {ACL_ARN}, should be none"])):
        ctx = part7(make_engine(tmp_path, cdn_config(waf=waf_on)))
        ctx.resources.update({cdn.CERTIFICATE: certificate, "cdn_web_acl_arn": ACL_ARN})
        assert cdn.wanted_settings(ctx, certificate, "v")["WebACLId"] == (ACL_ARN if waf_on else "")
        named = {**cdn.wanted_settings(ctx, certificate, "v"), "WebACLId": ACL_ARN}
        found = {"Id": "E1", "ARN": "a", "Status": "Deployed", "DomainName": "d1.cloudfront.net", "ETag": "e",
                 "DistributionConfig": named}
        monkeypatch.setattr(cdn, "find", lambda *_, found=found, **__: found)
        result = Check()
        cdn.check(ctx, result)
        assert result.drift == drift


def test_a_caller_reference_aws_keeps_from_a_deleted_distribution_is_salted_once_never_adopting_an_untagged_one(
        tmp_path) -> None:
    """cdn off then on within the hour: AWS remembers the deleted distribution's CallerReference and answers
    DistributionAlreadyExists. A distribution of the stack's Comment not tagged with it is not adopted; the
    create is sent once more with another reference."""
    engine = make_engine(tmp_path, cdn_config())
    ctx = part7(engine)
    wanted = cdn.wanted_settings(ctx, "arn:aws:acm:us-east-1:123456789012:certificate/x", "v")
    someone = {**summary_of(ctx, "arn:aws:cloudfront::123456789012:distribution/E9"), "Id": "E9"}
    stub = stubbed(engine)
    stub.add_client_error("create_distribution_with_tags", "DistributionAlreadyExists", http_status_code=409)
    stub.add_response("list_distributions", {"DistributionList": {
        "Marker": "", "MaxItems": 100, "IsTruncated": False, "Quantity": 1, "Items": [someone]}}, {})
    stub.add_response("list_tags_for_resource", {"Tags": {"Items": [{"Key": "threetier:stack", "Value": "other"}]}},
                      {"Resource": someone["ARN"]})
    stub.add_response("create_distribution_with_tags", {"Distribution": distribution_answer(ctx, "InProgress", True),
                                                        "ETag": "E"})
    with stub:
        made = cdn.create(ctx, wanted, "vpc-1")
    stub.assert_no_pending_responses()
    assert made["Id"] == "E1"
    first, second = [c.params["DistributionConfigWithTags"]["DistributionConfig"]["CallerReference"]
                     for c in engine.ctx.aws.calls if c.operation == "CreateDistributionWithTags"]
    assert first == client_token("threetier", "us-east-1", "vpc-1", cdn.ROLE) and second != first


def test_only_distributions_of_the_stack_s_comment_have_their_tags_read(tmp_path) -> None:
    """The account's other distributions cost no ListTagsForResource (a Stubber fails on a call it does not
    expect); the tag stays the proof."""
    engine = make_engine(tmp_path, cdn_config())
    ctx = part7(engine)
    ours = summary_of(ctx, "arn:aws:cloudfront::123456789012:distribution/E1")
    others = [{**ours, "Id": f"E{n}", "ARN": f"arn:aws:cloudfront::123456789012:distribution/E{n}",
               "Comment": comment} for n, comment in ((7, "a site"), (8, ""))]
    stub = stubbed(engine)
    stub.add_response("list_distributions", {"DistributionList": {
        "Marker": "", "MaxItems": 100, "IsTruncated": False, "Quantity": 3, "Items": [others[0], ours, others[1]]}}, {})
    stub.add_response("list_tags_for_resource", {"Tags": {"Items": ctx.tags(cdn.ROLE)}}, {"Resource": ours["ARN"]})
    with stub:
        assert [s["Id"] for s in cdn.stack_distributions(ctx)] == ["E1"]
        assert [look.operation for look in cdn.looks(ctx)] == ["list_distributions", "list_tags_for_resource"]
    stub.assert_no_pending_responses()


def lose_part7_records(engine) -> None:
    """A lost state file, as far as the records go: Part 7's state knows neither the records the stack wrote
    nor its distribution."""
    for key in (dns.RECORDS, cdn.ID, cdn.DOMAIN_NAME, cdn.STATUS):
        engine.ctx.state.parts[7].resources.pop(key, None)


def test_without_its_state_the_stack_knows_the_domain_s_aliases_to_its_own_distribution(stack_from) -> None:
    """A lost state file: `up` takes the domain's A/AAAA aliases to the stack's (tagged) distribution as its
    own (not someone's site to refuse), and `down`'s destroy_records deletes them."""
    from steps import web_tier
    from threetier import preflight
    tmp_path = stack_from("edge_cdn")
    zone_id = the_zone()
    [distribution] = distributions()
    to_cloudfront = f"{dns.CLOUDFRONT_ZONE} {distribution['DomainName']}"
    up = make_engine(tmp_path, cdn_config())
    lose_part7_records(up)
    # The preflight cannot prove a CloudFront alias the stack's without reading tags: left for `up`.
    assert [s for s in preflight.check(up, "up").shortfalls if s.key.startswith("edge")] == []
    up.up()
    assert "CreateDistributionWithTags" not in mutating(up) and len(distributions()) == 1
    found = aliases(zone_id)
    assert (found[(DOMAIN, "A")], found[(DOMAIN, "AAAA")]) == (to_cloudfront, to_cloudfront)

    down = make_engine(tmp_path, cdn_config())
    lose_part7_records(down)
    ctx = part7(down)
    edge.destroy_records(ctx, web_tier.tier(ctx))
    assert (DOMAIN, "A") not in aliases(zone_id) and (DOMAIN, "AAAA") not in aliases(zone_id)


def test_a_second_distribution_tagged_with_the_stack_is_reported_then_deleted_by_up(stack_from) -> None:
    tmp_path = stack_from("edge_cdn")
    [kept] = distributions()
    client = boto3.client("cloudfront", region_name="us-east-1")
    config = {**client.get_distribution_config(Id=kept["Id"])["DistributionConfig"], "CallerReference": "by hand",
              "Aliases": {"Quantity": 0}}
    extra = client.create_distribution_with_tags(DistributionConfigWithTags={
        "DistributionConfig": config, "Tags": {"Items": part7(make_engine(tmp_path, cdn_config())).tags(cdn.ROLE)}}
    )["Distribution"]["Id"]
    write_config(tmp_path, **cdn_config())
    shown = cli("status", "--json", "--state", str(tmp_path / "state.json"), cwd=tmp_path)
    drift = json.loads(shown.stdout)["parts"][6]["drift"]
    assert any(d.startswith(f"distribution threetier-cdn ({extra}): a second one tagged with the stack") for d in drift), drift
    up = make_engine(tmp_path, cdn_config())
    up.up()
    assert [d["Id"] for d in distributions()] == [kept["Id"]]
    assert [c.params["Id"] for c in up.ctx.aws.mutating_calls() if c.operation in ("UpdateDistribution", "DeleteDistribution")] \
        == [extra, extra]


def test_a_stale_alias_of_a_name_the_stack_no_longer_uses_is_said_so(stack_from) -> None:
    """edge.domain changed (no CloudFront at all): the old name's alias is not blamed on edge.cdn."""
    tmp_path = stack_from("edge")
    write_config(tmp_path, edge={"domain": "www.example.com", "hosted_zone": ZONE})
    shown = cli("status", "--json", "--state", str(tmp_path / "state.json"), cwd=tmp_path)
    drift = json.loads(shown.stdout)["parts"][6]["drift"]
    assert f"alias record {DOMAIN} (A): written by the stack for a name the stack no longer uses (`up` removes it)" \
        in drift, drift
    assert not any("edge.cdn" in d for d in drift), drift


def test_waf_turned_off_with_cdn_on_drops_the_acl_from_the_distribution_then_deletes_it_on_the_model(
        stack_from) -> None:
    """On the benchmark's model (a distribution naming a web ACL is its association: DeleteWebACL refused
    while it lasts, which moto does not do): edge.waf turned off while cdn stays on, `up` updates the
    distribution to name no ACL and deletes CloudFront's ACL once that is deployed, breaking no rule."""
    from bench.model import LatencyModel, VirtualClock
    tmp_path = stack_from("edge_waf")
    clock = VirtualClock()
    on = make_engine(tmp_path, cdn_config(waf=True), clock=clock)
    model = LatencyModel(on.ctx.aws, clock)  # sees the distribution made naming the ACL
    on.up()
    acl = on.ctx.state.parts[7].resources["cdn_web_acl_arn"]
    assert distributions()[0]["DistributionConfig"]["WebACLId"] == acl
    off = make_engine(tmp_path, cdn_config(waf=False), clock=clock)
    off.ctx.aws = on.ctx.aws  # the model's hooks are on these clients
    before = len(on.ctx.aws.calls)
    off.up()
    calls = [c for c in on.ctx.aws.calls[before:] if c.operation in ("UpdateDistribution", "DeleteWebACL")]
    assert [(c.operation, c.params.get("DistributionConfig", {}).get("WebACLId", c.params.get("Scope"))) for c in calls] \
        == [("UpdateDistribution", ""), ("DeleteWebACL", "CLOUDFRONT")]
    assert [r.rule for r in model.refusals if r.violation] == []
    assert "cdn_web_acl_arn" not in off.ctx.state.parts[7].resources
