"""CloudFront in front of the external ALB (Part 7, config.yaml `edge.cdn`).

One distribution per stack, tagged with it (threetier:stack, threetier:part, Name=<stack>-cdn), its Comment
<stack>-cdn, and found by those tags (read only for the distributions of that Comment) before anything is
created; another one tagged so is an extra, which `up` disables and deletes. It serves the domain with
CloudFront's certificate (in us-east-1: threetier.blocks.certificates.cloudfront) and reaches the ALB as
origin.<domain> over HTTPS, adding the header threetier.blocks.origin.HEADER with the secret value the
ALB's 443 rule asks for.
Behaviors: /assets/* cached long (the bundle's names carry their hash), /api/* never cached with every
viewer header, query string and cookie forwarded, the rest (the page) as the origin's Cache-Control
says (nginx: no-cache, so revalidated).

CloudFront takes minutes for any change (`InProgress` until `Deployed`): a create or an update is not
waited for where it is made; `wait_deployed` waits at the end of Part 7's finish, before the round trip.
Going (`down`, or edge.cdn turned off): disabled first, not waited for; at the end waited for and deleted
(AWS refuses to delete a distribution that is enabled or still deploying), then CloudFront's certificate.
Every change carries the ETag of the version it changes (IfMatch).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from threetier.aws import STACK_TAG, AwsError, Look, Poll, client_token, tag_value
from threetier.blocks import origin, waf
from threetier.blocks.certificates import (
    cdn_certificates,
    cloudfront,
    destroy_cdn_certificates,
    ensure_certificate,
    retire_old_cdn_certificates,
)
from threetier.blocks.dns import DISTRIBUTION_DOMAIN, RECORDS
from threetier.config import CDN_CERTIFICATE_REGION
from threetier.engine import Check, Ctx
from threetier.errors import ThreetierError

ROLE = "cdn"
ORIGIN_ID = "alb"
GONE = ("NoSuchDistribution",)
# Another writer changed the distribution between our read of its ETag and our change: read again.
STALE = ("PreconditionFailed", "InvalidIfMatchVersion")
ETAG_ATTEMPTS = 5
# A change deploys to every edge location: 5-15 minutes usually, more at times (AWS: "up to 30 minutes"
# and beyond under load); polled every 30 s.
DEPLOYED_POLL = 30
DEPLOYED_TIMEOUT = 30 * 60
# Part 7's resources: the distribution as `status --json` shows it (never the header's value).
ID, DOMAIN_NAME, STATUS = "cdn_distribution_id", DISTRIBUTION_DOMAIN, "cdn_status"
CERTIFICATE = "cdn_certificate_arn"

# AWS's managed policies, by ID. Sources: Amazon CloudFront Developer Guide, "Use managed cache policies"
# (docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-cache-policies.html:
# CachingOptimized, CachingDisabled, UseOriginCacheControlHeaders) and "Use managed origin request
# policies" (.../using-managed-origin-request-policies.html: AllViewer).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
USE_ORIGIN_CACHE_CONTROL_HEADERS = "83da9c7e-98b4-4e11-a168-04f0df8e2c65"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
POLICY_NAMES = {CACHING_OPTIMIZED: "CachingOptimized", CACHING_DISABLED: "CachingDisabled",
                USE_ORIGIN_CACHE_CONTROL_HEADERS: "UseOriginCacheControlHeaders", ALL_VIEWER: "AllViewer"}
PAGE_METHODS = ("GET", "HEAD", "OPTIONS")
ASSET_METHODS = ("GET", "HEAD")
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")


def name(ctx: Ctx) -> str:
    return ctx.name(ROLE)


def wanted_here(ctx: Ctx) -> bool:
    """Whether to look at all: on, or off with the state saying there was one (a stack that never had a
    distribution makes no CloudFront call but at `down`)."""
    return ctx.config.edge.cdn or ID in ctx.resources


# -- what the finders read (the inventory) ---------------------------------------
def distributions_look(marker: str | None = None) -> Look:
    # Paged by Marker (the paginator's result key is nested: DistributionList.Items).
    return Look("cloudfront", "list_distributions", {"Marker": marker} if marker else {}, region=CDN_CERTIFICATE_REGION)


def tags_look(arn: str) -> Look:
    return Look("cloudfront", "list_tags_for_resource", {"Resource": arn}, missing_ok=GONE, region=CDN_CERTIFICATE_REGION)


def distribution_look(distribution_id: str) -> Look:
    return Look("cloudfront", "get_distribution", {"Id": distribution_id}, missing_ok=GONE, region=CDN_CERTIFICATE_REGION)


def looks(ctx: Ctx) -> Iterator[Look]:
    if not wanted_here(ctx):
        return
    yield distributions_look()
    listed = (ctx.aws.peek(distributions_look()) or {}).get("DistributionList", {}).get("Items") or []
    for summary in listed:
        if named_ours(ctx, summary):
            yield tags_look(summary["ARN"])
    if ctx.resources.get(ID):
        yield distribution_look(ctx.resources[ID])


# -- finding it -----------------------------------------------------------------------
def named_ours(ctx: Ctx, summary: dict[str, Any]) -> bool:
    """A distribution of the stack's Comment (AWS's ListDistributions summaries carry it): only those have
    their tags read, the proof (the account's other distributions cost no call). moto's summaries carry no
    Comment (docs/moto.md): read by their tags alone."""
    return summary.get("Comment", name(ctx)) == name(ctx)


def stack_distributions(ctx: Ctx, *, live: bool = False) -> list[dict[str, Any]]:
    """The stack's distributions (summaries), by their Comment and tags: one, unless made by hand since
    (extras: `up` deletes them)."""
    found, marker = [], None
    while True:
        page = (ctx.aws.look(distributions_look(marker), resource="CloudFront distributions", live=live)
                or {}).get("DistributionList", {})
        for summary in page.get("Items") or []:
            if not named_ours(ctx, summary):
                continue
            tags = ctx.aws.look(tags_look(summary["ARN"]), resource=f"distribution {summary['Id']}", live=live) or {}
            tagged = {"Tags": (tags.get("Tags") or {}).get("Items") or []}
            if tag_value(tagged, STACK_TAG) == ctx.stack and tag_value(tagged, "Name") == name(ctx):
                found.append(summary)
        marker = page.get("NextMarker")
        if not page.get("IsTruncated") or not marker:
            return found


def chosen(ctx: Ctx, summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The one of the stack's distributions that is its distribution: the one the state names, else the
    first; any other is an extra (made by hand, or a copy)."""
    return next((s for s in summaries if s["Id"] == ctx.resources.get(ID)), summaries[0] if summaries else None)


def extras(ctx: Ctx, *, live: bool = False) -> list[dict[str, Any]]:
    """The stack's distributions but the one it serves from (`up` disables and deletes them)."""
    summaries = stack_distributions(ctx, live=live)
    keep = chosen(ctx, summaries)
    return [s for s in summaries if keep is None or s["Id"] != keep["Id"]]


def find(ctx: Ctx, *, live: bool = False) -> dict[str, Any] | None:
    """The stack's distribution: {"Id", "ARN", "DomainName", "Status", "DistributionConfig"} and its
    "ETag"; None when there is none."""
    summary = chosen(ctx, stack_distributions(ctx, live=live))
    if summary is None:
        return None
    found = ctx.aws.look(distribution_look(summary["Id"]), resource=f"distribution {name(ctx)}", live=live)
    return None if found is None else {**found["Distribution"], "ETag": found.get("ETag")}


def remember(ctx: Ctx, distribution: dict[str, Any]) -> None:
    ctx.resources[ID] = distribution["Id"]
    ctx.resources[DOMAIN_NAME] = distribution["DomainName"]
    ctx.resources[STATUS] = distribution["Status"]


def recall(ctx: Ctx) -> None:
    """With edge.cdn and a state that does not know the distribution (a lost state file): found by its
    tags and remembered, so that the domain's aliases to it are known as the stack's (dns.ours)."""
    if ctx.config.edge.cdn and DOMAIN_NAME not in ctx.resources:
        found = find(ctx)
        if found is not None:
            remember(ctx, found)


def forget(ctx: Ctx) -> None:
    for key in (ID, DOMAIN_NAME, STATUS):
        ctx.resources.pop(key, None)


# -- what it should be --------------------------------------------------------------
def items(values: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    return {"Quantity": len(values), "Items": list(values)}


def behavior(path: str | None, cache_policy: str, methods: tuple[str, ...], viewer: str,
             origin_request_policy: str | None = None) -> dict[str, Any]:
    made = {"TargetOriginId": ORIGIN_ID, "ViewerProtocolPolicy": viewer, "Compress": True,
            "CachePolicyId": cache_policy,
            "AllowedMethods": {**items(methods), "CachedMethods": items(ASSET_METHODS)}}
    if origin_request_policy:
        made["OriginRequestPolicyId"] = origin_request_policy
    return {"PathPattern": path, **made} if path else made


def wanted_settings(ctx: Ctx, certificate_arn: str, header_value: str) -> dict[str, Any]:
    """The parts of the DistributionConfig the stack decides. An update puts each back whole as it is here:
    the top-level fields it does not name (Logging, Restrictions, CustomErrorResponses, ...) are kept as
    AWS has them, but Origins and the behaviors are replaced whole (what AWS filled in inside them, such
    as an origin's timeouts or a behavior's function associations, goes back to AWS's defaults)."""
    edge = ctx.config.edge
    assert edge.domain is not None and edge.origin_domain is not None
    return {
        "Comment": name(ctx),
        "Enabled": True,
        "Aliases": items([edge.domain]),
        "ViewerCertificate": {"ACMCertificateArn": certificate_arn, "SSLSupportMethod": "sni-only",
                              "MinimumProtocolVersion": "TLSv1.2_2021"},
        "HttpVersion": "http2and3",
        "IsIPV6Enabled": True,
        "PriceClass": "PriceClass_100",  # North America and Europe: the cheapest (README: Edge)
        "WebACLId": web_acl(ctx),
        "Origins": items([{
            "Id": ORIGIN_ID, "DomainName": edge.origin_domain, "OriginPath": "",
            "CustomHeaders": items([{"HeaderName": origin.HEADER, "HeaderValue": header_value}]),
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only",
                                   "OriginSslProtocols": items(["TLSv1.2"])}}]),
        # The page: nginx says no-cache, so CloudFront revalidates it with the origin every time.
        "DefaultCacheBehavior": behavior(None, USE_ORIGIN_CACHE_CONTROL_HEADERS, PAGE_METHODS, "redirect-to-https"),
        "CacheBehaviors": items([
            # The bundle: nginx says max-age=31536000, immutable (its names change with its content).
            behavior("/assets/*", CACHING_OPTIMIZED, ASSET_METHODS, "redirect-to-https"),
            # The API: nothing cached, the viewer's request passed on whole (Host too: the ALB's
            # certificate covers the domain), every method.
            behavior("/api/*", CACHING_DISABLED, ALL_METHODS, "https-only", ALL_VIEWER),
        ]),
    }


def web_acl(ctx: Ctx) -> str:
    """waf.py's CLOUDFRONT ACL while edge.waf is on (with edge.cdn), else none: the state keeps its ARN until
    it is deleted, which WAF refuses while a distribution names it (so the distribution drops it first)."""
    if waf.wanted(ctx) is not waf.CLOUDFRONT:
        return ""
    return ctx.resources.get(waf.CLOUDFRONT.arn_key) or ""


def behavior_summary(made: dict[str, Any]) -> str:
    """A behavior as `status` shows it: path, policies by name, viewer protocol, methods, compression."""
    policies = [POLICY_NAMES.get(made.get(key) or "", made.get(key)) for key in ("CachePolicyId", "OriginRequestPolicyId")]
    methods = sorted((made.get("AllowedMethods") or {}).get("Items") or [])
    return (f"{made.get('PathPattern') or '*'}: {'+'.join(p for p in policies if p) or 'no cache policy'}, "
            f"{made.get('ViewerProtocolPolicy')}, {'/'.join(methods)}{', compressed' if made.get('Compress') else ''}"
            f"{'' if made.get('TargetOriginId') == ORIGIN_ID else ' to origin ' + str(made.get('TargetOriginId'))}")


def the_origin(config: dict[str, Any]) -> dict[str, Any]:
    found = (config.get("Origins") or {}).get("Items") or []
    return next((o for o in found if o.get("Id") == ORIGIN_ID), found[0] if found else {})


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """What the stack compares of a DistributionConfig, as `status` names it (not the header's value)."""
    certificate = config.get("ViewerCertificate") or {}
    made = the_origin(config)
    custom = made.get("CustomOriginConfig") or {}
    behaviors = [config.get("DefaultCacheBehavior") or {}, *((config.get("CacheBehaviors") or {}).get("Items") or [])]
    return {
        "aliases": ", ".join(sorted((config.get("Aliases") or {}).get("Items") or [])) or "none",
        "certificate": certificate.get("ACMCertificateArn") or "CloudFront's own",
        "SSL support": certificate.get("SSLSupportMethod"),
        "TLS minimum": certificate.get("MinimumProtocolVersion"),
        "HTTP version": config.get("HttpVersion"),
        "IPv6": config.get("IsIPV6Enabled"),
        "price class": config.get("PriceClass"),
        "behaviors": "; ".join(behavior_summary(b) for b in behaviors),
        "origin": (f"{made.get('DomainName')} {custom.get('OriginProtocolPolicy')} "
                   f"{'/'.join(sorted((custom.get('OriginSslProtocols') or {}).get('Items') or []))}"),
        "web ACL": config.get("WebACLId") or "none",
        "enabled": config.get("Enabled"),
    }


def headers(config: dict[str, Any]) -> dict[str, str]:
    made = (the_origin(config).get("CustomHeaders") or {}).get("Items") or []
    return {h["HeaderName"]: h["HeaderValue"] for h in made}


def differences(ctx: Ctx, config: dict[str, Any], wanted: dict[str, Any], header_value: str | None) -> list[str]:
    """The settings that differ, said plainly; the header's value is never shown."""
    have, want = settings(config), settings(wanted)
    found = [f"{key} {have[key]}, should be {want[key]}" for key in want if have[key] != want[key]]
    if header_value is not None and headers(config) != {origin.HEADER: header_value}:
        found.append(f"origin header {origin.HEADER}: not the value of secret {origin.secret_name(ctx)}")
    return found


# -- making and changing it ----------------------------------------------------------
def start(ctx: Ctx, vpc: str) -> None:
    """With edge.cdn: CloudFront's certificate requested (or the user's checked) ahead of finish (it
    validates while the web image bakes)."""
    if not ctx.config.edge.cdn:
        return
    ensure_certificate(ctx, vpc, cloudfront(ctx))


def ensure_distribution(ctx: Ctx, vpc: str) -> dict[str, Any]:
    """Create the distribution, or put back what differs; neither is waited for (wait_deployed). `vpc`:
    the stack's VPC ID, new with each build of the stack (create's CallerReference). Extra distributions
    of the stack are disabled (deleted in finish, once deployed)."""
    certificate = ctx.resources[CERTIFICATE]
    value = origin.required_value(ctx)
    wanted = wanted_settings(ctx, certificate, value)
    distribution = find(ctx)
    if distribution is None:
        distribution = create(ctx, wanted, vpc)
    else:
        what = differences(ctx, distribution["DistributionConfig"], wanted, value)
        if what:
            distribution = update(ctx, distribution["Id"], wanted)
            # The value is never in a message: "origin header ...: not the value" says enough.
            ctx.record("changed", "distribution", name(ctx), "; ".join(what))
    remember(ctx, distribution)
    for extra in extras(ctx):
        disable(ctx, extra)
    return distribution


def create(ctx: Ctx, wanted: dict[str, Any], vpc: str) -> dict[str, Any]:
    # The same CallerReference within the hour and this build of the stack (its VPC): a create resent
    # after a lost answer or a crash is refused as DistributionAlreadyExists, and the one made is found
    # by its tags instead (it is also looked for before any create).
    # AWS keeps a deleted distribution's CallerReference: cdn turned off then on within the hour is
    # refused too, with nothing tagged found; then once more with a reference salted with the time,
    # never adopting a distribution the tags do not prove the stack's.
    reference = client_token(ctx.stack, ctx.aws.region, vpc, ROLE)

    def made() -> dict[str, Any] | None:
        found = find(ctx, live=True)
        return None if found is None else {"Distribution": found, "ETag": found["ETag"]}

    def send(caller_reference: str) -> dict[str, Any]:
        return ctx.aws.call("cloudfront", "create_distribution_with_tags", resource=f"distribution {name(ctx)}",
                            region=CDN_CERTIFICATE_REGION, found=made, exists=("DistributionAlreadyExists",),
                            DistributionConfigWithTags={"DistributionConfig": {"CallerReference": caller_reference,
                                                                               **wanted},
                                                        "Tags": {"Items": ctx.tags(ROLE)}})

    try:
        answer = send(reference)
    except AwsError as exc:
        if exc.code != "DistributionAlreadyExists":
            raise
        answer = send(client_token(reference, str(time.time_ns())))
    distribution = answer["Distribution"]
    ctx.record("created", "distribution", name(ctx), distribution["Id"])
    return distribution


def with_etag(ctx: Ctx, distribution_id: str, change: Any) -> dict[str, Any] | None:
    """GetDistributionConfig, then `change(config, etag)`; read again when another writer came between.
    None when the distribution is gone."""
    for attempt in range(ETAG_ATTEMPTS):
        current = ctx.aws.call("cloudfront", "get_distribution_config", resource=f"distribution {name(ctx)}",
                               region=CDN_CERTIFICATE_REGION, Id=distribution_id, missing_ok=GONE)
        if current is None:
            return None
        try:
            return change(current["DistributionConfig"], current["ETag"])
        except AwsError as exc:
            if exc.code not in STALE or attempt == ETAG_ATTEMPTS - 1:
                raise
    return None


def update(ctx: Ctx, distribution_id: str, wanted: dict[str, Any]) -> dict[str, Any]:
    def put(config: dict[str, Any], etag: str) -> dict[str, Any]:
        return ctx.aws.call("cloudfront", "update_distribution", resource=f"distribution {name(ctx)}", region=CDN_CERTIFICATE_REGION,
                            Id=distribution_id, IfMatch=etag, DistributionConfig={**config, **wanted})["Distribution"]

    changed = with_etag(ctx, distribution_id, put)
    if changed is None:
        raise ThreetierError(f"{ctx.aws.part}: distribution {name(ctx)} ({distribution_id}) went while it was being "
                             f"changed; run `threetier up` again")
    return changed


def disable(ctx: Ctx, summary: dict[str, Any]) -> None:
    """Enabled=False (CloudFront deletes only a disabled distribution); not waited for."""
    def put(config: dict[str, Any], etag: str) -> None:
        if config.get("Enabled"):
            ctx.aws.call("cloudfront", "update_distribution", resource=f"distribution {name(ctx)}", region=CDN_CERTIFICATE_REGION,
                         Id=summary["Id"], IfMatch=etag, DistributionConfig={**config, "Enabled": False})
            ctx.record("changed", "distribution", name(ctx), "disabled, to be deleted")

    with_etag(ctx, summary["Id"], put)


def wait_deployed(ctx: Ctx, distribution_id: str | None = None) -> None:
    """Until the distribution's last change has reached every edge location (Deployed)."""
    distribution_id = distribution_id or ctx.resources.get(ID)
    if not distribution_id:
        return

    def probe() -> Poll:
        # Live: the inventory's answer may be from before this run's change (Deployed, then).
        found = ctx.aws.look(distribution_look(distribution_id), resource=f"distribution {name(ctx)}", live=True)
        status = found["Distribution"]["Status"] if found else "gone"
        if found and distribution_id == ctx.resources.get(ID):
            ctx.resources[STATUS] = status
        return Poll(status in ("Deployed", "gone"), status)

    ctx.aws.wait(f"distribution {name(ctx)} deployed", probe, delay=DEPLOYED_POLL, timeout=DEPLOYED_TIMEOUT)


def delete(ctx: Ctx, summary: dict[str, Any]) -> None:
    """Disabled and deployed: deleted with the ETag of that version."""
    def remove(config: dict[str, Any], etag: str) -> None:
        if config.get("Enabled"):  # enabled again by hand since it was disabled: AWS would refuse
            raise ThreetierError(f"{ctx.aws.part}: distribution {name(ctx)} ({summary['Id']}) was enabled again "
                                 f"while it was being deleted; run the command again")
        ctx.aws.call("cloudfront", "delete_distribution", resource=f"distribution {name(ctx)}", region=CDN_CERTIFICATE_REGION,
                     Id=summary["Id"], IfMatch=etag, missing_ok=GONE)
        ctx.record("deleted", "distribution", name(ctx), summary["Id"])

    with_etag(ctx, summary["Id"], remove)


# -- Part 7's hooks ------------------------------------------------------------------------
def finish(ctx: Ctx, deployed: Callable[[], None] = lambda: None) -> None:
    """At the end of Part 7's finish, before the round trip: with edge.cdn, the distribution deployed (then
    `deployed`: the records that move to it), extras deleted, then CloudFront's certificates it no longer
    uses; with it off, one left from when it was on goes."""
    if ctx.config.edge.cdn:
        wait_deployed(ctx)
        deployed()
        for extra in extras(ctx):  # disabled in ensure_distribution (the list read then: no new call)
            wait_deployed(ctx, extra["Id"])
            delete(ctx, extra)
        retire_old_cdn_certificates(ctx)
    elif ID in ctx.resources:
        remove(ctx)


def disable_all(ctx: Ctx) -> list[dict[str, Any]]:
    """The stack's distributions disabled (after the records that send viewers there went or moved)."""
    summaries = stack_distributions(ctx, live=True)
    for summary in summaries:
        disable(ctx, summary)
    return summaries


def disable_leftover(ctx: Ctx) -> None:
    """edge.cdn turned off: once the domain's records point at the ALB again, the distribution disabled now,
    deleted at the end of the run (remove)."""
    if not ctx.config.edge.cdn and ID in ctx.resources:
        disable_all(ctx)


def remove(ctx: Ctx) -> None:
    """Disabled (if not yet), waited for, deleted; then what only it used."""
    for summary in disable_all(ctx):
        wait_deployed(ctx, summary["Id"])
        delete(ctx, summary)
    # After this, Part 7 deletes what named or fed it: CloudFront's web ACL and the origin header's secret.
    destroy_cdn_certificates(ctx)
    forget(ctx)
    if not ctx.config.edge.https and not ctx.resources.get(RECORDS):  # edge off: nothing of it remembered
        ctx.resources.pop(RECORDS, None)


# -- status, plan ------------------------------------------------------------------------------
def check(ctx: Ctx, result: Check) -> None:
    if not wanted_here(ctx):
        return
    if not ctx.config.edge.cdn:
        for summary in stack_distributions(ctx):
            result.unwanted(f"distribution {name(ctx)} ({summary['Id']}): present, and edge.cdn is off (`up` "
                            f"disables and deletes it)")
        for leftover in cdn_certificates(ctx):
            result.unwanted(f"CloudFront certificate {leftover.get('DomainName', '')} ({leftover['CertificateArn']}): "
                            f"requested by the stack, and edge.cdn is off (`up` deletes it)")
        return
    distribution = find(ctx)
    for extra in extras(ctx):
        result.unwanted(f"distribution {name(ctx)} ({extra['Id']}): a second one tagged with the stack, "
                        f"{extra.get('DomainName', '')} (`up` disables and deletes it)")
    if not result.found(f"distribution {name(ctx)}", distribution is not None) or distribution is None:
        return
    remember(ctx, distribution)
    certificate = ctx.resources.get(CERTIFICATE) or (distribution["DistributionConfig"].get("ViewerCertificate")
                                                       or {}).get("ACMCertificateArn") or ""
    value = origin.value(ctx)  # never shown
    wanted = wanted_settings(ctx, certificate, value or "")
    for what in differences(ctx, distribution["DistributionConfig"], wanted, value):
        result.drift.append(f"distribution {name(ctx)}: {what}")
    if distribution["Status"] != "Deployed":
        result.awaited(f"distribution {name(ctx)}: {distribution['Status']} (`up` waits until it is deployed)")
