"""What the configured stack costs a month, line by line, from the price table (threetier.pricing).

No AWS call: it prices config.yaml, so it answers before `up` and without credentials. Every
quantity that is not in config.yaml is an assumption, and each is said in `Estimate.assumptions`
(printed by `threetier cost`), not hidden in a number.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from threetier.config import Config, Spot
from threetier.pricing import (
    CLOUDFRONT_FREE_GB,
    CLOUDFRONT_FREE_REQUESTS,
    CLOUDFRONT_PRICE_CLASS,
    FALLBACK_REGION,
    PRICES,
    PRICES_DATE,
    PRICES_SOURCE,
    SPOT_PRICES_DATE,
    RegionPrices,
    prices_for,
    spot_hour,
)

HOURS_PER_MONTH = 730  # AWS's own convention (8,760 hours a year / 12)
AZS = 2                # every tier spans two availability zones
LOAD_BALANCERS = 2     # the external (internet-facing) ALB and the internal one
DB_INSTANCES = 2       # the Aurora writer and its reader in the other AZ
BAKED_IMAGES = 2       # the app and web AMIs, one EBS snapshot each
SECRETS = 1            # the database password, kept by RDS in Secrets Manager
# monitoring.alarms: 7 alarms (threetier/blocks/balancing.py, steps/web_tier.py, steps/database.py) watching 9 metrics: CloudWatch
# bills an alarm per metric it watches, and the two 5xx-rate alarms divide two metrics each.
STACK_ALARMS, STACK_ALARM_METRICS = 7, 9
# AWS makes two alarms (scale out, scale in) for each target-tracking policy, billed like any alarm.
ALARMS_PER_SCALING_POLICY = 2
# A deploy (threetier.blocks.colors): the second color's instances launch and pass their health checks
# in about this many minutes, and the old color's drain (deregistration delay 30 s, then termination)
# takes about this many after the watch: estimates (docs/aws-latency.md), not measured here.
DEPLOY_LAUNCH_MINUTES, DEPLOY_DRAIN_MINUTES = 2.5, 1.5
# edge.waf (issue 13's WAF): a rate-based rule and three AWS managed rule groups, each a billed rule.
WAF_RULES = 4


@dataclass(frozen=True)
class Assumptions:
    """The quantities config.yaml does not say. Light lab traffic; change them here, they are printed."""
    nat_gb_per_month: float = 10.0          # the stack's traffic through NAT, whichever gateway carries it
    lcus_per_load_balancer: float = 1.0
    aurora_storage_gb: float = 10.0
    aurora_io_millions_per_month: float = 10.0
    root_volume_gb: int = 8                 # the Amazon Linux 2023 image's own root size (threetier/blocks/baking.py)
    image_snapshot_gb: float = 8.0          # at most the volume: a snapshot bills only the blocks written
    external_alb_public_ips: int = AZS      # an internet-facing ALB has a public address in each AZ
    flow_log_gb_per_month: float = 2.0
    tier_log_gb_per_month: float = 1.0      # the app's and nginx's logs, by the CloudWatch agent
    waf_million_requests_per_month: float = 1.0
    cdn_gb_out_per_month: float = 10.0      # edge.cdn: what viewers download through CloudFront
    cdn_million_requests_per_month: float = 1.0


ASSUMED = Assumptions()


@dataclass(frozen=True)
class Line:
    """One priced item: `quantity` units of `unit` at `unit_usd` each, a month. `unit_usd` is None
    when the table has no price for it: the line is shown, and the total leaves it out, saying so."""
    item: str
    quantity: float
    unit: str
    unit_usd: float | None

    @property
    def monthly_usd(self) -> float | None:
        return None if self.unit_usd is None else self.quantity * self.unit_usd


@dataclass(frozen=True)
class Estimate:
    stack: str
    region: str            # where the stack lives
    prices_region: str     # whose prices were used (FALLBACK_REGION for a region the table lacks)
    lines: tuple[Line, ...]
    assumptions: tuple[str, ...]
    notes: tuple[str, ...]            # the region fallback, prices the table lacks, what a setting saves
    nat_single_saving_usd: float      # a month: nat_gateways single against per_az
    running_monthly_usd: float        # the stack up, as config.yaml says
    paused_monthly_usd: float         # the stack paused (`threetier pause`): what still bills
    paused: bool = False              # whether `lines` are the paused stack's
    deploy_extra_hourly_usd: float | None = None  # both tiers' second colors while a deploy runs (None: no price)
    spot_savings: tuple[tuple[str, float | None], ...] = ()  # (app.spot/web.spot, a month against on-demand)
    prices_date: str = PRICES_DATE

    @property
    def monthly_usd(self) -> float:
        return sum(line.monthly_usd for line in self.lines if line.monthly_usd is not None)

    @property
    def hourly_usd(self) -> float:
        return self.monthly_usd / HOURS_PER_MONTH

    @property
    def unpriced(self) -> list[str]:
        return [line.item for line in self.lines if line.unit_usd is None]

    def as_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "region": self.region, "prices_region": self.prices_region,
                "prices_date": self.prices_date, "prices_source": PRICES_SOURCE, "currency": "USD",
                "monthly_usd": round(self.monthly_usd, 2), "hourly_usd": round(self.hourly_usd, 4),
                "paused": self.paused, "running_monthly_usd": round(self.running_monthly_usd, 2),
                "paused_monthly_usd": round(self.paused_monthly_usd, 2),
                "deploy_extra_hourly": None if self.deploy_extra_hourly_usd is None
                else round(self.deploy_extra_hourly_usd, 4),
                "complete": not self.unpriced, "unpriced": self.unpriced,
                "lines": [{"item": line.item, "quantity": line.quantity, "unit": line.unit, "unit_usd": line.unit_usd,
                           "monthly_usd": None if line.monthly_usd is None else round(line.monthly_usd, 4)}
                          for line in self.lines],
                "assumptions": list(self.assumptions), "notes": list(self.notes),
                "savings": [{"setting": "network.nat_gateways: single", "monthly_usd": round(self.nat_single_saving_usd, 2)},
                            *({"setting": setting, "monthly_usd": None if saved is None else round(saved, 2),
                               "estimate": True} for setting, saved in self.spot_savings)]}


def nat_gateway_count(config: Config) -> int:
    return AZS if config.network.nat_gateways == "per_az" else 1


def nat_gateway_month(prices: RegionPrices) -> float:
    """What one NAT gateway adds a month: its hours and its Elastic IP's public IPv4 hours. The data it
    processes is the stack's traffic, which one gateway or two carry alike (cross-AZ transfer aside)."""
    return HOURS_PER_MONTH * (prices.nat_gateway_hour + prices.public_ipv4_hour)


def scaling_policies(config: Config) -> int:
    return sum((tier.scaling.cpu_target is not None) + (tier.scaling.requests_per_target is not None)
               for tier in (config.web, config.app))


def estimate(config: Config, region: str | None = None, assumed: Assumptions = ASSUMED, *,
             paused: bool = False) -> Estimate:
    """The stack config.yaml describes, in `region` (config's by default), priced a month; `paused`:
    the stack as `threetier pause` leaves it."""
    region = region or config.region
    prices_region, prices = prices_for(region)
    nats = nat_gateway_count(config)
    web_public = config.web.asg.desired + config.web.keep_builder
    running, idle = running_lines(config, prices, assumed), paused_lines(config, prices, assumed)
    lines = idle if paused else running

    notes = []
    if prices_region != region:
        notes.append(f"region {region} is not in the price table ({', '.join(PRICES)}): the estimate uses "
                     f"{FALLBACK_REGION} prices")
    for line in lines:
        if line.unit_usd is None:
            notes.append(f"no price in the {prices_region} price table for {line.item}: the total leaves out its "
                         f"{line.quantity:,g} {line.unit}s")
    saving = nat_gateway_month(prices)
    if paused:
        notes.append(f"running, the stack costs ${total(running):,.2f} a month; `threetier pause` saves "
                     f"${total(running) - total(idle):,.2f} of it. AWS starts a stopped Aurora cluster by itself "
                     f"after 7 days: `threetier pause` again stops it, or the month costs more")
    elif config.network.nat_gateways == "per_az":
        notes.append(f"network.nat_gateways: single would save ${saving:,.2f} a month (one NAT gateway and its "
                     f"Elastic IP; the second AZ's app tier then reaches the internet through the first AZ)")
    else:
        notes.append(f"network.nat_gateways: single saves ${saving:,.2f} a month against per_az (one NAT gateway "
                     f"and its Elastic IP)")
    during = deploy_extra_hourly(config, assumed, prices)
    if not paused and during is not None:
        notes.append(deploy_note(config, during))
    savings = spot_savings(config, prices)
    for setting, saved in savings if not paused else ():
        notes.append(f"{setting}: Spot is an estimate: each type's Spot price is assumed at a typical discount of "
                     f"{SPOT_PRICES_DATE} (threetier/pricing.py), not quoted; "
                     + ("a type has no such assumption, so no saving is said" if saved is None else
                        f"about ${saved:,.2f} a month less than the same instances on-demand")
                     + "; AWS may take a Spot instance back with two minutes' notice (the group replaces it)")
    if not paused:
        notes.append(f"paused (`threetier pause`, lab mode) it costs ${total(idle):,.2f} a month "
                     f"(`threetier cost --paused` has the lines)")
        notes.append(kept_note(prices, assumed.aurora_storage_gb))
    said = assumptions(config, assumed, prices, nats, web_public)
    if paused:
        said = (PAUSED_ASSUMPTION, *said)
    return Estimate(stack=config.stack, region=region, prices_region=prices_region, lines=tuple(lines),
                    assumptions=said, notes=tuple(notes), nat_single_saving_usd=saving,
                    running_monthly_usd=total(running), paused_monthly_usd=total(idle), paused=paused,
                    deploy_extra_hourly_usd=during, spot_savings=tuple(savings))


def kept_note(prices: RegionPrices, gb: float) -> str:
    """What stays billing after `down`: the database's snapshots (its final one, `backup`'s), as Aurora
    backup storage, all of it once no cluster is there (a cluster's own backups are free up to its size)."""
    return (f"after `threetier down` only the database's snapshots bill (the final one, `backup`'s): Aurora backup "
            f"storage at ${prices.aurora_backup_gb_month:g} per GB-month, ${gb * prices.aurora_backup_gb_month:,.2f} "
            f"a month for the {gb:g} GB assumed here (`threetier status` lists them with their sizes; `down` says "
            f"what it kept costs)")


def snapshots_monthly(prices: RegionPrices, gib: float) -> float:
    return gib * prices.aurora_backup_gb_month


def deploy_note(config: Config, hourly: float) -> str:
    """What a deploy adds while it runs: a second color of each tier, at asg.desired."""
    minutes = DEPLOY_LAUNCH_MINUTES + config.deploy.watch_minutes + DEPLOY_DRAIN_MINUTES
    return (f"during a deploy: a second color, {config.web.asg.desired} web and {config.app.asg.desired} app "
            f"instances (asg.desired), for about {minutes:g} minutes (~{DEPLOY_LAUNCH_MINUTES:g} to launch and "
            f"pass the health checks, deploy.watch_minutes {config.deploy.watch_minutes}, ~{DEPLOY_DRAIN_MINUTES:g} "
            f"to drain): ${hourly:,.2f} an hour more, about ${hourly * minutes / 60:,.2f} a `deploy all` "
            f"(one tier's deploy, its share)")


PAUSED_ASSUMPTION = (
    "paused (`threetier pause`): no EC2 instance (no root volume, no web address), no NAT gateway or Elastic IP, "
    "no Aurora instance-hour or I/O (a stopped cluster bills its storage; backups within its size are free); "
    "the idle load balancers bill their hours and their public addresses but no LCU; logs: what is kept, nothing "
    "new; a builder kept by keep_builder is left running by pause")


def total(lines: list[Line]) -> float:
    return sum(line.monthly_usd for line in lines if line.monthly_usd is not None)


def kept_builders(config: Config) -> list[tuple[Any, str]]:
    """The builders config.yaml keeps running after their bake (keep_builder), with their tier's name."""
    return [(tier, name) for tier, name in ((config.web, "web"), (config.app, "app")) if tier.keep_builder]


def builder_lines(config: Config, prices: RegionPrices) -> list[Line]:
    return [Line(f"EC2 {tier.instance_type} x1 ({name} builder, {name}.keep_builder)", HOURS_PER_MONTH,
                 "instance-hour", prices.ec2_instance_hour.get(tier.instance_type))
            for tier, name in kept_builders(config)]


def kept_lines(config: Config, prices: RegionPrices, assumed: Assumptions) -> list[Line]:
    """What bills the same whether the stack runs or is paused: the images, the secret, CloudWatch's
    alarms (the target-tracking ones stay with their policies) and dashboard, the logs kept."""
    log_gb = assumed.tier_log_gb_per_month + (assumed.flow_log_gb_per_month if config.monitoring.flow_logs else 0.0)
    kept_months = config.monitoring.log_retention_days * 24 / HOURS_PER_MONTH  # steady state: that many months'
    policies = scaling_policies(config)
    lines = [
        Line(f"EBS snapshots of the AMIs x{BAKED_IMAGES}", BAKED_IMAGES * assumed.image_snapshot_gb,
             "GB-month", prices.ebs_snapshot_gb_month),
        Line("Secrets Manager secret" if not config.edge.cdn else
             f"Secrets Manager secrets x{SECRETS + 1} (the database's, CloudFront's origin header)",
             SECRETS + config.edge.cdn, "secret-month", prices.secret_month),
    ]
    if config.monitoring.alarms:
        lines.append(Line(f"CloudWatch alarms x{STACK_ALARMS} ({STACK_ALARM_METRICS} metrics)", STACK_ALARM_METRICS,
                          "metric-month", prices.alarm_metric_month))
    if policies:
        lines.append(Line(f"target tracking alarms x{policies * ALARMS_PER_SCALING_POLICY}",
                          policies * ALARMS_PER_SCALING_POLICY, "metric-month", prices.alarm_metric_month))
    if config.monitoring.dashboard:
        lines.append(Line("CloudWatch dashboard", 1, "dashboard-month", prices.dashboard_month))
    lines.append(Line(f"CloudWatch Logs stored ({config.monitoring.log_retention_days} days)", log_gb * kept_months,
                      "GB-month", prices.logs_stored_gb_month))
    if config.edge.waf:
        # With edge.cdn the ACL is CloudFront's (CLOUDFRONT scope, us-east-1), at the same price.
        lines += [Line("WAF web ACL" + (" (CloudFront's, us-east-1)" if config.edge.cdn else ""), 1, "ACL-month",
                       prices.waf_web_acl_month),
                  Line(f"WAF rules x{WAF_RULES}", WAF_RULES, "rule-month", prices.waf_rule_month)]
    return lines


def paused_lines(config: Config, prices: RegionPrices, assumed: Assumptions) -> list[Line]:
    """What still bills while the stack is paused: the idle load balancers and their addresses, Aurora's
    storage, a kept builder, and what bills the same either way (`kept_lines`)."""
    hours, builders = HOURS_PER_MONTH, kept_builders(config)
    public_ips = assumed.external_alb_public_ips + config.web.keep_builder
    lines = [
        Line(f"load balancer x{LOAD_BALANCERS} (external, internal), idle", LOAD_BALANCERS * hours, "ALB-hour",
             prices.alb_hour),
        Line("Aurora storage (the cluster stopped)", assumed.aurora_storage_gb, "GB-month",
             prices.aurora_storage_gb_month),
        *builder_lines(config, prices),
    ]
    if builders:
        lines.append(Line(f"EBS gp3 root volumes x{len(builders)} (kept builders)",
                          len(builders) * assumed.root_volume_gb, "GB-month", prices.ebs_gp3_gb_month))
    lines.append(Line(f"public IPv4 x{public_ips} ({assumed.external_alb_public_ips} ALB"
                      + (", 1 web builder" if config.web.keep_builder else "") + ")", public_ips * hours,
                      "address-hour", prices.public_ipv4_hour))
    return lines + kept_lines(config, prices, assumed)


def running_lines(config: Config, prices: RegionPrices, assumed: Assumptions) -> list[Line]:
    """Every line of the stack up, as config.yaml says."""
    hours = HOURS_PER_MONTH
    nats = nat_gateway_count(config)
    web, app = config.web.asg.desired, config.app.asg.desired
    instances = web + app + len(kept_builders(config))
    # Public addresses: the web instances (their subnets map one at launch), a kept web builder (it is
    # baked in a public subnet too), the NAT gateways' Elastic IPs, the external ALB's.
    web_public = web + config.web.keep_builder
    public_ips = web_public + nats + assumed.external_alb_public_ips
    log_gb = assumed.tier_log_gb_per_month + (assumed.flow_log_gb_per_month if config.monitoring.flow_logs else 0.0)

    lines = [
        Line(f"NAT gateway x{nats} ({config.network.nat_gateways})", nats * hours, "gateway-hour", prices.nat_gateway_hour),
        Line("NAT gateway data processed", assumed.nat_gb_per_month, "GB", prices.nat_gateway_gb),
        Line(f"load balancer x{LOAD_BALANCERS} (external, internal)", LOAD_BALANCERS * hours, "ALB-hour",
             prices.alb_hour),
        Line("load balancer capacity units", LOAD_BALANCERS * assumed.lcus_per_load_balancer * hours, "LCU-hour",
             prices.alb_lcu_hour),
        Line(f"Aurora {config.database.instance_class} x{DB_INSTANCES} (writer, reader)", DB_INSTANCES * hours,
             "instance-hour", prices.aurora_instance_hour.get(config.database.instance_class)),
        Line("Aurora storage", assumed.aurora_storage_gb, "GB-month", prices.aurora_storage_gb_month),
        Line("Aurora I/O requests", assumed.aurora_io_millions_per_month, "million",
             prices.aurora_io_million),
        *tier_lines("web", config.web, prices),
        *tier_lines("app", config.app, prices),
        *builder_lines(config, prices),
        Line(f"EBS gp3 root volumes x{instances}", instances * assumed.root_volume_gb, "GB-month",
             prices.ebs_gp3_gb_month),
        Line(f"public IPv4 x{public_ips} ({web_public} web, {nats} NAT, {assumed.external_alb_public_ips} ALB)",
             public_ips * hours, "address-hour", prices.public_ipv4_hour),
        Line("CloudWatch Logs ingested", log_gb, "GB", prices.logs_ingested_gb),
    ]
    if config.edge.waf:
        lines.append(Line("WAF requests", assumed.waf_million_requests_per_month, "million", prices.waf_million_requests))
    if config.edge.cdn:
        lines += cloudfront_lines(prices, assumed)
    return lines + kept_lines(config, prices, assumed)


def cloudfront_lines(prices: RegionPrices, assumed: Assumptions) -> list[Line]:
    """edge.cdn: what viewers download and ask for through CloudFront, beyond the always-free tier
    (the origin fetches from the ALB are free: an AWS origin)."""
    billed_gb = max(0.0, assumed.cdn_gb_out_per_month - CLOUDFRONT_FREE_GB)
    billed_10k = max(0.0, assumed.cdn_million_requests_per_month * 1e6 - CLOUDFRONT_FREE_REQUESTS) / 10_000
    return [Line(f"CloudFront data out beyond the free {CLOUDFRONT_FREE_GB:,.0f} GB (an estimate)", billed_gb, "GB",
                 prices.cloudfront_gb_out),
            Line(f"CloudFront HTTPS requests beyond the free {CLOUDFRONT_FREE_REQUESTS / 1e6:g} million (an estimate)",
                 billed_10k, "10,000 requests", prices.cloudfront_https_10k)]


def tier_lines(name: str, tier: Any, prices: RegionPrices) -> list[Line]:
    """The tier's instances at asg.desired: on-demand, or with `spot` its on-demand share (the first of
    its types) and its Spot instances (at the mean of its types' assumed Spot prices: AWS picks the
    pools, price-capacity-optimized)."""
    count, hours, spot = tier.asg.desired, HOURS_PER_MONTH, tier.spot
    if spot is None:
        return [Line(f"EC2 {tier.instance_type} x{count} ({name} tier)", count * hours, "instance-hour",
                     prices.ec2_instance_hour.get(tier.instance_type))]
    on_demand = spot.on_demand(count)
    first, types = spot.instance_types[0], ", ".join(spot.instance_types)
    return [Line(f"EC2 {first} x{on_demand} ({name} tier, on-demand)", on_demand * hours, "instance-hour",
                 prices.ec2_instance_hour.get(first)),
            Line(f"EC2 Spot x{count - on_demand} ({name} tier: {types}; assumed prices of {SPOT_PRICES_DATE}, "
                 f"an estimate)", (count - on_demand) * hours, "instance-hour", mean_spot_hour(spot, prices))]


def mean_spot_hour(spot: Spot, prices: RegionPrices) -> float | None:
    found = [spot_hour(prices, each) for each in spot.instance_types]
    return None if any(price is None for price in found) else sum(p or 0.0 for p in found) / len(found)


def spot_savings(config: Config, prices: RegionPrices) -> list[tuple[str, float | None]]:
    """What each Spot tier saves a month against the same instances on-demand (None: a type has no
    price or no Spot assumption)."""
    found = []
    for name, tier in (("web", config.web), ("app", config.app)):
        if tier.spot is None:
            continue
        on_demand = [prices.ec2_instance_hour.get(each) for each in tier.spot.instance_types]
        spot = mean_spot_hour(tier.spot, prices)
        count = tier.asg.desired - tier.spot.on_demand(tier.asg.desired)
        found.append((f"{name}.spot", None if spot is None or any(p is None for p in on_demand) else
                      count * HOURS_PER_MONTH * (sum(p or 0.0 for p in on_demand) / len(on_demand) - spot)))
    return found


def assumptions(config: Config, assumed: Assumptions, prices: RegionPrices, nats: int, web_public: int) -> tuple[str, ...]:
    """Each quantity the estimate took that config.yaml does not say, in words."""
    web, app = config.web.asg, config.app.asg
    at_max = max_capacity_extra(config, assumed, prices)
    said = [
        f"{HOURS_PER_MONTH} hours a month; on-demand list prices, Linux, no free tier"
        + (" (but CloudFront's always-free one, below)" if config.edge.cdn else "") + ", Savings Plans or reservations",
        f"each tier at its asg.desired (web {web.desired}, app {app.desired}); scaled out to asg.max (web {web.max}, "
        f"app {app.max}) it costs "
        + (f"up to ${at_max:,.2f} a month more" if at_max is not None else "more (an instance type has no price here)"),
        f"{assumed.nat_gb_per_month:g} GB a month through the NAT gateways (packages while baking, the SSM and "
        f"CloudWatch agents, S3): the stack's traffic, the same with one gateway or {AZS}",
        f"{assumed.lcus_per_load_balancer:g} LCU an hour per load balancer (light traffic; 1 LCU is 25 new "
        f"connections a second, 3,000 active connections or 1 GB an hour)",
        f"Aurora Standard: {assumed.aurora_storage_gb:g} GB stored, {assumed.aurora_io_millions_per_month:g} million "
        f"I/O requests a month; backups within backup_retention_days are free up to the cluster's size",
        f"root volumes: {assumed.root_volume_gb} GB gp3 each (the Amazon Linux 2023 image's size); the AMI snapshots "
        f"{assumed.image_snapshot_gb:g} GB each, an upper bound (a snapshot bills only the blocks written)",
        f"public IPv4 addresses: {web_public} web instances (public subnets), {nats} NAT gateway Elastic IP(s), "
        f"{assumed.external_alb_public_ips} for the internet-facing ALB (one per AZ); the internal ALB has none",
        f"logs: {assumed.tier_log_gb_per_month:g} GB of app and nginx logs a month"
        + (f" and {assumed.flow_log_gb_per_month:g} GB of VPC flow logs" if config.monitoring.flow_logs else "")
        + f", kept {config.monitoring.log_retention_days} days (monitoring.log_retention_days)",
        f"one NAT gateway-month (nat_gateways single vs per_az) is {HOURS_PER_MONTH} NAT gateway-hours plus its "
        f"Elastic IP's {HOURS_PER_MONTH} public IPv4 address-hours",
    ]
    for name, tier in (("web", config.web), ("app", config.app)):
        if tier.spot is not None:
            said.append(f"{name}.spot: of asg.desired {tier.asg.desired}, {tier.spot.on_demand(tier.asg.desired)} "
                        f"on-demand ({tier.spot.instance_types[0]}, the first type) and the rest Spot at the mean of "
                        f"its types' Spot prices, each assumed at a typical discount below on-demand of "
                        f"{SPOT_PRICES_DATE} (an estimate: Spot prices move by the hour); scaled out and during a "
                        f"deploy, priced on-demand ({tier.instance_type}), an upper bound")
    if config.edge.waf:
        said.append(f"WAF: {assumed.waf_million_requests_per_month:g} million requests a month")
    if config.edge.https:
        said.append("HTTPS (edge.domain): ACM public certificates are free, Route 53 answers alias queries to the "
                    f"{'ALB and CloudFront' if config.edge.cdn else 'ALB'} free, and the hosted zone is yours (not "
                    "counted)")
    if config.edge.cdn:
        said += cloudfront_assumptions(config, assumed, prices)
    said.append(f"not counted: data transfer {'between AZs' if config.edge.cdn else 'out to the internet and between AZs'}"
                ", S3 (a few MB of code), SNS e-mail, the stack's lock (an SSM standard parameter, free), the builders "
                "while an image bakes (minutes)")
    return tuple(said)


def cloudfront_assumptions(config: Config, assumed: Assumptions, prices: RegionPrices) -> list[str]:
    """edge.cdn's, in words: the traffic assumed, the free tier, the prices beyond it and their source."""
    said = [
        f"CloudFront (edge.cdn), an estimate at the Amazon CloudFront pricing page's pay-as-you-go prices of "
        f"{PRICES_DATE} ({CLOUDFRONT_PRICE_CLASS}: viewers in North America and Europe): "
        f"{assumed.cdn_gb_out_per_month:g} GB out to the internet and {assumed.cdn_million_requests_per_month:g} "
        f"million HTTPS requests a month, within the always-free tier of 1 TB and 10 million requests a month "
        f"(an account's: its other distributions share it); beyond it ${prices.cloudfront_gb_out:g} per GB and "
        f"${prices.cloudfront_https_10k:g} per 10,000 HTTPS requests; CloudFront's fetches from the ALB are free "
        f"(an AWS origin), and the requests and bytes the ALB serves are CloudFront's only",
        "CloudFront's certificate (us-east-1): an ACM public certificate, free",
        f"CloudFront's origin header: a Secrets Manager secret, ${prices.secret_month:.2f} a month, and its API "
        f"calls at ${prices.secret_10k_api_calls:g} per 10,000 (a few a threetier run: under a cent)",
    ]
    if config.edge.waf:
        said.append("the WAF web ACL is CloudFront's (CLOUDFRONT scope, us-east-1) instead of the regional one: the "
                    "same price, and it counts CloudFront's requests")
    return said


def max_capacity_extra(config: Config, assumed: Assumptions, prices: RegionPrices) -> float | None:
    """A month at asg.max instead of asg.desired: the instances, their root volumes, the web tier's public IPs."""
    return more_instances_month(config, assumed, prices, lambda tier: tier.asg.max - tier.asg.desired)


def deploy_extra_hourly(config: Config, assumed: Assumptions, prices: RegionPrices) -> float | None:
    """An hour of both tiers' second colors (a deploy): asg.desired more instances of each tier."""
    month = more_instances_month(config, assumed, prices, lambda tier: tier.asg.desired)
    return None if month is None else month / HOURS_PER_MONTH


def more_instances_month(config: Config, assumed: Assumptions, prices: RegionPrices,
                         count: Callable[[Any], int]) -> float | None:
    """A month of `count(tier)` more instances in each tier: their hours, root volumes, and the web
    tier's public IPs; None when an instance type has no price."""
    extra = 0.0
    for tier, public in ((config.web, True), (config.app, False)):
        more = count(tier)
        price = prices.ec2_instance_hour.get(tier.instance_type)
        if price is None:
            return None
        extra += more * (HOURS_PER_MONTH * (price + (prices.public_ipv4_hour if public else 0.0))
                         + assumed.root_volume_gb * prices.ebs_gp3_gb_month)
    return extra
