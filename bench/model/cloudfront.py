"""CloudFront (edge.cdn): a distribution deploys for CLOUDFRONT_DEPLOY_SECONDS (300 s) after
CreateDistribution(WithTags) and after each UpdateDistribution (a disable too): GetDistribution and
ListDistributions answer `InProgress` until then, `Deployed` after (moto answers Deployed at once).
DeleteDistribution: DistributionNotDisabled while the distribution is enabled
(`delete-distribution-enabled`) or disabled but not yet Deployed (`delete-distribution-in-progress`):
AWS answers that code to both (botocore's model: DeleteDistribution's errors; moto deletes it). A
distribution naming a web ACL (WebACLId) is that ACL's association (wafv2.py: DeleteWebACL refused
while it lasts, and for 20 s after the distribution went or named another); one naming an ACM
certificate uses it (acm.py: DeleteCertificate refused likewise).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.model import acm, figures, wafv2
from bench.model.core import Span, after, before

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel

DEPLOYED, IN_PROGRESS = "Deployed", "InProgress"
NOT_DISABLED = "DistributionNotDisabled"


@dataclass
class Distribution:
    id: str
    arn: str
    name: str                  # its Comment (threetier's: `<stack>-cdn`), else its ID
    part: int | None
    created: float
    changes: list[tuple[str, float]] = field(default_factory=list)  # (create | update | disable, when)
    enabled: bool = True
    web_acl: str = ""
    certificate: str = ""
    deleted: float | None = None

    @property
    def deployed(self) -> float:
        """When its last change is at every edge location."""
        return self.changes[-1][1] + figures.CLOUDFRONT_DEPLOY_SECONDS


def distribution_status(model: LatencyModel, distribution_id: str) -> str | None:
    """InProgress until 300 s after its last create or update, then Deployed (None: one the model did
    not see made or changed, or deleted: moto's answer stands)."""
    found = model.distributions.get(distribution_id)
    if found is None or found.deleted is not None:
        return None
    return DEPLOYED if model.now >= found.deployed else IN_PROGRESS


def _config(params: dict[str, Any]) -> dict[str, Any]:
    return params.get("DistributionConfig") or (params.get("DistributionConfigWithTags") or {}).get(
        "DistributionConfig") or {}


def _configured(model: LatencyModel, distribution: Distribution, config: dict[str, Any]) -> None:
    """What the configuration says: enabled or not, the web ACL it names (an association: the one it
    named before goes), the certificate it uses."""
    distribution.enabled = bool(config.get("Enabled", True))
    distribution.certificate = (config.get("ViewerCertificate") or {}).get("ACMCertificateArn") or ""
    web_acl = config.get("WebACLId") or ""
    if distribution.web_acl and distribution.web_acl != web_acl:
        wafv2.association_gone(model, distribution.arn)
    distribution.web_acl = web_acl
    if web_acl:
        model.associations[distribution.arn] = web_acl


@after("cloudfront", "CreateDistribution", "CreateDistributionWithTags")
def distribution_created(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    made = parsed.get("Distribution") or {}
    if not made.get("Id") or made["Id"] in model.distributions:
        return
    config = _config(params)
    items = ((params.get("DistributionConfigWithTags") or {}).get("Tags") or {}).get("Items") or []
    distribution = Distribution(made["Id"], made.get("ARN", made["Id"]), config.get("Comment") or made["Id"],
                                model.part({"Tags": items}), model.now, [("create", model.now)])
    model.distributions[distribution.id] = distribution
    _configured(model, distribution, config)
    made["Status"] = IN_PROGRESS


@after("cloudfront", "UpdateDistribution")
def distribution_updated(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    made = parsed.get("Distribution") or {}
    distribution = model.distributions.get(params.get("Id", ""))
    if distribution is None:  # made before the model was installed: known from now on
        distribution = Distribution(params.get("Id", ""), made.get("ARN", params.get("Id", "")),
                                    _config(params).get("Comment") or params.get("Id", ""), None, model.now)
        model.distributions[distribution.id] = distribution
    config = _config(params)
    disabling = distribution.enabled and not config.get("Enabled", True)
    distribution.changes.append(("disable" if disabling else "update", model.now))
    _configured(model, distribution, config)
    made["Status"] = IN_PROGRESS


@after("cloudfront", "GetDistribution")
def get_distribution(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    found = parsed.get("Distribution") or {}
    status = distribution_status(model, found.get("Id", ""))
    if status is not None:
        found["Status"] = status


@after("cloudfront", "ListDistributions")
def list_distributions(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    for summary in (parsed.get("DistributionList") or {}).get("Items") or []:
        status = distribution_status(model, summary.get("Id", ""))
        if status is not None:
            summary["Status"] = status


@before("cloudfront", "DeleteDistribution")
def delete_distribution(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    distribution_id = params.get("Id", "")
    status = distribution_status(model, distribution_id)
    if status is None:
        return None  # moto answers
    if model.distributions[distribution_id].enabled:
        return model.refuse(NOT_DISABLED, f"The distribution {distribution_id} is not disabled: disable it "
                            f"(UpdateDistribution Enabled=false), wait until it is Deployed, then delete it",
                            operation=operation, service="cloudfront", rule="delete-distribution-enabled")
    if status == IN_PROGRESS:
        return model.refuse(NOT_DISABLED, f"The distribution {distribution_id} is being disabled (InProgress): "
                            f"wait until it is Deployed", operation=operation, service="cloudfront",
                            rule="delete-distribution-in-progress")
    return None


@after("cloudfront", "DeleteDistribution")
def distribution_deleted(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    distribution = model.distributions.get(params.get("Id", ""))
    if distribution is None or distribution.deleted is not None:
        return
    distribution.deleted = model.now
    if distribution.web_acl:
        wafv2.association_gone(model, distribution.arn)


# After this module's own: which certificates the distributions use, since when not (acm.py).
after("cloudfront", "CreateDistribution", "CreateDistributionWithTags", "UpdateDistribution",
      "DeleteDistribution")(acm.certificate_users_changed)


def spans(model: LatencyModel) -> list[Span]:
    """Each create and update -> Deployed; a disable -> deleted (a delete span: disabling, then the
    wait for the delete, if any)."""
    found = []
    for d in model.distributions.values():
        for what, when in d.changes:
            deployed = when + figures.CLOUDFRONT_DEPLOY_SECONDS
            if what == "disable":
                segments = [("disabling", when, deployed)]
                if d.deleted is not None and d.deleted > deployed:
                    segments.append(("until deleted", deployed, d.deleted))
                found.append(Span(d.part, "distribution", d.name, when, d.deleted, action="delete",
                                  segments=segments))
            else:
                kind = "distribution" if what == "create" else "distribution update"
                found.append(Span(d.part, kind, d.name, when, deployed, segments=[("deploying", when, deployed)]))
    return found


__all__ = ["DEPLOYED", "IN_PROGRESS", "Distribution", "distribution_status", "spans"]
