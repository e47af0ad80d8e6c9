"""Preflight: what a first run on a real account most often trips on, checked before the first change.

Today's Parts would each find these minutes into `up`, after NAT gateways and load balancers
already bill: a quota the account has used up (5 Elastic IPs and 5 VPCs a region by default), an
instance type or Aurora class not offered where the stack goes, a Route 53 zone that does not
exist, a certificate that does not cover the domain, a permission the caller lacks. `up`,
`replay`, `resume` and `plan` ask first, after the account guard and before the stack's lock,
in rounds of concurrent reads (usually one or two: a later one only for what an earlier one found), and refuse with
exit 2 and nothing changed when something falls short; `plan` lists it under `blocked`.

Gathering (AWS calls) is apart from judging (pure functions of the answers), so each judgement is
tested on answers written by hand. A check the endpoint cannot answer (an emulator without
Service Quotas, a caller who may not read quotas or simulate policies) is skipped, and said in -v:
a preflight that cannot tell never blocks.
"""
from __future__ import annotations

import concurrent.futures
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from threetier.aws import STACK_TAG, Aws, Look, tag_value
from threetier.blocks import dns, snapshots
from threetier.config import CDN_CERTIFICATE_REGION
from threetier.errors import ThreetierError, UsageError

if TYPE_CHECKING:
    from threetier.config import Config
    from threetier.engine import Engine


@dataclass(frozen=True)
class Shortfall:
    """One thing that would stop the run: the config key or account setting, what is wrong, the fix."""
    key: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"{self.key}: {self.problem}" + (f"; {self.fix}" if self.fix else "")

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "problem": self.problem, "fix": self.fix}


@dataclass
class Findings:
    shortfalls: list[Shortfall] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # checks nobody could answer, and why (said in -v)
    calls: int = 0


class Blocked(UsageError):
    """A preflight shortfall: refused before any change (exit 2)."""


# -- quotas ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Quota:
    service: str  # Service Quotas' service code
    code: str
    name: str
    unit: str

    def request(self, region: str, desired: int) -> str:
        return (f"ask for more: aws service-quotas request-service-quota-increase --service-code {self.service} "
                f"--quota-code {self.code} --desired-value {desired} --region {region}")


ELASTIC_IPS = Quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", "Elastic IPs")
VPCS = Quota("vpc", "L-F678F1CE", "VPCs per Region", "VPCs")
INTERNET_GATEWAYS = Quota("vpc", "L-A4707A72", "Internet gateways per Region", "internet gateways")
NAT_GATEWAYS_PER_AZ = Quota("vpc", "L-FE5A380F", "NAT gateways per Availability Zone", "NAT gateways")
LOAD_BALANCERS = Quota("elasticloadbalancing", "L-53DA6B97", "Application Load Balancers per Region",
                       "Application Load Balancers")
STANDARD_VCPUS = Quota("ec2", "L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
                       "vCPUs")
DB_CLUSTERS = Quota("rds", "L-952B80B8", "DB clusters", "DB clusters")
DB_INSTANCES = Quota("rds", "L-7B6409FD", "DB instances", "DB instances")
SERVICE_QUOTAS = (ELASTIC_IPS, VPCS, INTERNET_GATEWAYS, NAT_GATEWAYS_PER_AZ, STANDARD_VCPUS)
# RDS says its quotas and their use in one call (DescribeAccountAttributes).
RDS_QUOTAS = {"DBClusters": DB_CLUSTERS, "DBInstances": DB_INSTANCES}

LOAD_BALANCERS_MADE = 2  # the external and the internal ALB
DB_INSTANCES_MADE = 2    # the writer and the reader
BUILDERS_PER_TIER = 1    # each tier's image is baked on one instance of the tier's type

# Families of the Standard on-demand vCPU quota (the rest have quotas of their own: G, P, X, F, Inf, ...).
STANDARD_FAMILIES = "acdhimrtz"
NOT_STANDARD = ("inf", "dl", "trn", "hpc", "mac", "u-", "vt")

# Answers meaning "this endpoint or caller cannot tell", not "no": the check is skipped.
CANNOT_TELL = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NoSuchResourceException",
               "NotImplemented", "InternalFailure", "InternalError", "ServiceException", "UnknownOperationException",
               "InvalidAction", "UnrecognizedClientException", "NoSuchEntity", "NoSuchEntityException")


@dataclass(frozen=True)
class Use:
    """One quota's reckoning: all of it in the account, the stack's own part of that, what the stack needs."""
    quota: Quota
    limit: float
    in_use: int
    own: int
    need: int
    where: str = ""  # "in us-east-1a", for a quota per AZ

    def shortfall(self, region: str) -> Shortfall | None:
        others = self.in_use - self.own
        if others + self.need <= self.limit:
            return None
        more = self.need - self.own if self.own < self.need else 0
        where = f" {self.where}" if self.where else ""
        return Shortfall(
            key=f"quota {self.quota.service} {self.quota.code}",
            problem=(f"{self.quota.name}{where} in {region}: {self.in_use} of {int(self.limit)} in use "
                     f"({self.own} of them the stack's), the stack needs {self.need} {self.quota.unit}"
                     f"{f' ({more} more)' if more else ''}"),
            fix=self.quota.request(region, int(others + self.need)))


def is_standard(instance_type: str) -> bool:
    family = instance_type.split(".")[0].lower()
    return bool(family) and not family.startswith(NOT_STANDARD) and family[0] in STANDARD_FAMILIES


def owned(resource: dict[str, Any], stack: str) -> bool:
    return tag_value(resource, STACK_TAG) == stack


# -- the reads -------------------------------------------------------------------------
@dataclass(frozen=True)
class Unanswered:
    """A read nobody could answer: why, for -v."""
    why: str


def ask(aws: Aws, looks: dict[str, Look], label: str = "preflight") -> dict[str, Any]:
    """These reads at once (as the inventory reads): each answer, or Unanswered. `label`: who asks,
    in the errors' resource (`status`'s account guards ask this way too)."""
    def read(item: tuple[str, Look]) -> tuple[str, Any]:
        name, look = item
        try:
            return name, aws.look(look, resource=f"{label}: {look.service} {look.operation}")
        except ThreetierError as exc:
            return name, Unanswered(str(exc))
        except NotImplementedError as exc:  # in-process moto: an operation it does not emulate
            return name, Unanswered(f"{look.service} {look.operation}: {exc}")

    for service in {look.service for look in looks.values()}:
        aws.client(service)  # made once, here, not by several threads at once
    if aws.read_threads <= 1 or len(looks) <= 1:
        return dict(map(read, looks.items()))
    with concurrent.futures.ThreadPoolExecutor(max_workers=aws.read_threads,
                                               thread_name_prefix="threetier-preflight") as pool:
        return dict(pool.map(read, looks.items()))


def answered(value: Any) -> bool:
    return not isinstance(value, Unanswered)


def quota_look(quota: Quota, default: bool = False) -> Look:
    operation = "get_aws_default_service_quota" if default else "get_service_quota"
    return Look("service-quotas", operation, {"ServiceCode": quota.service, "QuotaCode": quota.code})


def first_round(config: Config, aws: Aws, permissions: list[str] | None, edge_ctx: Any) -> dict[str, Look]:
    """Everything that needs nothing found first."""
    running = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    looks = {
        "addresses": Look("ec2", "describe_addresses"),
        "elastic_ip_attribute": Look("ec2", "describe_account_attributes",
                                     {"AttributeNames": ["vpc-max-elastic-ips"]}),
        "vpcs": Look("ec2", "describe_vpcs", key="Vpcs"),
        "internet_gateways": Look("ec2", "describe_internet_gateways", key="InternetGateways"),
        "nat_gateways": Look("ec2", "describe_nat_gateways", {"Filter": [
            {"Name": "state", "Values": ["pending", "available"]}]}, key="NatGateways"),
        "load_balancers": Look("elbv2", "describe_load_balancers", key="LoadBalancers"),
        "load_balancer_limits": Look("elbv2", "describe_account_limits"),
        "instances": Look("ec2", "describe_instances", {"Filters": running}, key="Reservations"),
        "offerings": Look("ec2", "describe_instance_type_offerings", {
            "LocationType": "availability-zone",
            "Filters": [{"Name": "instance-type", "Values": sorted({instance_type for _, _, instance_type
                                                                    in instance_types(config)})}]},
            key="InstanceTypeOfferings"),
        "zones": Look("ec2", "describe_availability_zones",
                      {"Filters": [{"Name": "zone-type", "Values": ["availability-zone"]}]}),
        "db_cluster": Look("rds", "describe_db_clusters", {"DBClusterIdentifier": f"{config.stack}-aurora"},
                           missing_ok=("DBClusterNotFoundFault",)),
    }
    spot_tiers = [tier for tier in (config.app, config.web) if tier.spot is not None]
    if spot_tiers:  # which architecture each runs: the tier's image is baked for its instance_type's
        looks["spot_types"] = Look("ec2", "describe_instance_types", {"InstanceTypes": sorted(
            {t for tier in spot_tiers for t in (tier.instance_type, *(tier.spot.instance_types if tier.spot else ()))})},
            key="InstanceTypes")
    if not aws.emulator:  # emulators answer these with errors or empty lists, not with the account's truth
        for quota in SERVICE_QUOTAS:
            looks[f"quota {quota.code}"] = quota_look(quota)
        looks["rds_quotas"] = Look("rds", "describe_account_attributes")
        looks["orderable"] = Look("rds", "describe_orderable_db_instance_options", {
            "Engine": "aurora-mysql", "EngineVersion": config.database.engine_version,
            "DBInstanceClass": config.database.instance_class}, key="OrderableDBInstanceOptions")
        principal = simulation_principal(aws.caller_arn)
        if permissions and principal:
            looks["simulation"] = Look("iam", "simulate_principal_policy", {
                "PolicySourceArn": principal, "ActionNames": permissions}, key="EvaluationResults")
    if config.database.restore_from:
        looks["restore_snapshots"] = snapshots.restore_look(config.database.restore_from)
    edge = config.edge
    if edge.domain and edge.hosted_zone:
        looks["zone"] = dns.zone_look(edge_ctx)
    if edge.certificate_arn:
        looks["certificate"] = Look("acm", "describe_certificate", {"CertificateArn": edge.certificate_arn},
                                    missing_ok=("ResourceNotFoundException",))
    if edge.cdn_certificate_arn:  # CloudFront's, in us-east-1 whatever the stack's region
        region = None if aws.region == CDN_CERTIFICATE_REGION else CDN_CERTIFICATE_REGION
        looks["cdn_certificate"] = Look("acm", "describe_certificate", {"CertificateArn": edge.cdn_certificate_arn},
                                        missing_ok=("ResourceNotFoundException",), region=region)
    return looks


def instance_types(config: Config) -> list[tuple[str, str, str]]:
    """Every instance type the tiers launch: (the config key that names it, the tier, the type)."""
    found = []
    for name, tier in (("app", config.app), ("web", config.web)):
        found.append((f"{name}.instance_type", name, tier.instance_type))
        for index, each in enumerate(tier.spot.instance_types if tier.spot else ()):
            found.append((f"{name}.spot.instance_types[{index}]", name, each))
    return found


def on_demand_instances(config: Config) -> list[tuple[tuple[str, ...], int]]:
    """The on-demand instances the tiers may run at once, as (the types they may be, how many): each
    tier's builder, and its group at asg.max; with Spot only the group's on-demand share (Spot has
    quotas of its own), counted at the largest of its types: AWS launches the first, and another
    when the first has no capacity."""
    found: list[tuple[tuple[str, ...], int]] = []
    for tier in (config.app, config.web):
        found.append(((tier.instance_type,), BUILDERS_PER_TIER))
        if tier.spot is None:
            found.append(((tier.instance_type,), tier.asg.max))
        else:
            found.append((tier.spot.instance_types, tier.spot.on_demand(tier.asg.max)))
    return found


def simulation_principal(caller_arn: str) -> str | None:
    """The IAM principal to simulate for these credentials: a user as is, an assumed role as its role
    (without its path, which the caller's ARN does not say: a role with a path is then not found and
    the check skipped). The root user and federated users: None (nothing to simulate)."""
    parts = caller_arn.split(":", 5)
    if len(parts) != 6:
        return None
    _, partition, service, _, account, resource = parts
    if service == "iam" and resource.startswith("user/"):
        return caller_arn
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    return None


# -- the judgements (pure) -------------------------------------------------------------
@dataclass
class Judge:
    """What the answers say about this config. Each check adds shortfalls, skips, or follow-up reads."""
    config: Config
    region: str
    azs: list[str]
    answers: dict[str, Any]
    findings: Findings = field(default_factory=Findings)
    follow_up: dict[str, Look] = field(default_factory=dict)

    @property
    def stack(self) -> str:
        return self.config.stack

    def get(self, name: str, check: str) -> Any:
        """The answer to `name`, or None (the check skipped, said why) when there is none."""
        value = self.answers.get(name)
        if isinstance(value, Unanswered):
            self.skip(check, value.why)
            return None
        return value

    def skip(self, check: str, why: str) -> None:
        self.findings.skipped.append(f"{check}: not checked ({why})")

    def add(self, shortfall: Shortfall | None) -> None:
        if shortfall is not None:
            self.findings.shortfalls.append(shortfall)

    def quota_limit(self, quota: Quota) -> float | None:
        """Service Quotas' applied value, else its default (asked in the second round), else None."""
        name = f"quota {quota.code}"
        if name not in self.answers:
            return None
        value = self.answers[name]
        if isinstance(value, Unanswered) and f"default {quota.code}" not in self.answers:
            if "NoSuchResourceException" in value.why:  # never changed: Service Quotas has only the default
                self.follow_up[f"default {quota.code}"] = quota_look(quota, default=True)
            return None
        if isinstance(value, Unanswered):
            value = self.answers[f"default {quota.code}"]
            if isinstance(value, Unanswered):
                return None
        return float(value["Quota"]["Value"])

    # each check ----------------------------------------------------------------------
    def elastic_ips(self) -> None:
        limit = self.quota_limit(ELASTIC_IPS)
        if limit is None:  # the classic EC2 attribute answers where Service Quotas cannot
            attribute = self.get("elastic_ip_attribute", "Elastic IP quota")
            values = [v["AttributeValue"] for a in (attribute or {}).get("AccountAttributes", [])
                      if a.get("AttributeName") == "vpc-max-elastic-ips" for v in a.get("AttributeValues", [])]
            if not values:
                return
            limit = float(values[0])
        addresses = self.get("addresses", "Elastic IP quota")
        if addresses is None:
            return
        found = [a for a in addresses.get("Addresses", []) if a.get("Domain", "vpc") == "vpc"]
        need = len(self.nat_azs())
        self.add(Use(ELASTIC_IPS, limit, len(found), sum(owned(a, self.stack) for a in found), need)
                 .shortfall(self.region))

    def nat_azs(self) -> list[str]:
        return self.azs[:1] if self.config.network.nat_gateways == "single" else self.azs

    def counted(self, quota: Quota, answer: str, need: int,
                is_own: Callable[[dict[str, Any]], bool] | None = None) -> None:
        limit = self.quota_limit(quota)
        if limit is None:
            return
        found = self.get(answer, quota.name)
        if found is None:
            return
        own = sum((is_own or (lambda item: owned(item, self.stack)))(item) for item in found)
        self.add(Use(quota, limit, len(found), own, need).shortfall(self.region))

    def vpcs_and_gateways(self) -> None:
        self.counted(VPCS, "vpcs", 1)
        self.counted(INTERNET_GATEWAYS, "internet_gateways", 1)

    def nat_gateways(self) -> None:
        limit = self.quota_limit(NAT_GATEWAYS_PER_AZ)
        found = self.get("nat_gateways", NAT_GATEWAYS_PER_AZ.name) if limit is not None else None
        if limit is None or found is None:
            return
        others = [nat for nat in found if not owned(nat, self.stack)]
        if len(others) + 1 <= limit:  # even all in one AZ, there is room: no need to know where they are
            return
        subnets = self.answers.get("nat_subnets")
        if subnets is None:
            self.follow_up["nat_subnets"] = Look("ec2", "describe_subnets", {
                "SubnetIds": sorted({nat["SubnetId"] for nat in found})}, key="Subnets")
            return
        if isinstance(subnets, Unanswered):
            self.skip(NAT_GATEWAYS_PER_AZ.name, subnets.why)
            return
        az_of = {subnet["SubnetId"]: subnet["AvailabilityZone"] for subnet in subnets}
        for az in self.nat_azs():
            here = [nat for nat in found if az_of.get(nat["SubnetId"]) == az]
            self.add(Use(NAT_GATEWAYS_PER_AZ, limit, len(here), sum(owned(n, self.stack) for n in here), 1,
                         where=f"in {az}").shortfall(self.region))

    def load_balancers(self) -> None:
        limits = self.get("load_balancer_limits", LOAD_BALANCERS.name)
        found = self.get("load_balancers", LOAD_BALANCERS.name)
        if limits is None or found is None:
            return
        values = [limit["Max"] for limit in limits.get("Limits", []) if limit.get("Name") == "application-load-balancers"]
        if not values:
            return
        albs = [lb for lb in found if lb.get("Type", "application") == "application"]
        # The stack's ALBs are `<stack>-ext-alb` and `<stack>-int-alb` (Parts 7 and 5): known by name.
        mine = {f"{self.stack}-{role}" for role in ("ext-alb", "int-alb")}
        own = sum(lb.get("LoadBalancerName") in mine for lb in albs)
        self.add(Use(LOAD_BALANCERS, float(values[0]), len(albs), own, LOAD_BALANCERS_MADE).shortfall(self.region))

    def vcpus(self) -> None:
        limit = self.quota_limit(STANDARD_VCPUS)
        reservations = self.get("instances", STANDARD_VCPUS.name) if limit is not None else None
        if limit is None or reservations is None:
            return
        instances = [i for r in reservations for i in r.get("Instances", [])
                     if i.get("InstanceLifecycle") != "spot" and is_standard(i.get("InstanceType", ""))]
        types = sorted({i["InstanceType"] for i in instances}
                       | {t for _, _, t in instance_types(self.config) if is_standard(t)})
        if not types:
            return
        sizes = self.answers.get("instance_types")
        if sizes is None:
            self.follow_up["instance_types"] = Look("ec2", "describe_instance_types", {"InstanceTypes": types},
                                                    key="InstanceTypes")
            return
        if isinstance(sizes, Unanswered):
            self.skip(STANDARD_VCPUS.name, sizes.why)
            return
        vcpus = {t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in sizes}
        in_use = sum(vcpus.get(i["InstanceType"], 0) for i in instances)
        own = sum(vcpus.get(i["InstanceType"], 0) for i in instances if owned(i, self.stack))
        need = sum(count * max(vcpus.get(t, 0) if is_standard(t) else 0 for t in each)
                   for each, count in on_demand_instances(self.config))
        self.add(Use(STANDARD_VCPUS, limit, in_use, own, need).shortfall(self.region))

    def database_quotas(self) -> None:
        if "rds_quotas" not in self.answers:
            return
        quotas = self.get("rds_quotas", "RDS quotas")
        cluster = self.get("db_cluster", "RDS quotas")
        if quotas is None or (cluster is None and isinstance(self.answers.get("db_cluster"), Unanswered)):
            return
        clusters = (cluster or {}).get("DBClusters", [])
        own = {"DBClusters": len(clusters), "DBInstances": sum(len(c.get("DBClusterMembers", [])) for c in clusters)}
        need = {"DBClusters": 1, "DBInstances": DB_INSTANCES_MADE}
        for item in quotas.get("AccountQuotas", []):
            quota = RDS_QUOTAS.get(item.get("AccountQuotaName", ""))
            if quota is not None:
                self.add(Use(quota, float(item["Max"]), int(item["Used"]), own[item["AccountQuotaName"]],
                             need[item["AccountQuotaName"]]).shortfall(self.region))

    def instance_offerings(self) -> None:
        offerings = self.get("offerings", "instance type offerings")
        if offerings is None:
            return
        offered: dict[str, set[str]] = {}
        for offering in offerings:
            offered.setdefault(offering["InstanceType"], set()).add(offering["Location"])
        for key, _, instance_type in instance_types(self.config):
            missing = [az for az in self.azs if az not in offered.get(instance_type, set())]
            if missing:
                where = ", ".join(sorted(offered.get(instance_type, set()))) or "no zone of this region"
                self.add(Shortfall(key, f"{instance_type} is not offered in {', '.join(missing)} "
                                        f"(offered in: {where})",
                                   "choose another instance type, or other zones with network.azs"))

    def spot_architectures(self) -> None:
        """Each Spot type runs the tier's image, which is baked for its instance_type's architecture."""
        found = self.get("spot_types", "Spot instance types' architectures") if "spot_types" in self.answers else None
        if found is None:  # no Spot tier, or nobody could tell
            return
        architectures = {t["InstanceType"]: set(t.get("ProcessorInfo", {}).get("SupportedArchitectures", []))
                         for t in found}
        for key, name, instance_type in instance_types(self.config):
            tier = self.config.app if name == "app" else self.config.web
            baked_for = architectures.get(tier.instance_type, set())
            runs = architectures.get(instance_type)
            if ".spot." in key and runs is not None and baked_for and not runs & baked_for:
                self.add(Shortfall(key, f"{instance_type} runs {', '.join(sorted(runs))}, and the {name} image is "
                                        f"baked for {name}.instance_type {tier.instance_type} "
                                        f"({', '.join(sorted(baked_for))})",
                                   f"choose Spot types of {tier.instance_type}'s architecture"))

    def database_offering(self) -> None:
        if "orderable" not in self.answers:
            return
        options = self.get("orderable", "Aurora engine version and class")
        if options is None:
            return
        db = self.config.database
        if options:
            zones = {z["Name"] for o in options for z in o.get("AvailabilityZones", [])}
            missing = [az for az in self.azs if zones and az not in zones]
            if missing:
                self.add(Shortfall("database.instance_class", f"{db.instance_class} is not offered for "
                                   f"aurora-mysql {db.engine_version} in {', '.join(missing)}",
                                   "choose another class, or other zones with network.azs"))
            return
        # No option for that version and class: which of the two is not offered?
        versions = self.answers.get("engine_versions")
        if versions is None:
            self.follow_up["engine_versions"] = Look("rds", "describe_db_engine_versions", {
                "Engine": "aurora-mysql", "EngineVersion": db.engine_version}, key="DBEngineVersions")
            return
        if isinstance(versions, Unanswered):
            self.skip("Aurora engine version", versions.why)
            return
        listing = (f"aws rds describe-orderable-db-instance-options --engine aurora-mysql --engine-version "
                   f"{db.engine_version} --query 'OrderableDBInstanceOptions[].DBInstanceClass' --region {self.region}")
        if not versions:
            self.add(Shortfall("database.engine_version", f"aurora-mysql {db.engine_version} is not offered in "
                               f"{self.region}", f"choose one of `aws rds describe-db-engine-versions --engine "
                               f"aurora-mysql --query 'DBEngineVersions[].EngineVersion' --region {self.region}`"))
        else:
            self.add(Shortfall("database.instance_class", f"{db.instance_class} is not offered for aurora-mysql "
                               f"{db.engine_version} in {self.region}", f"choose one of `{listing}`"))

    def restore_snapshot(self) -> None:
        """database.restore_from names a snapshot the stack's engine can restore (only when there is no
        cluster: an existing one is kept, and the key is then only a note)."""
        restore_from = self.config.database.restore_from
        if not restore_from or "restore_snapshots" not in self.answers:
            return
        cluster = self.get("db_cluster", "database.restore_from")
        if isinstance(self.answers.get("db_cluster"), Unanswered) or (cluster or {}).get("DBClusters"):
            return
        found = self.get("restore_snapshots", "database.restore_from")
        if isinstance(self.answers["restore_snapshots"], Unanswered):
            return
        db = self.config.database
        problem = snapshots.refusal(snapshots.chosen(found, restore_from, self.stack), restore_from, self.stack,
                                    db.engine_version)
        if problem:
            self.add(Shortfall("database.restore_from", problem,
                               "`threetier status` lists the stack's snapshots: name one, or null for an empty "
                               "database"))

    def permissions(self) -> None:
        if "simulation" not in self.answers:
            return
        results = self.get("simulation", "permissions (iam:SimulatePrincipalPolicy)")
        if results is None:
            return
        denied = sorted(r["EvalActionName"] for r in results if r.get("EvalDecision") != "allowed")
        if denied:
            from threetier.permissions import policy_files  # the published policies that grant them
            files = " and ".join(policy_files(denied)) or "docs/iam-policy.json"
            self.add(Shortfall("permissions", f"these credentials may not {', '.join(denied)}",
                               f"attach {files} to them (README: Permissions)"))

    def certificate(self) -> None:
        """The user's certificates: the ALB's (edge.certificate_arn; with edge.cdn it must cover origin.<domain>
        too, the name CloudFront reaches the ALB by) and CloudFront's (edge.cdn_certificate_arn, in us-east-1)."""
        edge = self.config.edge
        wanted = [edge.domain or "", *([edge.origin_domain] if edge.origin_domain else [])]
        self.given_certificate("certificate", "edge.certificate_arn", edge.certificate_arn, self.region, wanted)
        self.given_certificate("cdn_certificate", "edge.cdn_certificate_arn", edge.cdn_certificate_arn,
                               CDN_CERTIFICATE_REGION, [edge.domain or ""])

    def given_certificate(self, answer: str, key: str, arn: str | None, region: str, wanted: list[str]) -> None:
        if answer not in self.answers:
            return
        found = self.get(answer, key)
        if isinstance(self.answers[answer], Unanswered):
            return
        if found is None:
            self.add(Shortfall(key, f"no certificate {arn} in {region}",
                               f"give the ARN of an ISSUED certificate of {region}, or null to have one requested"))
            return
        detail = found["Certificate"]
        if detail.get("Status") != "ISSUED":
            self.add(Shortfall(key, f"{arn} is {detail.get('Status')}, not ISSUED",
                               "validate it first, or null to have one requested"))
        names = [detail.get("DomainName", ""), *detail.get("SubjectAlternativeNames", [])]
        for domain in wanted:
            if domain and not any(covers(name, domain) for name in names):
                self.add(Shortfall(key, f"{arn} covers {', '.join(sorted(set(names)))}, not {domain}",
                                   f"give a certificate for the domain{' and ' + wanted[1] if len(wanted) > 1 else ''}, "
                                   f"or null to have one requested"))

    def judge(self, edge_ctx: Any) -> Findings:
        for check in (self.elastic_ips, self.vpcs_and_gateways, self.nat_gateways, self.load_balancers,
                      self.vcpus, self.database_quotas, self.instance_offerings, self.spot_architectures,
                      self.database_offering, self.restore_snapshot, self.permissions, self.certificate):
            check()
        if "zone" in self.answers:
            self.hosted_zone(edge_ctx)
        return self.findings

    def hosted_zone(self, edge_ctx: Any) -> None:
        """The zone exists, is public, holds the domain; the domain has no record threetier did not write."""
        zone_name = self.config.edge.hosted_zone
        if isinstance(self.answers["zone"], Unanswered):
            self.skip("edge.hosted_zone", self.answers["zone"].why)
            return
        try:
            zone = dns.zone_from(edge_ctx, self.answers["zone"])
            if zone is None:
                self.add(Shortfall("edge.hosted_zone", f"no public Route 53 hosted zone {zone_name} in this account "
                                   f"(threetier never creates one)",
                                   f"create it: aws route53 create-hosted-zone --name {zone_name} --caller-reference "
                                   f"threetier-$(date +%s), then delegate the domain to its name servers"))
                return
            if not dns.inside(self.config.edge.domain or "", zone["Name"]):
                self.add(Shortfall("edge.domain", f"{self.config.edge.domain} is not inside the hosted zone "
                                   f"{zone['Name']} ({zone['Id']})", "choose a name in that zone"))
                return
            records = self.answers.get("records")
            if records is None:
                self.follow_up["records"] = dns.records_look(zone["Id"])
                return
            if isinstance(records, Unanswered):
                self.skip("edge.domain records", records.why)
                return
            dns.refuse_foreign_records(edge_ctx, zone, records or [], edge_ctx.resources.get("load_balancer_dns"),
                                       unproven_cloudfront=self.config.edge.cdn
                                       and dns.DISTRIBUTION_DOMAIN not in edge_ctx.resources)
        except ThreetierError as exc:  # a private zone, two zones of that name, someone else's record
            key, _, problem = str(exc).partition(": ")
            self.add(Shortfall(key, problem, ""))  # the message says what to do


def covers(name: str, domain: str) -> bool:
    """A certificate name covers the domain: the same, or a wildcard for one label."""
    name, domain = name.lower().rstrip("."), domain.lower().rstrip(".")
    if name.startswith("*."):
        head, _, rest = domain.partition(".")
        return bool(head) and rest == name[2:]
    return name == domain


# -- the whole -------------------------------------------------------------------------
MORE_ROUNDS = 2  # after the first: a quota's default, then what needs that quota (NAT gateways' zones)


def check(engine: Engine, command: str) -> Findings:
    """Ask, in at most three rounds (usually one or two), and judge. `command` picks the permissions simulated."""
    ctx = engine.ctx
    aws, config = ctx.aws, ctx.config
    before = len(aws.calls)
    permissions = _permissions(config, command)
    edge_ctx = _edge_ctx(engine)
    answers = ask(aws, first_round(config, aws, permissions, edge_ctx))
    azs = _azs(engine, answers)
    judge = Judge(config, aws.region, azs, answers)
    judge.judge(edge_ctx)
    for _ in range(MORE_ROUNDS):  # what the first round found asks for more (a quota's default, then
        if not judge.follow_up:   # where the NAT gateways are): judged again, all of it, each time
            break
        answers.update(ask(aws, judge.follow_up))
        judge = Judge(config, aws.region, azs, answers)
        judge.judge(edge_ctx)
    findings = judge.findings
    if aws.emulator:
        findings.skipped.append("quotas from Service Quotas, RDS quotas and offerings, permissions: not checked "
                                "(the endpoint is an emulator)")
    elif "simulation" not in answers:
        findings.skipped.append("permissions: not checked (these credentials are not an IAM user or role: "
                                "nothing to simulate)")
    findings.calls = len(aws.calls) - before
    return findings


def _permissions(config: Config, command: str) -> list[str] | None:
    try:
        from threetier import permissions
    except ImportError:  # pragma: no cover - the list ships with threetier
        return None
    return permissions.actions_for("up" if command in ("plan", "replay", "resume") else command, config)


def _azs(engine: Engine, answers: dict[str, Any]) -> list[str]:
    """The stack's zones: as the network Part recorded them, else as config says, else the region's
    first two available (as the network Part would choose)."""
    recorded = engine.ctx.resources_of(2).get("azs")
    if recorded:
        return list(recorded)
    if engine.ctx.config.network.azs:
        return list(engine.ctx.config.network.azs)
    zones = answers.get("zones")
    if not zones or isinstance(zones, Unanswered):
        return []
    return sorted(z["ZoneName"] for z in zones.get("AvailabilityZones", []) if z.get("State") == "available")[:2]


def _edge_ctx(engine: Engine) -> Any:
    """A context of Part 7's (the edge's), on a copy of the state: what the dns block reads of it."""
    from threetier.engine import Ctx
    part = next((p for p in engine.parts if p.number == 7), None)
    ctx = engine.ctx
    return Ctx(config=ctx.config, aws=ctx.aws, out=ctx.out, state=copy.deepcopy(ctx.state), part=part)


def say(findings: Findings, out: Any) -> None:
    for line in findings.skipped:
        out.detail(f"preflight: {line}")


def refuse(findings: Findings, command: str, out: Any) -> None:
    """up, replay, resume: any shortfall refuses the run before its first change."""
    say(findings, out)
    if not findings.shortfalls:
        return
    for shortfall in findings.shortfalls:
        out.error(f"blocked: {shortfall.line()}")
    count = len(findings.shortfalls)
    raise Blocked(f"{command}: {count} preflight check{'s' if count > 1 else ''} failed (above); nothing was "
                  f"changed")


__all__ = ["Blocked", "Findings", "Shortfall", "check", "covers", "refuse", "say", "simulation_principal"]
