"""`LatencyModel`: the model's state, the botocore hooks that run the services' handlers, and the
ledger of what it refused.

model = LatencyModel(aws, clock); ...; model.violations, model.refusals, model.spans
"""
from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

import boto3

# Importing a service module registers its handlers (route53, ssm and vpc are not used here otherwise).
from bench.model import (  # noqa: F401
    acm,
    autoscaling,
    builders,
    cloudfront,
    ec2,
    elbv2,
    figures,
    iam,
    load,
    rds,
    route53,
    ssm,
    vpc,
    wafv2,
)
from bench.model.core import AFTER, BEFORE, PARAMS, RULES, TICKS, Refusal, Span, refusal, tag, tags_of
from threetier.aws import PART_TAG, Aws, Clock

HOOKED_SERVICES = ("ec2", "rds", "elbv2", "autoscaling", "ssm", "iam", "s3", "sts", "acm", "route53", "wafv2",
                   "cloudfront")

# Every long operation, in this order: `spans` sorts by Part and start, and ties keep it (the chart's rows).
SPAN_SOURCES: tuple[Callable[[LatencyModel], list[Span]], ...] = (
    ec2.nat_spans, rds.spans, ec2.instance_spans, ec2.image_spans, elbv2.spans, autoscaling.spans, acm.spans,
    wafv2.spans, cloudfront.spans, iam.spans,
)


class LatencyModel:
    """Hooks the clients of one `Aws` object and makes moto behave as AWS does in time; see the package
    docstring (bench/model/__init__.py)."""

    def __init__(self, aws: Aws, clock: Clock | None = None, *, relax: Iterable[str] = (),
                 health_needs_database: bool = False):
        unknown = set(relax) - set(RULES)
        if unknown:
            raise ValueError(f"unknown rules {sorted(unknown)}; rules: {', '.join(RULES)}")
        self.aws = aws
        self.clock = clock or aws.clock  # the base clock: never aws.clock later, an engine may wrap it
        self.relax = frozenset(relax)
        # The app's /health is liveness (no database) since the app answers /ready for that; set this
        # to model a tier whose bootstrap health wait needs the database writer named in its user data.
        self.health_needs_database = health_needs_database
        self.lock = threading.RLock()
        self.refusals: list[Refusal] = []
        self.relaxed: list[str] = []          # rule breaches let through because of `relax`
        self.calls = 0
        self.call_seconds = 0.0
        # What the model knows, by service (the records are defined in each service's module).
        self.polls: dict[str, int] = {}        # NAT states seen by DescribeNatGateways: how a caller waited
        self.profiles: dict[str, float] = {}   # instance profile name/arn -> created
        self.nats: dict[str, ec2.NatGateway] = {}
        self.instances: dict[str, ec2.Instance] = {}
        self.images: dict[str, ec2.Image] = {}
        self.clusters: dict[str, rds.AuroraCluster] = {}
        self.db_instances: dict[str, rds.AuroraInstance] = {}
        self.load_balancers: dict[str, elbv2.LoadBalancer] = {}
        self.listeners: dict[str, set[str]] = {}   # target group ARN -> load balancer ARNs
        self.forwards: dict[str, elbv2.Listener] = {}   # listener ARN -> its forward weights, over time
        self.listened: dict[str, float] = {}       # target group ARN -> first put on a listener
        self.load: load.Load | None = None          # a steady request load being served (load.py)
        # Instances terminated while serving: (when, instance, target group); load.py counts their requests
        self.serving_terminations: list[tuple[float, str, str]] = []
        self.groups: dict[str, autoscaling.AutoScalingGroup] = {}
        self.commands: dict[tuple[str, str], float] = {}  # (command, instance) -> sent
        self.certificates: dict[str, acm.Certificate] = {}
        self.cnames: dict[tuple[str, str], float] = {}     # CNAMEs written to Route 53: (name., value.) -> when
        self.web_acls: dict[str, wafv2.WebAcl] = {}
        self.associations: dict[str, str] = {}             # resource ARN -> web ACL ARN (ALBs, distributions)
        self.distributions: dict[str, cloudfront.Distribution] = {}  # distribution ID -> its record
        self._deferred: list[tuple[float, str, Callable[[], None]]] = []
        self._raw: dict[str, Any] = {}
        self._hooked: set[int] = set()
        for service in HOOKED_SERVICES:
            self._hook(aws.client(service))
        # Clients the Aws object makes later (scan's services ...) are charged too.
        original_client = aws.client

        def client(service: str, region: str | None = None) -> Any:
            made = original_client(service, region)
            self._hook(made)
            return made
        aws.client = client  # type: ignore[method-assign]

    # -- installation -------------------------------------------------------------------
    def _hook(self, client: Any) -> None:
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))
        events = client.meta.events
        events.register_first("before-parameter-build", self._keep_params)
        events.register_first("before-call", self._before_call)
        events.register_first("after-call", self._after_call)
        # After _keep_params and the Aws object's own record of the parameters as the caller gave them
        # (botocore runs an operation's own handlers before the service-wide ones).
        events.register_last("before-parameter-build", self._rewrite_params)

    def raw(self, service: str, region: str | None = None) -> Any:
        """The model's own, unhooked view of moto (not counted as a call of the engine), in the stack's
        region or in `region` (CloudFront's certificate: us-east-1)."""
        key = f"{service}@{region or self.aws.region}"
        if key not in self._raw:
            made = boto3.client(service, region_name=region or self.aws.region)  # type: ignore[call-overload]
            made._threetier_bench_internal = True  # call counters skip these
            self._raw[key] = made
        return self._raw[key]

    @property
    def now(self) -> float:
        return self.clock.now()

    @property
    def violations(self) -> list[str]:
        return [str(r) for r in self.refusals if r.violation]

    def rule_hits(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.refusals:
            if r.rule:
                counts[r.rule] = counts.get(r.rule, 0) + 1
        return counts

    # -- dispatch -------------------------------------------------------------------------
    @staticmethod
    def _op(model: Any) -> tuple[str, str]:
        return model.service_model.service_name, model.name

    def _keep_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = copy.deepcopy(params)

    def _rewrite_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """What moto is sent, when its answer would be wrong (the services' `rewrite_params`)."""
        rewrite = PARAMS.get(self._op(model))
        if rewrite is not None:
            rewrite(params)

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        service, operation = self._op(model)
        network_create = service == "ec2" and operation in figures.NETWORK_CREATES
        cost = figures.NETWORK_CREATE_SECONDS if network_create else figures.CALL_SECONDS
        with self.lock:
            self.clock.sleep(cost)  # the base clock, on purpose (see the package docstring)
            self.calls += 1
            self.call_seconds += cost
            self._tick()
            handler = BEFORE.get((service, operation))
            if handler is None:
                return None
            params = context.get("bench_params", {})
            result = handler(self, params, context=context, service=service, operation=operation)
            if result is not None:
                context["bench_answered"] = True
            return result

    def _after_call(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], http_response: Any = None,
                    **_: Any) -> None:
        if context.get("bench_answered") or "Error" in parsed:
            return
        if http_response is not None and getattr(http_response, "status_code", 200) >= 300:
            return
        handlers = AFTER.get(self._op(model))
        if not handlers:
            return
        with self.lock:
            for handler in handlers:
                handler(self, parsed, params=context.get("bench_params", {}), context=context)

    # -- the ledger ---------------------------------------------------------------------------
    def refuse(self, code: str, message: str, *, operation: str, service: str = "ec2",
               rule: str | None = None) -> Any:
        """Record and return a refusal; a `rule` makes it a violation (unless relaxed: then None, let through)."""
        if rule is not None and rule in self.relax:
            self.relaxed.append(f"{rule}: {operation}: {message}")
            return None
        self.refusals.append(Refusal(self.now, service, operation, code, message, rule, rule is not None))
        return refusal(code, message)

    def violation(self, rule: str, operation: str, message: str, service: str = "ec2") -> None:
        """A breach that real AWS would not refuse at the call (it fails later)."""
        if rule in self.relax:
            self.relaxed.append(f"{rule}: {operation}: {message}")
            return
        self.refusals.append(Refusal(self.now, service, operation, rule, message, rule, True))

    # -- deferred work ----------------------------------------------------------------------------
    def defer(self, due: float, what: str, action: Callable[[], None]) -> None:
        self._deferred.append((due, what, action))
        self._deferred.sort(key=lambda d: d[0])

    def _tick(self) -> None:
        """Carry out what has come due: deferred deletes, then the services' `on_tick` (bootstrap outcomes)."""
        now = self.now
        while self._deferred and self._deferred[0][0] <= now:
            _, _, action = self._deferred.pop(0)
            action()
        for tick in TICKS:
            tick(self)

    def settle(self, until: float | None = None) -> None:
        """Carry out everything deferred (e.g. at the end of a run), without advancing the clock."""
        with self.lock:
            while self._deferred and (until is None or self._deferred[0][0] <= until):
                _, _, action = self._deferred.pop(0)
                action()

    def part(self, params: dict[str, Any]) -> int | None:
        """The Part a create belongs to: its PART_TAG, else the Part the Aws object is working for."""
        value = tag(tags_of(params), PART_TAG)
        if value and value.isdigit():
            return int(value)
        match = re.match(r"Part (\d+)", self.aws.part or "")
        return int(match.group(1)) if match else None

    # -- what tests and the benchmark ask -----------------------------------------------------
    def nat_state(self, nat_id: str, at: float | None = None) -> str:
        return ec2.nat_state(self, nat_id, at)

    def bootstrap(self, instance_id: str) -> tuple[float | None, float | None, str | None]:
        """(done at, failed at, why) of a builder's bootstrap, judged once it has started."""
        return builders.bootstrap(self, instance_id)

    @property
    def spans(self) -> list[Span]:
        """Every modeled operation (requested -> ready, delete requested -> gone), for a Gantt chart."""
        with self.lock:
            spans = [span for source in SPAN_SOURCES for span in source(self)]
            return sorted(spans, key=lambda s: (s.part or 0, s.start))
