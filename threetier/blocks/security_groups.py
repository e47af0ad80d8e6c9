"""The stack's five security groups (Part 2), chained in the order of the request flow, each opening
only what the next hop needs; and the VPC's default security group, which nothing of the stack uses,
keeping no rule at all.

With `edge.cdn` a sixth, cdn-origin-sg, on the external ALB beside external-alb-sg: HTTPS from
CloudFront's origin-facing addresses (AWS's managed prefix list) and nothing else, while
external-alb-sg then admits no client at all. A group of its own: the prefix list counts as some 55
rules against a group's quota of 60. Closing external-alb-sg to viewers is Part 7's, once CloudFront
serves the domain (`close_to_viewers`): until then the ALB keeps serving them, so turning cdn on for a
stack that is serving costs no window without service; Part 2 neither adds nor revokes that ingress
while cdn is on (a stack built with cdn never has it).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from threetier.aws import NOT_YET_VISIBLE, Look, Poll
from threetier.blocks.finders import DEPENDENCY_TIMEOUT, ec2_tagged, made, name_of, one
from threetier.engine import Check, Ctx
from threetier.errors import ThreetierError

# AWS makes it with the VPC, just after CreateVpc returns: how long to look for it.
DEFAULT_GROUP_TIMEOUT = 60
DEFAULT_GROUP_POLL_DELAY = 2


@dataclass(frozen=True)
class Rule:
    """One ingress rule: TCP ports from a CIDR or from another of the stack's security groups."""
    port: int
    source: str  # a CIDR, a security group role like "web-sg", or a prefix list's ID ("pl-...")
    description: str

    @property
    def from_prefix_list(self) -> bool:
        return self.source.startswith("pl-")

    @property
    def from_group(self) -> bool:
        return not self.source[0].isdigit() and not self.from_prefix_list


# The five chained security groups, in the order of the request flow.
SECURITY_GROUPS = ("external-alb-sg", "web-sg", "internal-alb-sg", "app-sg", "db-sg")
SG_DESCRIPTIONS = {
    "external-alb-sg": "external ALB: HTTP from the allowed clients",
    "web-sg": "web tier: HTTP from the external ALB",
    "internal-alb-sg": "internal ALB: HTTP from the web tier",
    "app-sg": "app tier: the app port from the internal ALB",
    "db-sg": "database: MySQL from the app tier only",
    "cdn-origin-sg": "external ALB: HTTPS from CloudFront only",
}
CDN_ORIGIN_SG = "cdn-origin-sg"  # edge.cdn: the external ALB's second group
# AWS's managed prefix list of the addresses CloudFront reaches origins from (in every region).
CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"


def stack_groups(ctx: Ctx) -> tuple[str, ...]:
    """The groups config wants: the five, and cdn-origin-sg with edge.cdn."""
    return (*SECURITY_GROUPS, CDN_ORIGIN_SG) if ctx.config.edge.cdn else SECURITY_GROUPS


def prefix_list_look() -> Look:
    return Look("ec2", "describe_managed_prefix_lists",
                {"Filters": [{"Name": "prefix-list-name", "Values": [CLOUDFRONT_PREFIX_LIST]}]}, key="PrefixLists")


def cloudfront_prefix_list(ctx: Ctx) -> str:
    """The ID of CloudFront's origin-facing prefix list in the stack's region."""
    found = ctx.aws.look(prefix_list_look(), resource=f"managed prefix list {CLOUDFRONT_PREFIX_LIST}") or []
    if not found:
        raise ThreetierError(f"network: region {ctx.aws.region} has no managed prefix list {CLOUDFRONT_PREFIX_LIST}, "
                             f"which edge.cdn's security group admits; set edge.cdn: false in this region")
    return str(found[0]["PrefixListId"])


def wanted_rules(ctx: Ctx) -> dict[str, list[Rule]]:
    access, port = ctx.config.access, ctx.config.app.port
    # With edge.cdn no client is admitted here but through CloudFront (cdn-origin-sg); what viewer ingress
    # there is stays until CloudFront serves the domain (Part 7: close_to_viewers; ingress_diff leaves it).
    clients = [] if ctx.config.edge.cdn else access.client_cidrs
    rules: dict[str, list[Rule]] = {
        "external-alb-sg": [Rule(80, cidr, "HTTP from allowed clients") for cidr in clients],
        "web-sg": [Rule(80, "external-alb-sg", "HTTP from the external ALB")],
        "internal-alb-sg": [Rule(80, "web-sg", "HTTP from the web tier")],
        "app-sg": [Rule(port, "internal-alb-sg", "app port from the internal ALB")],
        "db-sg": [Rule(3306, "app-sg", "MySQL from the app tier")],
    }
    if ctx.config.edge.https:  # HTTPS on the external ALB (edge.domain): the same clients reach 443
        rules["external-alb-sg"] += [Rule(443, cidr, "HTTPS from allowed clients") for cidr in clients]
    if ctx.config.edge.cdn:
        rules[CDN_ORIGIN_SG] = [Rule(443, cloudfront_prefix_list(ctx), "HTTPS from CloudFront")]
    if access.admin_cidr:  # the guide's "my IP", for testing the tiers directly
        rules["web-sg"].append(Rule(80, access.admin_cidr, "HTTP from the operator (testing)"))
        rules["app-sg"].append(Rule(port, access.admin_cidr, "app port from the operator (testing)"))
    return rules


# -- what the finders read (the inventory) ---------------------------------------
def default_group_look(vpc: str) -> Look:
    """The VPC's default security group: made by AWS with the VPC, untagged, never deleted but with it."""
    return Look("ec2", "describe_security_groups",
                {"Filters": [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]},
                key="SecurityGroups")


def rules_look(group_id: str) -> Look:
    return Look("ec2", "describe_security_group_rules",
                {"Filters": [{"Name": "group-id", "Values": [group_id]}]}, key="SecurityGroupRules")


# A revoke resent after its answer was lost finds the rule gone: done.
RULE_GONE = ("InvalidPermission.NotFound", "InvalidSecurityGroupRuleId.NotFound")
EXTERNAL_ALB_SG = "external-alb-sg"
VIEWER_PORTS = (80, 443)  # what external-alb-sg admits clients on (wanted_rules)


def viewer_ingress(rules: list[dict[str, Any]]) -> dict[str, str]:
    """{rule ID: description} of the rules that let viewers reach the ALB directly: tcp 80 or 443 from
    an address range (what wanted_rules makes of access.client_cidrs, or the like added by hand)."""
    return {r["SecurityGroupRuleId"]: f"tcp {r['FromPort']} from {r.get('CidrIpv4') or r.get('CidrIpv6')}"
            for r in rules if not r["IsEgress"] and r["IpProtocol"] == "tcp" and r.get("FromPort") in VIEWER_PORTS
            and r.get("ToPort") == r.get("FromPort") and (r.get("CidrIpv4") or r.get("CidrIpv6"))}


# -- apply -----------------------------------------------------------------------
def ensure_security_groups(ctx: Ctx, vpc: str) -> dict[str, str]:
    aws = ctx.aws
    groups: dict[str, str] = {}
    for role in stack_groups(ctx):
        group = one(ctx, ec2_tagged(ctx, "describe_security_groups", role,
                               vpc=vpc), "GroupId")
        if group is None:
            group_id = aws.call("ec2", "create_security_group", resource=ctx.name(role), GroupName=ctx.name(role),
                                Description=f"threetier {ctx.stack} {SG_DESCRIPTIONS[role]}", VpcId=vpc,
                                TagSpecifications=ctx.tag_spec("security-group", role),
                                retry_codes=NOT_YET_VISIBLE, exists=("InvalidGroup.Duplicate",),
                                found=made(ctx, "describe_security_groups", role, vpc=vpc))["GroupId"]
            ctx.record("created", "security group", ctx.name(role), group_id)
        else:
            group_id = group["GroupId"]
        groups[role] = group_id
    ctx.resources["security_groups"] = groups
    return groups


def ensure_security_group_rules(ctx: Ctx) -> None:
    groups = ctx.resources["security_groups"]
    for role, rules in wanted_rules(ctx).items():
        ensure_ingress_rules(ctx, role, groups, rules)


def ensure_ingress_rules(ctx: Ctx, role: str, groups: dict[str, str], rules: list[Rule]) -> None:
    """Exactly these ingress rules on the group: add what is missing, revoke what is not wanted."""
    aws, group_id = ctx.aws, groups[role]
    missing, extra = ingress_diff(ctx, role, groups, rules)
    if extra:
        aws.call("ec2", "revoke_security_group_ingress", resource=ctx.name(role), GroupId=group_id,
                 SecurityGroupRuleIds=list(extra), missing_ok=RULE_GONE)
        ctx.record("changed", "security group rules", f"{ctx.name(role)}: revoked {', '.join(extra.values())}")
    for rule in missing:
        permission: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": rule.port, "ToPort": rule.port}
        if rule.from_group:
            permission["UserIdGroupPairs"] = [{"GroupId": groups[rule.source], "Description": rule.description}]
        elif rule.from_prefix_list:
            permission["PrefixListIds"] = [{"PrefixListId": rule.source, "Description": rule.description}]
        else:
            permission["IpRanges"] = [{"CidrIp": rule.source, "Description": rule.description}]
        rule_role = f"{role}-{rule.port}-from-{rule.source.replace('/', '_')}"
        aws.call("ec2", "authorize_security_group_ingress", resource=ctx.name(role), GroupId=group_id,
                 IpPermissions=[permission], TagSpecifications=ctx.tag_spec("security-group-rule", rule_role),
                 retry_codes=NOT_YET_VISIBLE, exists=("InvalidPermission.Duplicate",),
                 found=functools.partial(has_rule, ctx, role, groups, rule))
        ctx.record("changed", "security group rule", f"{ctx.name(role)}: tcp {rule.port} from {rule.source}")


def has_rule(ctx: Ctx, role: str, groups: dict[str, str], rule: Rule) -> dict[str, Any] | None:
    """Something (not None) when the group has this ingress rule (read again from AWS)."""
    ctx.aws.look(rules_look(groups[role]), resource=ctx.name(role), live=True)
    return None if rule in ingress_diff(ctx, role, groups, [rule])[0] else {}


def ingress_diff(ctx: Ctx, role: str, groups: dict[str, str], rules: list[Rule]) -> tuple[list[Rule], dict[str, str]]:
    """(wanted rules that are missing, {rule ID: description} of rules present but not wanted)."""
    present = [r for r in ctx.aws.look(rules_look(groups[role]), resource=ctx.name(role)) if not r["IsEgress"]]
    if role == EXTERNAL_ALB_SG and ctx.config.edge.cdn:  # Part 7's to close, once CloudFront serves (close_to_viewers)
        left = viewer_ingress(present)
        present = [r for r in present if r["SecurityGroupRuleId"] not in left]
    names = {group_id: group_role for group_role, group_id in groups.items()}
    have: dict[tuple[str, int, int, str], str] = {}
    for r in present:
        source = (r.get("CidrIpv4") or (r.get("ReferencedGroupInfo") or {}).get("GroupId")
                  or r.get("CidrIpv6") or r.get("PrefixListId") or "?")
        have[(r["IpProtocol"], r.get("FromPort", -1), r.get("ToPort", -1), names.get(source, source))] = \
            r["SecurityGroupRuleId"]
    wanted = {("tcp", rule.port, rule.port, rule.source): rule for rule in rules}
    missing = [rule for key, rule in wanted.items() if key not in have]
    extra = {rule_id: f"{key[0]} {key[1]}-{key[2]} from {key[3]}" for key, rule_id in have.items() if key not in wanted}
    return missing, extra


def has_rules(group: dict[str, Any]) -> bool:
    return bool(group.get("IpPermissions") or group.get("IpPermissionsEgress"))


def describe_rule(rule: dict[str, Any], group_id: str) -> str:
    """'inbound all traffic from itself', 'outbound tcp 443 to 0.0.0.0/0', ... (a security group rule)."""
    egress = rule["IsEgress"]
    if rule["IpProtocol"] == "-1":
        traffic = "all traffic"
    else:
        low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
        traffic = f"{rule['IpProtocol']} {low}" if low == high else f"{rule['IpProtocol']} {low}-{high}"
    peer = (rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId")
            or (rule.get("ReferencedGroupInfo") or {}).get("GroupId") or "?")
    if peer == group_id:
        peer = "itself"
    return f"{'outbound' if egress else 'inbound'} {traffic} {'to' if egress else 'from'} {peer}"


def find_default_security_group(ctx: Ctx, vpc: str) -> dict[str, Any] | None:
    found = ctx.aws.look(default_group_look(vpc), resource=f"default security group of {ctx.name('vpc')}")
    return found[0] if found else None


def close_default_security_group(ctx: Ctx, vpc: str) -> None:
    """AWS gives every VPC a default security group that lets in all traffic from itself and out
    all traffic; anything launched without a group lands in it. Nothing of the stack does (every
    instance, launch template, load balancer and the database name one of the five groups), so
    it keeps no rule at all: whatever lands there by mistake can reach nothing and be reached by
    nothing. The group itself cannot be deleted; it goes with the VPC."""
    aws, what = ctx.aws, f"default security group of {ctx.name('vpc')}"

    def probe() -> Poll:  # made by CreateVpc, but maybe not visible at once
        found = find_default_security_group(ctx, vpc) is not None
        return Poll(found, "found" if found else "not visible yet")

    if find_default_security_group(ctx, vpc) is None:
        aws.wait(what, probe, delay=DEFAULT_GROUP_POLL_DELAY, timeout=DEFAULT_GROUP_TIMEOUT)
    group = find_default_security_group(ctx, vpc)
    if group is None or not has_rules(group):
        return
    group_id = group["GroupId"]
    rules = sorted(aws.look(rules_look(group_id), resource=what), key=lambda rule: rule["IsEgress"])
    revoked = [describe_rule(rule, group_id) for rule in rules]
    for egress, operation in ((False, "revoke_security_group_ingress"), (True, "revoke_security_group_egress")):
        ids = [rule["SecurityGroupRuleId"] for rule in rules if rule["IsEgress"] is egress]
        if ids:
            aws.call("ec2", operation, resource=what, GroupId=group_id, SecurityGroupRuleIds=ids,
                     retry_codes=NOT_YET_VISIBLE, missing_ok=RULE_GONE)
    if revoked:
        ctx.record("changed", "security group rules", f"{what}: revoked {', '.join(revoked)}", group_id)


# -- check -----------------------------------------------------------------------
def check_security_groups(ctx: Ctx, result: Check, vpc: str | None) -> None:
    """The five groups of the VPC (six with edge.cdn), their rules as wanted, and a default group that
    allows nothing (vpc None: no VPC yet, so none of its groups)."""
    groups: dict[str, str] = {}
    wanted = stack_groups(ctx)
    for role in wanted:
        group = one(ctx, ec2_tagged(ctx, "describe_security_groups", role, vpc=vpc), "GroupId",
                    report=result) if vpc else None
        result.found(f"security group {ctx.name(role)}", group is not None)
        if group is not None:
            groups[role] = group["GroupId"]
    if vpc:
        ctx.resources["security_groups"] = groups
    if vpc and not ctx.config.edge.cdn and ec2_tagged(ctx, "describe_security_groups", CDN_ORIGIN_SG, vpc=vpc):
        result.unwanted(f"security group {ctx.name(CDN_ORIGIN_SG)}: present, and edge.cdn is off (`up` deletes it "
                        f"once the external ALB no longer uses it)")
    if len(groups) == len(wanted):
        for role, rules in wanted_rules(ctx).items():
            missing, extra = ingress_diff(ctx, role, groups, rules)
            for rule in missing:
                result.drift.append(f"security group {ctx.name(role)}: missing tcp {rule.port} from {rule.source}")
            for description in extra.values():
                result.drift.append(f"security group {ctx.name(role)}: unexpected {description}")
    default = find_default_security_group(ctx, vpc) if vpc else None
    if default is not None and has_rules(default):
        group_id = default["GroupId"]
        rules = ctx.aws.look(rules_look(group_id), resource=f"default security group of {ctx.name('vpc')}")
        for rule in sorted(rules, key=lambda rule: rule["IsEgress"]):  # inbound first
            result.drift.append(f"default security group {group_id} of {ctx.name('vpc')}: allows "
                                f"{describe_rule(rule, group_id)}; it should allow nothing")


# -- edge.cdn: Part 7 closes the ALB to viewers -----------------------------------
def open_to_viewers(ctx: Ctx, group_id: str) -> dict[str, str]:
    """With edge.cdn, external-alb-sg's ingress that lets viewers past CloudFront ({rule ID: description})."""
    if not ctx.config.edge.cdn or not group_id:
        return {}
    return viewer_ingress(ctx.aws.look(rules_look(group_id), resource=ctx.name(EXTERNAL_ALB_SG)) or [])


def close_to_viewers(ctx: Ctx, group_id: str) -> None:
    """edge.cdn, at the end of Part 7's finish (the distribution deployed, the domain's records on it):
    external-alb-sg's viewer ingress revoked; from now on only CloudFront reaches the ALB (cdn-origin-sg).
    Not earlier: until CloudFront serves the domain, viewers reach the ALB as they did."""
    opened = open_to_viewers(ctx, group_id)
    if opened:
        what = ctx.name(EXTERNAL_ALB_SG)
        ctx.aws.call("ec2", "revoke_security_group_ingress", resource=what, GroupId=group_id,
                     SecurityGroupRuleIds=list(opened), missing_ok=RULE_GONE)
        ctx.record("changed", "security group rules", f"{what}: revoked {', '.join(opened.values())} "
                   f"(CloudFront serves the domain)")


def check_closed_to_viewers(ctx: Ctx, group_id: str, result: Check) -> None:
    """Part 7's status: with edge.cdn, viewer ingress on external-alb-sg is drift that `up` revokes once the
    distribution is deployed (Part 2 leaves it alone)."""
    for description in open_to_viewers(ctx, group_id).values():
        result.drift.append(f"security group {ctx.name(EXTERNAL_ALB_SG)}: admits {description} past CloudFront "
                            f"(`up` revokes it once the distribution is deployed)")


# -- destroy ---------------------------------------------------------------------
def delete_cdn_origin_group(ctx: Ctx, vpc: str) -> None:
    """edge.cdn turned off: cdn-origin-sg goes, once the external ALB no longer carries it (Part 7
    sets the ALB's groups first: AWS refuses to delete a group in use; its ENIs let go in seconds)."""
    for group in ec2_tagged(ctx, "describe_security_groups", CDN_ORIGIN_SG, vpc=vpc):
        ctx.aws.call("ec2", "delete_security_group", resource=ctx.name(CDN_ORIGIN_SG), GroupId=group["GroupId"],
                     missing_ok=("InvalidGroup.NotFound",), retry_codes=("DependencyViolation",),
                     retry_timeout=DEPENDENCY_TIMEOUT, retry_delay=10)
        ctx.record("deleted", "security group", ctx.name(CDN_ORIGIN_SG), group["GroupId"])


def delete_security_groups(ctx: Ctx) -> None:
    """A group cannot go while another group's rule references it: revoke those rules first."""
    aws = ctx.aws
    groups = ec2_tagged(ctx, "describe_security_groups")
    for group in groups:
        referencing = [p for p in group.get("IpPermissions", []) if p.get("UserIdGroupPairs")]
        if referencing:
            aws.call("ec2", "revoke_security_group_ingress", resource=name_of(group, group["GroupId"]),
                     GroupId=group["GroupId"], IpPermissions=referencing,
                     missing_ok=(*RULE_GONE, "InvalidGroup.NotFound"))
    for group in groups:
        what = name_of(group, group["GroupId"])
        # ENIs of a deleted ALB or instance keep a group in use for a while.
        aws.call("ec2", "delete_security_group", resource=what, GroupId=group["GroupId"],
                 missing_ok=("InvalidGroup.NotFound",), retry_codes=("DependencyViolation",),
                 retry_timeout=DEPENDENCY_TIMEOUT, retry_delay=10)
        ctx.record("deleted", "security group", what, group["GroupId"])
