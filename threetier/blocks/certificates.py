"""The ACM certificate of the front door (Part 7, config.yaml `edge`): the user's
(`edge.certificate_arn`, checked: ISSUED, covers the domain) or one requested here with DNS
validation, whose CNAME records are written into the user's zone (threetier.blocks.dns).

Requested in Part 7's `start` and waited for in its `finish`, before the web image is needed: DNS
validation takes minutes on real AWS, and that wait overlaps the web bake. The stack's certificates
are those tagged with it; the user's is never deleted.
"""
from __future__ import annotations

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
# A request ACM answers with a certificate failed or gone is made again with a new token, this
# many times at most (a certificate that stays unknown to DescribeCertificate must not become many).
REQUEST_ATTEMPTS = 3
# ListCertificates answers RSA_1024 and RSA_2048 certificates only unless asked for every key type:
# an EC certificate of the user's for the domain must be seen (it may share a validation record).
KEY_TYPES = ("RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1")


# -- what the finders read (the inventory) ---------------------------------------
def certificates_look() -> Look:
    return Look("acm", "list_certificates", {"Includes": {"keyTypes": list(KEY_TYPES)}}, key="CertificateSummaryList")


def certificate_tags_look(arn: str) -> Look:
    return Look("acm", "list_tags_for_certificate", {"CertificateArn": arn}, missing_ok=CERTIFICATE_GONE)


def certificate_look(arn: str) -> Look:
    return Look("acm", "describe_certificate", {"CertificateArn": arn}, missing_ok=CERTIFICATE_GONE)


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


def ensure_certificate(ctx: Ctx, vpc: str) -> str:
    """Find or request the certificate; for a requested one, write its validation records. `vpc`: the
    stack's VPC ID, new with every build of the stack (see request_certificate)."""
    if ctx.config.edge.certificate_arn:
        arn = given_certificate(ctx)["CertificateArn"]
        ctx.resources["certificate_arn"] = arn
        return arn
    zone = need_zone(ctx)
    certificate = find_requested_certificate(ctx)
    arn = request_certificate(ctx, vpc) if certificate is None else certificate["CertificateArn"]
    ctx.resources["certificate_arn"] = arn
    ensure_validation_records(ctx, zone, arn)
    return arn


def request_certificate(ctx: Ctx, vpc: str) -> str:
    """A new certificate for the domain. Its token is the same within the hour (see client_token) and
    within this build of the stack (its VPC, made before the certificate, is another after a `down`
    and `up`): a request retried after a crash returns the certificate it made, not a second one. ACM
    answers a token it saw within the hour with the certificate it made then, failed or deleted since
    (a `down` and `up` within the hour: a new VPC, a new token); so the token is also salted with the
    stack's failed certificates for the domain (the same on a retry, new once one failed), and with
    one ACM hands back failed or gone (not seen for a minute: one just made may take that long)."""
    name = domain(ctx)
    spent = sorted(c["CertificateArn"] for c in domain_certificates(ctx) if c["Status"] in FAILED_CERTIFICATE)
    for _ in range(REQUEST_ATTEMPTS):
        token = client_token(ctx.stack, vpc, name, *spent)[:32]  # ACM takes 32 word characters
        arn = ctx.aws.call("acm", "request_certificate", resource=f"certificate for {name}", DomainName=name,
                           ValidationMethod="DNS", IdempotencyToken=token,
                           Tags=ctx.tags(CERTIFICATE_ROLE))["CertificateArn"]
        certificate = requested(ctx, arn)
        # (One already spent again: not expected with a new token; its wait says what became of it.)
        if arn in spent or (certificate is not None and certificate["Status"] not in FAILED_CERTIFICATE):
            break
        spent = sorted({*spent, arn})
    ctx.record("created", "certificate", name, arn)
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
                 missing_ok=CERTIFICATE_GONE, retry_codes=CERTIFICATE_IN_USE, retry_timeout=CERTIFICATE_RELEASE_TIMEOUT,
                 retry_delay=CERTIFICATE_RELEASE_POLL)
    ctx.record("deleted", "certificate", certificate.get("DomainName", arn), arn)
