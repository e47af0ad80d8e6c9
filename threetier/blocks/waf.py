"""A web application firewall on the external ALB (Part 7, config.yaml `edge.waf`).

The stack's regional AWS WAF (WAFv2) web ACL `<stack>-web-acl`, associated with the external ALB:
- a rate-based rule first: a client IP sending more than `edge.waf_rate_limit` requests in 5
  minutes is blocked until it slows down (cheap to evaluate, so a flood stops before the rest);
- AWS's managed rule groups: the common rule set (cross-site scripting, path traversal, oversized
  requests, ...), known bad inputs (Log4j, Java deserialization, ...), SQL database (SQL injection):
  `DELETE /api/transaction` and the transaction form are open to the world, and these are what an
  attacker tries first;
- everything else is allowed. Request metrics and samples are kept (AWS/WAFV2 in CloudWatch).

It needs no domain: it protects the plain-HTTP stack as well. AWS Shield Standard (the guide's
Shield) protects every ALB already, at no charge; nothing to build for it.

The ACL is made in Part 7's `start` (it takes AWS a while to let it be associated: that wait
overlaps the web image bake) and associated in `finish`. Turned off, or at `down`, it is
disassociated and deleted. Found by its deterministic name and proven the stack's by its tag.

With `edge.cdn` the requests reach the ALB through CloudFront only, and the WAF is CloudFront's:
a CLOUDFRONT-scoped web ACL `<stack>-cdn-web-acl` (in us-east-1, whatever the stack's region), the
same rules, which the distribution names (its WebACLId: `ctx.resources["cdn_web_acl_arn"]`, set in
`start`); nothing associates it with the ALB. Its own name, not the regional ACL's: while one
replaces the other (cdn turned on or off) both exist, and the records, `status` and the scan then
name two things, not one twice; each is found by (scope, region, name) and the scan by its tag
either way. The regional ACL goes in `finish`, after the distribution (threetier.blocks.edge) names
CloudFront's. CloudFront's goes once no distribution names it: `settle_cloudfront` (up, after the
distribution is deployed or deleted) and `destroy_cloudfront` (down, after DeleteDistribution).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from threetier.aws import STACK_TAG, AwsError, Look, tag_value
from threetier.blocks import balancing
from threetier.config import CDN_CERTIFICATE_REGION  # WAF keeps CloudFront's (CLOUDFRONT-scoped) web ACLs there
from threetier.engine import Check, Ctx
from threetier.errors import ThreetierError

ROLE = "web-acl"
SCOPE = "REGIONAL"  # an ALB's ACL lives in the ALB's region (CLOUDFRONT is for CloudFront only)
CDN_ROLE = "cdn-web-acl"
MANAGED_RULE_GROUPS = (  # (rule name, AWS managed rule group)
    ("aws-common", "AWSManagedRulesCommonRuleSet"),
    ("aws-known-bad-inputs", "AWSManagedRulesKnownBadInputsRuleSet"),
    ("aws-sql-injection", "AWSManagedRulesSQLiRuleSet"),
)
RATE_RULE = "rate-limit-per-ip"
GONE = ("WAFNonexistentItemException",)
# Right after CreateWebACL, AssociateWebACL answers WAFUnavailableEntityException for a while
# (terraform-provider-aws retries it, issues #17527 and #29080 report minutes); an ALB just active
# may still be "nonexistent" to WAF for a moment (finish waits for it to be active first).
NOT_YET_ASSOCIABLE = ("WAFUnavailableEntityException", "WAFNonexistentItemException")
ASSOCIATE_TIMEOUT = 10 * 60
# After DisassociateWebACL, DeleteWebACL answers WAFAssociatedItemException until WAF catches up
# (and, for CloudFront's, until the distribution that named it is deleted or names another).
STILL_ASSOCIATED = ("WAFAssociatedItemException",)
DELETE_TIMEOUT = 5 * 60
# Every change to an ACL carries the LockToken of the version it changes; another writer in
# between (the console, a second `up`) makes it stale: read again and redo, a few times.
LOCK_ATTEMPTS = 5


@dataclass(frozen=True)
class Placement:
    """Where a web ACL of the stack lives, and where its ARN is kept (Part 7's resources)."""
    scope: str
    region: str | None  # None: the stack's
    role: str
    arn_key: str
    protects: str  # what it is on, for messages

    def name(self, ctx: Ctx) -> str:
        return ctx.name(self.role)


ALB = Placement(SCOPE, None, ROLE, "web_acl_arn", "the external load balancer")
CLOUDFRONT = Placement("CLOUDFRONT", CDN_CERTIFICATE_REGION, CDN_ROLE, "cdn_web_acl_arn", "CloudFront")
PLACEMENTS = (ALB, CLOUDFRONT)


def name(ctx: Ctx) -> str:
    """The regional ACL's name (the one on the ALB)."""
    return ALB.name(ctx)


def wanted(ctx: Ctx) -> Placement | None:
    """The ACL the config asks for: CloudFront's with edge.cdn, else the ALB's; None without edge.waf."""
    if not ctx.config.edge.waf:
        return None
    return CLOUDFRONT if ctx.config.edge.cdn else ALB


def visibility(metric: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": metric}


def wanted_rules(ctx: Ctx) -> list[dict[str, Any]]:
    rate = {"Name": RATE_RULE, "Priority": 0, "Action": {"Block": {}}, "VisibilityConfig": visibility(RATE_RULE),
            "Statement": {"RateBasedStatement": {"Limit": ctx.config.edge.waf_rate_limit, "AggregateKeyType": "IP"}}}
    managed = [{"Name": rule, "Priority": priority, "OverrideAction": {"None": {}}, "VisibilityConfig": visibility(rule),
                "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}}}
               for priority, (rule, group) in enumerate(MANAGED_RULE_GROUPS, start=1)]
    return [rate, *managed]


def rule_summary(rule: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a rule what the stack wants, whatever else AWS fills in when it answers (the
    rate rule's evaluation window, a managed group's version)."""
    statement = rule.get("Statement", {})
    rate, group = statement.get("RateBasedStatement"), statement.get("ManagedRuleGroupStatement")
    return (rule.get("Name"), rule.get("Priority"), sorted(rule.get("Action") or rule.get("OverrideAction") or {}),
            (rate or {}).get("Limit"), (rate or {}).get("AggregateKeyType"),
            (group or {}).get("VendorName"), (group or {}).get("Name"),
            bool((group or {}).get("ExcludedRules") or (group or {}).get("RuleActionOverrides")),
            sorted(statement) if not (rate or group) else None)


def same_rules(have: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
    return sorted(map(rule_summary, have), key=str) == sorted(map(rule_summary, wanted), key=str)


def as_wanted(ctx: Ctx, acl: dict[str, Any]) -> bool:
    """The stack's rules, and everything else allowed."""
    return same_rules(acl.get("Rules", []), wanted_rules(ctx)) and "Allow" in acl.get("DefaultAction", {})


def describe_rules(ctx: Ctx) -> str:
    return f"{len(wanted_rules(ctx))} rules, at most {ctx.config.edge.waf_rate_limit} requests per 5 minutes per IP"


# -- what the finders read --------------------------------------------------------------
def acls_look(marker: str | None = None, where: Placement = ALB) -> Look:
    # WAFv2 has no paginators in botocore: pages are followed by NextMarker (find_summary).
    return Look("wafv2", "list_web_acls", {"Scope": where.scope, "Limit": 100, **({"NextMarker": marker} if marker else {})},
                region=where.region)


def tags_look(arn: str, where: Placement = ALB) -> Look:
    return Look("wafv2", "list_tags_for_resource", {"ResourceARN": arn}, missing_ok=GONE, region=where.region)


def acl_look(summary: dict[str, Any], where: Placement = ALB) -> Look:
    return Look("wafv2", "get_web_acl", {"Name": summary["Name"], "Scope": where.scope, "Id": summary["Id"]},
                missing_ok=GONE, region=where.region)


def association_look(balancer_arn: str) -> Look:
    return Look("wafv2", "get_web_acl_for_resource", {"ResourceArn": balancer_arn}, missing_ok=GONE)


def wanted_here(ctx: Ctx, where: Placement = ALB) -> bool:
    """Whether to look at all: wanted there, or not with the state saying there was one (a stack
    that never had a WAF makes no WAF call)."""
    return wanted(ctx) == where or where.arn_key in ctx.resources


def looks(ctx: Ctx) -> Iterator[Look]:
    for where in PLACEMENTS:
        if not wanted_here(ctx, where):
            continue
        yield acls_look(where=where)
        summary = next((s for s in (ctx.aws.peek(acls_look(where=where)) or {}).get("WebACLs", [])
                        if s["Name"] == where.name(ctx)), None)
        if summary is not None:
            yield tags_look(summary["ARN"], where)
            yield acl_look(summary, where)
        if where is ALB and ctx.resources.get("load_balancer_arn"):
            yield association_look(ctx.resources["load_balancer_arn"])


# -- the web ACL -------------------------------------------------------------------------
def find_named(ctx: Ctx, *, live: bool = False, where: Placement = ALB) -> dict[str, Any] | None:
    """The web ACL named as the stack's ({"Name", "Id", "ARN", ...}), whoever made it."""
    marker: str | None = None
    while True:
        page = ctx.aws.look(acls_look(marker, where), resource="web ACLs", live=live) or {}
        summary = next((s for s in page.get("WebACLs", []) if s["Name"] == where.name(ctx)), None)
        if summary is not None:
            return summary
        marker = page.get("NextMarker")
        if not marker or not page.get("WebACLs"):
            return None


def is_ours(ctx: Ctx, summary: dict[str, Any], where: Placement = ALB) -> bool:
    tags = ctx.aws.look(tags_look(summary["ARN"], where), resource=f"web ACL {where.name(ctx)}") or {}
    return tag_value({"Tags": tags.get("TagInfoForResource", {}).get("TagList", [])}, STACK_TAG) == ctx.stack


def find_summary(ctx: Ctx, *, live: bool = False, where: Placement = ALB) -> dict[str, Any] | None:
    """The stack's web ACL; one of its name not tagged with the stack is refused, never taken over."""
    summary = find_named(ctx, live=live, where=where)
    if summary is not None and not is_ours(ctx, summary, where):
        raise ThreetierError(f"web ACL {where.name(ctx)} ({summary['ARN']}) is not tagged with stack {ctx.stack}; "
                             f"threetier does not take over what it did not make: rename or delete it, or set "
                             f"edge.waf: false")
    return summary


def get_acl(ctx: Ctx, summary: dict[str, Any], where: Placement = ALB) -> tuple[dict[str, Any], str] | None:
    """The ACL and its LockToken, fresh from AWS (not the inventory: the token must be current)."""
    found = ctx.aws.call("wafv2", "get_web_acl", resource=f"web ACL {where.name(ctx)}", Name=summary["Name"],
                         Scope=where.scope, Id=summary["Id"], missing_ok=GONE, region=where.region)
    return (found["WebACL"], found["LockToken"]) if found else None


def with_lock_token(ctx: Ctx, summary: dict[str, Any], operation: str, where: Placement = ALB, **params: Any) -> bool:
    """Call an ACL operation that needs its current LockToken; False when the ACL is gone."""
    for attempt in range(LOCK_ATTEMPTS):
        current = get_acl(ctx, summary, where)
        if current is None:
            return False
        try:
            ctx.aws.call("wafv2", operation, resource=f"web ACL {where.name(ctx)}", Name=summary["Name"],
                         Scope=where.scope, Id=summary["Id"], LockToken=current[1], missing_ok=GONE,
                         retry_codes=STILL_ASSOCIATED, retry_timeout=DELETE_TIMEOUT, retry_delay=10,
                         region=where.region, **params)
            return True
        except AwsError as exc:
            if exc.code != "WAFOptimisticLockException" or attempt == LOCK_ATTEMPTS - 1:
                raise
    return False


def acl_settings(ctx: Ctx, where: Placement = ALB) -> dict[str, Any]:
    return {"DefaultAction": {"Allow": {}}, "Rules": wanted_rules(ctx), "VisibilityConfig": visibility(where.name(ctx)),
            "Description": f"threetier {ctx.stack}: managed rule groups and a rate limit on {where.protects}"}


def ensure_acl(ctx: Ctx, where: Placement = ALB) -> dict[str, Any]:
    """Find or create the web ACL; rules that differ (a new rate limit, a hand edit) are put back."""
    summary = find_summary(ctx, where=where)
    acl = where.name(ctx)
    if summary is None:
        summary = ctx.aws.call("wafv2", "create_web_acl", resource=f"web ACL {acl}", Name=acl, Scope=where.scope,
                               Tags=ctx.tags(where.role), **acl_settings(ctx, where), region=where.region,
                               exists=("WAFDuplicateItemException",),
                               found=lambda: (lambda s: {"Summary": s} if s else None)(
                                   find_summary(ctx, live=True, where=where)),
                               )["Summary"]
        ctx.record("created", "web ACL", acl, summary["ARN"])
    else:
        current = get_acl(ctx, summary, where)
        if current is not None and not as_wanted(ctx, current[0]):
            with_lock_token(ctx, summary, "update_web_acl", where, **acl_settings(ctx, where))
            ctx.record("changed", "web ACL", acl, describe_rules(ctx))
    ctx.resources[where.arn_key] = summary["ARN"]
    return summary


def associated_acl(ctx: Ctx, tier: balancing.Tier, balancer_arn: str) -> str | None:
    """The ARN of the web ACL on the ALB, if any."""
    found = ctx.aws.look(association_look(balancer_arn), resource=f"web ACL of {ctx.name(tier.alb_role)}") or {}
    return (found.get("WebACL") or {}).get("ARN")


def ensure_association(ctx: Ctx, tier: balancing.Tier) -> None:
    """The ACL on the external ALB. Another ACL there (put by hand) is replaced: the config says
    which one protects the stack."""
    balancer, acl = ctx.resources["load_balancer_arn"], ctx.resources["web_acl_arn"]
    current = associated_acl(ctx, tier, balancer)
    if current == acl:
        return
    ctx.aws.call("wafv2", "associate_web_acl", resource=f"web ACL {name(ctx)} on {ctx.name(tier.alb_role)}",
                 WebACLArn=acl, ResourceArn=balancer, retry_codes=NOT_YET_ASSOCIABLE,
                 retry_timeout=ASSOCIATE_TIMEOUT, retry_delay=10)
    # Part of making the ACL when this run made it (the record says so: `configured`); else a change.
    ctx.record("changed", "web ACL association", f"{name(ctx)} on {ctx.name(tier.alb_role)}")


def remove(ctx: Ctx, tier: balancing.Tier, why: str) -> None:
    """The regional ACL off the ALB (when it is ours there), then deleted. One of its name that is
    not the stack's stays, with a note."""
    summary = _ours_or_noted(ctx, ALB)
    balancer = balancing.find_load_balancer(ctx, tier)
    if summary is not None and balancer is not None \
            and associated_acl(ctx, tier, balancer["LoadBalancerArn"]) == summary["ARN"]:
        ctx.aws.call("wafv2", "disassociate_web_acl", resource=f"web ACL of {ctx.name(tier.alb_role)}",
                     ResourceArn=balancer["LoadBalancerArn"], missing_ok=GONE)
        ctx.record("deleted", "web ACL association", f"{name(ctx)} on {ctx.name(tier.alb_role)}")
    _delete(ctx, summary, ALB, why)
    ctx.resources.pop("waf", None)


def _ours_or_noted(ctx: Ctx, where: Placement) -> dict[str, Any] | None:
    summary = find_named(ctx, where=where)
    if summary is not None and not is_ours(ctx, summary, where):
        ctx.out.info(f"  note: web ACL {where.name(ctx)} ({summary['ARN']}) is not tagged with stack {ctx.stack}: "
                     f"left alone")
        return None
    return summary


def _delete(ctx: Ctx, summary: dict[str, Any] | None, where: Placement, why: str) -> None:
    if summary is not None and with_lock_token(ctx, summary, "delete_web_acl", where):
        ctx.record("deleted", "web ACL", where.name(ctx), why)
    ctx.resources.pop(where.arn_key, None)


# -- CloudFront's web ACL (edge.waf with edge.cdn) ----------------------------------------------
def destroy_cloudfront(ctx: Ctx, why: str = "the stack is going") -> None:
    """Delete the stack's CLOUDFRONT web ACL, whatever the config says. Call it once no distribution
    names it (after DeleteDistribution, or an update that dropped its WebACLId, deployed): until
    then WAF refuses (WAFAssociatedItemException), retried for DELETE_TIMEOUT. Gone already: nothing."""
    if where_known(ctx, CLOUDFRONT):
        _delete(ctx, _ours_or_noted(ctx, CLOUDFRONT), CLOUDFRONT, why)


def settle_cloudfront(ctx: Ctx) -> None:
    """In `up`, once the distribution is deployed (or deleted, edge.cdn off): CloudFront's ACL goes
    when the config no longer asks for it (edge.waf or edge.cdn turned off)."""
    if wanted(ctx) is not CLOUDFRONT and CLOUDFRONT.arn_key in ctx.resources:
        destroy_cloudfront(ctx, "edge.waf is false" if not ctx.config.edge.waf else "edge.cdn is false")


def where_known(ctx: Ctx, where: Placement) -> bool:
    """At `down`: worth looking (the state knows one, or the config asks for one: a lost state)."""
    return where.arn_key in ctx.resources or wanted(ctx) == where


# -- Part 7's hooks ------------------------------------------------------------------------
def start(ctx: Ctx, tier: balancing.Tier) -> None:
    """The ACL now, so that AWS has made it associable by `finish` (CloudFront's: named by the
    distribution in `finish`); off: the regional one removed if it was there."""
    where = wanted(ctx)
    if where is not None:
        ensure_acl(ctx, where)
    elif "web_acl_arn" in ctx.resources:
        remove(ctx, tier, "edge.waf is false")


def finish(ctx: Ctx, tier: balancing.Tier) -> None:
    """After edge.finish (the distribution, with edge.cdn): the regional ACL on the ALB, or, with
    edge.cdn, CloudFront's protects the stack and the regional one goes."""
    where = wanted(ctx)
    if where is ALB:
        balancing.wait_active(ctx, tier)  # WAF cannot see an ALB still provisioning
        ensure_association(ctx, tier)
        ctx.resources["waf"] = f"attached: {name(ctx)}, {describe_rules(ctx)}"
    elif where is CLOUDFRONT:
        if "web_acl_arn" in ctx.resources:
            remove(ctx, tier, "edge.cdn is true: CloudFront's web ACL protects the stack")
        ctx.resources["waf"] = f"on CloudFront: {CLOUDFRONT.name(ctx)}, {describe_rules(ctx)}"


def check(ctx: Ctx, tier: balancing.Tier, result: Check) -> None:
    _check_cloudfront(ctx, result)
    if not wanted_here(ctx, ALB):
        return
    balancer = ctx.resources.get("load_balancer_arn")
    if wanted(ctx) is not ALB:
        summary = find_named(ctx)
        why = "edge.waf is false" if not ctx.config.edge.waf else "edge.cdn is true: CloudFront's web ACL replaces it"
        if summary is not None and is_ours(ctx, summary):
            if balancer is not None and associated_acl(ctx, tier, balancer) == summary["ARN"]:
                result.unwanted(f"web ACL {name(ctx)} on {ctx.name(tier.alb_role)}: {why} (`up` takes it off)")
            result.unwanted(f"web ACL {name(ctx)}: present, and {why} (`up` removes it)")
        return
    summary = find_summary(ctx)
    if not result.found(f"web ACL {name(ctx)}", summary is not None) or summary is None:
        return  # `up` makes it, and puts it on the load balancer: part of making it
    ctx.resources["web_acl_arn"] = summary["ARN"]
    _check_rules(ctx, summary, ALB, result)
    if balancer is None:  # putting the ACL there is a change of the ACL's, as `up` counts it
        result.drift.append(f"web ACL {name(ctx)}: not on a load balancer (`up` puts it on the one it makes)")
        return
    current = associated_acl(ctx, tier, balancer)
    if current == summary["ARN"]:
        result.present.append(f"web ACL {name(ctx)} on {ctx.name(tier.alb_role)}")
        ctx.resources["waf"] = f"attached: {name(ctx)}, {describe_rules(ctx)}"
    elif current is not None:
        result.drift.append(f"load balancer {ctx.name(tier.alb_role)}: protected by another web ACL ({current})")
    else:
        result.drift.append(f"web ACL {name(ctx)}: not on load balancer {ctx.name(tier.alb_role)} (`up` puts it there)")


def _check_rules(ctx: Ctx, summary: dict[str, Any], where: Placement, result: Check) -> None:
    acl = (ctx.aws.look(acl_look(summary, where), resource=f"web ACL {where.name(ctx)}") or {}).get("WebACL", {})
    if not as_wanted(ctx, acl):
        result.drift.append(f"web ACL {where.name(ctx)}: its rules or default action are not the stack's "
                            f"({describe_rules(ctx)}, the rest allowed)")


def _check_cloudfront(ctx: Ctx, result: Check) -> None:
    """CloudFront's ACL: there with its rules when wanted (whether the distribution names it is the
    distribution's check: WAF cannot say which distribution holds a CLOUDFRONT ACL); else unwanted."""
    if not wanted_here(ctx, CLOUDFRONT):
        return
    acl = CLOUDFRONT.name(ctx)
    if wanted(ctx) is not CLOUDFRONT:
        summary = find_named(ctx, where=CLOUDFRONT)
        if summary is not None and is_ours(ctx, summary, CLOUDFRONT):
            why = "edge.waf is false" if not ctx.config.edge.waf else "edge.cdn is false"
            result.unwanted(f"web ACL {acl} ({CDN_CERTIFICATE_REGION}): present, and {why} (`up` removes it once no "
                            f"distribution names it)")
        return
    summary = find_summary(ctx, where=CLOUDFRONT)
    if not result.found(f"web ACL {acl} ({CDN_CERTIFICATE_REGION}, CloudFront's)", summary is not None) or summary is None:
        return
    ctx.resources[CLOUDFRONT.arn_key] = summary["ARN"]
    ctx.resources["waf"] = f"on CloudFront: {acl}, {describe_rules(ctx)}"
    _check_rules(ctx, summary, CLOUDFRONT, result)


def destroy(ctx: Ctx, tier: balancing.Tier) -> None:
    """At `down`, whatever the config says (it may have been turned off since): the regional ACL,
    before the ALB. CloudFront's: `destroy_cloudfront`, once the distribution is deleted."""
    remove(ctx, tier, "the stack is going")
