"""The ACM certificate of the front door (Part 7, config.yaml `edge`): the user's
(`edge.certificate_arn`, checked: ISSUED, covers the domain) or one requested here with DNS
validation, whose CNAME records are written into the user's zone (threetier.blocks.dns).

Requested in Part 7's `start` and waited for in its `finish`, before the web image is needed: DNS
validation takes minutes on real AWS, and that wait overlaps the web bake. The stack's certificates
are those tagged with it; the user's is never deleted.

With `edge.cdn`, CloudFront's certificate too (`cloudfront`): requested in us-east-1 for the domain,
validated by the same record in the same zone (ACM asks for one record per name and account, whatever
the region), or the user's `edge.cdn_certificate_arn`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threetier.aws import STACK_TAG, Look, Poll, WaitTimeout, client_token, tag_value
from threetier.blocks.dns import (
    RECORDS,
    delete_recorded,
    describe_record,
    domain,
    forget,
    fqdn,
    need_zone,
    recorded,
    records,
    write_records,
)
from threetier.config import CDN_CERTIFICATE_REGION
from threetier.engine import Ctx
from threetier.errors import ThreetierError

# ACM DNS validation: usually 2-10 minutes once the CNAME is in the zone (it must propagate and
# ACM polls it); AWS gives up after 72 hours, we after 45 minutes with the record still there.
CERTIFICATE_ISSUED_TIMEOUT = 45 * 60
CERTIFICATE_POLL = 20
# RequestCertificate returns at once, but the validation record shows in DescribeCertificate only
# a few seconds later, and now and then minutes later.
VALIDATION_RECORD_TIMEOUT = 5 * 60
VALIDATION_RECORD_POLL = 5
# A certificate just requested may be unknown to DescribeCertificate (and ListCertificates) for a
# moment: looked for this long before it counts as gone (one ACM handed back, deleted since).
REQUESTED_VISIBLE_TIMEOUT = 60
REQUESTED_VISIBLE_POLL = 5
# A load balancer lets go of a certificate lazily: DeleteCertificate answers ResourceInUseException
# for a while after its listener was deleted or moved to another certificate (seconds, mostly; more
# than 10 minutes seen: hashicorp/terraform-provider-aws PR 3868's review).
CERTIFICATE_IN_USE = ("ResourceInUseException",)
CERTIFICATE_RELEASE_TIMEOUT = 20 * 60
CERTIFICATE_RELEASE_POLL = 15
CERTIFICATE_GONE = ("ResourceNotFoundException",)
FAILED_CERTIFICATE = ("FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED", "INACTIVE")
CERTIFICATE_ROLE = "certificate"
# CloudFront's certificate (edge.cdn), in us-east-1: its Name tag tells it apart from the regional one
# when the stack is in us-east-1 too (both are then in one list).
CDN_CERTIFICATE_ROLE = "cdn-certificate"
# A request ACM answers with a certificate failed or gone is made again with a new token, this
# many times at most (a certificate that stays unknown to DescribeCertificate must not become many).
REQUEST_ATTEMPTS = 3
# ListCertificates answers RSA_1024 and RSA_2048 certificates only unless asked for every key type:
# an EC certificate of the user's for the domain must be seen (it may share a validation record).
KEY_TYPES = ("RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1")


# -- what the finders read (the inventory) ---------------------------------------
# `region`: None for the stack's region (the looks' ids as they always were), else another one.
def certificates_look(region: str | None = None) -> Look:
    return Look("acm", "list_certificates", {"Includes": {"keyTypes": list(KEY_TYPES)}}, key="CertificateSummaryList",
                region=region)


def certificate_tags_look(arn: str, region: str | None = None) -> Look:
    return Look("acm", "list_tags_for_certificate", {"CertificateArn": arn}, missing_ok=CERTIFICATE_GONE, region=region)


def certificate_look(arn: str, region: str | None = None) -> Look:
    return Look("acm", "describe_certificate", {"CertificateArn": arn}, missing_ok=CERTIFICATE_GONE, region=region)


def other_region(ctx: Ctx, region: str) -> str | None:
    """`region` as the AWS layer takes it: None when it is the stack's."""
    return None if region == ctx.aws.region else region


def region_of(ctx: Ctx, arn: str) -> str | None:
    """The region of a certificate's ARN (arn:aws:acm:<region>:...), as other_region says it."""
    parts = arn.split(":")
    return other_region(ctx, parts[3]) if len(parts) > 3 and parts[3] else None


@dataclass(frozen=True)
class Wanted:
    """Which of the stack's certificates: the regional one of the ALB, or CloudFront's in us-east-1."""
    role: str                # its Name tag: <stack>-<role>
    region: str | None       # None: the stack's region
    names: tuple[str, ...]   # the domain, then the other names it must cover
    key: str                 # Part 7's resources: its ARN
    given: str | None        # the user's certificate instead (never deleted), with its config key
    given_key: str


def regional(ctx: Ctx) -> Wanted:
    """The ALB's certificate; with edge.cdn it also covers origin.<domain>, the name CloudFront reaches it by
    (and the domain: CloudFront's /api/* forwards the viewer's Host)."""
    edge = ctx.config.edge
    names = (domain(ctx), edge.origin_domain) if edge.origin_domain else (domain(ctx),)
    return Wanted(CERTIFICATE_ROLE, None, names, "certificate_arn", edge.certificate_arn, "edge.certificate_arn")


def cloudfront(ctx: Ctx) -> Wanted:
    """CloudFront's certificate: for the domain, in us-east-1 whatever the stack's region."""
    return Wanted(CDN_CERTIFICATE_ROLE, other_region(ctx, CDN_CERTIFICATE_REGION), (domain(ctx),),
                  "cdn_certificate_arn", ctx.config.edge.cdn_certificate_arn, "edge.cdn_certificate_arn")


# -- the certificate ----------------------------------------------------------------
def tagged_certificates(ctx: Ctx, role: str, region: str | None = None) -> list[dict[str, Any]]:
    """The certificates this stack requested (tagged with it) in a region, any domain: summaries. `role`
    CDN_CERTIFICATE_ROLE: CloudFront's only; else the others (the regional ones)."""
    found = []
    for summary in ctx.aws.look(certificates_look(region), resource="ACM certificates") or []:
        tags = ctx.aws.look(certificate_tags_look(summary["CertificateArn"], region),
                            resource=f"certificate {summary['CertificateArn']}") or {}
        cdn = tag_value(tags, "Name") == ctx.name(CDN_CERTIFICATE_ROLE)
        if tag_value(tags, STACK_TAG) == ctx.stack and cdn == (role == CDN_CERTIFICATE_ROLE):
            found.append(summary)
    return found


def stack_certificates(ctx: Ctx) -> list[dict[str, Any]]:
    """The regional certificates this stack requested (tagged with it; not CloudFront's), any domain."""
    return tagged_certificates(ctx, CERTIFICATE_ROLE)


def cdn_certificates(ctx: Ctx) -> list[dict[str, Any]]:
    """CloudFront's certificates this stack requested, in us-east-1, any domain."""
    return tagged_certificates(ctx, CDN_CERTIFICATE_ROLE, other_region(ctx, CDN_CERTIFICATE_REGION))


def describe(ctx: Ctx, arn: str) -> dict[str, Any] | None:
    found = ctx.aws.look(certificate_look(arn, region_of(ctx, arn)), resource=f"certificate {arn}")
    return found["Certificate"] if found else None


def domain_certificates(ctx: Ctx, wanted: Wanted | None = None) -> list[dict[str, Any]]:
    """The stack's certificates for the domain, described: issued, on their way or failed."""
    wanted = wanted or regional(ctx)
    found = []
    for summary in tagged_certificates(ctx, wanted.role, wanted.region):
        certificate = describe(ctx, summary["CertificateArn"]) if summary.get("DomainName") == domain(ctx) else None
        if certificate is not None:
            found.append(certificate)
    return found


def find_requested_certificate(ctx: Ctx, wanted: Wanted | None = None) -> dict[str, Any] | None:
    """The stack's certificate for the domain (and the other names it must cover) that is issued or on its
    way (not a failed one). One that lacks a name (edge.cdn turned on since) is not it: a new one is
    requested, and the old one retired once 443 uses the new one."""
    wanted = wanted or regional(ctx)
    return next((c for c in domain_certificates(ctx, wanted)
                 if c["Status"] not in FAILED_CERTIFICATE and all(covers(c, name) for name in wanted.names)), None)


def covers(certificate: dict[str, Any], name: str) -> bool:
    """Whether the certificate is valid for `name`: exactly, or by a wildcard of its parent."""
    parent = name.split(".", 1)[1] if "." in name else ""
    names = {n.lower() for n in [certificate.get("DomainName", ""), *certificate.get("SubjectAlternativeNames", [])]}
    return name in names or f"*.{parent}" in names


def given_certificate(ctx: Ctx, wanted: Wanted | None = None) -> dict[str, Any]:
    """The user's certificate (edge.certificate_arn, or CloudFront's edge.cdn_certificate_arn), checked: it
    exists, is ISSUED and covers the names it must."""
    wanted = wanted or regional(ctx)
    arn, key = wanted.given, wanted.given_key
    assert arn is not None
    certificate = describe(ctx, arn)
    if certificate is None:
        raise ThreetierError(f"{key}: no certificate {arn} in this account and region")
    if certificate["Status"] != "ISSUED":
        raise ThreetierError(f"{key}: certificate {arn} is {certificate['Status']}, not ISSUED; "
                             f"{'CloudFront' if wanted.role == CDN_CERTIFICATE_ROLE else 'a load balancer'} can use "
                             f"an issued certificate only")
    for name in wanted.names:
        if not covers(certificate, name):
            raise ThreetierError(f"{key}: certificate {arn} is for "
                                 f"{', '.join(certificate.get('SubjectAlternativeNames') or [certificate['DomainName']])}, "
                                 f"not {name}")
    return certificate


def ensure_certificate(ctx: Ctx, vpc: str, wanted: Wanted | None = None) -> str:
    """Find or request the certificate; for a requested one, write its validation records. `vpc`: the
    stack's VPC ID, new with every build of the stack (see request_certificate)."""
    wanted = wanted or regional(ctx)
    if wanted.given:
        arn = given_certificate(ctx, wanted)["CertificateArn"]
        ctx.resources[wanted.key] = arn
        return arn
    zone = need_zone(ctx)
    certificate = find_requested_certificate(ctx, wanted)
    arn = request_certificate(ctx, vpc, wanted) if certificate is None else certificate["CertificateArn"]
    ctx.resources[wanted.key] = arn
    ensure_validation_records(ctx, zone, arn)
    return arn


def request_certificate(ctx: Ctx, vpc: str, wanted: Wanted | None = None) -> str:
    """A new certificate for the domain. Its token is the same within the hour (see client_token) and
    within this build of the stack (its VPC, made before the certificate, is another after a `down`
    and `up`): a request retried after a crash returns the certificate it made, not a second one. ACM
    answers a token it saw within the hour with the certificate it made then, failed or deleted since
    (a `down` and `up` within the hour: a new VPC, a new token); so the token is also salted with the
    stack's failed certificates for the domain (the same on a retry, new once one failed), and with
    one ACM hands back failed or gone (not seen for a minute: one just made may take that long).
    CloudFront's and one with more names (edge.cdn) have tokens of their own."""
    wanted = wanted or regional(ctx)
    name = domain(ctx)
    spent = sorted(c["CertificateArn"] for c in domain_certificates(ctx, wanted) if c["Status"] in FAILED_CERTIFICATE)
    kind = (wanted.role,) if wanted.role != CERTIFICATE_ROLE else ()
    names: dict[str, Any] = {"SubjectAlternativeNames": list(wanted.names)} if len(wanted.names) > 1 else {}
    for _ in range(REQUEST_ATTEMPTS):
        token = client_token(ctx.stack, vpc, *kind, *wanted.names, *spent)[:32]  # ACM takes 32 word characters
        arn = ctx.aws.call("acm", "request_certificate", resource=f"certificate for {name}", DomainName=name,
                           ValidationMethod="DNS", IdempotencyToken=token, region=wanted.region, **names,
                           Tags=ctx.tags(wanted.role))["CertificateArn"]
        certificate = requested(ctx, arn)
        # (One already spent again: not expected with a new token; its wait says what became of it.)
        if arn in spent or (certificate is not None and certificate["Status"] not in FAILED_CERTIFICATE):
            break
        spent = sorted({*spent, arn})
    if wanted.role == CERTIFICATE_ROLE:
        ctx.record("created", "certificate", name, arn)
    else:  # as `plan` names it: "CloudFront certificate for <domain> (us-east-1)"
        ctx.record("created", "CloudFront certificate", f"{name} ({CDN_CERTIFICATE_REGION})", arn)
    return arn


def requested(ctx: Ctx, arn: str) -> dict[str, Any] | None:
    """The certificate RequestCertificate answered, described once DescribeCertificate knows it; None
    if it stays unknown for a minute (one ACM handed back for the token, deleted since)."""
    def probe() -> Poll:
        certificate = describe(ctx, arn)
        return Poll(certificate is not None, certificate["Status"] if certificate else "not known yet")

    try:
        ctx.aws.wait(f"certificate {arn}", probe, delay=REQUESTED_VISIBLE_POLL, timeout=REQUESTED_VISIBLE_TIMEOUT)
    except WaitTimeout:
        return None
    return describe(ctx, arn)


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

    ctx.aws.wait(f"validation records of certificate {arn}", probe, delay=VALIDATION_RECORD_POLL,
                 timeout=VALIDATION_RECORD_TIMEOUT)
    unique = {(r["Name"].lower(), r["Type"]): r for r in shown["records"]}  # a domain and its wildcard share one
    return list(unique.values())


def ensure_validation_records(ctx: Ctx, zone: dict[str, Any], arn: str) -> None:
    present = records(ctx, zone)
    by_name = {(r["Name"].lower(), r["Type"]): r for r in present}
    missing = []
    for wanted in validation_records(ctx, arn):
        have = by_name.get((fqdn(wanted["Name"]), wanted["Type"]))
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
    # when ours goes. One remembered that is not in the zone as it was remembered (a run stopped
    # before its write) is forgotten: written again below if ACM still asks for it.
    ctx.resources.setdefault(RECORDS, [])
    for entry in recorded(ctx, "CNAME"):
        if entry.zone_id == zone["Id"] and not any(entry.matches(zone["Id"], r) for r in present):
            forget(ctx, entry.zone_id, entry.name, entry.type)
    write_records(ctx, zone, missing, f"ACM validation of {domain(ctx)}")
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


# -- retired, and at `down` -----------------------------------------------------------
def retire_old_certificates(ctx: Ctx) -> None:
    """The stack's certificates for a name it no longer uses (the domain changed, or the user's
    own certificate replaced ours): their validation records and themselves, now that the 443
    listener uses another one."""
    current = ctx.resources.get("certificate_arn")
    for summary in stack_certificates(ctx):
        if summary["CertificateArn"] != current:
            delete_certificate(ctx, summary["CertificateArn"])


def destroy_certificates(ctx: Ctx) -> None:
    """After the listeners are gone: the certificates the stack requested (tagged with it, never
    the user's certificate_arn) and the validation records it wrote for them."""
    for summary in stack_certificates(ctx):
        if summary["CertificateArn"] != ctx.config.edge.certificate_arn:
            delete_certificate(ctx, summary["CertificateArn"])


def retire_old_cdn_certificates(ctx: Ctx) -> None:
    """CloudFront's certificates of the stack that the distribution no longer uses (the domain changed, or the
    user's edge.cdn_certificate_arn replaced it); once the distribution is deployed with the new one."""
    current = ctx.resources.get("cdn_certificate_arn")
    for summary in cdn_certificates(ctx):
        if summary["CertificateArn"] != current:
            delete_certificate(ctx, summary["CertificateArn"])


def destroy_cdn_certificates(ctx: Ctx) -> None:
    """Once the distribution is gone: CloudFront's certificates the stack requested (never the user's)."""
    for summary in cdn_certificates(ctx):
        delete_certificate(ctx, summary["CertificateArn"])
    ctx.resources.pop("cdn_certificate_arn", None)


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

    # The other region too (CloudFront's us-east-1, or the stack's): the same record validates both.
    regions = {region_of(ctx, arn), other_region(ctx, CDN_CERTIFICATE_REGION), None}
    return {name for region in regions
            for other in (ctx.aws.look(certificates_look(region), resource="ACM certificates") or [])
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
        delete_recorded(ctx, [e for e in recorded(ctx, "CNAME") if (e.name, e.type) in wanted - others],
                        f"validation of certificate {arn}, being deleted", "validation record")
    elif wanted:
        shown = ", ".join(name.rstrip(".") for name, _ in sorted(wanted))
        ctx.out.info(f"  note: the state file does not say whether the stack wrote the validation record(s) {shown} "
                     f"of certificate {arn}; they are left in Route 53 (they cost nothing): delete them there if "
                     f"no other certificate of the account, in any region, is for {certificate.get('DomainName')}")
    # In use for a while after its listener went or moved on: waited out, at `down` too (its final
    # scan fails on anything left). A run that gives up fails; `down` again, or `up` with the edge
    # on, deletes it.
    ctx.aws.call("acm", "delete_certificate", resource=f"certificate {arn}", CertificateArn=arn,
                 region=region_of(ctx, arn), missing_ok=CERTIFICATE_GONE, retry_codes=CERTIFICATE_IN_USE, retry_timeout=CERTIFICATE_RELEASE_TIMEOUT,
                 retry_delay=CERTIFICATE_RELEASE_POLL)
    ctx.record("deleted", "certificate", certificate.get("DomainName", arn), arn)
