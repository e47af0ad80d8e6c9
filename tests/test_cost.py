"""`threetier cost` prices config.yaml from the project's price table (no AWS
call), and `up` says what a new stack costs, asking first on a terminal."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

import boto3
import botocore.session
import pytest

from helpers import cli, moto, write_config
from ptyrun import Terminal
from threetier import config as configlib
from threetier.aws import is_mutating
from threetier.cli.cost import summary_line
from threetier.engine import Engine
from threetier.estimate import ASSUMED, HOURS_PER_MONTH, estimate
from threetier.output import Output
from threetier.pricing import PRICES, PRICES_DATE, PRICES_SOURCE

DEFAULT = configlib.parse({})
# The stack's own alarms (monitoring.alarms), by the metrics each watches (CloudWatch bills per
# metric): unhealthy hosts of each tier (1 each), each tier's 5xx rate (errors / requests: 2 each),
# the external ALB's 5xx (1), the Aurora writer's CPU and freeable memory (1 each).
ALARM_METRICS = 1 + 1 + 2 + 2 + 1 + 1 + 1


def test_the_default_stack_in_us_east_1_is_the_hand_computation_from_the_table() -> None:
    price, assumed, hours = PRICES["us-east-1"], ASSUMED, HOURS_PER_MONTH
    web, app, nat_gateways = DEFAULT.web.asg.desired, DEFAULT.app.asg.desired, 2  # nat_gateways: per_az
    policies = 3  # target tracking: web CPU and requests, app CPU (app's requests is null)
    ec2 = price.ec2_instance_hour
    logs_gb = assumed.flow_log_gb_per_month + assumed.tier_log_gb_per_month
    by_hand = (
        hours * nat_gateways * price.nat_gateway_hour
        + assumed.nat_gb_per_month * price.nat_gateway_gb
        + hours * 2 * price.alb_hour                                            # external and internal
        + hours * 2 * assumed.lcus_per_load_balancer * price.alb_lcu_hour
        + hours * 2 * price.aurora_instance_hour[DEFAULT.database.instance_class]  # writer and reader
        + assumed.aurora_storage_gb * price.aurora_storage_gb_month
        + assumed.aurora_io_millions_per_month * price.aurora_io_million
        + hours * (web * ec2[DEFAULT.web.instance_type] + app * ec2[DEFAULT.app.instance_type])
        + (web + app) * assumed.root_volume_gb * price.ebs_gp3_gb_month
        + 2 * assumed.image_snapshot_gb * price.ebs_snapshot_gb_month            # the app and web AMIs
        + hours * (web + nat_gateways + 2) * price.public_ipv4_hour              # the external ALB: one per AZ
        + price.secret_month
        + (ALARM_METRICS + 2 * policies) * price.alarm_metric_month
        + price.dashboard_month
        + logs_gb * price.logs_ingested_gb
        + logs_gb * DEFAULT.monitoring.log_retention_days * 24 / hours * price.logs_stored_gb_month
    )
    priced = estimate(DEFAULT, "us-east-1")
    assert (priced.region, priced.prices_region, priced.prices_date) == ("us-east-1", "us-east-1", PRICES_DATE)
    assert priced.monthly_usd == pytest.approx(by_hand, abs=1e-9)
    assert priced.hourly_usd == pytest.approx(by_hand / hours)
    assert not priced.unpriced
    for line in priced.lines:  # every line is its quantity at its unit price
        assert line.monthly_usd == pytest.approx(line.quantity * line.unit_usd)
    # Both ends of the total: the config.yaml in the repository is the default stack.
    assert estimate(configlib.load(Path(__file__).parent.parent / "config.yaml")).monthly_usd == pytest.approx(by_hand)


@pytest.mark.parametrize("region", sorted(PRICES))
def test_single_and_per_az_nat_gateways_differ_by_one_nat_gateway_month(region: str) -> None:
    per_az = estimate(DEFAULT, region)
    single = estimate(dataclasses.replace(DEFAULT, network=dataclasses.replace(DEFAULT.network, nat_gateways="single")),
                      region)
    price = PRICES[region]
    # One NAT gateway-month: the gateway's 730 hours and its Elastic IP's 730 public IPv4 hours. The
    # GB it processes are the stack's traffic, the same through one gateway or two.
    one_gateway_month = HOURS_PER_MONTH * (price.nat_gateway_hour + price.public_ipv4_hour)
    assert per_az.monthly_usd - single.monthly_usd == pytest.approx(one_gateway_month, abs=1e-9)
    differing = {a.item: (a.monthly_usd or 0) - (b.monthly_usd or 0)
                 for a, b in zip(per_az.lines, single.lines, strict=True) if a.monthly_usd != b.monthly_usd}
    assert sorted(differing.values()) == pytest.approx(sorted([HOURS_PER_MONTH * price.nat_gateway_hour,
                                                               HOURS_PER_MONTH * price.public_ipv4_hour]))
    assert per_az.nat_single_saving_usd == single.nat_single_saving_usd == pytest.approx(one_gateway_month)
    assert any(f"single would save ${one_gateway_month:,.2f} a month" in note for note in per_az.notes)


def test_a_region_not_in_the_table_is_priced_as_us_east_1_and_says_so(tmp_path: Path) -> None:
    write_config(tmp_path, region="ap-southeast-2")
    result = cli("cost", "--json", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert result.code == 0
    assert (report["region"], report["prices_region"]) == ("ap-southeast-2", "us-east-1")
    assert report["monthly_usd"] == round(estimate(DEFAULT, "us-east-1").monthly_usd, 2)
    said = [note for note in report["notes"] if "ap-southeast-2" in note]
    assert said == ["region ap-southeast-2 is not in the price table (us-east-1, us-west-2, eu-west-1, eu-central-1): "
                    "the estimate uses us-east-1 prices"]
    text = cli("cost", cwd=tmp_path)
    assert text.code == 0 and said[0] in text.stdout.replace("\n", " ")
    assert "us-east-1's" in text.stdout  # the bottom line says whose prices too


def test_a_region_of_the_table_is_priced_with_its_own_prices(tmp_path: Path) -> None:
    write_config(tmp_path, region="eu-central-1")
    report = json.loads(cli("cost", "--json", cwd=tmp_path).stdout)
    assert report["prices_region"] == "eu-central-1" and not any("price table" in n for n in report["notes"])
    assert report["monthly_usd"] > round(estimate(DEFAULT, "us-east-1").monthly_usd, 2)  # Frankfurt costs more


def test_an_instance_type_the_table_lacks_is_said_not_counted_as_zero(tmp_path: Path) -> None:
    write_config(tmp_path, web={"instance_type": "x9z.huge"}, database={"instance_class": "db.x9z.huge"})
    result = cli("cost", "--json", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert result.code == 0 and report["complete"] is False
    unpriced = [line for line in report["lines"] if line["unit_usd"] is None]
    assert [line["item"] for line in unpriced] == report["unpriced"] == [
        "Aurora db.x9z.huge x2 (writer, reader)", "EC2 x9z.huge x2 (web tier)"]
    assert all(line["monthly_usd"] is None for line in unpriced)  # never a silent 0
    assert any("no price in the us-east-1 price table for EC2 x9z.huge" in note for note in report["notes"])
    text = cli("cost", cwd=tmp_path)
    assert text.code == 0 and "at least $" in text.stdout and "2 item(s) without a price not counted" in text.stdout
    assert "no price" in text.stdout


def test_cdn_adds_cloudfront_free_within_the_always_free_tier_and_at_the_table_s_prices_beyond_it(tmp_path: Path) -> None:
    edge = {"domain": "shop.example.com", "hosted_zone": "example.com", "waf": True}
    plain, cdn = configlib.parse({"edge": edge}), configlib.parse({"edge": {**edge, "cdn": True}})
    price = PRICES["us-east-1"]
    # Lab traffic (10 GB, 1 million requests) is inside the free tier: the CDN adds its origin secret only;
    # the web ACL is CloudFront's at the regional one's price.
    priced = estimate(cdn, "us-east-1")
    assert priced.monthly_usd - estimate(plain, "us-east-1").monthly_usd == pytest.approx(price.secret_month)
    lines = {line.item: line for line in priced.lines}
    cloudfront = [line for line in priced.lines if line.item.startswith("CloudFront")]
    assert [(line.quantity, line.unit, line.unit_usd) for line in cloudfront] == [
        (0, "GB", price.cloudfront_gb_out), (0, "10,000 requests", price.cloudfront_https_10k)]
    assert lines["WAF web ACL (CloudFront's, us-east-1)"].monthly_usd == price.waf_web_acl_month
    # Beyond it: 500 GB and 15 million requests billed.
    busy = dataclasses.replace(ASSUMED, cdn_gb_out_per_month=1500, cdn_million_requests_per_month=25)
    more = estimate(cdn, "us-east-1", busy).monthly_usd - priced.monthly_usd
    assert more == pytest.approx(500 * price.cloudfront_gb_out + 1500 * price.cloudfront_https_10k)
    assert more == pytest.approx(42.5 + 15.0)  # $0.085 per GB, $0.01 per 10,000 requests (2026-11)
    # Said: an estimate, its source and date, the free tier, the certificate and the secret.
    said = " ".join(priced.assumptions)
    for words in ("CloudFront (edge.cdn), an estimate at the Amazon CloudFront pricing page's pay-as-you-go prices "
                  "of 2026-11", "always-free tier of 1 TB and 10 million requests a month",
                  "CloudFront's certificate (us-east-1): an ACM public certificate, free",
                  "a Secrets Manager secret, $0.40 a month", "the WAF web ACL is CloudFront's"):
        assert words in said
    assert "not counted: data transfer between AZs," in said and "Amazon CloudFront" in PRICES_SOURCE
    assert not [a for a in estimate(plain).assumptions if "CloudFront" in a]
    # Paused: no traffic, no CloudFront line; the secrets and the web ACL still bill.
    idle = estimate(cdn, "us-east-1", paused=True)
    assert not [line for line in idle.lines if line.item.startswith("CloudFront")]
    assert idle.monthly_usd - estimate(plain, "us-east-1", paused=True).monthly_usd == pytest.approx(price.secret_month)
    write_config(tmp_path, edge={**edge, "cdn": True})
    report = json.loads(cli("cost", "--json", cwd=tmp_path).stdout)
    assert report["monthly_usd"] == round(priced.monthly_usd, 2) and "Amazon CloudFront" in report["prices_source"]


def test_cost_json_is_one_object_with_the_numbers() -> None:
    result = cli("cost", "--json")
    assert result.code == 0 and result.stderr == ""
    report = json.loads(result.stdout)  # stdout is that object and nothing else
    for key in ("monthly_usd", "hourly_usd"):
        assert isinstance(report[key], float)
    assert report["hourly_usd"] == pytest.approx(report["monthly_usd"] / HOURS_PER_MONTH, abs=1e-4)
    assert report["region"] == report["prices_region"] == "us-east-1" and report["prices_date"] == PRICES_DATE
    assert report["lines"] and all({"item", "quantity", "unit", "unit_usd", "monthly_usd"} <= set(line)
                                   for line in report["lines"])
    assert all(isinstance(line[key], (int, float)) for line in report["lines"]
               for key in ("quantity", "unit_usd", "monthly_usd"))
    assert sum(line["monthly_usd"] for line in report["lines"]) == pytest.approx(report["monthly_usd"], abs=0.01)
    assert any("730 hours a month" in a for a in report["assumptions"])
    assert report["savings"] == [{"setting": "network.nat_gateways: single",
                                  "monthly_usd": round(estimate(DEFAULT).nat_single_saving_usd, 2)}]


def test_a_deploy_s_second_color_is_priced_by_the_hour_and_said() -> None:
    price, assumed = PRICES["us-east-1"], ASSUMED
    web, app = DEFAULT.web.asg.desired, DEFAULT.app.asg.desired
    by_hand = (web * (price.ec2_instance_hour[DEFAULT.web.instance_type] + price.public_ipv4_hour)
               + app * price.ec2_instance_hour[DEFAULT.app.instance_type]
               + (web + app) * assumed.root_volume_gb * price.ebs_gp3_gb_month / HOURS_PER_MONTH)
    report = json.loads(cli("cost", "--json").stdout)
    assert report["deploy_extra_hourly"] == pytest.approx(by_hand, abs=1e-4)
    minutes = 2.5 + DEFAULT.deploy.watch_minutes + 1.5
    [said] = [note for note in report["notes"] if note.startswith("during a deploy")]
    assert f"for about {minutes:g} minutes" in said and f"${by_hand:,.2f} an hour more" in said
    paused = json.loads(cli("cost", "--paused", "--json").stdout)["notes"]
    assert not any(note.startswith("during a deploy") for note in paused)  # a paused stack deploys nothing


def test_cost_prints_the_table_the_total_and_every_assumption() -> None:
    priced = estimate(DEFAULT)
    result = cli("cost")
    assert result.code == 0 and result.stderr == ""
    assert "estimated cost of stack threetier in us-east-1" in result.stdout
    assert f"${priced.monthly_usd:,.2f}" in result.stdout and summary_line(priced) in result.stdout
    flat = re.sub(r"\s+", " ", result.stdout)
    for assumption in priced.assumptions:
        assert f"- {assumption}" in flat


def test_cost_makes_no_aws_call_and_needs_no_credentials(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)

    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("cost made an AWS client")
    monkeypatch.setattr(botocore.session.Session, "create_client", no_client)
    for args in (("cost",), ("cost", "--json"), ("--sandbox", "cost")):
        result = cli(*args)
        assert result.code == 0, result.stderr
    assert calls == []


def test_a_bad_config_is_exit_2_naming_the_key(tmp_path: Path) -> None:
    write_config(tmp_path, network={"nat_gateways": "two"})
    result = cli("cost", cwd=tmp_path)
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "network.nat_gateways" in result.stderr


# -- before `up` ---------------------------------------------------------------------------
class Keyboard(io.StringIO):
    """Standard input that is a terminal: what a person types."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def engine_runs(monkeypatch: pytest.MonkeyPatch) -> list[Engine]:
    """`up` up to the point where its engine would build the stack, and not further: the estimate and
    the question come before it."""
    ran: list[Engine] = []
    monkeypatch.setattr(Engine, "up", lambda self: ran.append(self))
    return ran


def on_a_terminal(monkeypatch: pytest.MonkeyPatch, typed: str) -> None:
    monkeypatch.setattr(sys, "stdin", Keyboard(typed))
    monkeypatch.setattr(Output, "interactive", property(lambda self: True))


ESTIMATE_LINE = f"stack threetier does not exist in us-east-1 yet; from now until `threetier down` it costs " \
                f"{summary_line(estimate(DEFAULT))}"


def test_up_of_a_new_stack_without_a_terminal_needs_yes_and_says_the_cost(tmp_path: Path, calls, engine_runs) -> None:
    with moto():
        refused = cli("up", cwd=tmp_path)  # a script, a pipe, CI: nobody to ask
        assert refused.code == 2 and engine_runs == []
        assert ESTIMATE_LINE in refused.stderr
        last = refused.stderr.strip().splitlines()[-1]
        assert "a month" in last and "with no terminal to ask on, pass --yes to create it; nothing was created" in last
        # Only the stack's lock was taken and released around the decision.
        assert {op for op in calls if is_mutating(op)} == {"PutParameter", "DeleteParameter"}
        result = cli("up", "--yes", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert ESTIMATE_LINE in result.stderr and "$" not in result.stdout  # progress: stderr
    assert len(engine_runs) == 1


def test_up_of_a_new_stack_refused_on_a_terminal_changes_nothing(tmp_path: Path, monkeypatch, calls, engine_runs) -> None:
    on_a_terminal(monkeypatch, "n\n")
    with moto():
        result = cli("up", cwd=tmp_path)
    assert result.code == 2 and "up: not confirmed; nothing was created" in result.stderr
    assert ESTIMATE_LINE in result.stderr and engine_runs == []
    # Only the stack's lock was taken and released around the question.
    assert {op for op in calls if is_mutating(op)} == {"PutParameter", "DeleteParameter"}


def test_up_yes_on_a_terminal_does_not_ask(tmp_path: Path, monkeypatch, engine_runs) -> None:
    on_a_terminal(monkeypatch, "")  # a question would read the end of input: aborted, exit 2
    with moto():
        result = cli("up", "--yes", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert ESTIMATE_LINE in result.stderr and len(engine_runs) == 1


def test_up_of_a_stack_that_exists_neither_says_the_cost_nor_asks(tmp_path: Path, monkeypatch, engine_runs) -> None:
    on_a_terminal(monkeypatch, "")
    with moto():
        # No state file here, but AWS has the stack's VPC (another machine's `up`, a lost state file).
        boto3.client("ec2").create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [
            {"Key": "threetier:stack", "Value": "threetier"}, {"Key": "threetier:part", "Value": "2"},
            {"Key": "Name", "Value": "threetier-vpc"}]}])
        result = cli("up", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "does not exist" not in result.stderr and len(engine_runs) == 1


@pytest.mark.slow
def test_up_on_a_real_terminal_asks_and_no_stops_before_any_change(tmp_path: Path, moto_server: str) -> None:
    exe = shutil.which("threetier")
    assert exe, "the threetier console script is not installed (pip install -e .)"
    env = {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "AWS_ENDPOINT_URL": moto_server}
    up = Terminal([exe, "up", "-v"], cwd=str(tmp_path), env=env)  # -v: every AWS call, as it is made
    up.expect("Create stack threetier? [y/N]")
    up.send("n\r")
    assert up.wait() == 2
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", up.text).replace("\r", "")
    assert "not confirmed; nothing was created" in plain
    assert re.sub(r"\s+", " ", ESTIMATE_LINE) in re.sub(r"\s+", " ", plain)
    made = re.findall(r"aws ([a-z0-9-]+) ([A-Za-z]+)", plain)
    assert ("ec2", "DescribeVpcs") in made  # the calls are there to be seen
    assert [call for call in made if is_mutating(call[1])] == [("ssm", "PutParameter"), ("ssm", "DeleteParameter")]
    ec2 = boto3.client("ec2", endpoint_url=moto_server)
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])["Vpcs"] == []


def test_the_estimate_counts_what_the_steps_make() -> None:
    """The estimate keeps its counts as constants (pricing needs no step module at import); they
    must follow the steps: every alarm the stack puts, every rule of the web ACL."""
    from steps import app_tier, database, web_tier
    from threetier import estimate as estimatelib
    from threetier.blocks import waf
    assert len(database.ALARMS) + len(app_tier.ALARMS) + len(web_tier.ALARMS) == estimatelib.STACK_ALARMS
    assert len(waf.MANAGED_RULE_GROUPS) + 1 == estimatelib.WAF_RULES  # and the rate-based rule
