"""What every part of the model shares: the virtual clock, what a run leaves behind (refusals and
spans), the rules whose breach is a violation, the answers a handler gives in moto's place, and the
registry where each service module puts its handlers.

A service module registers a function per operation with a decorator:

    @before("ec2", "CreateRoute", "ReplaceRoute")
    def create_route(model, params, *, operation, **_): ...   # None, or an answer

    @after("ec2", "CreateNatGateway")
    def nat_created(model, parsed, *, params, **_): ...       # edits moto's answer in place

`LatencyModel` (latency.py) runs them from the botocore events of the clients it hooks.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from threetier.aws import Clock

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel

# Rules whose breach is a violation; `relax` takes these names.
RULES = {
    "db-instance-before-cluster": "CreateDBInstance while its cluster is not available",
    "image-of-non-running": "CreateImage of an instance that is not running",
    "asg-image-not-available": "CreateAutoScalingGroup whose launch template's AMI is not available",
    "bootstrap-offline": "a builder's bootstrap started without a way to the internet",
    "bootstrap-no-database": "the app builder's health check found no available database writer",
    "release-eip-of-nat": "ReleaseAddress while its NAT gateway exists",
    "detach-igw-mapped": "DetachInternetGateway while public addresses are mapped",
    "delete-subnet-in-use": "DeleteSubnet while ENIs remain in it",
    "delete-sg-in-use": "DeleteSecurityGroup while ENIs use it",
    "delete-sg-referenced": "DeleteSecurityGroup referenced by another group's rule",
    "delete-vpc-dependencies": "DeleteVpc with subnets, groups, route tables or a gateway",
    "delete-cluster-with-instances": "DeleteDBCluster while it has instances",
    "delete-subnet-group-in-use": "DeleteDBSubnetGroup while a cluster uses it",
    "listener-on-pending-certificate": "CreateListener/ModifyListener with a certificate that is not ISSUED",
    "delete-certificate-in-use": "DeleteCertificate while a listener uses it",
    "waf-on-provisioning-alb": "AssociateWebACL with a load balancer still provisioning",
    "delete-web-acl-associated": "DeleteWebACL while it is associated with a resource (an ALB, a distribution)",
    "delete-distribution-enabled": "DeleteDistribution of a CloudFront distribution that is enabled",
    "delete-distribution-in-progress": "DeleteDistribution of a disabled CloudFront distribution not yet Deployed",
    "stop-cluster-not-available": "StopDBCluster while the cluster or one of its instances is not available",
    "start-cluster-stopping": "StartDBCluster while the cluster is still stopping",
    "change-stopped-cluster": "ModifyDBCluster/ModifyDBInstance/CreateDBInstance/DeleteDBInstance/DeleteDBCluster "
                              "while the cluster is stopping, stopped or starting",
    # A listener's forward action (elbv2.py) and a deploy's order under load (load.py, autoscaling.py).
    "forward-weight-out-of-range": "CreateListener/ModifyListener with a forward weight outside 0..999",
    "forward-too-many-target-groups": "CreateListener/ModifyListener forwarding to more than 5 target groups",
    "target-group-on-two-load-balancers": "CreateListener/ModifyListener forwarding to a target group that "
                                          "another load balancer uses",
    "shift-to-unhealthy": "ModifyListener raising the share of a target group that has no eligible target",
    "terminate-while-serving": "an instance terminated while eligible in a target group with weight > 0",
    "asg-target-group-off-listener": "CreateAutoScalingGroup into a target group on no listener of its VPC's "
                                     "load balancers (its targets stay unused)",
}


class VirtualClock(Clock):
    """Virtual seconds: `sleep` advances at once. Thread-safe."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = float(start)
        self._lock = threading.Lock()
        super().__init__(sleep=self.advance, now=self._now)

    def _now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += max(float(seconds), 0.0)


# -- what a run leaves behind -------------------------------------------------------------
@dataclass(frozen=True)
class Refusal:
    time: float
    service: str
    operation: str
    code: str
    message: str
    rule: str | None          # a RULES key when the caller broke a rule, else None (to be retried)
    violation: bool

    def __str__(self) -> str:
        return f"{self.operation}: {self.code}: {self.message}"


@dataclass
class Span:
    """One modeled operation: requested -> ready (or delete requested -> gone)."""
    part: int | None
    kind: str                 # e.g. "NAT gateway", "Aurora writer", "builder", "AMI"
    name: str
    start: float
    end: float | None         # None: not over (yet)
    action: str = "create"    # create | delete | stop | start
    segments: list[tuple[str, float, float]] = field(default_factory=list)  # (label, start, end)
    failed: str | None = None


# -- answers given in moto's place ------------------------------------------------------------
class _Response:
    """What a before-call handler returns as the HTTP response of an answer it made itself."""

    def __init__(self, status: int):
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""
        self.raw = None


def refusal(code: str, message: str, status: int = 400) -> tuple[_Response, dict[str, Any]]:
    return _Response(status), {"Error": {"Code": code, "Message": message},
                               "ResponseMetadata": {"HTTPStatusCode": status}}


def answer(parsed: dict[str, Any]) -> tuple[_Response, dict[str, Any]]:
    return _Response(200), {**parsed, "ResponseMetadata": {"HTTPStatusCode": 200}}


# -- the handler registry: (service, operation) as botocore names them -------------------------
Operation = tuple[str, str]
Handler = TypeVar("Handler", bound=Callable[..., Any])

BEFORE: dict[Operation, Callable[..., Any]] = {}
AFTER: dict[Operation, list[Callable[..., None]]] = {}
PARAMS: dict[Operation, Callable[[dict[str, Any]], None]] = {}
TICKS: list[Callable[[LatencyModel], None]] = []


def before(service: str, *operations: str) -> Callable[[Handler], Handler]:
    """Register `handler(model, params, *, context, service, operation)` to run before moto is called.
    It returns None (moto answers) or a `refusal`/`answer` that moto is not asked for. One per operation:
    two would each decide whether moto is called."""
    def register(handler: Handler) -> Handler:
        for operation in operations:
            if (service, operation) in BEFORE:
                raise ValueError(f"{service}.{operation} has a before-call handler already")
            BEFORE[(service, operation)] = handler
        return handler
    return register


def after(service: str, *operations: str) -> Callable[[Handler], Handler]:
    """Register `handler(model, parsed, *, params, context)` to run on moto's successful answer: it records
    what was made or changed and edits `parsed` into what AWS would answer. Several per operation run in
    the order registered (import order: a module that needs another's to run first imports it)."""
    def register(handler: Handler) -> Handler:
        for operation in operations:
            AFTER.setdefault((service, operation), []).append(handler)
        return handler
    return register


def rewrite_params(service: str, operation: str) -> Callable[[Handler], Handler]:
    """Register `handler(params)` to change what moto is sent (after the caller's parameters were kept)."""
    def register(handler: Handler) -> Handler:
        PARAMS[(service, operation)] = handler
        return handler
    return register


def on_tick(handler: Handler) -> Handler:
    """Register `handler(model)` to run at every call, once its cost is charged and deferred work is done."""
    TICKS.append(handler)
    return handler


# -- helpers the services share -------------------------------------------------------------
def tags_of(params: dict[str, Any]) -> list[dict[str, Any]]:
    tags = list(params.get("Tags") or [])
    for spec in params.get("TagSpecifications") or []:
        tags += spec.get("Tags") or []
    return tags


def tag(tags: Iterable[dict[str, Any]], key: str) -> str | None:
    return next((t.get("Value") for t in tags if t.get("Key") == key), None)


def override(items: Iterable[dict[str, Any]], id_key: str, field_name: str, state_of: Callable[[str], Any],
             wrap: Callable[[Any], Any] = lambda state: state) -> None:
    """Put the modeled state into each described item the model knows (unknown ones keep moto's)."""
    for item in items:
        state = state_of(item[id_key])
        if state is not None:
            item[field_name] = wrap(state)


def refuse_in_use(model: LatencyModel, code: str, message: str, using: list[str], released: float | None,
                  window: float, *, operation: str, service: str, rule: str) -> Any:
    """A delete refused while `using` names something (a violation of `rule`), and for `window` s after
    the last user went at `released` (not a mistake of the caller: not everywhere yet; retried)."""
    if using:
        refused = model.refuse(code, f"{message} ({', '.join(using)})", operation=operation, service=service,
                               rule=rule)
        if refused is not None:
            return refused
    if released is not None and model.now - released < window:
        return model.refuse(code, message, operation=operation, service=service)
    return None
