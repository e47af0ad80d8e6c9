"""HTTPS and DNS in front of the external ALB (Part 7, config.yaml `edge`).

With `edge.domain` (and its `edge.hosted_zone`): an ACM certificate for the domain — the user's
(`edge.certificate_arn`, checked: ISSUED, covers the domain) or one requested here with DNS
validation, whose CNAME records are written into the zone; a listener on 443 with a current TLS
policy and HSTS forwarding to the web target group; listener 80 answering 301 to https
(`edge.https_redirect`); an alias A record for the domain to the external ALB. The zone is the
user's: found by ID or name, never created, never deleted. The WAF (`edge.waf`) is steps/waf.py.

The certificate is requested in Part 7's `start` and waited for in its `finish`, before the web
image is needed: DNS validation takes minutes on real AWS, and that wait overlaps the web bake.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
from collections.abc import Iterator
from typing import Any, NamedTuple

from steps import balancing
from threetier import __version__
from threetier.aws import STACK_TAG, Look, Poll, WaitTimeout, client_token, tag_value
from threetier.config import HOSTED_ZONE_ID
from threetier.engine import Check, Ctx
from threetier.errors import ThreetierError

# AWS's current TLS policy for ALBs: TLS 1.3 and 1.2 only, forward-secret ciphers.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# ACM DNS validation: usually 2-10 minutes once the CNAME is in the zone (it must propagate and
# ACM polls it); AWS gives up after 72 hours, we after 45 minutes with the record still there.
CERTIFICATE_ISSUED_TIMEOUT = 45 * 60
CERTIFICATE_POLL = 20
# RequestCertificate returns at once, but the validation record shows in DescribeCertificate only
# a few seconds later.
VALIDATION_RECORD_TIMEOUT = 2 * 60
CERTIFICATE_GONE = ("ResourceNotFoundException",)
FAILED_CERTIFICATE = ("FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED", "INACTIVE")
ZONE_GONE = ("NoSuchHostedZone",)
REDIRECT_TO_HTTPS: list[dict[str, Any]] = [{"Type": "redirect", "RedirectConfig": {
    "Protocol": "HTTPS", "Port": "443", "Host": "#{host}", "Path": "/#{path}", "Query": "#{query}",
    "StatusCode": "HTTP_301"}}]
CERTIFICATE_ROLE = "certificate"
# A certificate just issued is not known to ELB at once: CreateListener and ModifyListener answer
# CertificateNotFound for a while (terraform retries it too, hashicorp/terraform#10180).
CERTIFICATE_NOT_FOUND = ("CertificateNotFound",)
CERTIFICATE_PROPAGATION_TIMEOUT = 5 * 60
# Part 7's resources: the Route 53 records the stack wrote, "<zone ID> <name.> <type>" each: what
# `up` with edge off and `down` remove, whatever the config says then. Absent: no state of it (a
# lost state file, or one written before the key existed).
RECORDS = "edge_records"
# A request ACM answers with a certificate failed or gone is made again with a new token, this
# many times at most (a certificate that stays unknown to DescribeCertificate must not become many).
REQUEST_ATTEMPTS = 3
# The record types a name can answer with that would compete with the stack's alias record.
ADDRESS_TYPES = ("A", "AAAA", "CNAME")
# HSTS on 443: a browser that reached the site over HTTPS once keeps to HTTPS for a year, so a later
# http:// link or a hostile network cannot downgrade it. The domain alone: no includeSubDomains and
# no preload, because the zone's other names are the user's, not the stack's.
HSTS = "routing.http.response.strict_transport_security.header_value"
HSTS_HEADER = "max-age=31536000"


def domain(ctx: Ctx) -> str:
    assert ctx.config.edge.domain is not None
    return ctx.config.edge.domain


def fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


def keep_actions(ctx: Ctx) -> tuple[list[dict[str, Any]], ...]:
    """What listener 80 may answer besides forwarding: the redirect, while HTTPS and it are on
    (`finish` sets it once 443 exists; `start` leaves it alone meanwhile)."""
    edge = ctx.config.edge
    return (REDIRECT_TO_HTTPS,) if edge.https and edge.https_redirect else ()


def url(ctx: Ctx) -> str:
    return f"https://{domain(ctx)}" if ctx.config.edge.https else f"http://{ctx.resources['load_balancer_dns']}"


# -- what the finders read (the inventory) ---------------------------------------
def zone_look(ctx: Ctx) -> Look:
    zone = ctx.config.edge.hosted_zone or ""
    if HOSTED_ZONE_ID.match(zone):
        return Look("route53", "get_hosted_zone", {"Id": zone.split("/")[-1]}, missing_ok=ZONE_GONE)
    return Look("route53", "list_hosted_zones_by_name", {"DNSName": fqdn(zone)})


def records_look(zone_id: str) -> Look:
    return Look("route53", "list_resource_record_sets", {"HostedZoneId": zone_id}, missing_ok=ZONE_GONE,
                key="ResourceRecordSets")


# ListCertificates answers RSA_1024 and RSA_2048 certificates only unless asked for every key type:
# an EC certificate of the user's for the domain must be seen (it may share a validation record).
KEY_TYPES = ("RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1")


def certificates_look() -> Look:
    return Look("acm", "list_certificates", {"Includes": {"keyTypes": list(KEY_TYPES)}}, key="CertificateSummaryList")


def certificate_tags_look(arn: str) -> Look:
    return Look("acm", "list_tags_for_certificate", {"CertificateArn": arn}, missing_ok=CERTIFICATE_GONE)


def certificate_look(arn: str) -> Look:
    return Look("acm", "describe_certificate", {"CertificateArn": arn}, missing_ok=CERTIFICATE_GONE)


def listener_attributes_look(arn: str) -> Look:
    return Look("elbv2", "describe_listener_attributes", {"ListenerArn": arn}, missing_ok=balancing.ELB_NOT_FOUND)


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


# -- the hosted zone ---------------------------------------------------------------
def zone_from(ctx: Ctx, found: Any) -> dict[str, Any] | None:
    """The zone out of GetHostedZone or ListHostedZonesByName: {"Id": "Z...", "Name": "example.com."};
    None when there is none. Two public zones of that name: refused, we do not guess."""
    if not found:
        return None
    if "HostedZone" in found:
        zones = [found["HostedZone"]]
    else:
        name = fqdn(ctx.config.edge.hosted_zone or "")
        zones = [z for z in found.get("HostedZones", [])
                 if z["Name"].lower() == name and not z.get("Config", {}).get("PrivateZone")]
        if len(zones) > 1:
            raise ThreetierError(f"edge.hosted_zone: {len(zones)} public hosted zones are named {name} "
                                 f"({', '.join(z['Id'].split('/')[-1] for z in zones)}); give the ID of the one to use")
    if not zones:
        return None
    zone = zones[0]
    if zone.get("Config", {}).get("PrivateZone"):
        raise ThreetierError(f"edge.hosted_zone: {zone['Id'].split('/')[-1]} is a private zone; the site needs "
                             f"a public one")
    return {"Id": zone["Id"].split("/")[-1], "Name": zone["Name"].lower()}


def find_zone(ctx: Ctx) -> dict[str, Any] | None:
    return zone_from(ctx, ctx.aws.look(zone_look(ctx), resource=f"hosted zone {ctx.config.edge.hosted_zone}"))


def need_zone(ctx: Ctx) -> dict[str, Any]:
    zone = find_zone(ctx)
    if zone is None:
        raise ThreetierError(f"edge.hosted_zone: no public Route 53 hosted zone {ctx.config.edge.hosted_zone} in this "
                             f"account; threetier never creates one: create it (and delegate the domain to it), "
                             f"or fix the key")
    if fqdn(domain(ctx)) != zone["Name"] and not fqdn(domain(ctx)).endswith(f".{zone['Name']}"):
        raise ThreetierError(f"edge.domain: {domain(ctx)} is not inside the hosted zone {zone['Name']} ({zone['Id']})")
    return zone


def records(ctx: Ctx, zone: dict[str, Any]) -> list[dict[str, Any]]:
    return ctx.aws.look(records_look(zone["Id"]), resource=f"records of hosted zone {zone['Name']}") or []


def change_records(ctx: Ctx, zone: dict[str, Any], action: str, record_sets: list[dict[str, Any]], why: str) -> None:
    if not record_sets:
        return
    ctx.aws.call("route53", "change_resource_record_sets", resource=f"records of hosted zone {zone['Name']}",
                 HostedZoneId=zone["Id"], ChangeBatch={"Comment": f"threetier {ctx.stack}: {why}", "Changes": [
                     {"Action": action, "ResourceRecordSet": record_set} for record_set in record_sets]})


def recorded(ctx: Ctx, kind: str | None = None) -> list[tuple[str, str, str]]:
    """The records the stack wrote (zone ID, name., type), of one type or all."""
    found = []
    for entry in ctx.resources.get(RECORDS) or []:
        zone_id, _, rest = entry.partition(" ")
        name, _, record_type = rest.rpartition(" ")
        if zone_id and name and (kind is None or record_type == kind):
            found.append((zone_id, fqdn(name), record_type))
    return found


def remember(ctx: Ctx, zone_id: str, name: str, record_type: str) -> None:
    entries = ctx.resources.setdefault(RECORDS, [])
    entry = f"{zone_id} {fqdn(name)} {record_type}"
    if entry not in entries:
        entries.append(entry)


def forget(ctx: Ctx, zone_id: str, name: str, record_type: str) -> None:
    entries = ctx.resources.get(RECORDS)
    if entries is not None:
        ctx.resources[RECORDS] = [e for e in entries if e != f"{zone_id} {fqdn(name)} {record_type}"]


def is_recorded(ctx: Ctx, zone_id: str, record_set: dict[str, Any]) -> bool:
    return (zone_id, fqdn(record_set["Name"]), record_set["Type"]) in recorded(ctx)


def zone_by_id(zone_id: str) -> dict[str, Any]:
    """A recorded zone, named by its ID in messages (its name is not recorded)."""
    return {"Id": zone_id, "Name": zone_id}


def delete_recorded(ctx: Ctx, entries: list[tuple[str, str, str]], why: str, kind: str) -> None:
    """Delete these recorded records where they still are (zone by zone), and forget them."""
    for zone_id in sorted({zone_id for zone_id, _, _ in entries}):
        wanted = {(name, record_type) for z, name, record_type in entries if z == zone_id}
        zone = zone_by_id(zone_id)
        present = ctx.aws.look(records_look(zone_id), resource=f"records of hosted zone {zone_id}") or []
        stale = [r for r in present if (fqdn(r["Name"]), r["Type"]) in wanted]
        change_records(ctx, zone, "DELETE", stale, why)
        for record_set in stale:
            ctx.record("deleted", kind, record_set["Name"].rstrip("."))
        for name, record_type in wanted:
            forget(ctx, zone_id, name, record_type)


def zone_holding(ctx: Ctx, name: str) -> dict[str, Any] | None:
    """The public zone of this account that holds `name` (the longest suffix of it), found without
    config or state; None when there is none, or when two public zones have that name (no guess)."""
    labels = fqdn(name).rstrip(".").split(".")
    for start in range(1, len(labels) - 1):
        suffix = fqdn(".".join(labels[start:]))
        found = ctx.aws.look(Look("route53", "list_hosted_zones_by_name", {"DNSName": suffix}),
                             resource=f"hosted zone {suffix}") or {}
        zones = [z for z in found.get("HostedZones", [])
                 if z["Name"].lower() == suffix and not z.get("Config", {}).get("PrivateZone")]
        if len(zones) == 1:
            return {"Id": zones[0]["Id"].split("/")[-1], "Name": suffix}
        if zones:
            return None
    return None


# -- the certificate ----------------------------------------------------------------
def stack_certificates(ctx: Ctx) -> list[dict[str, Any]]:
    """The certificates this stack requested (tagged with it), any domain: summaries."""
    found = []
    for summary in ctx.aws.look(certificates_look(), resource="ACM certificates") or []:
        tags = ctx.aws.look(certificate_tags_look(summary["CertificateArn"]),
                            resource=f"certificate {summary['CertificateArn']}")
        if tag_value(tags or {}, STACK_TAG) == ctx.stack:
            found.append(summary)
    return found


def describe(ctx: Ctx, arn: str) -> dict[str, Any] | None:
    found = ctx.aws.look(certificate_look(arn), resource=f"certificate {arn}")
    return found["Certificate"] if found else None


def domain_certificates(ctx: Ctx) -> list[dict[str, Any]]:
    """The stack's certificates for the domain, described: issued, on their way or failed."""
    found = []
    for summary in stack_certificates(ctx):
        certificate = describe(ctx, summary["CertificateArn"]) if summary.get("DomainName") == domain(ctx) else None
        if certificate is not None:
            found.append(certificate)
    return found


def find_requested_certificate(ctx: Ctx) -> dict[str, Any] | None:
    """The stack's certificate for the domain that is issued or on its way (not a failed one)."""
    return next((c for c in domain_certificates(ctx) if c["Status"] not in FAILED_CERTIFICATE), None)


def covers(certificate: dict[str, Any], name: str) -> bool:
    """Whether the certificate is valid for `name`: exactly, or by a wildcard of its parent."""
    parent = name.split(".", 1)[1] if "." in name else ""
    names = {n.lower() for n in [certificate.get("DomainName", ""), *certificate.get("SubjectAlternativeNames", [])]}
    return name in names or f"*.{parent}" in names


def given_certificate(ctx: Ctx) -> dict[str, Any]:
    """The user's certificate_arn, checked: it exists, is ISSUED and covers the domain."""
    arn = ctx.config.edge.certificate_arn
    assert arn is not None
    certificate = describe(ctx, arn)
    if certificate is None:
        raise ThreetierError(f"edge.certificate_arn: no certificate {arn} in this account and region")
    if certificate["Status"] != "ISSUED":
        raise ThreetierError(f"edge.certificate_arn: certificate {arn} is {certificate['Status']}, not ISSUED; "
                             f"a load balancer can use an issued certificate only")
    if not covers(certificate, domain(ctx)):
        raise ThreetierError(f"edge.certificate_arn: certificate {arn} is for "
                             f"{', '.join(certificate.get('SubjectAlternativeNames') or [certificate['DomainName']])}, "
                             f"not {domain(ctx)}")
    return certificate


def ensure_certificate(ctx: Ctx) -> str:
    """Find or request the certificate; for a requested one, write its validation records."""
    if ctx.config.edge.certificate_arn:
        arn = given_certificate(ctx)["CertificateArn"]
        ctx.resources["certificate_arn"] = arn
        return arn
    zone = need_zone(ctx)
    certificate = find_requested_certificate(ctx)
    arn = request_certificate(ctx) if certificate is None else certificate["CertificateArn"]
    ctx.resources["certificate_arn"] = arn
    ensure_validation_records(ctx, zone, arn)
    return arn


def request_certificate(ctx: Ctx) -> str:
    """A new certificate for the domain. Its token is the same within the hour (see client_token): a
    request retried after a crash returns the certificate it made, not a second one. But ACM answers
    a token it saw within the hour with the certificate it made then, failed or deleted since: so the
    token is salted with the stack's failed certificates for the domain (the same on a retry, new once
    one failed), and with one ACM hands back failed or gone."""
    name = domain(ctx)
    spent = sorted(c["CertificateArn"] for c in domain_certificates(ctx) if c["Status"] in FAILED_CERTIFICATE)
    for _ in range(REQUEST_ATTEMPTS):
        token = client_token(ctx.stack, name, *spent)[:32]  # ACM takes 32 word characters
        arn = ctx.aws.call("acm", "request_certificate", resource=f"certificate for {name}", DomainName=name,
                           ValidationMethod="DNS", IdempotencyToken=token,
                           Tags=ctx.tags(CERTIFICATE_ROLE))["CertificateArn"]
        certificate = describe(ctx, arn)
        # (One already spent again: not expected with a new token; its wait says what became of it.)
        if arn in spent or (certificate is not None and certificate["Status"] not in FAILED_CERTIFICATE):
            break
        spent = sorted({*spent, arn})
    ctx.record("created", "certificate", name, arn)
    return arn


def validation_records(ctx: Ctx, arn: str) -> list[dict[str, Any]]:
    """The CNAME records ACM asks for, once it says them (a few seconds after the request)."""
    shown: dict[str, list[dict[str, Any]]] = {}

    def probe() -> Poll:
        certificate = describe(ctx, arn) or {}
        options = certificate.get("DomainValidationOptions", [])
        wanted = [o["ResourceRecord"] for o in options if o.get("ResourceRecord")]
        if certificate.get("Status") == "ISSUED" or (options and len(wanted) == len(options)):
            shown["records"] = wanted
            return Poll(True, certificate.get("Status", "?"))
        return Poll(False, "validation records not shown yet")

    ctx.aws.wait(f"validation records of certificate {arn}", probe, delay=5, timeout=VALIDATION_RECORD_TIMEOUT)
    unique = {(r["Name"].lower(), r["Type"]): r for r in shown["records"]}  # a domain and its wildcard share one
    return list(unique.values())


def ensure_validation_records(ctx: Ctx, zone: dict[str, Any], arn: str) -> None:
    present = {(r["Name"].lower(), r["Type"]): r for r in records(ctx, zone)}
    missing = []
    for wanted in validation_records(ctx, arn):
        have = present.get((fqdn(wanted["Name"]), wanted["Type"]))
        if have is None:
            missing.append({"Name": wanted["Name"], "Type": wanted["Type"], "TTL": 300,
                            "ResourceRecords": [{"Value": wanted["Value"]}]})
        elif [fqdn(v["Value"]) for v in have.get("ResourceRecords", [])] != [fqdn(wanted["Value"])]:
            # The name is ACM's for this domain and account; another value there is not ours to overwrite.
            raise ThreetierError(
                f"edge.domain: hosted zone {zone['Name'].rstrip('.')} ({zone['Id']}) has the {wanted['Type']} record "
                f"{wanted['Name'].rstrip('.')} ({describe_record(have)}), and ACM validates the certificate for "
                f"{domain(ctx)} with {wanted['Value']}; nothing was changed: fix or delete that record in Route 53, "
                f"then run `threetier up` again")
    # Only those written here are the stack's: a CNAME already there may validate another
    # certificate of the account (ACM gives one per domain and account, in every region), and stays
    # when ours goes. Remembered before they are written: a crash right after the write must not
    # leave the state without them; one remembered but never written is no harm.
    ctx.resources.setdefault(RECORDS, [])
    for record in missing:
        remember(ctx, zone["Id"], record["Name"], record["Type"])
    change_records(ctx, zone, "UPSERT", missing, f"ACM validation of {domain(ctx)}")
    for record in missing:
        ctx.record("created", "validation record", record["Name"])


def wait_issued(ctx: Ctx, arn: str) -> None:
    def probe() -> Poll:
        certificate = describe(ctx, arn)
        status = certificate["Status"] if certificate else "missing"
        if status in (*FAILED_CERTIFICATE, "missing"):
            reason = (certificate or {}).get("FailureReason") or status
            return Poll(False, status, failed=f"{reason}; check the validation records in edge.hosted_zone")
        return Poll(status == "ISSUED", status)

    what = f"certificate for {domain(ctx)}"
    try:
        ctx.aws.wait(what, probe, delay=CERTIFICATE_POLL, timeout=CERTIFICATE_ISSUED_TIMEOUT)
    except WaitTimeout as exc:
        # Still pending after that long: ACM never saw the record in DNS, most often because the
        # domain's registrar does not delegate to this zone.
        raise WaitTimeout(exc.part, what, CERTIFICATE_ISSUED_TIMEOUT, (
            f"{exc.last_status}; ACM has not seen the validation record in DNS: check that the domain's registrar "
            f"lists the name servers of hosted zone {ctx.config.edge.hosted_zone} (its NS record)")) from None


# -- the listeners ------------------------------------------------------------------
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
            or not balancing.same_actions(https["DefaultActions"], forward):
        aws.call("elbv2", "modify_listener", resource=f"listener {name}:443", ListenerArn=https["ListenerArn"],
                 Protocol="HTTPS", SslPolicy=TLS_POLICY, Certificates=[{"CertificateArn": certificate}],
                 DefaultActions=forward, retry_codes=CERTIFICATE_NOT_FOUND,
                 retry_timeout=CERTIFICATE_PROPAGATION_TIMEOUT, retry_delay=10)
        ctx.record("changed", "listener", f"{name}:443")
    ctx.resources["https_listener_arn"] = https["ListenerArn"]
    ensure_hsts(ctx, name, https["ListenerArn"], created)
    http = balancing.find_listener(ctx, tier, balancer, 80)
    wanted = REDIRECT_TO_HTTPS if ctx.config.edge.https_redirect else forward
    if http is not None and not balancing.same_actions(http["DefaultActions"], wanted):
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


def retire(ctx: Ctx, had_edge: bool) -> None:
    """Edge turned off: the alias records the stack wrote, then (443 gone) the certificates it
    requested and the validation records it wrote for them. Nothing is asked of AWS when the state
    knows of no edge and there was no 443 listener (a stack that never had one)."""
    if RECORDS not in ctx.resources and not had_edge:
        return
    delete_recorded(ctx, recorded(ctx, "A"), "edge is off", "alias record")
    for summary in stack_certificates(ctx):
        delete_certificate(ctx, summary["CertificateArn"])
    if not ctx.resources.get(RECORDS):
        ctx.resources.pop(RECORDS, None)


# -- the alias record ---------------------------------------------------------------
def balancer_name(dns_name: str) -> str:
    """An ALB's DNS name as an alias record holds it: no dualstack. prefix, lower case, a final dot."""
    return fqdn(dns_name).removeprefix("dualstack.")


def aimed_at(record_set: dict[str, Any], dns_name: str | None) -> bool:
    """An alias A or AAAA record to the load balancer of exactly this DNS name (the same stack in
    another region, sharing the zone, has an ALB of the same name and another DNS name)."""
    target = (record_set.get("AliasTarget") or {}).get("DNSName")
    return bool(dns_name and target) and record_set.get("Type") in ("A", "AAAA") \
        and balancer_name(target or "") == balancer_name(dns_name or "")


def ours(ctx: Ctx, zone_id: str, record_set: dict[str, Any], dns_name: str | None) -> bool:
    """Aimed at the stack's ALB, or written by the stack (its state says so)."""
    return aimed_at(record_set, dns_name) or is_recorded(ctx, zone_id, record_set)


def describe_record(record_set: dict[str, Any]) -> str:
    alias = record_set.get("AliasTarget")
    if alias:
        return f"an alias to {str(alias.get('DNSName', '?')).rstrip('.')}"
    values = [v["Value"] for v in record_set.get("ResourceRecords", [])]
    return ", ".join(values) or "no value"


def refuse_foreign_records(ctx: Ctx, zone: dict[str, Any], present: list[dict[str, Any]],
                           dns_name: str | None) -> None:
    """A record answering for the domain that is not the stack's is someone's site: never overwritten."""
    name = fqdn(domain(ctx))
    for record_set in present:
        if fqdn(record_set["Name"]) == name and record_set["Type"] in ADDRESS_TYPES \
                and not ours(ctx, zone["Id"], record_set, dns_name):
            raise ThreetierError(
                f"edge.domain: hosted zone {zone['Name'].rstrip('.')} ({zone['Id']}) already has the "
                f"{record_set['Type']} record {domain(ctx)} ({describe_record(record_set)}) that threetier did not "
                f"write; nothing was changed: delete that record in Route 53 if the stack should take the name "
                f"over, or choose another edge.domain, then run `threetier up` again")


def check_domain_free(ctx: Ctx) -> None:
    """Before anything is requested or written: the domain is not someone else's record."""
    zone = need_zone(ctx)
    refuse_foreign_records(ctx, zone, records(ctx, zone), ctx.resources.get("load_balancer_dns"))


def alias_record(ctx: Ctx, balancer: dict[str, Any]) -> dict[str, Any]:
    return {"Name": fqdn(domain(ctx)), "Type": "A", "AliasTarget": {
        "HostedZoneId": balancer["CanonicalHostedZoneId"], "DNSName": balancer["DNSName"],
        # Route 53 takes the ALB's health into account (with one record there is no other answer to
        # fall back on; it matters if the user adds failover or latency records beside it).
        "EvaluateTargetHealth": True}}


def ensure_alias_record(ctx: Ctx, tier: balancing.Tier) -> None:
    """The domain's alias A record to the ALB; one of ours for another name (the domain changed) goes."""
    zone, balancer = need_zone(ctx), balancing.find_load_balancer(ctx, tier)
    if balancer is None:  # made in start: not expected
        raise ThreetierError(f"load balancer {ctx.name(tier.alb_role)} is gone; run `threetier up` again")
    wanted = alias_record(ctx, balancer)
    present = records(ctx, zone)
    refuse_foreign_records(ctx, zone, present, balancer["DNSName"])
    have = next((r for r in present if fqdn(r["Name"]) == wanted["Name"] and r["Type"] == "A"), None)
    remember(ctx, zone["Id"], wanted["Name"], "A")  # before the write, as the validation records
    if have is None or not same_alias(have, wanted):
        change_records(ctx, zone, "UPSERT", [wanted], f"{domain(ctx)} to the external load balancer")
        ctx.record("created" if have is None else "changed", "alias record", domain(ctx))
    # The stack's record for a name it no longer uses (the domain changed) goes; other records aimed
    # at the ALB are the user's (another name for the same site) and stay.
    delete_recorded(ctx, [entry for entry in recorded(ctx, "A") if entry != (zone["Id"], wanted["Name"], "A")],
                    "a name the stack no longer uses", "alias record")


def same_alias(have: dict[str, Any], wanted: dict[str, Any]) -> bool:
    target, aim = have.get("AliasTarget") or {}, wanted["AliasTarget"]
    return target.get("HostedZoneId") == aim["HostedZoneId"] and fqdn(target.get("DNSName", "")) == fqdn(aim["DNSName"])


def retire_old_certificates(ctx: Ctx) -> None:
    """The stack's certificates for a name it no longer uses (the domain changed, or the user's
    own certificate replaced ours): their validation records and themselves, now that the 443
    listener uses another one."""
    current = ctx.resources.get("certificate_arn")
    for summary in stack_certificates(ctx):
        if summary["CertificateArn"] != current:
            delete_certificate(ctx, summary["CertificateArn"])


# -- Part 7's hooks -------------------------------------------------------------------
def start(ctx: Ctx, tier: balancing.Tier) -> None:
    """After balancing.start: request (or find) the certificate and write its validation records;
    with edge off, remove what is left from when it was on (443, records, certificates)."""
    if ctx.config.edge.https:
        check_domain_free(ctx)
        ensure_certificate(ctx)
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
    ensure_https_listener(ctx, tier, certificate)
    ensure_alias_record(ctx, tier)
    retire_old_certificates(ctx)


RECORD_KINDS = {"A": "alias record", "CNAME": "validation record"}


def check_off(ctx: Ctx, name: str, https: dict[str, Any] | None, result: Check) -> None:
    """Edge off: what `up` would remove (443, the records the stack wrote, its certificates)."""
    if https is not None:
        result.drift.append(f"listener {name}:443: present, and edge.domain is not set (`up` removes it)")
    for zone_id in sorted({zone_id for zone_id, _, _ in recorded(ctx)}):
        wanted = {(n, t) for z, n, t in recorded(ctx) if z == zone_id}
        present = ctx.aws.look(records_look(zone_id), resource=f"records of hosted zone {zone_id}") or []
        for record_set in present:
            if (fqdn(record_set["Name"]), record_set["Type"]) in wanted:
                result.drift.append(f"{RECORD_KINDS.get(record_set['Type'], 'record')} "
                                    f"{record_set['Name'].rstrip('.')}: present, and edge.domain is not set "
                                    f"(`up` removes it)")
    if RECORDS in ctx.resources or https is not None or "certificate_arn" in ctx.resources:
        for summary in stack_certificates(ctx):
            result.drift.append(f"certificate {summary.get('DomainName', '')} ({summary['CertificateArn']}): "
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
            result.drift.append(f"certificate for {domain(ctx)}: {certificate['Status']} (`up` waits for it)")
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
    alias = next((r for r in present if r["Name"].lower() == fqdn(domain(ctx)) and r["Type"] == "A"), None)
    if result.found(f"alias record {domain(ctx)}", alias is not None) and alias is not None:
        balancer_found = balancing.find_load_balancer(ctx, tier)
        if balancer_found is not None and not same_alias(alias, alias_record(ctx, balancer_found)):
            result.drift.append(f"alias record {domain(ctx)}: points at "
                                f"{(alias.get('AliasTarget') or {}).get('DNSName', 'something else')}, "
                                f"not {balancer_found['DNSName']}")
    if certificate is not None and not edge.certificate_arn:
        names = {(r["Name"].lower(), r["Type"]) for r in present}
        for option in certificate.get("DomainValidationOptions", []):
            record = option.get("ResourceRecord")
            if record:
                result.found(f"validation record {record['Name'].rstrip('.')}",
                             (fqdn(record["Name"]), record["Type"]) in names)


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
    zones: dict[str, dict[str, Any]] = {}
    if ctx.config.edge.hosted_zone and ctx.config.edge.domain:
        zone = find_zone(ctx)
        if zone is not None:
            zones[zone["Id"]] = zone
    for zone_id, _, _ in recorded(ctx, "A"):
        zones.setdefault(zone_id, zone_by_id(zone_id))
    for name in sorted(names):
        if not any(name == z["Name"] or name.endswith(f".{z['Name']}") for z in zones.values() if z["Name"] != z["Id"]):
            holding = zone_holding(ctx, name)
            if holding is not None:
                zones.setdefault(holding["Id"], holding)
    for zone in zones.values():
        aimed = [r for r in records(ctx, zone) if r["Type"] == "A" and aimed_at(r, dns_name)]
        ours_here = [r for r in records(ctx, zone) if r["Type"] == "A" and (
            is_recorded(ctx, zone["Id"], r) or (fqdn(r["Name"]) in names and aimed_at(r, dns_name)))]
        change_records(ctx, zone, "DELETE", ours_here, "the stack is going")
        for record_set in ours_here:
            forget(ctx, zone["Id"], record_set["Name"], "A")
            ctx.record("deleted", "alias record", record_set["Name"].rstrip("."))
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


def destroy_certificates(ctx: Ctx) -> None:
    """After the listeners are gone: the certificates the stack requested (tagged with it, never
    the user's certificate_arn) and the validation records it wrote for them."""
    for summary in stack_certificates(ctx):
        if summary["CertificateArn"] != ctx.config.edge.certificate_arn:
            delete_certificate(ctx, summary["CertificateArn"])


def validation_names(certificate: dict[str, Any]) -> set[tuple[str, str]]:
    return {(fqdn(o["ResourceRecord"]["Name"]), o["ResourceRecord"]["Type"])
            for o in certificate.get("DomainValidationOptions", []) if o.get("ResourceRecord")}


def others_validation_names(ctx: Ctx, arn: str, certificate: dict[str, Any]) -> set[tuple[str, str]]:
    """The validation records the region's other certificates for the domains of `certificate`
    validate with: ACM gives one record per domain and account, so one of these is never the stack's
    to delete (that certificate would stop renewing). A certificate may name the domain as its
    DomainName or among its other names (listed in part: one with more is described)."""
    domains = {o.get("DomainName") for o in certificate.get("DomainValidationOptions", [])}

    def may_cover(other: dict[str, Any]) -> bool:
        names = {other.get("DomainName"), *other.get("SubjectAlternativeNameSummaries", [])}
        return bool(names & domains) or bool(other.get("HasAdditionalSubjectAlternativeNames"))

    return {name for other in (ctx.aws.look(certificates_look(), resource="ACM certificates") or [])
            if other["CertificateArn"] != arn and may_cover(other)
            for name in validation_names(describe(ctx, other["CertificateArn"]) or {})}


def delete_certificate(ctx: Ctx, arn: str) -> None:
    """The certificate, after the validation records the stack wrote for it (its state says which).
    Without that state (a lost state file) no record is deleted: the same record validates the
    account's certificates for the domain in every region, and which of them the stack wrote cannot
    be told; they are named, to be deleted by hand if nothing else uses them."""
    certificate = describe(ctx, arn) or {}
    wanted = validation_names(certificate)
    others = others_validation_names(ctx, arn, certificate)
    if RECORDS in ctx.resources:
        delete_recorded(ctx, [e for e in recorded(ctx, "CNAME") if (e[1], e[2]) in wanted - others],
                        f"validation of certificate {arn}, being deleted", "validation record")
    elif wanted:
        shown = ", ".join(name.rstrip(".") for name, _ in sorted(wanted))
        ctx.out.info(f"  note: the state file does not say whether the stack wrote the validation record(s) {shown} "
                     f"of certificate {arn}; they are left in Route 53 (they cost nothing): delete them there if "
                     f"no other certificate of the account, in any region, is for {certificate.get('DomainName')}")
    # A certificate stays in use for a moment after its listener is deleted.
    ctx.aws.call("acm", "delete_certificate", resource=f"certificate {arn}", CertificateArn=arn,
                 missing_ok=CERTIFICATE_GONE, retry_codes=("ResourceInUseException",), retry_timeout=5 * 60,
                 retry_delay=15)
    ctx.record("deleted", "certificate", certificate.get("DomainName", arn), arn)


# -- the round trip -------------------------------------------------------------------
class Fetched(NamedTuple):
    status: int
    body: bytes
    through_balancer: bool  # the domain did not resolve here: sent to the ALB's own DNS name


class DomainAtAddress(http.client.HTTPSConnection):
    """HTTPS for `host` over a TCP connection to `address`: the certificate is verified for `host`,
    which the TLS handshake (SNI) and the Host header name, wherever the connection goes."""

    def __init__(self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self.address, self.tls = address, context

    def connect(self) -> None:
        connection = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(connection, server_hostname=self.host)


def fetch_https(ctx: Ctx, url: str, timeout: float, context: ssl.SSLContext | None = None) -> Fetched:
    """GET an https URL of the domain. A new record takes minutes to resolve everywhere (and a
    resolver that asked before it existed caches the "no such name" for the zone's negative TTL):
    while the domain does not resolve here, the request goes to the external ALB's own DNS name,
    still for the domain, so the certificate and the listener are tested all the same."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    path = f"{parts.path or '/'}{f'?{parts.query}' if parts.query else ''}"
    tls = context or ssl.create_default_context()
    try:
        return send_get(DomainAtAddress(host, host, port, timeout, tls), path, through_balancer=False)
    except socket.gaierror:
        balancer = ctx.resources.get("load_balancer_dns")
        if not balancer:
            raise
    return send_get(DomainAtAddress(host, balancer, port, timeout, tls), path, through_balancer=True)


def send_get(connection: http.client.HTTPSConnection, path: str, through_balancer: bool) -> Fetched:
    try:
        # A User-Agent: AWS's common rule set (edge.waf) blocks requests without one.
        connection.request("GET", path, headers={"User-Agent": f"threetier/{__version__} (round trip)", "Accept": "*/*"})
        response = connection.getresponse()
        return Fetched(response.status, response.read(65536), through_balancer)
    finally:
        connection.close()
