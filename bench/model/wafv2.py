"""WAFv2: the web ACL on the external ALB, or CloudFront's (its distributions' associations: cloudfront.py). AssociateWebACL: WAFNonexistentItemException while the ALB is
provisioning (`waf-on-provisioning-alb`), WAFUnavailableEntityException for 30 s after CreateWebACL
(retried); DeleteWebACL: WAFAssociatedItemException while associated (`delete-web-acl-associated`) and
for 20 s after DisassociateWebACL or the ALB's deletion (retried). AWS drops an ALB's association with
the ALB; moto keeps it, so the model keeps its own list."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bench.model import figures
from bench.model.core import Span, after, before, refuse_in_use
from bench.model.elbv2 import load_balancer_state

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


@dataclass
class WebAcl:
    arn: str
    name: str
    part: int | None
    created: float
    released: float | None = None        # when its last association went
    deleted: float | None = None


@after("wafv2", "CreateWebACL")
def web_acl_created(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    summary = parsed.get("Summary") or {}
    arn = summary.get("ARN")
    if arn and arn not in model.web_acls:
        model.web_acls[arn] = WebAcl(arn, summary.get("Name") or params.get("Name", ""), model.part(params),
                                     model.now)


def _web_acl_arn(model: LatencyModel, params: dict[str, Any]) -> str | None:
    """The ARN of the web ACL that Name, Scope and Id name (None: moto knows none)."""
    name, acl_id = params.get("Name", ""), params.get("Id", "")
    known = next((a.arn for a in model.web_acls.values() if a.arn.endswith(f"/{name}/{acl_id}")), None)
    if known is not None:
        return known
    try:
        found = model.raw("wafv2").get_web_acl(Name=name, Scope=params.get("Scope", "REGIONAL"), Id=acl_id)
    except ClientError:
        return None
    return found["WebACL"]["ARN"]


def _web_acl_of(model: LatencyModel, resource: str) -> str | None:
    """The web ACL associated with a resource, by the model or (made before it) by moto."""
    if resource in model.associations:
        return model.associations[resource]
    try:
        found = model.raw("wafv2").get_web_acl_for_resource(ResourceArn=resource).get("WebACL") or {}
    except ClientError:
        return None
    return found.get("ARN")


def _web_acl_resources(model: LatencyModel, arn: str) -> list[str]:
    """What the web ACL is associated with now (an ALB's association goes with the ALB)."""
    found = [resource for resource, acl in model.associations.items() if acl == arn]
    for lb in model.raw("elbv2").describe_load_balancers()["LoadBalancers"]:
        resource = lb["LoadBalancerArn"]
        if resource not in model.associations and _web_acl_of(model, resource) == arn:
            found.append(resource)
    return found


@before("wafv2", "AssociateWebACL")
def associate_web_acl(model: LatencyModel, params: dict[str, Any], operation: str, context: dict[str, Any],
                      **_: Any) -> Any:
    resource, arn = params.get("ResourceArn", ""), params.get("WebACLArn", "")
    if load_balancer_state(model, resource) == "provisioning":
        # kubernetes-sigs/aws-load-balancer-controller#2022: WAF cannot find an ALB still provisioning.
        refused = model.refuse("WAFNonexistentItemException", f"AWS WAF couldn't perform the operation because "
                               f"your resource doesn't exist ({resource} is provisioning)", operation=operation,
                               service="wafv2", rule="waf-on-provisioning-alb")
        if refused is not None:
            return refused
    acl = model.web_acls.get(arn)
    if acl is not None and model.now - acl.created < figures.WAF_ACL_USABLE_SECONDS:
        # Not a mistake of the caller: the new web ACL is not available everywhere yet; retried.
        return model.refuse("WAFUnavailableEntityException", "AWS WAF couldn't retrieve the resource that you "
                            "requested. Retry your request.", operation=operation, service="wafv2")
    context["bench_previous_web_acl"] = _web_acl_of(model, resource)  # before moto adds this one
    return None


@after("wafv2", "AssociateWebACL")
def web_acl_associated(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], context: dict[str, Any],
                       **_: Any) -> None:
    resource, arn = params.get("ResourceArn", ""), params.get("WebACLArn", "")
    previous = context.get("bench_previous_web_acl")
    if previous is not None and previous != arn:  # AWS replaces the resource's association
        model.associations[resource] = previous
        association_gone(model, resource)
    model.associations[resource] = arn


@before("wafv2", "DisassociateWebACL")
def disassociate_web_acl_before(model: LatencyModel, params: dict[str, Any], **_: Any) -> Any:
    resource = params.get("ResourceArn", "")
    acl = _web_acl_of(model, resource)  # learnt now: one made before the model was installed
    if acl is not None:
        model.associations[resource] = acl
    return None


@after("wafv2", "DisassociateWebACL")
def web_acl_disassociated(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    association_gone(model, params.get("ResourceArn", ""))


@after("elbv2", "DeleteLoadBalancer")
def load_balancer_deleted(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    association_gone(model, params.get("LoadBalancerArn", ""))  # AWS drops it with the ALB; moto keeps it


def association_gone(model: LatencyModel, resource: str) -> None:
    arn = model.associations.pop(resource, None)
    if arn is not None:
        model.web_acls.setdefault(arn, WebAcl(arn, arn.split("/")[-2], None, -1e9)).released = model.now


@before("wafv2", "DeleteWebACL")
def delete_web_acl(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    arn = _web_acl_arn(model, params)
    if arn is None:
        return None  # moto answers WAFNonexistentItemException
    acl = model.web_acls.get(arn)
    return refuse_in_use(model, "WAFAssociatedItemException", "AWS WAF couldn't perform the operation because "
                         "your resource is being used by another resource or it's associated with "
                         "another resource", _web_acl_resources(model, arn), acl.released if acl else None,
                         figures.WAF_DISASSOCIATE_SECONDS, operation=operation, service="wafv2",
                         rule="delete-web-acl-associated")


@after("wafv2", "DeleteWebACL")
def web_acl_deleted(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    acl = next((a for a in model.web_acls.values()
                if a.arn.endswith(f"/{params.get('Name', '')}/{params.get('Id', '')}")), None)
    if acl is not None and acl.deleted is None:
        acl.deleted = model.now


def spans(model: LatencyModel) -> list[Span]:
    return [Span(acl.part, "web ACL", acl.name, acl.created, acl.created + figures.WAF_ACL_USABLE_SECONDS)
            for acl in model.web_acls.values() if acl.created > -1e8]
