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
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from threetier.aws import STACK_TAG, AwsError, Look, tag_value
from threetier.blocks import balancing
from threetier.engine import Check, Ctx
from threetier.errors import ThreetierError

ROLE = "web-acl"
SCOPE = "REGIONAL"  # an ALB's ACL lives in the ALB's region (CLOUDFRONT is for CloudFront only)
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
# After DisassociateWebACL, DeleteWebACL answers WAFAssociatedItemException until WAF catches up.
STILL_ASSOCIATED = ("WAFAssociatedItemException",)
# Every change to an ACL carries the LockToken of the version it changes; another writer in
# between (the console, a second `up`) makes it stale: read again and redo, a few times.
LOCK_ATTEMPTS = 5


def name(ctx: Ctx) -> str:
    return ctx.name(ROLE)


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
def acls_look(marker: str | None = None) -> Look:
    # WAFv2 has no paginators in botocore: pages are followed by NextMarker (find_summary).
    return Look("wafv2", "list_web_acls", {"Scope": SCOPE, "Limit": 100, **({"NextMarker": marker} if marker else {})})


def tags_look(arn: str) -> Look:
    return Look("wafv2", "list_tags_for_resource", {"ResourceARN": arn}, missing_ok=GONE)


def acl_look(summary: dict[str, Any]) -> Look:
    return Look("wafv2", "get_web_acl", {"Name": summary["Name"], "Scope": SCOPE, "Id": summary["Id"]}, missing_ok=GONE)


def association_look(balancer_arn: str) -> Look:
    return Look("wafv2", "get_web_acl_for_resource", {"ResourceArn": balancer_arn}, missing_ok=GONE)


def wanted_here(ctx: Ctx) -> bool:
    """Whether to look at all: on, or off with the state saying there was one (a stack that
    never had a WAF makes no WAF call)."""
    return ctx.config.edge.waf or "web_acl_arn" in ctx.resources


def looks(ctx: Ctx) -> Iterator[Look]:
    if not wanted_here(ctx):
        return
    yield acls_look()
    summary = next((s for s in (ctx.aws.peek(acls_look()) or {}).get("WebACLs", []) if s["Name"] == name(ctx)), None)
    if summary is not None:
        yield tags_look(summary["ARN"])
        yield acl_look(summary)
    if ctx.resources.get("load_balancer_arn"):
        yield association_look(ctx.resources["load_balancer_arn"])


# -- the web ACL -------------------------------------------------------------------------
def find_named(ctx: Ctx, *, live: bool = False) -> dict[str, Any] | None:
    """The web ACL named as the stack's ({"Name", "Id", "ARN", ...}), whoever made it."""
    marker: str | None = None
    while True:
        page = ctx.aws.look(acls_look(marker), resource="web ACLs", live=live) or {}
        summary = next((s for s in page.get("WebACLs", []) if s["Name"] == name(ctx)), None)
        if summary is not None:
            return summary
        marker = page.get("NextMarker")
        if not marker or not page.get("WebACLs"):
            return None


def is_ours(ctx: Ctx, summary: dict[str, Any]) -> bool:
    tags = ctx.aws.look(tags_look(summary["ARN"]), resource=f"web ACL {name(ctx)}") or {}
    return tag_value({"Tags": tags.get("TagInfoForResource", {}).get("TagList", [])}, STACK_TAG) == ctx.stack


def find_summary(ctx: Ctx, *, live: bool = False) -> dict[str, Any] | None:
    """The stack's web ACL; one of its name not tagged with the stack is refused, never taken over."""
    summary = find_named(ctx, live=live)
    if summary is not None and not is_ours(ctx, summary):
        raise ThreetierError(f"web ACL {name(ctx)} ({summary['ARN']}) is not tagged with stack {ctx.stack}; "
                             f"threetier does not take over what it did not make: rename or delete it, or set "
                             f"edge.waf: false")
    return summary


def get_acl(ctx: Ctx, summary: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The ACL and its LockToken, fresh from AWS (not the inventory: the token must be current)."""
    found = ctx.aws.call("wafv2", "get_web_acl", resource=f"web ACL {name(ctx)}", Name=summary["Name"], Scope=SCOPE,
                         Id=summary["Id"], missing_ok=GONE)
    return (found["WebACL"], found["LockToken"]) if found else None


def with_lock_token(ctx: Ctx, summary: dict[str, Any], operation: str, **params: Any) -> bool:
    """Call an ACL operation that needs its current LockToken; False when the ACL is gone."""
    for attempt in range(LOCK_ATTEMPTS):
        current = get_acl(ctx, summary)
        if current is None:
            return False
        try:
            ctx.aws.call("wafv2", operation, resource=f"web ACL {name(ctx)}", Name=summary["Name"], Scope=SCOPE,
                         Id=summary["Id"], LockToken=current[1], missing_ok=GONE, retry_codes=STILL_ASSOCIATED,
                         retry_timeout=5 * 60, retry_delay=10, **params)
            return True
        except AwsError as exc:
            if exc.code != "WAFOptimisticLockException" or attempt == LOCK_ATTEMPTS - 1:
                raise
    return False


def acl_settings(ctx: Ctx) -> dict[str, Any]:
    return {"DefaultAction": {"Allow": {}}, "Rules": wanted_rules(ctx), "VisibilityConfig": visibility(name(ctx)),
            "Description": f"threetier {ctx.stack}: managed rule groups and a rate limit on the external load balancer"}


def ensure_acl(ctx: Ctx) -> dict[str, Any]:
    """Find or create the web ACL; rules that differ (a new rate limit, a hand edit) are put back."""
    summary = find_summary(ctx)
    if summary is None:
        summary = ctx.aws.call("wafv2", "create_web_acl", resource=f"web ACL {name(ctx)}", Name=name(ctx), Scope=SCOPE,
                               Tags=ctx.tags(ROLE), **acl_settings(ctx), exists=("WAFDuplicateItemException",),
                               found=lambda: (lambda s: {"Summary": s} if s else None)(find_summary(ctx, live=True)),
                               )["Summary"]
        ctx.record("created", "web ACL", name(ctx), summary["ARN"])
    else:
        current = get_acl(ctx, summary)
        if current is not None and not as_wanted(ctx, current[0]):
            with_lock_token(ctx, summary, "update_web_acl", **acl_settings(ctx))
            ctx.record("changed", "web ACL", name(ctx), describe_rules(ctx))
    ctx.resources["web_acl_arn"] = summary["ARN"]
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
    """Off the ALB (when it is ours there), then deleted. One of its name that is not the stack's
    stays, with a note."""
    summary = find_named(ctx)
    if summary is not None and not is_ours(ctx, summary):
        ctx.out.info(f"  note: web ACL {name(ctx)} ({summary['ARN']}) is not tagged with stack {ctx.stack}: left alone")
        summary = None
    balancer = balancing.find_load_balancer(ctx, tier)
    if summary is not None and balancer is not None \
            and associated_acl(ctx, tier, balancer["LoadBalancerArn"]) == summary["ARN"]:
        ctx.aws.call("wafv2", "disassociate_web_acl", resource=f"web ACL of {ctx.name(tier.alb_role)}",
                     ResourceArn=balancer["LoadBalancerArn"], missing_ok=GONE)
        ctx.record("deleted", "web ACL association", f"{name(ctx)} on {ctx.name(tier.alb_role)}")
    if summary is not None and with_lock_token(ctx, summary, "delete_web_acl"):
        ctx.record("deleted", "web ACL", name(ctx), why)
    ctx.resources.pop("web_acl_arn", None)
    ctx.resources.pop("waf", None)


# -- Part 7's hooks ------------------------------------------------------------------------
def start(ctx: Ctx, tier: balancing.Tier) -> None:
    """The ACL now, so that AWS has made it associable by `finish`; off: removed if it was there."""
    if ctx.config.edge.waf:
        ensure_acl(ctx)
    elif "web_acl_arn" in ctx.resources:
        remove(ctx, tier, "edge.waf is false")


def finish(ctx: Ctx, tier: balancing.Tier) -> None:
    if ctx.config.edge.waf:
        balancing.wait_active(ctx, tier)  # WAF cannot see an ALB still provisioning
        ensure_association(ctx, tier)
        ctx.resources["waf"] = f"attached: {name(ctx)}, {describe_rules(ctx)}"


def check(ctx: Ctx, tier: balancing.Tier, result: Check) -> None:
    if not wanted_here(ctx):
        return
    balancer = ctx.resources.get("load_balancer_arn")
    if not ctx.config.edge.waf:
        summary = find_named(ctx)
        if summary is not None and is_ours(ctx, summary):
            if balancer is not None and associated_acl(ctx, tier, balancer) == summary["ARN"]:
                result.unwanted(f"web ACL {name(ctx)} on {ctx.name(tier.alb_role)}: edge.waf is false (`up` takes "
                                f"it off)")
            result.unwanted(f"web ACL {name(ctx)}: present, and edge.waf is false (`up` removes it)")
        return
    summary = find_summary(ctx)
    if not result.found(f"web ACL {name(ctx)}", summary is not None) or summary is None:
        return  # `up` makes it, and puts it on the load balancer: part of making it
    ctx.resources["web_acl_arn"] = summary["ARN"]
    acl = (ctx.aws.look(acl_look(summary), resource=f"web ACL {name(ctx)}") or {}).get("WebACL", {})
    if not as_wanted(ctx, acl):
        result.drift.append(f"web ACL {name(ctx)}: its rules or default action are not the stack's "
                            f"({describe_rules(ctx)}, the rest allowed)")
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


def destroy(ctx: Ctx, tier: balancing.Tier) -> None:
    """At `down`, whatever the config says (it may have been turned off since): before the ALB."""
    remove(ctx, tier, "the stack is going")
