"""Preflight (threetier/preflight.py): what a first run on a real account trips on, found before the
first change; and the commands that would destroy or bill with nobody having asked."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from helpers import cli, moto, write_config
from threetier import config as configlib
from threetier import preflight
from threetier.aws import Aws, Call, Look
from threetier.preflight import Judge, Unanswered

REGION = "us-east-1"
AZS = ["us-east-1a", "us-east-1b"]


def judged(answers: dict[str, Any], raw: dict[str, Any] | None = None, follow_ups: dict[str, Any] | None = None,
           azs: list[str] | None = None) -> tuple[Judge, preflight.Findings]:
    """Judge these answers (and, if the first judgement asks, the follow-ups) for the config `raw`."""
    config = configlib.parse(raw or {})
    judge = Judge(config, REGION, azs or AZS, dict(answers))
    judge.judge(None)
    for _ in range(preflight.MORE_ROUNDS):  # as preflight.check does
        if not judge.follow_up:
            break
        assert follow_ups is not None, f"the judgement asked for {sorted(judge.follow_up)}"
        assert set(judge.follow_up) <= set(follow_ups), sorted(judge.follow_up)
        answers = {**answers, **{name: follow_ups[name] for name in judge.follow_up}}
        judge = Judge(config, REGION, azs or AZS, answers)
        judge.judge(None)
    assert not judge.follow_up, "more rounds than preflight.check makes"
    return judge, judge.findings


def addresses(total: int, own: int = 0, stack: str = "threetier") -> dict[str, Any]:
    return {"Addresses": [{"AllocationId": f"eipalloc-{i}", "Domain": "vpc",
                           "Tags": [{"Key": "threetier:stack", "Value": stack}] if i < own else []}
                          for i in range(total)]}


def quota(value: float) -> dict[str, Any]:
    return {"Quota": {"Value": value}}


EIP_ATTRIBUTE_5 = {"AccountAttributes": [{"AttributeName": "vpc-max-elastic-ips",
                                          "AttributeValues": [{"AttributeValue": "5"}]}]}


# -- quotas, judged on answers written by hand ----------------------------------------------------
def test_four_elastic_ips_in_use_block_a_per_az_stack_naming_quota_use_need_and_the_request():
    _, findings = judged({"elastic_ip_attribute": EIP_ATTRIBUTE_5, "addresses": addresses(4)})
    [shortfall] = findings.shortfalls
    line = shortfall.line()
    assert shortfall.key == "quota ec2 L-0263D0A3"
    assert "EC2-VPC Elastic IPs in us-east-1: 4 of 5 in use" in line
    assert "the stack needs 2 Elastic IPs" in line
    assert ("aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-0263D0A3 "
            "--desired-value 6 --region us-east-1") in line


def test_the_same_account_passes_with_a_single_nat_gateway_and_when_the_addresses_are_the_stacks_own():
    assert judged({"elastic_ip_attribute": EIP_ATTRIBUTE_5, "addresses": addresses(4)},
                  {"network": {"nat_gateways": "single"}})[1].shortfalls == []
    # A rerun: 2 of the 5 are the stack's own NAT addresses, 3 are others'.
    assert judged({"elastic_ip_attribute": EIP_ATTRIBUTE_5, "addresses": addresses(5, own=2)})[1].shortfalls == []
    # Another stack's addresses are not this one's.
    assert judged({"elastic_ip_attribute": EIP_ATTRIBUTE_5,
                   "addresses": addresses(5, own=2, stack="other")})[1].shortfalls != []


def test_service_quotas_wins_over_the_ec2_attribute_and_a_never_changed_quota_is_asked_for_its_default():
    answers = {"elastic_ip_attribute": EIP_ATTRIBUTE_5, "addresses": addresses(4), "quota L-0263D0A3": quota(10)}
    assert judged(answers)[1].shortfalls == []
    never_changed = {**answers, "quota L-0263D0A3": Unanswered("GetServiceQuota failed: NoSuchResourceException: x")}
    _, findings = judged(never_changed, follow_ups={"default L-0263D0A3": quota(5)})
    assert [s.key for s in findings.shortfalls] == ["quota ec2 L-0263D0A3"]


def test_vpcs_internet_gateways_and_load_balancers_count_others_against_the_quota():
    own_vpc = {"VpcId": "vpc-1", "Tags": [{"Key": "threetier:stack", "Value": "threetier"}]}
    others = [{"VpcId": f"vpc-o{i}"} for i in range(4)]
    answers = {"quota L-F678F1CE": quota(5), "vpcs": others, "quota L-A4707A72": quota(5),
               "internet_gateways": others + others[:1]}
    keys = [s.key for s in judged(answers)[1].shortfalls]
    assert keys == ["quota vpc L-A4707A72"]  # 4 VPCs + 1 = 5 fits; 5 gateways + 1 does not
    assert judged({**answers, "vpcs": [*others, own_vpc], "internet_gateways": others})[1].shortfalls == []
    limits = {"Limits": [{"Name": "application-load-balancers", "Max": "20"}]}
    albs = [{"LoadBalancerName": f"x{i}", "Type": "application"} for i in range(19)]
    [alb] = judged({"load_balancer_limits": limits, "load_balancers": albs})[1].shortfalls
    assert "Application Load Balancers per Region in us-east-1: 19 of 20 in use" in alb.line()
    mine = [{"LoadBalancerName": "threetier-ext-alb", "Type": "application"},
            {"LoadBalancerName": "threetier-int-alb", "Type": "application"}]
    assert judged({"load_balancer_limits": limits, "load_balancers": albs[:18] + mine})[1].shortfalls == []


def test_nat_gateways_per_az_are_located_only_when_the_region_holds_too_many_to_fit_anywhere():
    nats = [{"NatGatewayId": f"nat-{i}", "SubnetId": "subnet-a" if i < 5 else "subnet-c"} for i in range(6)]
    subnets = [{"SubnetId": "subnet-a", "AvailabilityZone": "us-east-1a"},
               {"SubnetId": "subnet-c", "AvailabilityZone": "us-east-1c"}]
    judge, findings = judged({"quota L-FE5A380F": quota(5), "nat_gateways": nats}, follow_ups={"nat_subnets": subnets})
    [shortfall] = findings.shortfalls
    assert "NAT gateways per Availability Zone in us-east-1a in us-east-1: 5 of 5 in use" in shortfall.line()
    # A quota never changed: its default first, then where the gateways are (the third round).
    never_changed = Unanswered("GetServiceQuota failed: NoSuchResourceException: x")
    _, findings = judged({"quota L-FE5A380F": never_changed, "nat_gateways": nats},
                         follow_ups={"default L-FE5A380F": quota(5), "nat_subnets": subnets})
    assert [s.key for s in findings.shortfalls] == ["quota vpc L-FE5A380F"]
    # A few NAT gateways fit in any zone: no second read.
    judge = Judge(configlib.parse({}), REGION, AZS, {"quota L-FE5A380F": quota(5), "nat_gateways": nats[:3]})
    judge.judge(None)
    assert judge.follow_up == {} and judge.findings.shortfalls == []


def test_vcpus_count_running_on_demand_standard_instances_against_both_groups_at_max_and_the_builders():
    reservations = [{"Instances": [{"InstanceType": "m5.large"} for _ in range(14)]  # 28 vCPUs
                     + [{"InstanceType": "g5.xlarge"}, {"InstanceType": "m5.large", "InstanceLifecycle": "spot"}]}]
    sizes = [{"InstanceType": "m5.large", "VCpuInfo": {"DefaultVCpus": 2}},
             {"InstanceType": "t3.micro", "VCpuInfo": {"DefaultVCpus": 2}}]
    # The stack needs (4 + 1) x 2 vCPUs per tier = 20; 28 + 20 > 32.
    _, findings = judged({"quota L-1216C47A": quota(32), "instances": reservations}, follow_ups={"instance_types": sizes})
    [shortfall] = findings.shortfalls
    assert "28 of 32 in use" in shortfall.line() and "needs 20 vCPUs" in shortfall.line()
    _, findings = judged({"quota L-1216C47A": quota(48), "instances": reservations},
                         follow_ups={"instance_types": sizes})
    assert findings.shortfalls == []


@pytest.mark.parametrize(("instance_type", "standard"), [
    ("t3.micro", True), ("m7g.large", True), ("im4gn.large", True), ("inf1.xlarge", False), ("g5.xlarge", False),
    ("dl1.24xlarge", False), ("u-6tb1.metal", False), ("x2idn.large", False), ("z1d.large", True)])
def test_the_standard_families(instance_type, standard):
    assert preflight.is_standard(instance_type) is standard


def test_the_aurora_quotas_count_the_stacks_own_cluster_and_instances():
    quotas = {"AccountQuotas": [{"AccountQuotaName": "DBClusters", "Used": 40, "Max": 40},
                                {"AccountQuotaName": "DBInstances", "Used": 39, "Max": 40}]}
    keys = [s.key for s in judged({"rds_quotas": quotas, "db_cluster": None})[1].shortfalls]
    assert keys == ["quota rds L-952B80B8", "quota rds L-7B6409FD"]
    own = {"DBClusters": [{"DBClusterMembers": [{}, {}]}]}
    assert judged({"rds_quotas": quotas, "db_cluster": own})[1].shortfalls == []


# -- offerings --------------------------------------------------------------------------------------
def test_an_instance_type_not_offered_in_one_of_the_zones_is_named_with_where_it_is():
    offerings = [{"InstanceType": "t3.micro", "Location": az} for az in ("us-east-1a", "us-east-1c")]
    shortfall, web_too = judged({"offerings": offerings})[1].shortfalls  # both tiers default to t3.micro
    assert (shortfall.key, web_too.key) == ("app.instance_type", "web.instance_type")
    assert "t3.micro is not offered in us-east-1b (offered in: us-east-1a, us-east-1c)" in shortfall.line()
    offerings.append({"InstanceType": "t3.micro", "Location": "us-east-1b"})
    assert judged({"offerings": offerings})[1].shortfalls == []
    [web] = judged({"offerings": offerings}, {"web": {"instance_type": "m7i.large"}})[1].shortfalls
    assert web.key == "web.instance_type" and "offered in: no zone of this region" in web.line()


def test_an_aurora_version_or_class_not_offered_is_told_apart_in_a_second_read():
    _, findings = judged({"orderable": []}, follow_ups={"engine_versions": []})
    assert [s.key for s in findings.shortfalls] == ["database.engine_version"]
    _, findings = judged({"orderable": []}, follow_ups={"engine_versions": [{"EngineVersion": "x"}]})
    [shortfall] = findings.shortfalls
    assert shortfall.key == "database.instance_class" and "describe-orderable-db-instance-options" in shortfall.fix
    offered = [{"AvailabilityZones": [{"Name": "us-east-1a"}, {"Name": "us-east-1b"}]}]
    assert judged({"orderable": offered})[1].shortfalls == []
    _, findings = judged({"orderable": [{"AvailabilityZones": [{"Name": "us-east-1a"}]}]})
    assert "in us-east-1b" in findings.shortfalls[0].line()


# -- permissions and the edge ---------------------------------------------------------------------------
def test_denied_actions_are_listed_and_pointed_at_the_published_policy():
    results = [{"EvalActionName": "ec2:CreateVpc", "EvalDecision": "allowed"},
               {"EvalActionName": "rds:CreateDBCluster", "EvalDecision": "implicitDeny"},
               {"EvalActionName": "iam:PassRole", "EvalDecision": "explicitDeny"}]
    [shortfall] = judged({"simulation": results})[1].shortfalls
    assert "may not iam:PassRole, rds:CreateDBCluster" in shortfall.line()
    assert "attach docs/iam-policy.json to them" in shortfall.fix
    # An edge action denied: the edge's policy named too (the two managed policies, threetier.permissions).
    results.append({"EvalActionName": "wafv2:CreateWebACL", "EvalDecision": "implicitDeny"})
    [shortfall] = judged({"simulation": results})[1].shortfalls
    assert "attach docs/iam-policy.json and docs/iam-policy-edge.json to them" in shortfall.fix
    _, findings = judged({"simulation": Unanswered("AccessDenied")})
    assert findings.shortfalls == [] and findings.skipped


@pytest.mark.parametrize(("arn", "principal"), [
    ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice"),
    ("arn:aws:sts::123456789012:assumed-role/Admin/alice", "arn:aws:iam::123456789012:role/Admin"),
    ("arn:aws-cn:sts::123456789012:assumed-role/Ops/x", "arn:aws-cn:iam::123456789012:role/Ops"),
    ("arn:aws:iam::123456789012:root", None),
    ("arn:aws:sts::123456789012:federated-user/bob", None),
    ("not an arn", None)])
def test_the_principal_simulated_for_the_callers_credentials(arn, principal):
    assert preflight.simulation_principal(arn) == principal


def test_a_given_certificate_must_exist_be_issued_and_cover_the_domain():
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
    raw = {"edge": {"domain": "shop.example.com", "hosted_zone": "example.com", "certificate_arn": arn}}
    issued = {"Certificate": {"Status": "ISSUED", "DomainName": "example.com",
                              "SubjectAlternativeNames": ["example.com", "*.example.com"]}}
    assert judged({"certificate": issued}, raw)[1].shortfalls == []
    assert "no certificate" in judged({"certificate": None}, raw)[1].shortfalls[0].line()
    pending = {"Certificate": {**issued["Certificate"], "Status": "PENDING_VALIDATION"}}
    assert "is PENDING_VALIDATION, not ISSUED" in judged({"certificate": pending}, raw)[1].shortfalls[0].line()
    other = {"Certificate": {"Status": "ISSUED", "DomainName": "example.org", "SubjectAlternativeNames": []}}
    assert "covers example.org, not shop.example.com" in judged({"certificate": other}, raw)[1].shortfalls[0].line()


def test_with_cdn_the_albs_certificate_covers_the_origin_and_cloudfronts_exists_in_us_east_1_issued():
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
    cdn_arn = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789013"
    raw = {"edge": {"domain": "shop.example.com", "hosted_zone": "example.com", "certificate_arn": arn, "cdn": True,
                    "cdn_certificate_arn": cdn_arn}}
    domain_only = {"Certificate": {"Status": "ISSUED", "DomainName": "shop.example.com",
                                   "SubjectAlternativeNames": ["shop.example.com"]}}
    wildcard = {"Certificate": {"Status": "ISSUED", "DomainName": "shop.example.com",
                                "SubjectAlternativeNames": ["shop.example.com", "*.shop.example.com"]}}
    assert judged({"certificate": wildcard, "cdn_certificate": domain_only}, raw)[1].shortfalls == []
    [origin] = judged({"certificate": domain_only, "cdn_certificate": domain_only}, raw)[1].shortfalls
    assert origin.line().startswith("edge.certificate_arn:") and "not origin.shop.example.com" in origin.line()
    [missing] = judged({"certificate": wildcard, "cdn_certificate": None}, raw)[1].shortfalls
    assert missing.line().startswith("edge.cdn_certificate_arn:") and f"no certificate {cdn_arn} in us-east-1" in missing.line()
    pending = {"Certificate": {**domain_only["Certificate"], "Status": "PENDING_VALIDATION"}}
    [waiting] = judged({"certificate": wildcard, "cdn_certificate": pending}, raw)[1].shortfalls
    assert "edge.cdn_certificate_arn" in waiting.line() and "not ISSUED" in waiting.line()
    # Asked in us-east-1, whatever the stack's region.
    config = configlib.parse({**raw, "edge": {**raw["edge"], "certificate_arn": None}, "region": "eu-west-1"})
    aws = mock.Mock(region="eu-west-1", emulator=True)
    edge_ctx = mock.Mock(config=config)
    assert preflight.first_round(config, aws, None, edge_ctx)["cdn_certificate"].region == "us-east-1"


@pytest.mark.parametrize(("name", "domain", "covered"), [
    ("shop.example.com", "shop.example.com", True), ("*.example.com", "shop.example.com", True),
    ("*.example.com", "a.shop.example.com", False), ("*.example.com", "example.com", False),
    ("SHOP.example.com.", "shop.example.com", True), ("example.com", "shop.example.com", False)])
def test_which_certificate_names_cover_the_domain(name, domain, covered):
    assert preflight.covers(name, domain) is covered


# -- the commands, against moto ----------------------------------------------------------------------
@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Every AWS call the CLI makes in this test (through the one AWS layer)."""
    made: list[Call] = []
    real = Aws._record

    def record(self: Aws, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        real(self, model, params, **kwargs)
        made.append(self.calls[-1])
    monkeypatch.setattr(Aws, "_record", record)
    return made


def test_up_with_the_elastic_ip_quota_used_up_refuses_before_any_change(tmp_path: Path, calls: list[Call]):
    with moto():
        ec2 = boto3.client("ec2", region_name=REGION)
        for _ in range(4):
            ec2.allocate_address(Domain="vpc")
        write_config(tmp_path, network={"nat_gateways": "per_az"})
        result = cli("up", "--yes", cwd=tmp_path)
        assert result.code == 2, result.stderr
        assert "blocked: quota ec2 L-0263D0A3: EC2-VPC Elastic IPs in us-east-1: 4 of 5 in use" in result.stderr
        assert "--quota-code L-0263D0A3 --desired-value 6" in result.stderr
        assert "up: 1 preflight check failed (above); nothing was changed" in result.stderr
        assert [c.operation for c in calls if c.mutating] == []  # not even the stack's lock
        assert len(ec2.describe_vpcs()["Vpcs"]) == 1  # the default VPC only
        assert not (tmp_path / ".threetier" / "threetier.json").exists()
        # plan says the same, under `blocked`, and exits 2 (1 with --detailed-exitcode: an error,
        # as Terraform's, never its 2, "changes").
        plan = cli("plan", "--json", cwd=tmp_path)
        assert plan.code == 2, plan.stderr
        assert [b["key"] for b in json.loads(plan.stdout)["blocked"]] == ["quota ec2 L-0263D0A3"]
        assert cli("plan", "--detailed-exitcode", cwd=tmp_path).code == 1
        # One address released: the stack fits, and up goes on (it is refused later only for the
        # test's sake: a single NAT gateway needs one address, and no --yes is given without a terminal).
        ec2.release_address(AllocationId=ec2.describe_addresses()["Addresses"][0]["AllocationId"])
        assert cli("plan", "--json", "--detailed-exitcode", cwd=tmp_path).code == 2  # changes, not blocked


def test_up_with_edge_and_no_hosted_zone_says_how_to_make_it_and_changes_nothing(tmp_path: Path, calls: list[Call]):
    with moto():
        write_config(tmp_path, edge={"domain": "shop.example.com", "hosted_zone": "example.com"})
        result = cli("up", "--yes", cwd=tmp_path)
        assert result.code == 2, result.stderr
        assert ("blocked: edge.hosted_zone: no public Route 53 hosted zone example.com in this account"
                in result.stderr)
        assert "aws route53 create-hosted-zone --name example.com" in result.stderr
        assert [c.operation for c in calls if c.mutating] == []
        plan = cli("plan", cwd=tmp_path)
        assert plan.code == 2
        assert "blocked (up would refuse before its first change):" in plan.stdout
        assert "edge.hosted_zone: no public Route 53 hosted zone example.com" in plan.stdout


def test_a_record_someone_else_wrote_for_the_domain_blocks_up_before_any_change(tmp_path: Path, calls: list[Call]):
    with moto():
        route53 = boto3.client("route53")
        zone = route53.create_hosted_zone(Name="example.com", CallerReference="x")["HostedZone"]["Id"]
        route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
            "Action": "CREATE", "ResourceRecordSet": {"Name": "shop.example.com", "Type": "A", "TTL": 60,
                                                      "ResourceRecords": [{"Value": "192.0.2.7"}]}}]})
        write_config(tmp_path, edge={"domain": "shop.example.com", "hosted_zone": "example.com"})
        result = cli("up", "--yes", cwd=tmp_path)
        assert result.code == 2, result.stderr
        assert "blocked: edge.domain: hosted zone example.com" in result.stderr
        assert "A record shop.example.com (192.0.2.7) that threetier did not write" in result.stderr
        assert [c.operation for c in calls if c.mutating] == []


def test_a_new_stack_with_no_terminal_and_no_yes_is_refused_naming_yes_and_the_monthly_cost(tmp_path: Path):
    with moto():
        write_config(tmp_path)
        result = cli("up", cwd=tmp_path)
        assert result.code == 2, result.stderr
        assert "with no terminal to ask on, pass --yes to create it; nothing was created" in result.stderr
        assert "a month" in result.stderr.splitlines()[-1]
        assert len(boto3.client("ec2", region_name=REGION).describe_vpcs()["Vpcs"]) == 1
        assert boto3.client("ssm", region_name=REGION).describe_parameters()["Parameters"] == []


def test_up_on_an_existing_stack_needs_no_yes_and_its_preflight_passes(built: Path, calls: list[Call]):
    result = cli("up", cwd=built)
    assert result.code == 0, result.stderr
    assert [c.operation for c in calls if c.mutating and not c.params.get("Name", "").endswith("/lock")] == []


@pytest.mark.parametrize("command", [["down", "--yes"], ["pause"]])
def test_down_and_pause_refuse_without_a_config_file(built: Path, tmp_path: Path, command: list[str]):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = str(built / ".threetier" / "threetier.json")
    result = cli(*command, "--state", state, cwd=elsewhere)
    assert result.code == 2
    assert f"{command[0]}: no config file here (./config.yaml) and no --config" in result.stderr
    assert boto3.client("ec2", region_name=REGION).describe_nat_gateways(
        Filter=[{"Name": "state", "Values": ["available"]}])["NatGateways"]  # nothing stopped or deleted


def test_the_header_of_a_changing_command_names_stack_region_account_and_config_file(built: Path):
    result = cli("replay", "storage", cwd=built)
    assert result.code == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert first == (f"threetier replay storage: stack threetier in us-east-1, account 123456789012 "
                     f"(config: {Path('config.yaml')})"), first


def test_the_preflight_of_a_complete_stack_reads_in_two_rounds_at_most(built: Path):
    from helpers import make_engine
    engine = make_engine(built)
    findings = preflight.check(engine, "up")
    assert findings.shortfalls == []
    # The emulator cannot answer quotas, RDS offerings or simulations: said, not guessed.
    assert any("emulator" in line for line in findings.skipped)
    operations = [c.operation for c in engine.ctx.aws.calls]
    assert findings.calls == len(operations) and not any(c.mutating for c in engine.ctx.aws.calls)
    assert "DescribeInstanceTypeOfferings" in operations and "DescribeAddresses" in operations


def test_reads_nobody_can_answer_are_skipped_not_raised():
    class Failing:
        read_threads = 1

        def client(self, service: str) -> None:
            pass

        def look(self, look: Look, resource: str) -> Any:
            raise NotImplementedError("not emulated")
    answers = preflight.ask(Failing(), {"x": Look("service-quotas", "get_service_quota")})  # type: ignore[arg-type]
    assert isinstance(answers["x"], Unanswered) and "not emulated" in answers["x"].why


def test_on_aws_the_commands_actions_are_simulated_for_the_callers_principal_and_quotas_asked():
    from types import SimpleNamespace

    from threetier import permissions
    config = configlib.parse({})
    on_aws = SimpleNamespace(emulator=False, caller_arn="arn:aws:sts::123456789012:assumed-role/Deployer/ci")
    wanted = preflight._permissions(config, "plan")  # plan, replay and resume: what up makes
    assert wanted == permissions.actions_for("up", config) and "ec2:CreateVpc" in wanted
    looks = preflight.first_round(config, on_aws, wanted, None)  # type: ignore[arg-type]
    simulation = looks["simulation"]
    assert simulation.params == {"PolicySourceArn": "arn:aws:iam::123456789012:role/Deployer", "ActionNames": wanted}
    assert {f"quota {q.code}" for q in preflight.SERVICE_QUOTAS} <= set(looks)
    assert "rds_quotas" in looks and "orderable" in looks
    # An emulator is not asked what it cannot answer truly.
    emulated = preflight.first_round(config, SimpleNamespace(emulator=True, caller_arn=""), wanted, None)  # type: ignore[arg-type]
    assert not {"simulation", "rds_quotas", "orderable"} & set(emulated)
    assert not any(name.startswith("quota ") for name in emulated)
