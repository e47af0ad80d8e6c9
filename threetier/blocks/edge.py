"""The front door of the external ALB as Part 7 runs it (config.yaml `edge`): which of its pieces are
made, checked and removed, and when.

With `edge.domain` (and its `edge.hosted_zone`): the certificate (threetier.blocks.certificates),
HTTPS on the ALB (threetier.blocks.https) and the alias record of the domain (threetier.blocks.dns).
The certificate is requested in Part 7's `start` and waited for in its `finish`, while the web image
bakes; 443 and the record follow. With edge off, what is left from when it was on goes. The WAF
(`edge.waf`) is threetier.blocks.waf. With `edge.cdn` (threetier.blocks.cdn), CloudFront's certificate is
requested beside the regional one, origin.<domain> is an alias to the ALB, and the domain's A and AAAA
records are aliases to the distribution.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from threetier.aws import Look
from threetier.blocks import balancing, cdn
from threetier.blocks.certificates import (
    certificate_look,
    certificate_tags_look,
    certificates_look,
    cloudfront,
    delete_certificate,
    describe,
    ensure_certificate,
    find_requested_certificate,
    regional,
    retire_old_certificates,
    stack_certificates,
    wait_issued,
)
from threetier.blocks.dns import (
    ALIAS_TYPES,
    RECORDS,
    aimed_at,
    alias_record,
    balancer_name,
    change_records,
    check_domain_free,
    cloudfront_records,
    delete_recorded,
    domain,
    ensure_alias_record,
    ensure_alias_records,
    find_zone,
    forget,
    fqdn,
    is_recorded,
    leave_others,
    need_balancer,
    need_zone,
    origin_record,
    recorded,
    recorded_aliases,
    records,
    records_look,
    same_alias,
    zone_by_id,
    zone_from,
    zone_holding,
    zone_look,
)
from threetier.blocks.https import (
    HSTS,
    HSTS_HEADER,
    REDIRECT_TO_HTTPS,
    TLS_POLICY,
    ensure_https_listener,
    https_listener_settings,
    listener_attributes,
    listener_attributes_look,
    remove_https_listener,
)
from threetier.config import CDN_CERTIFICATE_REGION
from threetier.engine import Check, Ctx


def url(ctx: Ctx) -> str:
    return f"https://{domain(ctx)}" if ctx.config.edge.https else f"http://{ctx.resources['load_balancer_dns']}"


# -- what the finders read (the inventory) ---------------------------------------
def looks(ctx: Ctx) -> Iterator[Look]:
    """Nothing while edge is off (no call added to a stack without it)."""
    if not ctx.config.edge.https:
        return
    aws = ctx.aws
    balancer = ctx.resources.get("load_balancer_arn")
    # The ALB's listeners are balancing.looks' read; 443's attributes (HSTS) are ours.
    listeners = (aws.peek(balancing.listeners_look(balancer)) or {}).get("Listeners", []) if balancer else []
    for listener in listeners:
        if listener["Port"] == 443:
            yield listener_attributes_look(listener["ListenerArn"])
    yield zone_look(ctx)
    zone = zone_from(ctx, aws.peek(zone_look(ctx)))
    if zone:
        yield records_look(zone["Id"])
    yield certificates_look()
    for summary in aws.peek(certificates_look()) or []:
        yield certificate_tags_look(summary["CertificateArn"])
        if summary.get("DomainName") == domain(ctx):
            yield certificate_look(summary["CertificateArn"])
    if ctx.config.edge.certificate_arn:
        yield certificate_look(ctx.config.edge.certificate_arn)


def retire(ctx: Ctx, had_edge: bool) -> None:
    """Edge turned off: the alias records the stack wrote, then (443 gone) the certificates it
    requested and the validation records it wrote for them. Nothing is asked of AWS when the state
    knows of no edge and there was no 443 listener (a stack that never had one)."""
    if RECORDS not in ctx.resources and not had_edge:
        return
    delete_recorded(ctx, recorded_aliases(ctx), "edge is off", "alias record")
    for summary in stack_certificates(ctx):
        delete_certificate(ctx, summary["CertificateArn"])
    if not ctx.resources.get(RECORDS):
        ctx.resources.pop(RECORDS, None)


# -- Part 7's hooks -------------------------------------------------------------------
def start(ctx: Ctx, tier: balancing.Tier) -> None:
    """After balancing.start: request (or find) the certificate and write its validation records;
    with edge off, remove what is left from when it was on (443, records, certificates)."""
    if ctx.config.edge.https:
        cdn.recall(ctx)  # a lost state file: the domain's aliases to the stack's distribution are its own
        check_domain_free(ctx)
        ensure_certificate(ctx, tier.vpc)  # the VPC: new with each build of the stack
        cdn.start(ctx, tier.vpc)  # with edge.cdn: CloudFront's certificate
    else:
        had_certificate = "certificate_arn" in ctx.resources
        had_listener = remove_https_listener(ctx, tier)
        retire(ctx, had_certificate or had_listener)
    ctx.resources["url"] = url(ctx)


def finish(ctx: Ctx, tier: balancing.Tier) -> None:
    """The certificate issued (minutes, while the web image bakes), then 443, 80, the record."""
    if not ctx.config.edge.https:
        return
    certificate = ctx.resources["certificate_arn"]
    wait_issued(ctx, certificate)
    if ctx.config.edge.cdn:
        wait_issued(ctx, ctx.resources[cdn.CERTIFICATE])
    ensure_https_listener(ctx, tier, certificate)
    if ctx.config.edge.cdn:
        ensure_cdn_records(ctx, tier)
    else:
        ensure_alias_record(ctx, tier)
    retire_old_certificates(ctx)


def ensure_cdn_records(ctx: Ctx, tier: balancing.Tier) -> None:
    """origin.<domain> to the ALB (CloudFront's origin), then the distribution (made or changed, not waited
    for), then the domain's A and AAAA to it; the stack's other alias records go. While the domain is
    served by the ALB (edge.cdn turned on for a serving stack), its records move only once the
    distribution is deployed (finish_cdn): viewers are never sent to one still InProgress. A domain with
    no record yet (a stack built from nothing) points at the distribution at once: nothing is served yet,
    and its deploy overlaps the rest of Part 7."""
    balancer = need_balancer(ctx, tier)
    origin = origin_record(ctx, balancer)
    ensure_alias_records(ctx, [origin], balancer["DNSName"], f"{ctx.config.edge.origin_domain} to the external "
                         f"load balancer", prune=False)
    distribution = cdn.ensure_distribution(ctx, tier.vpc)
    if distribution["Status"] != "Deployed" and served_by(ctx, balancer["DNSName"]):
        ctx.out.info(f"  {domain(ctx)} stays on the load balancer until distribution {cdn.name(ctx)} is deployed")
        return
    write_cdn_records(ctx, balancer, distribution["DomainName"])


def write_cdn_records(ctx: Ctx, balancer: dict[str, Any], distribution_domain: str) -> None:
    ensure_alias_records(ctx, [origin_record(ctx, balancer), *cloudfront_records(ctx, distribution_domain)],
                         balancer["DNSName"], f"{domain(ctx)} to CloudFront")


def served_by(ctx: Ctx, dns_name: str) -> bool:
    """The domain's A record is an alias to the ALB of this DNS name (the stack serves from it now)."""
    zone = need_zone(ctx)
    return any(fqdn(r["Name"]) == fqdn(domain(ctx)) and r["Type"] == "A" and aimed_at(r, dns_name)
               for r in records(ctx, zone))


def finish_cdn(ctx: Ctx, tier: balancing.Tier) -> None:
    """At the end of Part 7's finish: cdn.finish (with edge.cdn: the distribution deployed), and then the
    domain's records moved to it where ensure_cdn_records left them on the serving ALB (the state's
    record of the domain's A does not name the distribution: no call otherwise)."""
    cdn.finish(ctx, deployed=lambda: move_to_cdn(ctx, tier))


def move_to_cdn(ctx: Ctx, tier: balancing.Tier) -> None:
    """The distribution deployed: the domain's A and AAAA to it, unless the state says they are already."""
    target = ctx.resources.get(cdn.DOMAIN_NAME)
    if not ctx.config.edge.https or not target or any(
            (e.name, e.type, e.value) == (fqdn(domain(ctx)), "A", balancer_name(target)) for e in recorded_aliases(ctx)):
        return
    balancer, zone = need_balancer(ctx, tier), need_zone(ctx)
    # Read again: origin.<domain> was written since the inventory read them.
    ctx.aws.look(records_look(zone["Id"]), resource=f"records of hosted zone {zone['Name']}", live=True)
    write_cdn_records(ctx, balancer, target)


RECORD_KINDS = {"A": "alias record", "AAAA": "alias record", "CNAME": "validation record"}


def check_off(ctx: Ctx, name: str, https: dict[str, Any] | None, result: Check) -> None:
    """Edge off: what `up` would remove (443, the records the stack wrote, its certificates)."""
    if https is not None:
        result.unwanted(f"listener {name}:443: present, and edge.domain is not set (`up` removes it)")
    for zone_id in sorted({entry.zone_id for entry in recorded(ctx)}):
        present = ctx.aws.look(records_look(zone_id), resource=f"records of hosted zone {zone_id}") or []
        for record_set in present:
            if is_recorded(ctx, zone_id, record_set):
                result.unwanted(f"{RECORD_KINDS.get(record_set['Type'], 'record')} "
                                f"{record_set['Name'].rstrip('.')}: present, and edge.domain is not set "
                                f"(`up` removes it)")
    if RECORDS in ctx.resources or https is not None or "certificate_arn" in ctx.resources:
        for summary in stack_certificates(ctx):
            result.unwanted(f"certificate {summary.get('DomainName', '')} ({summary['CertificateArn']}): "
                            f"requested by the stack, and edge.domain is not set (`up` deletes it)")


def check(ctx: Ctx, tier: balancing.Tier, result: Check) -> None:
    balancer = ctx.resources.get("load_balancer_arn")
    https = balancing.find_listener(ctx, tier, balancer, 443) if balancer else None
    http = balancing.find_listener(ctx, tier, balancer, 80) if balancer else None
    name = ctx.name(tier.alb_role)
    if not ctx.config.edge.https:
        check_off(ctx, name, https, result)
        return
    ctx.resources["url"] = url(ctx)
    edge = ctx.config.edge
    certificate = describe(ctx, edge.certificate_arn) if edge.certificate_arn else find_requested_certificate(ctx)
    result.found(f"certificate for {domain(ctx)}", certificate is not None)
    if certificate is not None:
        ctx.resources["certificate_arn"] = certificate["CertificateArn"]
        ctx.resources["certificate_status"] = certificate["Status"]
        if certificate["Status"] != "ISSUED":
            result.awaited(f"certificate for {domain(ctx)}: {certificate['Status']} (`up` waits for it)")
    if result.found(f"listener {name}:443", https is not None) and https is not None:
        policy, arn = https_listener_settings(https)
        if policy != TLS_POLICY:
            result.drift.append(f"listener {name}:443: TLS policy {policy}, should be {TLS_POLICY}")
        if certificate is not None and arn != certificate["CertificateArn"]:
            result.drift.append(f"listener {name}:443: certificate {arn}, should be {certificate['CertificateArn']}")
        hsts = (listener_attributes(ctx, name, https["ListenerArn"]) or {}).get(HSTS)
        if hsts != HSTS_HEADER:
            result.drift.append(f"listener {name}:443: Strict-Transport-Security {hsts or 'not sent'}, "
                                f"should be {HSTS_HEADER}")
    if http is not None:
        redirects = balancing.same_actions(http["DefaultActions"], REDIRECT_TO_HTTPS)
        ctx.resources["http_redirect"] = redirects
        if redirects != edge.https_redirect:
            result.drift.append(f"listener {name}:80: {'redirects to https' if redirects else 'forwards'}, "
                                f"edge.https_redirect is {str(edge.https_redirect).lower()}")
    zone = find_zone(ctx)
    if not result.found(f"hosted zone {edge.hosted_zone}", zone is not None) or zone is None:
        return
    present = records(ctx, zone)
    check_aliases(ctx, tier, zone, present, result)
    cdn_certificate = check_cdn_certificate(ctx, result)
    if edge.certificate_arn and not cdn_certificate:
        return
    names = {(r["Name"].lower(), r["Type"]) for r in present}
    options = [*((certificate or {}).get("DomainValidationOptions", []) if not edge.certificate_arn else []),
               *(cdn_certificate or {}).get("DomainValidationOptions", [])]
    options = list({(o.get("ResourceRecord") or {}).get("Name", o.get("DomainName")): o for o in options}.values())
    for option in options:
        record = option.get("ResourceRecord")
        if record:
            result.found(f"validation record {record['Name'].rstrip('.')}",
                         (fqdn(record["Name"]), record["Type"]) in names)
    # Not requested yet, or just now: ACM names each name's record then (with edge.cdn, origin.<domain> too;
    # CloudFront's certificate, for the domain, validates with the domain's).
    named = {option.get("DomainName") for option in options if option.get("ResourceRecord")}
    wanted = [] if edge.certificate_arn else list(regional(ctx).names)
    wanted += [domain(ctx)] if edge.cdn and not edge.cdn_certificate_arn and domain(ctx) not in wanted else []
    for name in wanted:
        if name not in named:
            what = f"certificate for {name}" if name == domain(ctx) else f"certificate for {domain(ctx)}, for {name}"
            result.unknown.append(f"the validation record of the {what}: ACM names it once the certificate is "
                                  f"requested; `up` writes it in {edge.hosted_zone} unless it is there")


def check_aliases(ctx: Ctx, tier: balancing.Tier, zone: dict[str, Any], present: list[dict[str, Any]],
                  result: Check) -> None:
    """The domain's alias records: to the ALB, or with edge.cdn to the distribution (A and AAAA), and
    origin.<domain> to the ALB. Without cdn, the stack's origin and AAAA records left are what `up` removes."""
    balancer = balancing.find_load_balancer(ctx, tier)
    wanted: list[dict[str, Any]] = []
    if ctx.config.edge.cdn:
        found = cdn.find(ctx)
        # No distribution yet: the records will point at the one `up` makes (a name AWS picks then).
        wanted += cloudfront_records(ctx, found["DomainName"] if found else "the distribution `up` makes")
        wanted += [origin_record(ctx, balancer)] if balancer else []
    elif balancer is not None:
        wanted.append(alias_record(ctx, balancer))
    names = [(fqdn(domain(ctx)), kind) for kind in ALIAS_TYPES if kind == "A" or ctx.config.edge.cdn]
    if ctx.config.edge.origin_domain:
        names.append((fqdn(ctx.config.edge.origin_domain), "A"))
    for name, kind in names:
        have = next((r for r in present if fqdn(r["Name"]) == name and r["Type"] == kind), None)
        shown = f"alias record {name.rstrip('.')}{' (IPv6)' if kind == 'AAAA' else ''}"
        want = next((r for r in wanted if (r["Name"], r["Type"]) == (name, kind)), None)
        if result.found(shown, have is not None) and have is not None and want is not None \
                and not same_alias(have, want):
            result.drift.append(f"{shown}: points at {(have.get('AliasTarget') or {}).get('DNSName', 'something else')}, "
                                f"not {want['AliasTarget']['DNSName']}")
    for record_set in present:
        if (fqdn(record_set["Name"]), record_set["Type"]) not in names and record_set["Type"] in ALIAS_TYPES \
                and is_recorded(ctx, zone["Id"], record_set):
            result.unwanted(f"alias record {record_set['Name'].rstrip('.')} ({record_set['Type']}): written by the stack "
                            f"for {stale_reason(ctx, record_set)} (`up` removes it)")


def stale_reason(ctx: Ctx, record_set: dict[str, Any]) -> str:
    """Why an alias record the stack wrote is no longer wanted: edge.cdn turned off (the domain's AAAA,
    origin.<domain>), or a name the stack no longer uses (edge.domain changed)."""
    name = fqdn(record_set["Name"])
    if not ctx.config.edge.cdn and (name == fqdn(f"origin.{domain(ctx)}")
                                    or (name, record_set["Type"]) == (fqdn(domain(ctx)), "AAAA")):
        return "edge.cdn, which is off"
    return "a name the stack no longer uses"


def check_cdn_certificate(ctx: Ctx, result: Check) -> dict[str, Any] | None:
    """With edge.cdn: CloudFront's certificate in us-east-1 (the user's, or the one the stack requested)."""
    edge = ctx.config.edge
    if not edge.cdn:
        return None
    wanted = cloudfront(ctx)
    certificate = describe(ctx, edge.cdn_certificate_arn) if edge.cdn_certificate_arn \
        else find_requested_certificate(ctx, wanted)
    what = f"CloudFront certificate for {domain(ctx)} ({CDN_CERTIFICATE_REGION})"
    if not result.found(what, certificate is not None) or certificate is None:
        return None
    ctx.resources[cdn.CERTIFICATE] = certificate["CertificateArn"]
    if certificate["Status"] != "ISSUED":
        result.awaited(f"{what}: {certificate['Status']} (`up` waits for it)")
    return None if edge.cdn_certificate_arn else certificate


# -- down -----------------------------------------------------------------------------
def destroy_records(ctx: Ctx, tier: balancing.Tier) -> None:
    """Before the ALB goes: the alias records the stack wrote, whatever the config says now (never
    the zone). Its state says which; without it (a lost state file), the alias of the stack's own
    names (edge.domain, the domains of the certificates it requested) aimed at its ALB, in the
    config's zone or the one zone of the account that holds the name. Other records aimed at the ALB
    are the user's: named, not deleted."""
    balancer = balancing.find_load_balancer(ctx, tier)
    dns_name = balancer["DNSName"] if balancer else ctx.resources.get("load_balancer_dns")
    names = set() if RECORDS in ctx.resources else stack_names(ctx)
    # A lost state file: the domain's aliases to the stack's own (tagged) distributions are its own too.
    distributions = {s["DomainName"] for s in cdn.stack_distributions(ctx)} if names else set()
    zones: dict[str, dict[str, Any]] = {}
    if ctx.config.edge.hosted_zone and ctx.config.edge.domain:
        zone = find_zone(ctx)
        if zone is not None:
            zones[zone["Id"]] = zone
    for entry in recorded_aliases(ctx):
        zones.setdefault(entry.zone_id, zone_by_id(entry.zone_id))
    for name in sorted(names):
        if not any(name == z["Name"] or name.endswith(f".{z['Name']}") for z in zones.values() if z["Name"] != z["Id"]):
            holding = zone_holding(ctx, name)
            if holding is not None:
                zones.setdefault(holding["Id"], holding)
    for zone in zones.values():
        present = records(ctx, zone)
        aimed = [r for r in present if r["Type"] == "A" and aimed_at(r, dns_name)]
        ours_here = [r for r in present if r["Type"] in ALIAS_TYPES and (
            is_recorded(ctx, zone["Id"], r) or (fqdn(r["Name"]) in names and any(
                aimed_at(r, target) for target in (dns_name, *distributions))))]
        change_records(ctx, zone, "DELETE", ours_here, "the stack is going")
        for record_set in ours_here:
            forget(ctx, zone["Id"], record_set["Name"], record_set["Type"])
            ctx.record("deleted", "alias record", record_set["Name"].rstrip("."))
        leave_others(ctx, zone, [r for r in present if r not in ours_here and r not in aimed],
                     [entry for entry in recorded_aliases(ctx) if entry.zone_id == zone["Id"]], "alias record")
        for record_set in aimed:
            if record_set not in ours_here:
                ctx.out.info(f"  note: alias record {record_set['Name'].rstrip('.')} in hosted zone "
                             f"{zone['Name'].rstrip('.')} points at {ctx.name(tier.alb_role)}, which is going; "
                             f"threetier did not write it and leaves it: delete it in Route 53")


def stack_names(ctx: Ctx) -> set[str]:
    """The names the stack serves as far as AWS can tell without its state: edge.domain, and the
    domains of the certificates it requested (tagged with it)."""
    names = {fqdn(summary["DomainName"]) for summary in stack_certificates(ctx) if summary.get("DomainName")}
    return names | ({fqdn(ctx.config.edge.domain)} if ctx.config.edge.domain else set())
