"""config.yaml: loading and validation (docs/interface.md, "config.yaml").

Every key has a default that reproduces the guide. Validation happens here,
before any AWS call, and every error names the key's path in one line.

One block per section of the file, in its order: the section's defaults, the key
type rules `_merge` needs beyond its defaults, its dataclass, its checks and how it
is built. `load` and `parse` at the end assemble them.
"""
from __future__ import annotations

import copy
import difflib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from threetier.errors import UsageError

DEFAULT_CONFIG_PATH = Path("config.yaml")


class ConfigError(UsageError):
    """A config.yaml problem: the message names the key's path."""


QUOTED_LENGTH = 60  # characters of a refused value shown in its message


def _quoted(value: Any) -> str:
    """A refused value in its message: repr'd (one line, its control characters escaped) and cut short."""
    shown = repr(value)
    return shown if len(shown) <= QUOTED_LENGTH else f"{shown[:QUOTED_LENGTH - 1]}…"


def _cidr_block(value: str, key: str) -> ipaddress.IPv4Network:
    """A CIDR block of network: or access:, refused in one line naming its key. Written as AWS writes it
    (10.0.0.0/16): a netmask, a prefix with a leading zero or none at all would reach AWS as written."""
    try:
        block = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise ConfigError(f"{key}: {_quoted(value)} is not an IPv4 CIDR block like 10.0.0.0/16") from None
    if str(block) != value:
        raise ConfigError(f"{key}: write {_quoted(value)} as {block}")
    return block


# --- stack, region (the top level) -------------------------------------------------------------

TOP_LEVEL_DEFAULTS: dict[str, Any] = {
    "stack": "threetier",
    "region": "us-east-1",
}

STACK_NAME = re.compile(r"[a-z][a-z0-9-]{1,20}", re.ASCII)
# ALB names may not start with internal-, security groups with sg-, buckets with xn-- or sthree.
RESERVED_STACK_PREFIXES = ("internal-", "sg-", "xn--", "sthree", "amzn-s3-demo-")
REGION_NAME = re.compile(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", re.ASCII)


def _check_top_level(stack: str, region: str) -> None:
    if not STACK_NAME.fullmatch(stack):
        raise ConfigError(f"stack: {_quoted(stack)} must match [a-z][a-z0-9-]{{1,20}}")
    if stack.endswith("-") or "--" in stack:  # RDS identifiers refuse both
        raise ConfigError(f"stack: {_quoted(stack)} must not end with '-' or contain '--'")
    if stack.startswith(RESERVED_STACK_PREFIXES):
        raise ConfigError(f"stack: {_quoted(stack)} must not start with "
                          f"{', '.join(RESERVED_STACK_PREFIXES)} (AWS reserves them in names)")
    if not REGION_NAME.fullmatch(region):
        raise ConfigError(f"region: {_quoted(region)} is not an AWS region name like us-east-1")


# --- network ------------------------------------------------------------------------------------

NETWORK_DEFAULTS: dict[str, Any] = {
    "vpc_cidr": "10.0.0.0/16",
    "azs": [],
    "subnets": {
        "web": ["10.0.0.0/24", "10.0.1.0/24"],
        "app": ["10.0.2.0/24", "10.0.3.0/24"],
        "db": ["10.0.4.0/24", "10.0.5.0/24"],
    },
    "nat_gateways": "per_az",
}

AZ_NAME = re.compile(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d[a-z]", re.ASCII)
TIERS = ("web", "app", "db")


@dataclass(frozen=True)
class Network:
    vpc_cidr: str
    azs: tuple[str, ...]
    web_subnets: tuple[str, str]
    app_subnets: tuple[str, str]
    db_subnets: tuple[str, str]
    nat_gateways: str


def _check_network(network: dict[str, Any], region: str) -> None:
    vpc = _cidr_block(network["vpc_cidr"], "network.vpc_cidr")
    if not 16 <= vpc.prefixlen <= 28:
        raise ConfigError(f"network.vpc_cidr: a VPC's prefix must be /16 to /28, got /{vpc.prefixlen}")
    azs = network["azs"]
    if len(azs) not in (0, 2):
        raise ConfigError(f"network.azs: give exactly two availability zones, or [] for the region's first two; got {len(azs)}")
    for index, az in enumerate(azs):
        if not AZ_NAME.fullmatch(az) or not az.startswith(region):
            raise ConfigError(f"network.azs[{index}]: {_quoted(az)} is not an availability zone of region {region}")
    if len(set(azs)) != len(azs):
        raise ConfigError("network.azs: the two availability zones must differ")
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for tier in TIERS:
        cidrs = network["subnets"][tier]
        if len(cidrs) != 2:
            raise ConfigError(f"network.subnets.{tier}: give one CIDR per AZ (exactly two), got {len(cidrs)}")
        for index, cidr in enumerate(cidrs):
            key = f"network.subnets.{tier}[{index}]"
            subnet = _cidr_block(cidr, key)
            if not subnet.subnet_of(vpc):
                raise ConfigError(f"{key}: {cidr} is not inside network.vpc_cidr {vpc}")
            if not 16 <= subnet.prefixlen <= 28:
                raise ConfigError(f"{key}: a subnet's prefix must be /16 to /28, got /{subnet.prefixlen}")
            for other_key, other in seen:
                if subnet.overlaps(other):
                    raise ConfigError(f"{key}: {cidr} overlaps {other_key} {other}")
            seen.append((key, subnet))
    if network["nat_gateways"] not in ("per_az", "single"):
        raise ConfigError(f"network.nat_gateways: must be per_az or single, got {_quoted(network['nat_gateways'])}")


def _network_from(network: dict[str, Any]) -> Network:
    subnets = network["subnets"]
    return Network(
        vpc_cidr=network["vpc_cidr"],
        azs=tuple(network["azs"]),
        web_subnets=tuple(subnets["web"]),
        app_subnets=tuple(subnets["app"]),
        db_subnets=tuple(subnets["db"]),
        nat_gateways=network["nat_gateways"],
    )


# --- access -------------------------------------------------------------------------------------

ACCESS_DEFAULTS: dict[str, Any] = {
    "client_cidrs": ["0.0.0.0/0"],
    "admin_cidr": None,
}
ACCESS_NULLABLE = {"access.admin_cidr": str}

# access.admin_cidr reaches the web and app instances themselves, past both load balancers: the
# operator's own address or network, never a large slice of the internet.
ADMIN_CIDR_WIDEST = 16
# Each client CIDR is one inbound rule of the external ALB's security group (two with HTTPS: 80 and 443),
# and a security group takes 60 inbound rules by default ("Amazon VPC quotas").
SECURITY_GROUP_RULES_MAX = 60


@dataclass(frozen=True)
class Access:
    client_cidrs: tuple[str, ...]
    admin_cidr: str | None


def _check_access(access: dict[str, Any], https: bool) -> None:
    cidrs = access["client_cidrs"]
    if not cidrs:
        raise ConfigError("access.client_cidrs: give at least one CIDR (0.0.0.0/0 for everyone)")
    ports = 2 if https else 1
    if len(cidrs) * ports > SECURITY_GROUP_RULES_MAX:
        raise ConfigError(f"access.client_cidrs: at most {SECURITY_GROUP_RULES_MAX // ports} CIDRs"
                          f"{' with HTTPS (edge.domain: rules for 80 and 443)' if https else ''}: each is an inbound "
                          f"rule of the external ALB's security group, which takes {SECURITY_GROUP_RULES_MAX} by "
                          f"default; got {len(cidrs)}")
    for index, cidr in enumerate(cidrs):
        _cidr_block(cidr, f"access.client_cidrs[{index}]")
        if cidr in cidrs[:index]:
            raise ConfigError(f"access.client_cidrs[{index}]: {cidr} is given twice")
    if access["admin_cidr"] is not None:
        admin = _cidr_block(access["admin_cidr"], "access.admin_cidr")
        if admin.prefixlen < ADMIN_CIDR_WIDEST:
            # The guide's "my IP": a wide range here defeats the security group chain.
            raise ConfigError(f"access.admin_cidr: {access['admin_cidr']} is wider than a /{ADMIN_CIDR_WIDEST}: it opens "
                              f"the web and app tiers directly to that range, bypassing the load balancers; "
                              f"give your own address (e.g. 203.0.113.7/32) or your network's range")


def _access_from(access: dict[str, Any]) -> Access:
    return Access(client_cidrs=tuple(access["client_cidrs"]), admin_cidr=access["admin_cidr"])


# --- database -----------------------------------------------------------------------------------

# Aurora MySQL 3 (MySQL 8.0 compatible), pinned so every stack gets the same engine.
AURORA_MYSQL_VERSION = "8.0.mysql_aurora.3.10.3"

DATABASE_DEFAULTS: dict[str, Any] = {
    "engine_version": AURORA_MYSQL_VERSION,
    "instance_class": "db.t4g.medium",
    "name": "webappdb",
    "username": "admin",
    "backup_retention_days": 7,
    "deletion_protection": False,
    "restore_from": None,  # latest | a cluster snapshot id: a NEW cluster restored from it (none there yet)
}

AURORA_MYSQL3_VERSION = re.compile(r"8\.0\.mysql_aurora\.3\.\d{2}\.\d+", re.ASCII)
DB_INSTANCE_CLASS = re.compile(r"db\.[a-z0-9-]+\.[a-z0-9]+", re.ASCII)
MYSQL_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}", re.ASCII)
# MySQL/Aurora words that cannot be the master username.
RESERVED_DB_USERNAMES = frozenset({"root", "rdsadmin", "mysql", "user", "select", "table"})


@dataclass(frozen=True)
class Database:
    engine_version: str
    instance_class: str
    name: str
    username: str
    backup_retention_days: int
    deletion_protection: bool
    restore_from: str | None


DATABASE_NULLABLE = {"database.restore_from": str}

# A cluster snapshot id (a letter, then letters, digits and single hyphens), or its ARN (another account's shared one).
SNAPSHOT_ID = re.compile(r"[A-Za-z](?:-?[A-Za-z0-9])*|arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster-snapshot:[A-Za-z0-9:-]+",
                         re.ASCII)


def _check_database(db: dict[str, Any]) -> None:
    if not AURORA_MYSQL3_VERSION.fullmatch(db["engine_version"]):
        raise ConfigError(f"database.engine_version: {_quoted(db['engine_version'])} is not an Aurora MySQL 3 version like {AURORA_MYSQL_VERSION}")
    if not DB_INSTANCE_CLASS.fullmatch(db["instance_class"]):
        raise ConfigError(f"database.instance_class: {_quoted(db['instance_class'])} is not a DB instance class like db.t4g.medium")
    if not MYSQL_IDENTIFIER.fullmatch(db["name"]):
        raise ConfigError(f"database.name: {_quoted(db['name'])} must be a letter then up to 15 letters, digits or _")
    if not MYSQL_IDENTIFIER.fullmatch(db["username"]) or db["username"].lower() in RESERVED_DB_USERNAMES:
        raise ConfigError(f"database.username: {_quoted(db['username'])} must be a letter then up to 15 letters, digits or _, and not a reserved name")
    if not 1 <= db["backup_retention_days"] <= 35:
        raise ConfigError(f"database.backup_retention_days: must be 1 to 35, got {db['backup_retention_days']}")
    restore_from = db["restore_from"]
    if restore_from is not None and not (isinstance(restore_from, str) and SNAPSHOT_ID.fullmatch(restore_from)):
        raise ConfigError(f"database.restore_from: {_quoted(restore_from)} is neither null, latest nor a cluster "
                          f"snapshot id (`threetier status` lists the stack's)")


# --- what the app and web tiers share: instance type, Auto Scaling group, scaling policies ------

INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+", re.ASCII)
# Each instance of a tier is one target of its load balancer's target group, and Elastic Load Balancing
# allows 1,000 targets per target group (and per Application Load Balancer) by default ("Quotas for your
# Application Load Balancers"): a group larger than that could never be behind its ALB. The account's
# vCPU quota, often far lower, is the preflight's to check (threetier/preflight.py).
GROUP_SIZE_MAX = 1000
# ALBRequestCountPerTarget's target value is a Double for which EC2 Auto Scaling documents no bound
# (Application Auto Scaling's, 2^360, is no count of requests). Ours: a million requests a minute per
# instance (16,667 a second), beyond what one instance serves through an ALB; and a number AWS, a float
# and every message can hold.
REQUESTS_PER_TARGET_MAX = 1_000_000


@dataclass(frozen=True)
class AsgSize:
    min: int
    desired: int
    max: int


@dataclass(frozen=True)
class Scaling:
    """Target tracking for a tier's Auto Scaling group; None turns that policy off."""
    cpu_target: float | None            # average CPU % of the group's instances
    requests_per_target: int | None     # ALB requests per instance per minute

    @property
    def on(self) -> bool:
        return self.cpu_target is not None or self.requests_per_target is not None


NO_SCALING = Scaling(cpu_target=None, requests_per_target=None)


@dataclass(frozen=True)
class Spot:
    """`<tier>.spot`: the tier's group as a mixed instances policy (threetier.blocks.balancing): the
    first `on_demand_base` instances on-demand, `on_demand_percent` % of the rest, the others Spot,
    across `instance_types` (the first of them is the on-demand one)."""
    on_demand_base: int
    on_demand_percent: int
    instance_types: tuple[str, ...]

    def on_demand(self, instances: int) -> int:
        """How many of a group of `instances` are on-demand: the base, then the percentage of the rest,
        rounded up (AWS rounds a fraction in favour of on-demand)."""
        base = min(instances, self.on_demand_base)
        return base + -(-(instances - base) * self.on_demand_percent // 100)


# What a `spot` mapping's keys default to; instance_types has none (2 to 20 are required). AWS allows up
# to 20 overrides of a launch template in a mixed instances policy ("Auto Scaling groups with multiple
# instance types and purchase options"); 2 at least, or no Spot pool could stand in for another.
SPOT_DEFAULTS: dict[str, Any] = {"on_demand_base": 1, "on_demand_percent": 0, "instance_types": []}
SPOT_TYPES_MIN, SPOT_TYPES_MAX = 2, 20


def _check_spot(tier: str, spot: dict[str, Any] | None) -> None:
    if spot is None:
        return
    if not 0 <= spot["on_demand_base"] <= GROUP_SIZE_MAX:
        raise ConfigError(f"{tier}.spot.on_demand_base: a number of on-demand instances, 0 to {GROUP_SIZE_MAX:,}, "
                          f"got {spot['on_demand_base']}")
    if not 0 <= spot["on_demand_percent"] <= 100:
        raise ConfigError(f"{tier}.spot.on_demand_percent: the on-demand share above the base, 0 to 100, "
                          f"got {spot['on_demand_percent']}")
    types = spot["instance_types"]
    if not SPOT_TYPES_MIN <= len(types) <= SPOT_TYPES_MAX:
        raise ConfigError(f"{tier}.spot.instance_types: {SPOT_TYPES_MIN} to {SPOT_TYPES_MAX} instance types, "
                          f"got {len(types)}")
    for index, instance_type in enumerate(types):
        if not INSTANCE_TYPE.fullmatch(instance_type):
            raise ConfigError(f"{tier}.spot.instance_types[{index}]: {_quoted(instance_type)} is not an EC2 "
                              f"instance type like t3.micro")
        if instance_type in types[:index]:
            raise ConfigError(f"{tier}.spot.instance_types[{index}]: {instance_type} is listed twice")


def _spot(section: dict[str, Any] | None) -> Spot | None:
    if section is None:
        return None
    return Spot(on_demand_base=section["on_demand_base"], on_demand_percent=section["on_demand_percent"],
                instance_types=tuple(section["instance_types"]))


def _check_tier(tier: str, section: dict[str, Any]) -> None:
    if not INSTANCE_TYPE.fullmatch(section["instance_type"]):
        raise ConfigError(f"{tier}.instance_type: {_quoted(section['instance_type'])} is not an EC2 instance type like t3.micro")
    size = section["asg"]
    for bound in ("min", "desired", "max"):
        if not 0 <= size[bound] <= GROUP_SIZE_MAX:
            raise ConfigError(f"{tier}.asg.{bound}: a number of instances, 0 to {GROUP_SIZE_MAX:,} (Elastic Load "
                              f"Balancing's default quota of targets per target group), got {size[bound]}")
    if not size["min"] <= size["desired"] <= size["max"]:
        raise ConfigError(f"{tier}.asg: needs min <= desired <= max, got {size['min']} / {size['desired']} / {size['max']}")
    if size["max"] < 1:
        raise ConfigError(f"{tier}.asg.max: must be at least 1")
    _check_scaling(tier, section["scaling"], size)
    _check_spot(tier, section["spot"])


def _check_scaling(tier: str, scaling: dict[str, Any] | None, size: dict[str, int]) -> None:
    if scaling is None:
        return
    cpu, requests = scaling["cpu_target"], scaling["requests_per_target"]
    if cpu is not None and not 0 < cpu <= 100:
        raise ConfigError(f"{tier}.scaling.cpu_target: a CPU utilisation in percent, more than 0 and at most 100, "
                          f"got {cpu}")
    if requests is not None and not 1 <= requests <= REQUESTS_PER_TARGET_MAX:
        raise ConfigError(f"{tier}.scaling.requests_per_target: a number of requests per instance per minute, "
                          f"1 to {REQUESTS_PER_TARGET_MAX:,}, got {requests}")
    # Refused, not warned about: a policy on a group with max == min can never change its size (AWS
    # keeps desired within min..max), yet status would show the tier as scaling; under load it
    # would silently not. Fixed groups say so with `scaling: null` (the guide's 2/2/2).
    if (cpu is not None or requests is not None) and size["max"] == size["min"]:
        raise ConfigError(f"{tier}.scaling: {tier}.asg has max == min ({size['max']}), so no policy could ever "
                          f"change the group's size; raise {tier}.asg.max, or set {tier}.scaling: null for a fixed group")


def _scaling(section: dict[str, Any] | None) -> Scaling:
    if section is None:
        return NO_SCALING
    cpu = section["cpu_target"]
    return Scaling(cpu_target=None if cpu is None else float(cpu), requests_per_target=section["requests_per_target"])


# --- app ----------------------------------------------------------------------------------------

APP_DEFAULTS: dict[str, Any] = {
    "instance_type": "t3.micro",
    "port": 4000,
    "asg": {"min": 2, "desired": 2, "max": 4},
    "scaling": {"cpu_target": 60, "requests_per_target": None},
    "keep_builder": False,
    # Your own app instead of the demo (threetier/sources.py checks the directory, README "Your application").
    "source": None,        # a directory; relative to the config file's directory
    "runtime": None,       # a key of sources.RUNTIMES; required with source
    "install": None,       # run once on the builder, in the code's directory
    "start": None,         # serves on $PORT; required with source
    "health_path": "/health",
    "spot": None,          # SPOT_DEFAULTS' keys: Spot instances beside an on-demand base
}
APP_NULLABLE = {"app.scaling.requests_per_target": int, "app.source": str, "app.runtime": str, "app.install": str,
                "app.start": str}
# null turns that scaling policy (or, for the whole section, both) off.
APP_MAY_BE_NULL = frozenset({"app.scaling", "app.scaling.cpu_target"})
APP_ANY_NUMBER = frozenset({"app.scaling.cpu_target"})  # a CPU target of 62.5 %


@dataclass(frozen=True)
class AppTier:
    instance_type: str
    port: int
    asg: AsgSize
    scaling: Scaling
    keep_builder: bool
    source: str | None = None      # an absolute directory (load resolves it); None: the demo
    runtime: str | None = None
    install: str | None = None
    start: str | None = None
    health_path: str = "/health"
    spot: Spot | None = None


# What a target group's HealthCheckPath takes (1-1024 characters, starting with /).
HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,1023}", re.ASCII)
# app.install and app.start: one line of bash each, written into the builder's user data.
COMMAND_LENGTH_MAX = 1000


def _check_command(key: str, command: str | None) -> None:
    if command is None:
        return
    if not command.strip():
        raise ConfigError(f"{key}: an empty command; give one, or null")
    if "\n" in command or "\r" in command or "\0" in command:
        raise ConfigError(f"{key}: one line of shell, without line breaks or NUL (chain commands with &&)")
    if len(command) > COMMAND_LENGTH_MAX:
        raise ConfigError(f"{key}: at most {COMMAND_LENGTH_MAX} characters, got {len(command)}")


def _check_app(app: dict[str, Any]) -> None:
    _check_tier("app", app)  # app.port apart: _check runs _check_app_port last of all
    _check_app_code(app)


def _check_app_code(app: dict[str, Any]) -> None:
    """The keys of your own app (the directory itself: threetier/sources.py, before any AWS call)."""
    from threetier.sources import RUNTIMES  # sources reads this module's Config
    if not HEALTH_PATH.fullmatch(app["health_path"]):
        raise ConfigError(f"app.health_path: {_quoted(app['health_path'])} is not a URL path like /health "
                          f"(a target group's health check path: /, then up to 1023 of A-Z a-z 0-9 ._~!$&'()*+,;=:@%/-)")
    if app["source"] is None:
        for key in ("runtime", "install", "start"):
            if app[key] is not None:
                raise ConfigError(f"app.{key}: goes with app.source (your app's directory); without it the stack "
                                  f"serves the demo")
        if app["health_path"] != APP_DEFAULTS["health_path"]:
            raise ConfigError(f"app.health_path: goes with app.source; the demo answers "
                              f"{APP_DEFAULTS['health_path']} only")
        return
    if not app["source"].strip():
        raise ConfigError("app.source: an empty path; give your app's directory, or null for the demo")
    if app["runtime"] is None:
        raise ConfigError(f"app.runtime: required with app.source, one of {', '.join(RUNTIMES)}")
    if app["runtime"] not in RUNTIMES:
        raise ConfigError(f"app.runtime: unknown runtime {_quoted(app['runtime'])}"
                          f"{_did_you_mean(app['runtime'], RUNTIMES)} (known: {', '.join(RUNTIMES)})")
    if app["start"] is None:
        raise ConfigError("app.start: required with app.source: the command that serves your app on $PORT")
    _check_command("app.install", app["install"])
    _check_command("app.start", app["start"])


def _check_app_port(port: int) -> None:
    if not 1024 <= port <= 65535 or port in (3306,):
        raise ConfigError(f"app.port: must be an unprivileged TCP port (1024-65535, not 3306), got {port}")


def _source_path(source: str | None, base: Path | None) -> str | None:
    """A source directory as an absolute path: a relative one is relative to the config file's directory."""
    if source is None:
        return None
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else ((base or Path.cwd()) / path).absolute())


def _app_tier_from(app: dict[str, Any], base: Path | None) -> AppTier:
    return AppTier(
        instance_type=app["instance_type"],
        port=app["port"],
        asg=AsgSize(**app["asg"]),
        scaling=_scaling(app["scaling"]),
        keep_builder=app["keep_builder"],
        source=_source_path(app["source"], base),
        runtime=app["runtime"],
        install=app["install"],
        start=app["start"],
        health_path=app["health_path"],
        spot=_spot(app["spot"]),
    )


# --- web ----------------------------------------------------------------------------------------

WEB_DEFAULTS: dict[str, Any] = {
    "instance_type": "t3.micro",
    "asg": {"min": 2, "desired": 2, "max": 4},
    "scaling": {"cpu_target": 60, "requests_per_target": 1000},
    "keep_builder": False,
    "source": None,  # a directory of static files with index.html at its top; None: the demo's build
    "spot": None,    # as app.spot
}
WEB_NULLABLE = {"web.source": str}
# null turns that scaling policy (or, for the whole section, both) off.
WEB_MAY_BE_NULL = frozenset({"web.scaling", "web.scaling.cpu_target", "web.scaling.requests_per_target"})
WEB_ANY_NUMBER = frozenset({"web.scaling.cpu_target"})  # a CPU target of 62.5 %


@dataclass(frozen=True)
class WebTier:
    instance_type: str
    asg: AsgSize
    scaling: Scaling
    keep_builder: bool
    source: str | None = None  # an absolute directory (load resolves it); None: the demo's build
    spot: Spot | None = None


def _check_web(web: dict[str, Any]) -> None:
    _check_tier("web", web)
    if web["source"] is not None and not web["source"].strip():
        raise ConfigError("web.source: an empty path; give your site's directory, or null for the demo")


def _web_tier_from(web: dict[str, Any], base: Path | None) -> WebTier:
    return WebTier(instance_type=web["instance_type"], asg=AsgSize(**web["asg"]),
                   scaling=_scaling(web["scaling"]), keep_builder=web["keep_builder"],
                   source=_source_path(web["source"], base), spot=_spot(web["spot"]))


# --- load_balancers -----------------------------------------------------------------------------

# Nothing to check beyond the type, which _merge checks.
LOAD_BALANCERS_DEFAULTS: dict[str, Any] = {
    "deletion_protection": False,
}


@dataclass(frozen=True)
class LoadBalancers:
    deletion_protection: bool  # both ALBs; `down` refuses while it is on


# --- monitoring ---------------------------------------------------------------------------------

MONITORING_DEFAULTS: dict[str, Any] = {
    "alarms": True,
    "email": None,
    "dashboard": True,
    "flow_logs": True,
    "log_retention_days": 14,
}
MONITORING_NULLABLE = {"monitoring.email": str}

# The retentions CloudWatch Logs accepts (PutRetentionPolicy), in days.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
# Enough to catch a typo, not a full RFC 5322 parser: SNS itself is the final judge. Printable ASCII but
# for the space and a second @, and 254 characters at most (RFC 5321's longest path, less its brackets).
EMAIL = re.compile(r"[!-?A-~]+@[!-?A-~]+\.[!-?A-~]+", re.ASCII)
EMAIL_LENGTH = 254


@dataclass(frozen=True)
class Monitoring:
    alarms: bool             # the stack's CloudWatch alarms (tiers, external ALB, Aurora writer)
    email: str | None        # an SNS topic with this e-mail subscription receives the alarms
    dashboard: bool          # one CloudWatch dashboard for the stack
    flow_logs: bool          # VPC flow logs to CloudWatch Logs
    log_retention_days: int  # for every log group the stack creates


def _check_monitoring(monitoring: dict[str, Any]) -> None:
    email = monitoring["email"]
    if email is not None and (len(email) > EMAIL_LENGTH or not EMAIL.fullmatch(email)):
        raise ConfigError(f"monitoring.email: {_quoted(monitoring['email'])} is not an e-mail address")
    if monitoring["email"] is not None and not monitoring["alarms"]:
        raise ConfigError("monitoring.email: the e-mail receives the alarms, and monitoring.alarms is false; "
                          "set monitoring.alarms: true, or monitoring.email: null")
    if monitoring["log_retention_days"] not in LOG_RETENTION_DAYS:
        raise ConfigError(f"monitoring.log_retention_days: CloudWatch Logs keeps logs for one of "
                          f"{', '.join(map(str, LOG_RETENTION_DAYS))} days, got {monitoring['log_retention_days']}")


# --- edge ---------------------------------------------------------------------------------------

EDGE_DEFAULTS: dict[str, Any] = {
    "domain": None,            # e.g. shop.example.com; needs hosted_zone
    "hosted_zone": None,       # the Route 53 public zone holding it (name or ID)
    "certificate_arn": None,   # an existing ACM certificate instead of requesting one
    "https_redirect": True,    # with a certificate: 80 answers 301 to https
    "waf": False,              # a WAFv2 web ACL on the external ALB (threetier/blocks/waf.py)
    "waf_rate_limit": 2000,    # requests per 5 minutes per client IP
    "cdn": False,              # CloudFront in front of the external ALB (threetier/blocks/cdn.py)
    "cdn_certificate_arn": None,  # an ISSUED us-east-1 certificate for CloudFront instead of requesting one
}
EDGE_NULLABLE = {"edge.domain": str, "edge.hosted_zone": str, "edge.certificate_arn": str,
                 "edge.cdn_certificate_arn": str}
# CloudFront takes viewer certificates from ACM in us-east-1 only, whatever the stack's region.
CDN_CERTIFICATE_REGION = "us-east-1"

# A DNS hostname of two labels or more: letters, digits and inner hyphens, 63 per label, 253 in all.
HOSTNAME_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
# Any case in config.yaml (normalised to upper case, without the /hostedzone/ prefix).
HOSTED_ZONE_ID = re.compile(r"(/hostedzone/)?Z[A-Z0-9]{1,31}\Z", re.IGNORECASE | re.ASCII)
# ACM's RequestCertificate takes a DomainName of 64 characters at most.
ACM_DOMAIN_LENGTH = 64
ACM_ARN = re.compile(r"arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}", re.ASCII)
# AWS WAF's rate-based rule limit (RateBasedStatement.Limit, requests per 5 minutes): 10 to 2e9.
WAF_RATE_LIMIT = (10, 2_000_000_000)


@dataclass(frozen=True)
class Edge:
    """HTTPS, DNS and the WAF in front of the external ALB (Part 7: threetier/blocks/edge.py, threetier/blocks/waf.py)."""
    domain: str | None            # the site's name; with hosted_zone, an alias record to the external ALB
    hosted_zone: str | None       # a Route 53 public zone: its name or ID (never created, never deleted)
    certificate_arn: str | None   # the user's ACM certificate; None: one is requested for domain
    https_redirect: bool          # with HTTPS on, listener 80 answers 301 to https
    waf: bool
    waf_rate_limit: int
    cdn: bool = False                 # CloudFront in front of the ALB, which then answers CloudFront only
    cdn_certificate_arn: str | None = None  # the user's us-east-1 certificate for CloudFront

    @property
    def https(self) -> bool:
        return self.domain is not None

    @property
    def origin_domain(self) -> str | None:
        """With cdn: the name CloudFront reaches the ALB by over HTTPS (an alias record to the ALB, and
        a name of the ALB's certificate); the domain itself is CloudFront's."""
        return f"origin.{self.domain}" if self.cdn and self.domain else None


def is_hostname(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(HOSTNAME_LABEL.fullmatch(label) for label in labels) \
        and not labels[-1].isdigit() and len(labels[-1]) >= 2  # a top-level domain has 2 letters or more


def _lower(name: str | None) -> str | None:
    """DNS names compare without case or a trailing dot."""
    return None if name is None else name.lower().rstrip(".")


def _zone(zone: str | None) -> str | None:
    """A hosted zone ID in upper case without its /hostedzone/ prefix; a zone name as _lower."""
    if zone is not None and HOSTED_ZONE_ID.fullmatch(zone):
        return zone.split("/")[-1].upper()
    return _lower(zone)


def _check_edge(edge: dict[str, Any], region: str) -> None:
    domain, zone, certificate = _lower(edge["domain"]), edge["hosted_zone"], edge["certificate_arn"]
    if domain is not None and not is_hostname(domain):
        raise ConfigError(f"edge.domain: {_quoted(edge['domain'])} is not a DNS hostname like shop.example.com")
    if domain is not None and certificate is None and len(domain) > ACM_DOMAIN_LENGTH:
        raise ConfigError(f"edge.domain: ACM requests a certificate for a name of {ACM_DOMAIN_LENGTH} characters "
                          f"at most, and {domain} has {len(domain)}; use a shorter name, or give "
                          f"edge.certificate_arn (e.g. a wildcard certificate of a parent domain)")
    if domain is not None and zone is None:
        raise ConfigError("edge.domain: needs edge.hosted_zone, the Route 53 public zone that holds it (name or ID)")
    if zone is not None and domain is None:
        raise ConfigError("edge.hosted_zone: needs edge.domain, the name to point at the external load balancer")
    if zone is not None and not HOSTED_ZONE_ID.fullmatch(zone):
        zone_name = _lower(zone) or ""
        if not is_hostname(zone_name):
            raise ConfigError(f"edge.hosted_zone: {_quoted(zone)} is neither a hosted zone ID like Z0123456789ABCDEFGHIJ "
                              f"nor a zone name like example.com")
        if domain is not None and domain != zone_name and not domain.endswith(f".{zone_name}"):
            raise ConfigError(f"edge.domain: {domain} is not inside edge.hosted_zone {zone_name}")
    if certificate is not None:
        # An ALB takes certificates of its own region only.
        _check_acm_arn("edge.certificate_arn", certificate, region,
                       f"the stack in {region}; the load balancer can use a certificate of its own region only")
        if domain is None:
            raise ConfigError("edge.certificate_arn: needs edge.domain and edge.hosted_zone (the name it covers, "
                              "which the stack's alias record and URL use)")
    _check_cdn(edge, domain)
    low, high = WAF_RATE_LIMIT
    if not low <= edge["waf_rate_limit"] <= high:
        raise ConfigError(f"edge.waf_rate_limit: requests per 5 minutes per client IP, {low} to {high:_}, "
                          f"got {edge['waf_rate_limit']}")


def _check_acm_arn(key: str, arn: str, region: str, why_region: str) -> None:
    match = ACM_ARN.fullmatch(arn)
    if not match:
        raise ConfigError(f"{key}: {_quoted(arn)} is not an ACM certificate ARN like "
                          f"arn:aws:acm:{region}:123456789012:certificate/<uuid>")
    if match["region"] != region:
        raise ConfigError(f"{key}: the certificate is in {match['region']}, {why_region}")


def _check_cdn(edge: dict[str, Any], domain: str | None) -> None:
    certificate = edge["cdn_certificate_arn"]
    if edge["cdn"] and domain is None:
        raise ConfigError("edge.cdn: needs edge.domain and edge.hosted_zone (CloudFront serves the domain, and "
                          "reaches the load balancer under a name of it over HTTPS)")
    if certificate is None:
        return
    _check_acm_arn("edge.cdn_certificate_arn", certificate, CDN_CERTIFICATE_REGION,
                   f"CloudFront uses certificates of {CDN_CERTIFICATE_REGION} only")
    if not edge["cdn"]:
        raise ConfigError("edge.cdn_certificate_arn: needs edge.cdn: true (it is CloudFront's certificate)")


def _edge_from(edge: dict[str, Any]) -> Edge:
    return Edge(**{**edge, "domain": _lower(edge["domain"]), "hosted_zone": _zone(edge["hosted_zone"])})


# --- deploy -------------------------------------------------------------------------------------

DEPLOY_DEFAULTS: dict[str, Any] = {
    "watch_minutes": 5,
}
# After a blue/green switch, how long the new color is watched before the old one goes (0: not at all).
WATCH_MINUTES = (0, 60)


@dataclass(frozen=True)
class Deploy:
    watch_minutes: int  # threetier/blocks/colors.py: the watch after the switch, then the old color drains


def _check_deploy(deploy: dict[str, Any]) -> None:
    low, high = WATCH_MINUTES
    if not low <= deploy["watch_minutes"] <= high:
        raise ConfigError(f"deploy.watch_minutes: {low} to {high} minutes, got {deploy['watch_minutes']}")


# --- the whole file -----------------------------------------------------------------------------

# The sections in the order config.yaml shows them: _merge reports the first unknown or mistyped
# key in this order, and lists a section's known keys in it.
DEFAULTS: dict[str, Any] = {
    **TOP_LEVEL_DEFAULTS,
    "network": NETWORK_DEFAULTS,
    "access": ACCESS_DEFAULTS,
    "database": DATABASE_DEFAULTS,
    "app": APP_DEFAULTS,
    "web": WEB_DEFAULTS,
    "load_balancers": LOAD_BALANCERS_DEFAULTS,
    "monitoring": MONITORING_DEFAULTS,
    "edge": EDGE_DEFAULTS,
    "deploy": DEPLOY_DEFAULTS,
}

# Keys whose default is null: the type they take when set.
NULLABLE = {**ACCESS_NULLABLE, **DATABASE_NULLABLE, **APP_NULLABLE, **WEB_NULLABLE, **MONITORING_NULLABLE, **EDGE_NULLABLE}
# Keys whose default is null that take a mapping: its keys and their defaults.
NULLABLE_MAPPINGS = {"app.spot": SPOT_DEFAULTS, "web.spot": SPOT_DEFAULTS}
# Keys that may be null although their default is not.
MAY_BE_NULL = APP_MAY_BE_NULL | WEB_MAY_BE_NULL
# Keys that take any number, not only an integer like their default.
ANY_NUMBER = APP_ANY_NUMBER | WEB_ANY_NUMBER


@dataclass(frozen=True)
class Config:
    stack: str
    region: str
    region_is_explicit: bool  # region: given in the file wins over the environment
    network: Network
    access: Access
    database: Database
    app: AppTier
    web: WebTier
    load_balancers: LoadBalancers
    monitoring: Monitoring
    edge: Edge
    deploy: Deploy
    source: str  # where it was read from, for messages


# --- reading the file ---------------------------------------------------------------------------

# Bounds met before anything is built from the file. config.yaml as shipped is 4 KB, its deepest value
# five levels down (the mapping, network, subnets, web, a CIDR); no value's bound needs more than 10 digits.
CONFIG_BYTES_MAX = 256 * 1024
NESTING_MAX = 16
NUMBER_LENGTH_MAX = 30


@dataclass(frozen=True)
class OversizedNumber:
    """An integer written longer than NUMBER_LENGTH_MAX characters: never converted (Python refuses
    integers of more than 4,300 digits, and YAML's 1:00:00 form makes vast ones of short text), it is
    beyond every bound a setting has; `_merge` refuses it naming its key."""
    length: int

    def __str__(self) -> str:
        return f"<a number {self.length} characters long>"


class TooDeep(Exception):
    """The file nests deeper than NESTING_MAX (PyYAML would recurse until Python's stack ran out)."""

    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded: composing stops at NESTING_MAX levels, and an integer too long for
    any setting is kept as an OversizedNumber instead of being converted."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.depth >= NESTING_MAX:
            raise TooDeep(self.peek_event().start_mark.line + 1)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _integer(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | OversizedNumber:
    if len(node.value) > NUMBER_LENGTH_MAX:
        return OversizedNumber(len(node.value))
    return loader.construct_yaml_int(node)


BoundedLoader.add_constructor("tag:yaml.org,2002:int", _integer)


def read(path: Path) -> Any:
    """The YAML document at `path`, refused in one line naming the file (and the line where it can) when
    it is too large, not UTF-8, not YAML or nested too deep."""
    try:
        with path.open("rb") as handle:
            data = handle.read(CONFIG_BYTES_MAX + 1)  # a device or a vast file: never read whole
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > CONFIG_BYTES_MAX:
        raise ConfigError(f"{path}: larger than {CONFIG_BYTES_MAX // 1024} KiB; a config file is a few KB "
                          f"(config.yaml as shipped is 4)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {data[exc.start]:#04x} on line {line}); "
                          f"save it as UTF-8") from None
    try:
        return yaml.load(text, Loader=BoundedLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    except TooDeep as exc:
        raise ConfigError(f"{path}: nested more than {NESTING_MAX} levels deep (line {exc.line}); "
                          f"no setting is more than 5") from None
    except (RecursionError, ValueError, OverflowError):  # anything the bounds above did not foresee
        raise ConfigError(f"{path}: not a config file threetier can read (a value or a nesting beyond "
                          f"every bound of its settings)") from None


def load(path: str | Path | None) -> Config:
    """Read and validate config.yaml. `path=None` means ./config.yaml if present."""
    if path is None:
        chosen = DEFAULT_CONFIG_PATH
        if not chosen.exists():
            return parse({}, source="defaults")
    else:
        chosen = Path(path)
        if not chosen.exists():
            raise ConfigError(f"{chosen}: no such config file")
    raw = read(chosen) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{chosen}: the top level must be a mapping of keys")
    return parse(raw, source=str(chosen), base=chosen.parent)


def parse(raw: dict[str, Any], source: str = "config", base: Path | None = None) -> Config:
    """`base`: the directory relative source directories are relative to (the config file's; None: the
    working directory)."""
    merged = _merge(DEFAULTS, raw, path="")
    _check(merged)
    return Config(
        stack=merged["stack"],
        region=merged["region"],
        region_is_explicit="region" in raw,
        network=_network_from(merged["network"]),
        access=_access_from(merged["access"]),
        database=Database(**merged["database"]),
        app=_app_tier_from(merged["app"], base),
        web=_web_tier_from(merged["web"], base),
        load_balancers=LoadBalancers(**merged["load_balancers"]),
        monitoring=Monitoring(**merged["monitoring"]),
        edge=_edge_from(merged["edge"]),
        deploy=Deploy(**merged["deploy"]),
        source=source,
    )


def _check(cfg: dict[str, Any]) -> None:
    """Every section's checks; the order decides which of several problems is reported."""
    _check_top_level(cfg["stack"], cfg["region"])
    _check_network(cfg["network"], cfg["region"])
    _check_access(cfg["access"], https=cfg["edge"]["domain"] is not None)
    _check_database(cfg["database"])
    _check_app(cfg["app"])
    _check_web(cfg["web"])
    _check_monitoring(cfg["monitoring"])
    _check_edge(cfg["edge"], cfg["region"])
    if cfg["edge"]["cdn"] and list(cfg["access"]["client_cidrs"]) != ["0.0.0.0/0"]:
        # The ALB then admits CloudFront only: it never sees a viewer's address to filter by.
        raise ConfigError("access.client_cidrs: with edge.cdn only CloudFront reaches the load balancer, so viewers "
                          "cannot be filtered there; keep [0.0.0.0/0] (limit clients with edge.waf rules instead)")
    _check_deploy(cfg["deploy"])
    # Last, after edge, where it has always been: a config with several problems still names the same one.
    _check_app_port(cfg["app"]["port"])


def _type_name(value: Any) -> str:
    if isinstance(value, OversizedNumber):
        return f"a number {value.length} characters long"
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer",
            bool: "true or false", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


KEY_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}", re.ASCII)


def _key(key: Any) -> str:
    """An unknown key in its message: a string quoted unless it looks like a key; 7, null or an
    OversizedNumber as they print."""
    return _quoted(key) if isinstance(key, str) and not KEY_NAME.fullmatch(key) else str(key)


def _did_you_mean(unknown: Any, known: Iterable[str]) -> str:
    """", did you mean `email`?" when a known key is close to a typo (`emial`); "" otherwise."""
    if not isinstance(unknown, str):
        return ""
    close = difflib.get_close_matches(unknown, list(known), n=1)
    return f", did you mean `{close[0]}`?" if close else ""


def _merge(default: Any, given: Any, path: str) -> Any:
    """Overlay `given` on `default`, rejecting unknown keys and wrong types."""
    where = path or "the top level"
    if isinstance(given, OversizedNumber):
        raise ConfigError(f"{where}: {_type_name(given)}, beyond any bound of this setting")
    if given is None and path in MAY_BE_NULL:
        return None
    if path in ANY_NUMBER:
        if isinstance(given, bool) or not isinstance(given, (int, float)):
            raise ConfigError(f"{path}: expected a number or null, got {_type_name(given)}")
        return given
    if isinstance(default, dict):
        if not isinstance(given, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_type_name(given)}")
        unknown = sorted(set(given) - set(default), key=str)
        if unknown:
            key = f"{path}.{_key(unknown[0])}" if path else _key(unknown[0])
            raise ConfigError(f"{key}: unknown key{_did_you_mean(unknown[0], default)} (known here: {', '.join(default)})")
        return {key: _merge(value, given[key], f"{path}.{key}" if path else key) if key in given
                else copy.deepcopy(value) for key, value in default.items()}
    if default is None and path in NULLABLE_MAPPINGS:
        return None if given is None else _merge(NULLABLE_MAPPINGS[path], given, path)
    if default is None:
        expected = NULLABLE[path]
        # bool is an int in Python: `requests_per_target: true` is no number of requests.
        if given is not None and (not isinstance(given, expected) or isinstance(given, bool)):
            raise ConfigError(f"{path}: expected {_type_name(expected())} or null, got {_type_name(given)}")
        return given
    # bool is an int in Python: keep them apart so `port: true` is refused.
    if isinstance(default, bool) != isinstance(given, bool) or not isinstance(given, type(default)):
        raise ConfigError(f"{path}: expected {_type_name(default)}, got {_type_name(given)}")
    if isinstance(default, list):
        sample = default[0] if default else ""
        for index, item in enumerate(given):
            if not isinstance(item, type(sample)):
                raise ConfigError(f"{path}[{index}]: expected {_type_name(sample)}, got {_type_name(item)}")
    return copy.deepcopy(given)
