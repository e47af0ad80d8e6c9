"""HTTPS on the external ALB (Part 7, config.yaml `edge`): a listener on 443 with a current TLS
policy, the certificate and HSTS, forwarding to the web target group; listener 80 answering 301 to
https (`edge.https_redirect`) or forwarding.

With `edge.cdn` 443 forwards only what CloudFront sends: a rule on the origin header and its secret
value (threetier.blocks.origin) forwards to the tier's colors, and the listener's default action
answers anything else 403. The rule is known as the stack's by its tags (given at CreateRule:
balancing.stack_rules), never by its priority or conditions: a rule of the user's on 443 is left as it
is, and the stack's takes the lowest priority free when it is made (1, unless a rule of theirs holds
it: theirs, put there on purpose, then come first). The value is read from Secrets Manager when needed and
compared in memory: never written to the state file, a record or a drift line.
"""
from __future__ import annotations

import itertools
from typing import Any

from threetier.aws import Look
from threetier.blocks import balancing, origin
from threetier.engine import Check, Ctx

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


def refused(ctx: Ctx) -> list[dict[str, Any]]:
    """443's default action with edge.cdn: what reaches the ALB without CloudFront's header."""
    return [{"Type": "fixed-response", "FixedResponseConfig": {
        "StatusCode": "403", "ContentType": "text/plain",
        "MessageBody": f"Forbidden: this load balancer serves CloudFront only; use https://{ctx.config.edge.domain}/\n"}}]


def ensure_https_listener(ctx: Ctx, tier: balancing.Tier, certificate: str) -> None:
    """443 with the TLS policy and the certificate, forwarding to the target group (edge.cdn: its
    origin rule forwards, its default answers 403); then 80 redirecting to it (https_redirect) or
    forwarding."""
    aws, name = ctx.aws, ctx.name(tier.alb_role)
    balancer, target_group = ctx.resources["load_balancer_arn"], ctx.resources["target_group_arn"]
    cdn = ctx.config.edge.cdn
    https = balancing.find_listener(ctx, tier, balancer, 443)
    created = https is None
    if https is None:
        https = aws.call("elbv2", "create_listener", resource=f"listener {name}:443", LoadBalancerArn=balancer,
                         Protocol="HTTPS", Port=443, SslPolicy=TLS_POLICY, Certificates=[{"CertificateArn": certificate}],
                         DefaultActions=refused(ctx) if cdn else balancing.forward_to(target_group),
                         Tags=balancing.elb_tags(ctx, f"{tier.alb_role}-https"),
                         retry_codes=CERTIFICATE_NOT_FOUND, retry_timeout=CERTIFICATE_PROPAGATION_TIMEOUT,
                         retry_delay=10)["Listeners"][0]
        ctx.record("created", "listener", f"{name}:443")
    rules = origin_rules(ctx, tier, https)
    # What 443 forwards by, as it does now (mid-deploy weights and all), else to the live color.
    serving = next((actions for actions in [*(rule["Actions"] for rule in rules), https["DefaultActions"]]
                    if balancing.serves(actions, target_group)), balancing.forward_to(target_group))
    if cdn:  # the rule first: turning cdn on, 443 forwards CloudFront's requests throughout
        ensure_origin_rule(ctx, tier, https, rules, serving)
    default = refused(ctx) if cdn else serving
    if not created and (https_listener_settings(https) != (TLS_POLICY, certificate) or https.get("Protocol") != "HTTPS"
                        or not balancing.same_actions(https["DefaultActions"], default)):
        aws.call("elbv2", "modify_listener", resource=f"listener {name}:443", ListenerArn=https["ListenerArn"],
                 Protocol="HTTPS", SslPolicy=TLS_POLICY, Certificates=[{"CertificateArn": certificate}],
                 DefaultActions=default, retry_codes=CERTIFICATE_NOT_FOUND,
                 retry_timeout=CERTIFICATE_PROPAGATION_TIMEOUT, retry_delay=10)
        ctx.record("changed", "listener", f"{name}:443")
    if not cdn:  # turned off: 443 forwards by its default again, then the rule goes
        delete_origin_rules(ctx, tier, rules)
    ctx.resources["https_listener_arn"] = https["ListenerArn"]
    ensure_hsts(ctx, name, https["ListenerArn"], created)
    http = balancing.find_listener(ctx, tier, balancer, 80)
    wanted = REDIRECT_TO_HTTPS if ctx.config.edge.https_redirect else balancing.forward_to(target_group)
    # Forwarding: to the live color as 443 does, mid-deploy weights and all.
    if http is not None and not balancing.same_actions(http["DefaultActions"], wanted) and \
            (wanted is REDIRECT_TO_HTTPS or not balancing.same_actions(http["DefaultActions"], serving)):
        aws.call("elbv2", "modify_listener", resource=f"listener {name}:80", ListenerArn=http["ListenerArn"],
                 DefaultActions=wanted)
        ctx.record("changed", "listener", f"{name}:80", "redirect to https" if wanted is REDIRECT_TO_HTTPS else "forward")


# -- the origin header's rule (edge.cdn) ---------------------------------------------------------
# Part 7's resources: the secret's name while the stack has one (never its value), so that turning
# edge.cdn off removes the rule and the secret without a read for stacks that never had them.
ORIGIN_SECRET = "origin_secret"


def origin_conditions(value: str) -> list[dict[str, Any]]:
    return [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": origin.HEADER, "Values": [value]}}]


def header_values(rule: dict[str, Any]) -> list[str] | None:
    """The values the rule's condition on the origin header accepts; None when it has none on it."""
    for condition in rule.get("Conditions", []):
        config = condition.get("HttpHeaderConfig") or {}
        if condition.get("Field") == "http-header" and str(config.get("HttpHeaderName", "")).lower() == \
                origin.HEADER.lower():
            return list(config.get("Values", []))
    return None


def origin_rules(ctx: Ctx, tier: balancing.Tier, https: dict[str, Any], *, live: bool = False) -> list[dict[str, Any]]:
    """443's rules that are the stack's (tagged as its origin rule: one), by priority. Read only with
    edge.cdn, a default that does not forward, or a secret the state knows of (cdn being turned off): no
    call for a stack that never had cdn."""
    if not (ctx.config.edge.cdn or balancing.forward_weights(https["DefaultActions"]) is None
            or ORIGIN_SECRET in ctx.resources):
        return []
    return sorted(balancing.stack_rules(ctx, tier, https, live=live), key=lambda rule: int(rule["Priority"]))


def free_priority(ctx: Ctx, tier: balancing.Tier, https: dict[str, Any]) -> int:
    """The lowest priority no rule of 443 holds (1 unless a rule of the user's does)."""
    taken = {rule.get("Priority") for rule in balancing.listener_rules(ctx, tier, https)}
    return next(priority for priority in itertools.count(1) if str(priority) not in taken)


def rule_where(ctx: Ctx, tier: balancing.Tier, priority: Any) -> str:
    return f"{ctx.name(tier.alb_role)}:443 rule {priority}"


def ensure_origin_rule(ctx: Ctx, tier: balancing.Tier, https: dict[str, Any], rules: list[dict[str, Any]],
                       serving: list[dict[str, Any]]) -> None:
    """The stack's rule: the origin header with the secret's value -> `serving` (the tier's forward)."""
    aws = ctx.aws
    value = origin.required_value(ctx)
    if not rules:
        priority = free_priority(ctx, tier, https)
        where = rule_where(ctx, tier, priority)
        # PriorityInUse: our own create, whose answer was lost (found by its tags), or a rule of the user's
        # made meanwhile (nothing found: the error is said).
        aws.call("elbv2", "create_rule", resource=f"listener rule {where}", ListenerArn=https["ListenerArn"],
                 Priority=priority, Conditions=origin_conditions(value), Actions=serving,
                 Tags=balancing.elb_tags(ctx, balancing.origin_rule_role(tier)), exists=("PriorityInUse",),
                 found=lambda: made_rule(ctx, tier, https))
        ctx.record("created", "listener rule", where, f"{origin.HEADER} -> forward")
        return
    rule = rules[0]
    where = rule_where(ctx, tier, rule.get("Priority"))
    if header_values(rule) != [value]:
        aws.call("elbv2", "modify_rule", resource=f"listener rule {where}", RuleArn=rule["RuleArn"],
                 Conditions=origin_conditions(value))
        ctx.record("changed", "listener rule", where, f"{origin.HEADER}: the secret's value")
    if not balancing.serves(rule["Actions"], ctx.resources["target_group_arn"]):
        aws.call("elbv2", "modify_rule", resource=f"listener rule {where}", RuleArn=rule["RuleArn"], Actions=serving)
        ctx.record("changed", "listener rule", where, "forward")


def made_rule(ctx: Ctx, tier: balancing.Tier, https: dict[str, Any]) -> dict[str, Any] | None:
    """What a CreateRule whose answer was lost made (Aws.call's `found`), read again from AWS."""
    rules = origin_rules(ctx, tier, https, live=True)
    return {"Rules": rules[:1]} if rules else None


def delete_origin_rules(ctx: Ctx, tier: balancing.Tier, rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        where = rule_where(ctx, tier, rule.get("Priority"))
        ctx.aws.call("elbv2", "delete_rule", resource=f"listener rule {where}", RuleArn=rule["RuleArn"],
                     missing_ok=(*balancing.ELB_NOT_FOUND, "RuleNotFound"))
        ctx.record("deleted", "listener rule", where)


def check_origin(ctx: Ctx, tier: balancing.Tier, result: Check) -> None:
    """443 as edge.cdn wants it: 403 by default, the origin rule forwarding on the secret's value (compared
    here, never said); with cdn off, no such rule and a default that forwards."""
    balancer = ctx.resources.get("load_balancer_arn")
    listener = balancing.find_listener(ctx, tier, balancer, 443) if balancer and ctx.config.edge.https else None
    name = ctx.name(tier.alb_role)
    if listener is None:  # no 443 (edge.check says so): with cdn, `up` makes its rule with it (priority 1)
        if ctx.config.edge.cdn:
            result.found(f"listener rule {rule_where(ctx, tier, 1)} ({origin.HEADER} -> forward)", False)
        return
    rules = origin_rules(ctx, tier, listener)
    if not ctx.config.edge.cdn:
        if balancing.answers_itself(listener["DefaultActions"]):
            result.drift.append(f"listener {name}:443: answers 403 by default, and edge.cdn is off (`up` forwards)")
        for left in rules:
            result.unwanted(f"listener rule {name}:443 rule {left.get('Priority')}: present, and edge.cdn is off "
                            f"(`up` deletes it)")
        return
    if not balancing.same_actions(listener["DefaultActions"], refused(ctx)):
        result.drift.append(f"listener {name}:443: its default action should answer 403 (only CloudFront's "
                            f"requests, with {origin.HEADER}, are forwarded)")
    rule = rules[0] if rules else None
    # Missing: named by the priority `up` will give it (ensure_origin_rule).
    where = f"listener rule {rule_where(ctx, tier, rule['Priority'] if rule else free_priority(ctx, tier, listener))}"
    if not result.found(f"{where} ({origin.HEADER} -> forward)", rule is not None) or rule is None:
        return
    value = origin.value(ctx)
    if value is not None and header_values(rule) != [value]:
        result.drift.append(f"{where}: {origin.HEADER} value differs from the secret's (`up` sets it)")
    if balancing.forward_weights(rule["Actions"]) is None:
        result.drift.append(f"{where}: does not forward to the web tier (`up` sets it)")


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
