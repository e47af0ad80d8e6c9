"""ACM, DNS validation: the certificate of Part 7's front door.

DescribeCertificate shows no validation ResourceRecord for 5 s after RequestCertificate; a certificate
is PENDING_VALIDATION until the exact CNAMEs it shows (name and value) are in a Route 53 zone (written
by ChangeResourceRecordSets, or there before the request: route53.py), ISSUED 240 s later
(DescribeCertificate and ListCertificates answer the model's status, not moto's
MOTO_ACM_VALIDATION_WAIT one); CreateListener / ModifyListener / AddListenerCertificates with a
certificate not ISSUED: UnsupportedCertificate (`listener-on-pending-certificate`), and
CertificateNotFound for 20 s after it is ISSUED (retried); DeleteCertificate: ResourceInUseException
while a listener or a CloudFront distribution uses it (`delete-certificate-in-use`) and for 10 s after
the last one went (retried). CloudFront's certificate (us-east-1) is modeled as the regional one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.model import figures
from bench.model.core import Span, after, before, override, refuse_in_use, rewrite_params

# Imported first so that its handler on ChangeResourceRecordSets records the CNAMEs before this
# module's validates the certificates.
from bench.model.route53 import fqdn, zone_cnames

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


@dataclass
class Certificate:
    arn: str
    domain: str
    part: int | None
    requested: float
    records: frozenset[tuple[str, str]]  # its validation CNAMEs: (name., value.), lower case
    validated: float | None = None       # from when all its CNAMEs were in a zone (validation started)
    released: float | None = None        # when the last listener using it went
    in_use: bool = False
    deleted: float | None = None

    @property
    def issued(self) -> float | None:
        return None if self.validated is None else self.validated + figures.CERT_VALIDATION_SECONDS


def certificate_status(model: LatencyModel, arn: str) -> str | None:
    """PENDING_VALIDATION until its validation CNAMEs have been in a zone 240 s, then ISSUED
    (None: a certificate the model did not see requested, or deleted: moto's answer stands)."""
    cert = model.certificates.get(arn)
    if cert is None or cert.deleted is not None:
        return None
    issued = cert.issued
    return "ISSUED" if issued is not None and model.now >= issued else "PENDING_VALIDATION"


@after("acm", "RequestCertificate")
def certificate_requested(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    arn = parsed.get("CertificateArn")
    if not arn or arn in model.certificates:  # the same IdempotencyToken: the same certificate
        return
    # In the ARN's region: the stack's, or us-east-1 for CloudFront's certificate.
    described = model.raw("acm", arn.split(":")[3] or None).describe_certificate(CertificateArn=arn)["Certificate"]
    # DNS validation only: a certificate validated by email stays pending in the model.
    records = frozenset((fqdn(o["ResourceRecord"]["Name"]), fqdn(o["ResourceRecord"]["Value"]))
                        for o in described.get("DomainValidationOptions", [])
                        if o.get("ResourceRecord") and params.get("ValidationMethod") == "DNS")
    for key in records & zone_cnames(model):  # already in a zone (written before the request)
        model.cnames.setdefault(key, model.now)
    model.certificates[arn] = Certificate(arn, params.get("DomainName") or described.get("DomainName", arn),
                                          model.part(params), model.now, records)
    validate_certificates(model)


@after("route53", "ChangeResourceRecordSets")
def validate_certificates(model: LatencyModel, *_: Any, **__: Any) -> None:
    """Validation starts once all of a pending certificate's CNAMEs are in a zone (not before it
    was requested), and stops if one goes before it is issued."""
    for cert in model.certificates.values():
        issued = cert.issued
        if cert.deleted is not None or not cert.records or (issued is not None and model.now >= issued):
            continue
        seen = [model.cnames[r] for r in cert.records if r in model.cnames]
        if len(seen) < len(cert.records):
            cert.validated = None
        elif cert.validated is None:
            cert.validated = max(cert.requested, *seen)


@after("acm", "DescribeCertificate")
def describe_certificate(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    certificate = parsed.get("Certificate") or {}
    record = model.certificates.get(certificate.get("CertificateArn", ""))
    status = certificate_status(model, certificate.get("CertificateArn", ""))
    if record is None or status is None:
        return
    certificate["Status"] = status
    if status != "ISSUED":
        certificate.pop("IssuedAt", None)
    shown = model.now - record.requested >= figures.CERT_RECORD_SHOWN_SECONDS
    for option in certificate.get("DomainValidationOptions", []):
        option["ValidationStatus"] = "SUCCESS" if status == "ISSUED" else "PENDING_VALIDATION"
        if not shown:
            option.pop("ResourceRecord", None)


@rewrite_params("acm", "ListCertificates")
def list_all_certificates(params: dict[str, Any]) -> None:
    """moto filters by its own status: it is asked for all, and list_certificates filters by the model's."""
    params.pop("CertificateStatuses", None)


@after("acm", "ListCertificates")
def list_certificates(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    summaries = parsed.get("CertificateSummaryList", [])
    override(summaries, "CertificateArn", "Status", lambda arn: certificate_status(model, arn))
    for summary in summaries:
        record = model.certificates.get(summary["CertificateArn"])
        if record is not None and "InUse" in summary:
            summary["InUse"] = record.in_use
    wanted = params.get("CertificateStatuses")
    if wanted:
        parsed["CertificateSummaryList"] = [s for s in summaries if s.get("Status") in wanted]


# -- listeners: who uses a certificate ---------------------------------------------------------
def _certificate_users(model: LatencyModel) -> dict[str, list[str]]:
    """Certificate ARN -> the listeners (moto's; its ELBv2 does not tell ACM) and CloudFront
    distributions (the model's, not deleted) using it now."""
    elbv2, users = model.raw("elbv2"), dict[str, list[str]]()
    for distribution in model.distributions.values():
        if distribution.deleted is None and distribution.certificate:
            users.setdefault(distribution.certificate, []).append(f"distribution {distribution.id}")
    for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
        for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
            for cert in listener.get("Certificates") or []:
                users.setdefault(cert["CertificateArn"], []).append(
                    f"listener {lb['LoadBalancerName']}:{listener['Port']}")
    return users


@after("elbv2", "CreateListener", "ModifyListener", "DeleteListener", "AddListenerCertificates",
       "RemoveListenerCertificates", "DeleteLoadBalancer")
def certificate_users_changed(model: LatencyModel, *_: Any, **__: Any) -> None:
    """After a listener or a load balancer changed: which certificates are in use, since when not."""
    if not model.certificates:
        return
    users = _certificate_users(model)
    for cert in model.certificates.values():
        using = cert.arn in users
        if cert.in_use and not using:
            cert.released = model.now
        cert.in_use = using


@before("elbv2", "AddListenerCertificates")  # CreateListener and ModifyListener: elbv2.listener_before calls it
def listener_certificates_before(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    for spec in params.get("Certificates") or []:
        arn = spec.get("CertificateArn", "")
        cert, status = model.certificates.get(arn), certificate_status(model, arn)
        if cert is None or status is None:
            continue
        issued = cert.issued
        if status != "ISSUED":
            refused = model.refuse("UnsupportedCertificate", f"The certificate '{arn}' is {status}: a listener "
                                   f"takes an issued certificate only", operation=operation, service="elbv2",
                                   rule="listener-on-pending-certificate")
            if refused is not None:
                return refused
        elif issued is not None and model.now < issued + figures.CERT_PROPAGATION_SECONDS:
            # Not a mistake of the caller: ELB does not know the new certificate yet; retried.
            return model.refuse("CertificateNotFound", f"Certificate '{arn}' not found", operation=operation,
                                service="elbv2")
    return None


@before("acm", "DeleteCertificate")
def delete_certificate(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    arn = params.get("CertificateArn", "")
    cert = model.certificates.get(arn)
    return refuse_in_use(model, "ResourceInUseException", f"Certificate {arn} is in use",
                         _certificate_users(model).get(arn, []), cert.released if cert else None,
                         figures.CERT_RELEASE_SECONDS, operation=operation, service="acm",
                         rule="delete-certificate-in-use")


@after("acm", "DeleteCertificate")
def certificate_deleted(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    cert = model.certificates.get(params.get("CertificateArn", ""))
    if cert is not None and cert.deleted is None:
        cert.deleted = model.now


def spans(model: LatencyModel) -> list[Span]:
    """Each certificate requested -> ISSUED: waiting for its validation record, then DNS validation."""
    spans = []
    for cert in model.certificates.values():
        issued, segments = cert.issued, []
        if cert.validated is not None and issued is not None:
            if cert.validated > cert.requested:
                segments.append(("validation record", cert.requested, cert.validated))
            segments.append(("DNS validation", cert.validated, issued))
        spans.append(Span(cert.part, "certificate", cert.domain, cert.requested, issued, segments=segments))
    return spans
