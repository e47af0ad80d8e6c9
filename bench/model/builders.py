"""Builders: instances whose user data bootstraps a tier, judged action by action.

User data starts 30 s after `running` and is charged action by action from the rendered script
(userdata.py). It needs the internet (an IGW with a public IP, or an available NAT gateway) when it
starts, unless the script calls `wait_for_network` (common.sh) before any other step that needs it:
then it waits (up to 15 min) for a NAT gateway still pending, and only a subnet with no way out at all
is a violation (`bootstrap-offline`). With health_needs_database=True its health wait also waits for
the database writer named in its user data (`bootstrap-no-database`): off, as the app's /health is
liveness. When it is over, or failed, is what SSM Run Command answers (ssm.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from bench.model import figures
from bench.model.core import on_tick
from bench.model.ec2 import Instance, nat_state

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


def internet_from(model: LatencyModel, instance: Instance, at: float) -> tuple[float | None, str | None]:
    """From when, at `at` or later, the instance's subnet reaches the internet by its routes as they
    are now: `at` itself, the time its NAT gateway becomes available, or None (never); and, unless
    it is `at`, why not then."""
    ec2 = model.raw("ec2")
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id",
                                                 "Values": [instance.subnet]}])["RouteTables"]
    if not tables and instance.vpc:
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [instance.vpc]},
                                                    {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    routes = [r for t in tables[:1] for r in t.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    if not routes:
        return None, f"subnet {instance.subnet} has no route to the internet"
    route = routes[0]
    if route.get("NatGatewayId"):
        nat_id = route["NatGatewayId"]
        state = nat_state(model, nat_id, at=at)
        if state == "available":
            return at, None
        why = f"its route goes to NAT gateway {nat_id}, {state} when the bootstrap needed it"
        nat = model.nats.get(nat_id)
        if state == "pending" and nat is not None:
            ready = nat.created + figures.NAT_CREATE_SECONDS
            return (ready, why) if nat.deleted is None or nat.deleted > ready else (None, why)
        return None, why
    if str(route.get("GatewayId", "")).startswith("igw-"):
        if instance.public:
            return at, None
        return None, f"subnet {instance.subnet} routes to the IGW but it has no public IP"
    return None, f"subnet {instance.subnet}'s default route goes nowhere usable"


def _database_ready_at(model: LatencyModel, user_data: str) -> tuple[bool, float | None]:
    """(whether the script names one of our clusters, when its writer is available)."""
    for cluster in model.clusters.values():
        if cluster.endpoint and cluster.endpoint in user_data:
            members = sorted((i for i in model.db_instances.values() if i.cluster == cluster.id),
                             key=lambda i: i.requested)
            if not members:
                return True, None
            return True, max(members[0].ready, cluster.available_at)
    return False, None


def _judge(model: LatencyModel, instance: Instance) -> None:
    """Lay the bootstrap out action by action from its start; decide whether and when it fails."""
    t = instance.bootstrap_start
    segments: list[tuple[str, float, float]] = []
    online, offline = internet_from(model, instance, t)
    # Unless wait_for_network comes before its first step that goes out, the way out must be there now.
    going_out = [label for label, _ in instance.actions if label not in ("systemctl enable", "health")]
    if online != t and going_out[:1] != ["network"]:
        message = f"builder {instance.name} ({instance.id}): bootstrap without internet: {offline}"
        model.violation("bootstrap-offline", "RunInstances", message)
        instance.outcome = ([("bootstrap (no internet)", t, t + figures.BOOTSTRAP_FAIL_SECONDS)], None,
                            t + figures.BOOTSTRAP_FAIL_SECONDS, offline)
        return
    for label, seconds in instance.actions:
        if label == "network":
            online, offline = internet_from(model, instance, t)
            reason = f"bootstrap without internet: {offline}"
            if online is not None and online > t + figures.NETWORK_WAIT_SECONDS:
                reason += ", longer than the wait for the network"
            went_on = _wait(model, instance, segments, t, online, figures.NETWORK_WAIT_SECONDS, "network",
                            "bootstrap-offline", reason)
        elif label == "health":
            if not model.health_needs_database:
                continue
            names_db, ready = _database_ready_at(model, instance.user_data)
            if not names_db:
                continue
            went_on = _wait(model, instance, segments, t, ready, figures.HEALTH_WAIT_SECONDS, "database",
                            "bootstrap-no-database", "the database writer was not available within the health wait")
        else:
            segments.append((label, t, t + seconds))
            t += seconds
            continue
        if went_on is None:
            return
        t = went_on
    instance.outcome = (segments, t, None, None)


def _wait(model: LatencyModel, instance: Instance, segments: list[tuple[str, float, float]], t: float,
          ready: float | None, limit: float, what: str, rule: str, reason: str) -> float | None:
    """The bootstrap waits from `t`, `limit` s at most, for what is ready at `ready` (None: never):
    when it goes on, or None when it gives up (a violation of `rule`; the outcome is set)."""
    if ready is None or ready > t + limit:
        model.violation(rule, "RunInstances", f"builder {instance.name} ({instance.id}): {reason}")
        segments.append((f"wait for the {what}", t, t + limit))
        instance.outcome = (segments, None, t + limit, reason)
        return None
    if ready > t:
        segments.append((f"wait for the {what}", t, ready))
    return max(t, ready)


@on_tick
def judge_started_bootstraps(model: LatencyModel) -> None:
    """Judge each bootstrap at the first call after it started, from the routes as they are then: its
    outcome is decided once."""
    now = model.now
    for instance in model.instances.values():
        if instance.outcome is None and instance.user_data and now >= instance.bootstrap_start:
            _judge(model, instance)


def bootstrap(model: LatencyModel, instance_id: str) -> tuple[float | None, float | None, str | None]:
    """(done at, failed at, why) of a builder's bootstrap, judged once it has started."""
    instance = model.instances[instance_id]
    if instance.outcome is None:
        if model.now < instance.bootstrap_start:
            return None, None, None
        _judge(model, instance)
    _, done, failed, reason = instance.outcome  # type: ignore[misc]
    return done, failed, reason
