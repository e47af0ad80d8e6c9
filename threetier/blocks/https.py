"""HTTPS on the external ALB (Part 7, config.yaml `edge`): a listener on 443 with a current TLS
policy, the certificate and HSTS, forwarding to the web target group; listener 80 answering 301 to
https (`edge.https_redirect`) or forwarding.
"""
from __future__ import annotations

from typing import Any

from threetier.aws import Look
from threetier.blocks import balancing
from threetier.engine import Ctx

# AWS's current TLS policy for ALBs: TLS 1.3 and 1.2 only, forward-secret ciphers.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
REDIRECT_TO_HTTPS: list[dict[str, Any]] = [{"Type": "redirect", "RedirectConfig": {
    "Protocol": "HTTPS", "Port": "443", "Host": "#{host}", "Path": "/#{path}", "Query": "#{query}",
    "StatusCode": "HTTP_301"}}]
# A certificate just issued is not known to ELB at once: CreateListener and ModifyListener answer
# CertificateNotFound for a while (terraform retries it too, hashicorp/terraform#10180).
CERTIFICATE_NOT_FOUND = ("CertificateNotFound",)
CERTIFICATE_PROPAGATION_TIMEOUT = 5 * 60
# HSTS on 443: a browser that reached the site over HTTPS once keeps to HTTPS for a year, so a later
# http:// link or a hostile network cannot downgrade it. The domain alone: no includeSubDomains and
# no preload, because the zone's other names are the user's, not the stack's.
HSTS = "routing.http.response.strict_transport_security.header_value"
HSTS_HEADER = "max-age=31536000"


def keep_actions(ctx: Ctx) -> tuple[list[dict[str, Any]], ...]:
    """What listener 80 may answer besides forwarding to the live color (weighted or not: a deploy
    shifts 443 and 80 together, threetier.blocks.colors): the redirect, while HTTPS and it are on
    (`finish` sets it once 443 exists; `start` leaves it alone meanwhile)."""
    edge = ctx.config.edge
    return (REDIRECT_TO_HTTPS,) if edge.https and edge.https_redirect else ()


def listener_attributes_look(arn: str) -> Look:
    return Look("elbv2", "describe_listener_attributes", {"ListenerArn": arn}, missing_ok=balancing.ELB_NOT_FOUND)


def https_listener_settings(listener: dict[str, Any]) -> tuple[str | None, str | None]:
    certificates = listener.get("Certificates") or [{}]
    return listener.get("SslPolicy"), certificates[0].get("CertificateArn")


def ensure_https_listener(ctx: Ctx, tier: balancing.Tier, certificate: str) -> None:
    """443 with the TLS policy and the certificate, forwarding to the target group; then 80
    redirecting to it (https_redirect) or forwarding."""
    aws, name = ctx.aws, ctx.name(tier.alb_role)
    balancer, target_group = ctx.resources["load_balancer_arn"], ctx.resources["target_group_arn"]
    forward = balancing.forward_to(target_group)
    https = balancing.find_listener(ctx, tier, balancer, 443)
    created = https is None
    if https is None:
        https = aws.call("elbv2", "create_listener", resource=f"listener {name}:443", LoadBalancerArn=balancer,
                         Protocol="HTTPS", Port=443, SslPolicy=TLS_POLICY, Certificates=[{"CertificateArn": certificate}],
                         DefaultActions=forward, Tags=balancing.elb_tags(ctx, f"{tier.alb_role}-https"),
                         retry_codes=CERTIFICATE_NOT_FOUND, retry_timeout=CERTIFICATE_PROPAGATION_TIMEOUT,
                         retry_delay=10)["Listeners"][0]
        ctx.record("created", "listener", f"{name}:443")
    elif https_listener_settings(https) != (TLS_POLICY, certificate) or https.get("Protocol") != "HTTPS" \
            or not balancing.serves(https["DefaultActions"], target_group):
        aws.call("elbv2", "modify_listener", resource=f"listener {name}:443", ListenerArn=https["ListenerArn"],
                 Protocol="HTTPS", SslPolicy=TLS_POLICY, Certificates=[{"CertificateArn": certificate}],
                 DefaultActions=forward, retry_codes=CERTIFICATE_NOT_FOUND,
                 retry_timeout=CERTIFICATE_PROPAGATION_TIMEOUT, retry_delay=10)
        ctx.record("changed", "listener", f"{name}:443")
    ctx.resources["https_listener_arn"] = https["ListenerArn"]
    ensure_hsts(ctx, name, https["ListenerArn"], created)
    http = balancing.find_listener(ctx, tier, balancer, 80)
    wanted = REDIRECT_TO_HTTPS if ctx.config.edge.https_redirect else forward
    # Forwarding: to the live color as 443 does, mid-deploy weights and all.
    if http is not None and not balancing.same_actions(http["DefaultActions"], wanted) and \
            (wanted is REDIRECT_TO_HTTPS or not balancing.same_actions(http["DefaultActions"], https["DefaultActions"])):
        aws.call("elbv2", "modify_listener", resource=f"listener {name}:80", ListenerArn=http["ListenerArn"],
                 DefaultActions=wanted)
        ctx.record("changed", "listener", f"{name}:80", "redirect to https" if wanted is REDIRECT_TO_HTTPS else "forward")


def listener_attributes(ctx: Ctx, name: str, arn: str) -> dict[str, str] | None:
    """The 443 listener's attributes as AWS has them; None when it vanished since it was found."""
    found = ctx.aws.look(listener_attributes_look(arn), resource=f"listener {name}:443")
    return None if found is None else {a["Key"]: a["Value"] for a in found.get("Attributes", [])}


def ensure_hsts(ctx: Ctx, name: str, arn: str, created: bool) -> None:
    """The HSTS header on 443. CreateListener takes no attributes: a listener made here gets it in
    the next call (recorded as configured, part of making it)."""
    changed = balancing.attribute_changes({} if created else listener_attributes(ctx, name, arn) or {},
                                          {HSTS: HSTS_HEADER})
    if changed:
        ctx.aws.call("elbv2", "modify_listener_attributes", resource=f"listener {name}:443", ListenerArn=arn,
                     Attributes=[{"Key": key, "Value": value} for key, value in changed.items()])
        ctx.record("changed", "listener attributes", f"{name}:443",
                   ", ".join(f"{key}={value}" for key, value in changed.items()))


def remove_https_listener(ctx: Ctx, tier: balancing.Tier) -> bool:
    """Edge turned off: 443 goes (listener 80 forwards again: balancing.start saw to it first).
    Whether there was one."""
    https = balancing.find_listener(ctx, tier, ctx.resources["load_balancer_arn"], 443)
    if https is not None:
        ctx.aws.call("elbv2", "delete_listener", resource=f"listener {ctx.name(tier.alb_role)}:443",
                     ListenerArn=https["ListenerArn"], missing_ok=balancing.ELB_NOT_FOUND)
        ctx.record("deleted", "listener", f"{ctx.name(tier.alb_role)}:443")
    ctx.resources.pop("https_listener_arn", None)
    ctx.resources.pop("certificate_arn", None)
    return https is not None
