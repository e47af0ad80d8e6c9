"""AWS list prices of what the stack runs on, kept in the project (`threetier cost` makes no AWS call).

Plain data: a row per price with a column per region (RATES, AURORA_INSTANCE_HOUR, EC2_INSTANCE_HOUR),
made into one `RegionPrices` per region, and the month the prices were taken. Source: the AWS
public on-demand list prices, Linux, USD, without free tier, Savings Plans or reserved instances, as
published on the AWS pricing pages "Amazon VPC pricing" (NAT gateway; public IPv4 addresses),
"Elastic Load Balancing pricing" (Application Load Balancer), "Amazon Aurora pricing" (Aurora
MySQL-Compatible Edition, Aurora Standard configuration; backup storage), "Amazon EC2 On-Demand Pricing" (Linux),
"Amazon EBS pricing" (gp3 volumes, standard snapshots), "AWS Secrets Manager pricing", "Amazon
CloudWatch pricing" (standard-resolution alarms, dashboards, Logs: Standard log class), "AWS WAF
pricing" and "Amazon CloudFront pricing" (pay as you go, no flat-rate plan), which are the AWS Price
List API's offers AmazonEC2, AmazonVPC, AWSELB, AmazonRDS, AWSSecretsManager, AmazonCloudWatch,
awswaf and AmazonCloudFront. Prices change: when they do, update the table and PRICES_DATE together.
"""
from __future__ import annotations

from dataclasses import dataclass

PRICES_DATE = "2026-11"
PRICES_SOURCE = ("AWS public on-demand list prices (Linux, USD, no free tier): the pricing pages of Amazon VPC, "
                 "Elastic Load Balancing, Amazon Aurora (MySQL, Standard), Amazon EC2 On-Demand, Amazon EBS, "
                 "AWS Secrets Manager, Amazon CloudWatch, AWS WAF and Amazon CloudFront (Price List API offers "
                 "AmazonEC2, AmazonVPC, AWSELB, AmazonRDS, AWSSecretsManager, AmazonCloudWatch, awswaf, "
                 "AmazonCloudFront)")
# A region the table lacks is estimated with this one's prices (and says so).
FALLBACK_REGION = "us-east-1"


@dataclass(frozen=True)
class RegionPrices:
    """USD list prices in one region. Per hour, per GB(-month), per month, per million as named."""
    nat_gateway_hour: float
    nat_gateway_gb: float            # data processed by a NAT gateway
    alb_hour: float
    alb_lcu_hour: float
    aurora_instance_hour: dict[str, float]   # Aurora MySQL, Aurora Standard configuration, by class
    aurora_storage_gb_month: float
    aurora_io_million: float
    aurora_backup_gb_month: float    # cluster snapshots kept with no cluster (after `down`): all of it bills
    ec2_instance_hour: dict[str, float]      # Linux on-demand, by instance type
    ebs_gp3_gb_month: float
    ebs_snapshot_gb_month: float
    secret_month: float
    secret_10k_api_calls: float
    alarm_metric_month: float        # a standard-resolution alarm, per metric it watches
    dashboard_month: float
    logs_ingested_gb: float
    logs_stored_gb_month: float
    public_ipv4_hour: float          # every public IPv4 address, in use or not (since 2024-02)
    waf_web_acl_month: float
    waf_rule_month: float
    waf_million_requests: float
    cloudfront_gb_out: float         # data transfer out to the internet, the first 10 TB a month
    cloudfront_https_10k: float      # HTTPS requests, per 10,000


# One column per region, in this order; a row is one price in every region (us-east-1 and us-west-2
# list the same prices for all of these).
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1")
#                                us-east-1 us-west-2 eu-west-1 eu-central-1
RATES: dict[str, tuple[float, float, float, float]] = {
    "nat_gateway_hour":          (0.045,   0.045,    0.048,    0.052),
    "nat_gateway_gb":            (0.045,   0.045,    0.048,    0.052),
    "alb_hour":                  (0.0225,  0.0225,   0.0252,   0.027),
    "alb_lcu_hour":              (0.008,   0.008,    0.008,    0.008),
    "aurora_storage_gb_month":   (0.10,    0.10,     0.11,     0.119),
    "aurora_io_million":         (0.20,    0.20,     0.22,     0.24),
    "aurora_backup_gb_month":    (0.021,   0.021,    0.021,    0.023),
    "ebs_gp3_gb_month":          (0.08,    0.08,     0.088,    0.0952),
    "ebs_snapshot_gb_month":     (0.05,    0.05,     0.05,     0.054),
    "secret_month":              (0.40,    0.40,     0.40,     0.40),
    "secret_10k_api_calls":      (0.05,    0.05,     0.05,     0.05),
    "alarm_metric_month":        (0.10,    0.10,     0.10,     0.10),
    "dashboard_month":           (3.00,    3.00,     3.00,     3.00),
    "logs_ingested_gb":          (0.50,    0.50,     0.57,     0.63),
    "logs_stored_gb_month":      (0.03,    0.03,     0.03,     0.0324),
    "public_ipv4_hour":          (0.005,   0.005,    0.005,    0.005),
    "waf_web_acl_month":         (5.00,    5.00,     5.00,     5.00),
    "waf_rule_month":            (1.00,    1.00,     1.00,     1.00),
    "waf_million_requests":      (0.60,    0.60,     0.60,     0.60),
    # CloudFront bills by where its viewers are, not by the stack's region: the distribution's
    # PriceClass_100 (North America and Europe) in every column.
    "cloudfront_gb_out":         (0.085,   0.085,    0.085,    0.085),
    "cloudfront_https_10k":      (0.01,    0.01,     0.01,     0.01),
}
# CloudFront's always-free tier, a month and an account (every distribution of the account shares it):
# 1 TB out to the internet (taken as 1,000 GB: the lower reading) and 10 million HTTP(S) requests.
CLOUDFRONT_FREE_GB = 1000.0
CLOUDFRONT_FREE_REQUESTS = 10_000_000
CLOUDFRONT_PRICE_CLASS = "PriceClass_100"
# Aurora MySQL-Compatible, Aurora Standard, on-demand, per instance-hour: the classes Aurora MySQL 3 offers
# that a small stack would pick (config's default is db.t4g.medium).
AURORA_INSTANCE_HOUR: dict[str, tuple[float, float, float, float]] = {
    "db.t3.medium":              (0.082,   0.082,    0.088,    0.098),
    "db.t3.large":               (0.164,   0.164,    0.176,    0.196),
    "db.t4g.medium":             (0.073,   0.073,    0.080,    0.088),
    "db.t4g.large":              (0.146,   0.146,    0.160,    0.176),
    "db.r5.large":               (0.29,    0.29,     0.32,     0.35),
    "db.r6g.large":              (0.26,    0.26,     0.287,    0.314),
    "db.r6i.large":              (0.29,    0.29,     0.32,     0.35),
    "db.r7g.large":              (0.276,   0.276,    0.306,    0.333),
}
# EC2 Linux on-demand, per instance-hour: the guide's t2.micro, config's default t3.micro, Graviton and
# the next sizes up.
EC2_INSTANCE_HOUR: dict[str, tuple[float, float, float, float]] = {
    "t2.micro":                  (0.0116,  0.0116,   0.0126,   0.0134),
    "t2.small":                  (0.023,   0.023,    0.025,    0.0268),
    "t2.medium":                 (0.0464,  0.0464,   0.05,     0.0536),
    "t3.micro":                  (0.0104,  0.0104,   0.0114,   0.012),
    "t3.small":                  (0.0208,  0.0208,   0.0228,   0.024),
    "t3.medium":                 (0.0416,  0.0416,   0.0456,   0.048),
    "t3.large":                  (0.0832,  0.0832,   0.0912,   0.096),
    "t3a.micro":                 (0.0094,  0.0094,   0.0102,   0.0108),
    "t3a.small":                 (0.0188,  0.0188,   0.0204,   0.0216),
    "t3a.medium":                (0.0376,  0.0376,   0.0408,   0.0432),
    "t4g.micro":                 (0.0084,  0.0084,   0.0092,   0.0096),
    "t4g.small":                 (0.0168,  0.0168,   0.0184,   0.0192),
    "t4g.medium":                (0.0336,  0.0336,   0.0368,   0.0384),
    "t4g.large":                 (0.0672,  0.0672,   0.0736,   0.0768),
    "m5.large":                  (0.096,   0.096,    0.107,    0.115),
    "m6i.large":                 (0.096,   0.096,    0.107,    0.115),
    "m6g.large":                 (0.077,   0.077,    0.086,    0.092),
    "m7g.large":                 (0.0816,  0.0816,   0.0912,   0.0972),
    "c5.large":                  (0.085,   0.085,    0.096,    0.097),
    "c6i.large":                 (0.085,   0.085,    0.096,    0.097),
    "c7g.large":                 (0.0725,  0.0725,   0.0816,   0.0826),
}

# Spot (app.spot, web.spot): no list price, a market that moves by the hour, AZ and type. What the
# estimate assumes instead, per instance type: the share below the on-demand price its Spot price
# stayed at, a typical figure of the month named (SPOT_PRICES_DATE), in every region of the table. An
# assumption, said as one by `threetier cost`: check the Spot price history (aws ec2
# describe-spot-price-history) or the Spot Instance Advisor before relying on it, and update the
# table and the date together.
SPOT_PRICES_DATE = "2026-11"
SPOT_SAVING: dict[str, float] = {
    "t2.micro": 0.65, "t2.small": 0.65, "t2.medium": 0.65,
    "t3.micro": 0.68, "t3.small": 0.68, "t3.medium": 0.68, "t3.large": 0.68,
    "t3a.micro": 0.66, "t3a.small": 0.66, "t3a.medium": 0.66,
    "t4g.micro": 0.64, "t4g.small": 0.64, "t4g.medium": 0.64, "t4g.large": 0.64,
    "m5.large": 0.60, "m6i.large": 0.58, "m6g.large": 0.58, "m7g.large": 0.55,
    "c5.large": 0.60, "c6i.large": 0.58, "c7g.large": 0.55,
}


def spot_hour(prices: RegionPrices, instance_type: str) -> float | None:
    """The assumed Spot price of an hour of `instance_type`; None when the table has no figure for it."""
    on_demand, saving = prices.ec2_instance_hour.get(instance_type), SPOT_SAVING.get(instance_type)
    return None if on_demand is None or saving is None else on_demand * (1 - saving)


PRICES: dict[str, RegionPrices] = {
    region: RegionPrices(**{name: row[column] for name, row in RATES.items()},
                         aurora_instance_hour={name: row[column] for name, row in AURORA_INSTANCE_HOUR.items()},
                         ec2_instance_hour={name: row[column] for name, row in EC2_INSTANCE_HOUR.items()})
    for column, region in enumerate(REGIONS)
}


def prices_for(region: str) -> tuple[str, RegionPrices]:
    """The table's prices for `region`, or FALLBACK_REGION's when the table lacks it; returns which."""
    if region in PRICES:
        return region, PRICES[region]
    return FALLBACK_REGION, PRICES[FALLBACK_REGION]
