"""bench.model's CloudFront (edge.cdn): a distribution InProgress for 300 s after each create and
update, then Deployed; DeleteDistribution refused while it is enabled or its disable deploys; the
web ACL and the certificate it names in use until it is deleted. Hand-made call sequences through
the clients of a model-hooked Aws (moto answers Deployed at once and deletes anything: docs/moto.md);
the `edge_cdn` variant's keys in the benchmark's report."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bench.__main__ as bench_main
from bench.model import CLOUDFRONT_DEPLOY_SECONDS, WAF_DISASSOCIATE_SECONDS, LatencyModel, VirtualClock
from bench.model.figures import CERT_RELEASE_SECONDS
from bench.runs import EDGE_CDN, Modeled, edge_config
from helpers import make_engine, moto
from test_bench_edge import create_web_acl, delete_web_acl, outcome
from threetier import config as configlib

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # the managed policy's ID: any ID does for moto


class Edge:
    """moto behind the model on a virtual clock, for a stack in eu-west-1: CloudFront, and WAF and ACM
    in us-east-1 (where CloudFront's web ACL and certificate live)."""

    def __init__(self, tmp_path: Path):
        self.clock = VirtualClock()
        aws = make_engine(tmp_path, {"region": "eu-west-1"}, clock=self.clock).ctx.aws
        self.model = LatencyModel(aws, self.clock)
        self.cloudfront = aws.client("cloudfront", "us-east-1")
        self.wafv2, self.acm = aws.client("wafv2", "us-east-1"), aws.client("acm", "us-east-1")

    def until(self, t: float) -> None:
        self.clock.advance(t - self.clock.now())

    def create(self, **extra: Any) -> dict[str, Any]:
        config = {"CallerReference": "threetier-eu-west-1", "Comment": "threetier-cdn", "Enabled": True,
                  "Origins": {"Quantity": 1, "Items": [{"Id": "alb", "DomainName": "origin.shop.example.com",
                                                        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                               "OriginProtocolPolicy": "https-only"}}]},
                  "DefaultCacheBehavior": {"TargetOriginId": "alb", "ViewerProtocolPolicy": "redirect-to-https",
                                           "CachePolicyId": CACHING_DISABLED}, **extra}
        tags = {"Items": [{"Key": "threetier:stack", "Value": "threetier"}, {"Key": "threetier:part", "Value": "7"}]}
        return self.cloudfront.create_distribution_with_tags(
            DistributionConfigWithTags={"DistributionConfig": config, "Tags": tags})["Distribution"]

    def status(self, distribution_id: str) -> str:
        return self.cloudfront.get_distribution(Id=distribution_id)["Distribution"]["Status"]

    def listed(self) -> dict[str, str]:
        return {d["Id"]: d["Status"] for d in self.cloudfront.list_distributions()["DistributionList"].get("Items", [])}

    def update(self, distribution_id: str, **changes: Any) -> dict[str, Any]:
        current = self.cloudfront.get_distribution_config(Id=distribution_id)
        return self.cloudfront.update_distribution(Id=distribution_id, IfMatch=current["ETag"], DistributionConfig={
            **current["DistributionConfig"], **changes})["Distribution"]

    def delete(self, distribution_id: str) -> str:
        etag = self.cloudfront.get_distribution(Id=distribution_id)["ETag"]
        return outcome(self.cloudfront.delete_distribution, Id=distribution_id, IfMatch=etag)

    def rules_broken(self) -> list[str | None]:
        return [r.rule for r in self.model.refusals if r.violation]


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    with moto():
        yield Edge(tmp_path)


def test_a_distribution_is_in_progress_300_s_after_its_create_and_each_update_then_deployed(edge: Edge) -> None:
    made = edge.create()
    created = edge.clock.now()
    assert made["Status"] == "InProgress"
    edge.until(created + CLOUDFRONT_DEPLOY_SECONDS - 1)
    assert edge.status(made["Id"]) == "InProgress" and edge.listed() == {made["Id"]: "InProgress"}
    edge.until(created + CLOUDFRONT_DEPLOY_SECONDS)
    assert edge.status(made["Id"]) == "Deployed" and edge.listed() == {made["Id"]: "Deployed"}
    # An update (moto answers Deployed): in progress again, for as long.
    assert edge.update(made["Id"], Comment="threetier-cdn, changed")["Status"] == "InProgress"
    updated = edge.clock.now()
    assert edge.status(made["Id"]) == "InProgress"
    edge.until(updated + CLOUDFRONT_DEPLOY_SECONDS)
    assert edge.status(made["Id"]) == "Deployed"
    [record] = edge.model.distributions.values()
    assert (record.part, record.name) == (7, "threetier-cdn")
    spans = [(s.kind, s.start, s.end) for s in edge.model.spans if s.kind.startswith("distribution")]
    assert spans == [("distribution", created, created + CLOUDFRONT_DEPLOY_SECONDS),
                     ("distribution update", updated, updated + CLOUDFRONT_DEPLOY_SECONDS)]
    assert edge.rules_broken() == []


def test_delete_is_refused_while_enabled_or_while_the_disable_deploys(edge: Edge) -> None:
    made = edge.create()
    edge.until(edge.clock.now() + CLOUDFRONT_DEPLOY_SECONDS)
    assert edge.delete(made["Id"]) == "DistributionNotDisabled"  # enabled (moto would delete it)
    edge.update(made["Id"], Enabled=False)
    disabled = edge.clock.now()
    assert edge.delete(made["Id"]) == "DistributionNotDisabled"  # disabled, the change still deploying
    edge.until(disabled + CLOUDFRONT_DEPLOY_SECONDS)
    assert edge.status(made["Id"]) == "Deployed"
    assert edge.delete(made["Id"]) == "ok"
    deleted = edge.clock.now()
    assert outcome(edge.cloudfront.get_distribution, Id=made["Id"]) == "NoSuchDistribution"
    assert edge.rules_broken() == ["delete-distribution-enabled", "delete-distribution-in-progress"]
    [gone] = [s for s in edge.model.spans if s.action == "delete"]
    assert (gone.kind, gone.start, gone.end) == ("distribution", disabled, deleted)


def test_the_web_acl_and_the_certificate_it_names_are_in_use_until_it_is_deleted(edge: Edge) -> None:
    acl = create_web_acl(edge.wafv2, "threetier-cdn-web-acl", "CLOUDFRONT")
    certificate = edge.acm.request_certificate(DomainName="shop.example.com", ValidationMethod="DNS")["CertificateArn"]
    assert ":us-east-1:" in certificate and certificate in edge.model.certificates  # ACM of us-east-1, modeled
    made = edge.create(WebACLId=acl["ARN"], ViewerCertificate={"ACMCertificateArn": certificate,
                                                               "SSLSupportMethod": "sni-only",
                                                               "MinimumProtocolVersion": "TLSv1.2_2021"})
    assert delete_web_acl(edge.wafv2, acl, "CLOUDFRONT") == "WAFAssociatedItemException"
    assert outcome(edge.acm.delete_certificate, CertificateArn=certificate) == "ResourceInUseException"
    assert edge.rules_broken() == ["delete-web-acl-associated", "delete-certificate-in-use"]
    edge.update(made["Id"], Enabled=False)
    edge.until(edge.clock.now() + CLOUDFRONT_DEPLOY_SECONDS)
    assert edge.delete(made["Id"]) == "ok"
    deleted = edge.clock.now()
    # Right after: not everywhere yet (retried, not violations); then free to go.
    assert delete_web_acl(edge.wafv2, acl, "CLOUDFRONT") == "WAFAssociatedItemException"
    assert outcome(edge.acm.delete_certificate, CertificateArn=certificate) == "ResourceInUseException"
    edge.until(deleted + max(WAF_DISASSOCIATE_SECONDS, CERT_RELEASE_SECONDS))
    assert delete_web_acl(edge.wafv2, acl, "CLOUDFRONT") == "ok"
    assert outcome(edge.acm.delete_certificate, CertificateArn=certificate) == "ok"
    assert edge.rules_broken() == ["delete-web-acl-associated", "delete-certificate-in-use"]


def test_the_edge_cdn_variant_is_edge_with_cdn_and_the_waf_and_its_minutes_are_extra_keys(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = configlib.parse(edge_config(waf=True, cdn=True))
    assert config.edge.cdn and config.edge.waf and config.edge.domain == "shop.example.com"
    assert EDGE_CDN == {"edge": True, "waf": True, "cdn": True}
    asked: list[dict[str, Any]] = []

    def run(**options: Any) -> Modeled:  # the modeled runs, replaced: what is tested is the report
        asked.append(options)
        if options.get("cdn"):
            return Modeled(sequential=False, edge=True, cdn=True, up_seconds=780.0, down_seconds=540.0,
                           violations=["DeleteDistribution: DistributionNotDisabled: ..."])
        return Modeled(sequential=False, up_seconds=600.0, down_seconds=300.0)
    monkeypatch.setattr(bench_main, "modeled_run", run)
    quick = ["--json", "--no-gantt", "--skip-sequential", "--skip-edge", "--skip-pause", "--skip-deploy"]
    assert bench_main.main([*quick, "--skip-cdn"]) == 0
    without = json.loads(capsys.readouterr().out)
    assert bench_main.main(quick) == 1  # the cdn run's violation fails the benchmark
    report = json.loads(capsys.readouterr().out)
    assert [a for a in asked if a.get("cdn")] == [{"sequential": False, "relax": [], **EDGE_CDN}]
    assert (report["cdn_up_minutes"], report["cdn_down_minutes"], report["up_minutes"]) == (13.0, 9.0, 10.0)
    assert report["cdn_violations"] == ["DeleteDistribution: DistributionNotDisabled: ..."]
    assert (without["cdn_up_minutes"], without["cdn_down_minutes"], without["cdn_violations"]) == (None, None, [])
    assert set(without) == set(report) and {"edge_up_minutes", "edge_down_minutes", "up_minutes"} <= set(report)


def test_a_modeled_up_and_down_with_cloudfront_breaks_no_rule_and_its_deploy_overlaps_the_web_tier() -> None:
    """The real `up` and `down` of an edge stack with cdn and waf on the model: the distribution is made
    once, deployed before the round trip, disabled before it is deleted (no violation), and its 300 s
    deploy runs while the web tier comes up, within the goals (up <= 13 min, down <= 10)."""
    from bench.runs import modeled_run
    run = modeled_run(sequential=False, edge=True, waf=True, cdn=True)
    assert run.error is None and run.violations == [], (run.error, run.violations)
    made = [s for s in run.spans if s.kind == "distribution" and s.action != "delete"]
    gone = [s for s in run.down_spans if s.kind == "distribution" and s.action == "delete"]
    assert len(made) == 1 and len(gone) == 1 and made[0].end is not None and gone[0].end is not None
    assert made[0].end - made[0].start == pytest.approx(CLOUDFRONT_DEPLOY_SECONDS)
    web_asg = next(s for s in run.spans if s.kind == "Auto Scaling group" and "web" in s.name)
    assert made[0].start < web_asg.start  # made before the web tier's instances, not after them
    assert run.up_seconds is not None and run.down_seconds is not None
    assert run.up_seconds <= 13 * 60 and run.down_seconds <= 10 * 60
