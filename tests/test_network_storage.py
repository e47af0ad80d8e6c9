"""Parts 1 and 2 against moto: the resources of GUIDE.md, idempotence, repair, teardown."""
from __future__ import annotations

import ipaddress
import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import make_engine, moto, mutating
from threetier import artifacts, scan
from threetier.aws import PART_TAG, STACK_TAG, tag_value

STACK = "threetier"


@pytest.fixture
def mocked():
    """An empty moto, for the tests about building; the others start from `built` (conftest): the
    default stack restored as `up` left it."""
    with moto():
        yield


def up(tmp_path: Path, raw: dict | None = None):
    engine = make_engine(tmp_path, raw)
    engine.up()
    return engine


def ec2():
    return boto3.client("ec2", region_name="us-east-1")


def named(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {tag_value(i, "Name"): i for i in items}


def stack_filter() -> list[dict]:
    return [{"Name": f"tag:{STACK_TAG}", "Values": [STACK]}]


def live_nats() -> list[dict]:
    return [n for n in ec2().describe_nat_gateways()["NatGateways"] if n["State"] not in ("deleted", "failed")]


def test_up_builds_part_1_as_the_guide_says(built: Path) -> None:
    engine = make_engine(built)
    s3, iam = boto3.client("s3"), boto3.client("iam")
    bucket = engine.ctx.state.parts[1].resources["bucket"]
    assert bucket == f"{STACK}-code-123456789012-us-east-1"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # (That the bucket is tagged at creation only its CreateBucket call shows: the next test.)

    # The application code, byte for byte.
    keys = {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    from steps import web_image
    assert keys == {**artifacts.application_files(), "nginx.conf": web_image.nginx_conf(engine.ctx)}

    # One role and instance profile per tier, named with the region (IAM names are account-wide).
    for tier, reads, inline_names in (("app", ["app-tier/*"], ["read-code-bucket", "read-db-secret", "write-logs"]),
                                      ("web", ["web-tier/*", "nginx.conf"], ["read-code-bucket", "write-logs"])):
        role = iam.get_role(RoleName=f"{STACK}-us-east-1-{tier}-role")["Role"]
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
        assert {t["Key"] for t in role["Tags"]} >= {STACK_TAG, PART_TAG, "Name"}
        attached = [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]]
        assert attached == ["AmazonSSMManagedInstanceCore"]
        inline = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
        assert sorted(inline) == inline_names  # read-db-secret comes with Part 3, on the app tier's role only
        document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="read-code-bucket")["PolicyDocument"]
        resources = {r for s in document["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
        assert resources == {f"arn:aws:s3:::{bucket}"} | {f"arn:aws:s3:::{bucket}/{key}" for key in reads}  # its own keys
        actions = {s["Action"] for s in document["Statement"]}
        assert actions == {"s3:ListBucket", "s3:GetObject"}  # read only
        profile = iam.get_instance_profile(InstanceProfileName=f"{STACK}-us-east-1-{tier}-profile")["InstanceProfile"]
        assert [r["RoleName"] for r in profile["Roles"]] == [role["RoleName"]]
        assert {t["Key"] for t in profile.get("Tags", [])} >= {STACK_TAG, "Name"}


def test_up_builds_part_2_as_the_guide_says(built: Path) -> None:
    client = ec2()
    vpcs = client.describe_vpcs(Filters=stack_filter())["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["CidrBlock"] == "10.0.0.0/16"
    vpc_id = vpcs[0]["VpcId"]
    for attribute in ("enableDnsSupport", "enableDnsHostnames"):
        value = client.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
        assert value[attribute[0].upper() + attribute[1:]]["Value"] is True

    subnets = named(client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"])
    az1, az2 = sorted(z["ZoneName"] for z in client.describe_availability_zones()["AvailabilityZones"])[:2]
    expected = {
        "public-web-subnet-az1": ("10.0.0.0/24", az1), "public-web-subnet-az2": ("10.0.1.0/24", az2),
        "private-app-subnet-az1": ("10.0.2.0/24", az1), "private-app-subnet-az2": ("10.0.3.0/24", az2),
        "private-db-subnet-az1": ("10.0.4.0/24", az1), "private-db-subnet-az2": ("10.0.5.0/24", az2),
    }
    assert set(subnets) == {f"{STACK}-{role}" for role in expected}
    for role, (cidr, az) in expected.items():
        subnet = subnets[f"{STACK}-{role}"]
        assert (subnet["CidrBlock"], subnet["AvailabilityZone"]) == (cidr, az)
        assert subnet["MapPublicIpOnLaunch"] is role.startswith("public")

    igws = client.describe_internet_gateways(Filters=stack_filter())["InternetGateways"]
    assert len(igws) == 1 and igws[0]["Attachments"][0]["VpcId"] == vpc_id

    nats = live_nats()
    assert len(nats) == 2
    by_subnet = {n["SubnetId"]: n for n in nats}
    assert set(by_subnet) == {subnets[f"{STACK}-public-web-subnet-az1"]["SubnetId"],
                              subnets[f"{STACK}-public-web-subnet-az2"]["SubnetId"]}
    eips = client.describe_addresses(Filters=stack_filter())["Addresses"]
    assert len(eips) == 2
    nat_eips = [n["NatGatewayAddresses"][0]["AllocationId"] for n in nats]
    assert sorted(nat_eips) == sorted(e["AllocationId"] for e in eips)  # each NAT its own EIP

    tables = client.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]

    def default_route(table):
        return next((r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None)

    def table_of(subnet_name):
        sid = subnets[subnet_name]["SubnetId"]
        explicit = [t for t in tables if any(a.get("SubnetId") == sid for a in t["Associations"])]
        return explicit[0] if explicit else next(t for t in tables if any(a.get("Main") for a in t["Associations"]))

    public = table_of(f"{STACK}-public-web-subnet-az1")
    assert public is table_of(f"{STACK}-public-web-subnet-az2")
    assert default_route(public)["GatewayId"] == igws[0]["InternetGatewayId"]
    for az_index in ("az1", "az2"):
        app_table = table_of(f"{STACK}-private-app-subnet-{az_index}")
        nat_id = default_route(app_table)["NatGatewayId"]
        nat_subnet = next(n["SubnetId"] for n in nats if n["NatGatewayId"] == nat_id)
        # the NAT gateway in the same AZ, never across AZs
        assert nat_subnet == subnets[f"{STACK}-public-web-subnet-{az_index}"]["SubnetId"]
        db_table = table_of(f"{STACK}-private-db-subnet-{az_index}")
        assert default_route(db_table) is None
        assert all(r.get("GatewayId") == "local" for r in db_table["Routes"])
    assert len({table_of(f"{STACK}-private-app-subnet-{i}")["RouteTableId"] for i in ("az1", "az2")}) == 2

    assert_security_group_chain(vpc_id, admin=None)

    # Everything of Part 2 carries the three tags.
    for kind, items in [("vpc", vpcs), ("subnet", list(subnets.values())), ("igw", igws), ("nat", nats),
                        ("eip", eips), ("rt", [t for t in tables if not any(a.get("Main") for a in t["Associations"])]),
                        ("sg", client.describe_security_groups(Filters=stack_filter())["SecurityGroups"])]:
        for item in items:
            assert tag_value(item, STACK_TAG) == STACK, kind
            assert tag_value(item, PART_TAG) == "2", kind
            assert (tag_value(item, "Name") or "").startswith(f"{STACK}-"), kind
    # (... set at creation: test_up_tags_at_creation_and_a_second_up_makes_no_mutating_call.)


def assert_security_group_chain(vpc_id: str, admin: str | None, clients: tuple[str, ...] = ("0.0.0.0/0",), port: int = 4000) -> None:
    client = ec2()
    groups = named(client.describe_security_groups(Filters=stack_filter())["SecurityGroups"])
    ids = {name.removeprefix(f"{STACK}-"): g["GroupId"] for name, g in groups.items()}
    assert set(ids) == {"external-alb-sg", "web-sg", "internal-alb-sg", "app-sg", "db-sg"}
    assert all(g["VpcId"] == vpc_id for g in groups.values())

    def ingress(role):
        rules = client.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [ids[role]]}])
        return sorted((r["IpProtocol"], r["FromPort"], r["ToPort"],
                       r.get("CidrIpv4") or r["ReferencedGroupInfo"]["GroupId"])
                      for r in rules["SecurityGroupRules"] if not r["IsEgress"])

    extra_web = [("tcp", 80, 80, admin)] if admin else []
    extra_app = [("tcp", port, port, admin)] if admin else []
    assert ingress("external-alb-sg") == sorted(("tcp", 80, 80, c) for c in clients)
    assert ingress("web-sg") == sorted([("tcp", 80, 80, ids["external-alb-sg"]), *extra_web])
    assert ingress("internal-alb-sg") == [("tcp", 80, 80, ids["web-sg"])]
    assert ingress("app-sg") == sorted([("tcp", port, port, ids["internal-alb-sg"]), *extra_app])
    assert ingress("db-sg") == [("tcp", 3306, 3306, ids["app-sg"])]
    for role in ("web-sg", "internal-alb-sg", "app-sg", "db-sg"):
        assert all(rule[3] != "0.0.0.0/0" for rule in ingress(role))


def test_admin_cidr_and_client_cidrs_rules_and_their_convergence(mocked, tmp_path: Path) -> None:
    raw = {"access": {"admin_cidr": "203.0.113.7/32", "client_cidrs": ["198.51.100.0/24", "192.0.2.0/24"]}}
    engine = up(tmp_path, raw)
    vpc = engine.ctx.state.parts[2].resources["vpc"]
    assert_security_group_chain(vpc, admin="203.0.113.7/32", clients=("198.51.100.0/24", "192.0.2.0/24"))
    # The operator moves: the old address loses access, the new one gains it, nothing else changes.
    raw["access"]["admin_cidr"] = "203.0.113.99/32"
    again = up(tmp_path, raw)
    assert_security_group_chain(vpc, admin="203.0.113.99/32", clients=("198.51.100.0/24", "192.0.2.0/24"))
    assert Counter(mutating(again)) == Counter({"RevokeSecurityGroupIngress": 2, "AuthorizeSecurityGroupIngress": 2})
    # Admin access switched off again.
    raw["access"]["admin_cidr"] = None
    up(tmp_path, raw)
    assert_security_group_chain(vpc, admin=None, clients=("198.51.100.0/24", "192.0.2.0/24"))


def test_single_nat_lab_mode(mocked, tmp_path: Path) -> None:
    engine = up(tmp_path, {"network": {"nat_gateways": "single"}})
    nats = live_nats()
    assert len(nats) == 1
    assert len(ec2().describe_addresses(Filters=stack_filter())["Addresses"]) == 1
    tables = engine.ctx.state.parts[2].resources["route_tables"]
    for role in ("private-app-rt-az1", "private-app-rt-az2"):
        table = ec2().describe_route_tables(RouteTableIds=[tables[role]])["RouteTables"][0]
        assert any(r.get("NatGatewayId") == nats[0]["NatGatewayId"] for r in table["Routes"])


def test_up_tags_at_creation_and_a_second_up_makes_no_mutating_call(mocked, tmp_path: Path) -> None:
    """What only the calls of a first `up` show (so it builds from nothing): every EC2 resource is
    tagged in the call that creates it, none afterwards; then a second `up` has nothing to do."""
    first = up(tmp_path)
    assert len(mutating(first)) > 40
    # Every EC2 create call carried TagSpecifications.
    creates = [c for c in first.ctx.aws.calls if c.service == "ec2" and c.operation.startswith(("Create", "Allocate"))
               and c.operation != "CreateRoute"]
    assert creates and all(c.params.get("TagSpecifications") for c in creates), [c.operation for c in creates]
    assert not [c for c in first.ctx.aws.calls if c.operation in ("CreateTags", "TagResource", "PutBucketTagging")]
    # The bucket too (moto drops CreateBucketConfiguration.Tags, so look at the call).
    create = next(c for c in first.ctx.aws.calls if c.operation == "CreateBucket")
    assert {t["Key"]: t["Value"] for t in create.params["CreateBucketConfiguration"]["Tags"]} == {
        STACK_TAG: STACK, PART_TAG: "1", "Name": f"{STACK}-code-bucket"}

    second = up(tmp_path)
    assert mutating(second) == []
    assert second.ctx.changes == []
    state = json.loads((tmp_path / "state.json").read_text())
    assert [state["parts"][k]["status"] for k in ("1", "2")] == ["done", "done"]


def _delete_nat_az1(client, resources):
    client.delete_nat_gateway(NatGatewayId=resources[2]["nat_gateways"]["az1"])


def _delete_app_route_table_az2(client, resources):
    table = client.describe_route_tables(RouteTableIds=[resources[2]["route_tables"]["private-app-rt-az2"]])["RouteTables"][0]
    for association in table["Associations"]:
        client.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
    client.delete_route_table(RouteTableId=table["RouteTableId"])


def _revoke_db_rule(client, resources):
    group = resources[2]["security_groups"]["db-sg"]
    rules = client.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    client.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=[r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]])


def _add_open_rule_to_app_sg(client, resources):
    client.authorize_security_group_ingress(GroupId=resources[2]["security_groups"]["app-sg"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])


def _delete_inline_policy(_client, resources):
    boto3.client("iam").delete_role_policy(RoleName=resources[1]["role"], PolicyName="read-code-bucket")


def _suspend_versioning(_client, resources):
    boto3.client("s3").put_bucket_versioning(Bucket=resources[1]["bucket"], VersioningConfiguration={"Status": "Suspended"})


def _delete_code_object(_client, resources):
    boto3.client("s3").delete_object(Bucket=resources[1]["bucket"], Key=next(iter(artifacts.application_files())))


def _detach_igw(client, resources):
    client.detach_internet_gateway(InternetGatewayId=resources[2]["internet_gateway"], VpcId=resources[2]["vpc"])


@pytest.mark.parametrize("damage,repair", [
    # (moto leaves the EIP associated with the deleted NAT gateway: it is freed first)
    (_delete_nat_az1, {"DisassociateAddress": 1, "CreateNatGateway": 1, "ReplaceRoute": 1}),
    (_delete_app_route_table_az2, {"CreateRouteTable": 1, "CreateRoute": 1, "AssociateRouteTable": 1}),
    (_revoke_db_rule, {"AuthorizeSecurityGroupIngress": 1}),
    (_add_open_rule_to_app_sg, {"RevokeSecurityGroupIngress": 1}),
    (_delete_inline_policy, {"PutRolePolicy": 1}),
    (_suspend_versioning, {"PutBucketVersioning": 1}),
    (_delete_code_object, {"PutObject": 1}),
    (_detach_igw, {"AttachInternetGateway": 1}),
], ids=lambda v: v.__name__.strip("_") if callable(v) else "")
def test_up_after_out_of_band_damage_recreates_only_that(built: Path, damage, repair) -> None:
    resources = {n: p.resources for n, p in make_engine(built).ctx.state.parts.items()}
    damage(ec2(), resources)
    again = up(built)
    assert Counter(mutating(again)) == Counter(repair)
    assert mutating(up(built)) == []  # and it is whole again
    assert len(live_nats()) == 2


def test_down_removes_everything_and_second_down_is_a_noop(built: Path) -> None:
    down = make_engine(built)
    down.down()
    assert scan.tagged(down.ctx.aws, STACK) == []
    client = ec2()
    assert client.describe_vpcs(Filters=stack_filter())["Vpcs"] == []
    assert client.describe_addresses()["Addresses"] == []
    assert live_nats() == []
    assert client.describe_security_groups(Filters=stack_filter())["SecurityGroups"] == []
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == []
    assert boto3.client("iam").list_instance_profiles()["InstanceProfiles"] == []
    assert [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"] if r["RoleName"].startswith(STACK)] == []
    again = make_engine(built)
    again.down()
    assert mutating(again) == []


def test_down_without_a_state_file_finds_the_stack_by_its_tags(built: Path) -> None:
    (built / "state.json").unlink()
    engine = make_engine(built)
    engine.down()
    assert scan.tagged(engine.ctx.aws, STACK) == []


def test_down_empties_every_version_of_the_bucket(built: Path) -> None:
    engine = make_engine(built)
    bucket = engine.ctx.state.parts[1].resources["bucket"]
    s3 = boto3.client("s3")
    for body in (b"one", b"two", b"three"):
        s3.put_object(Bucket=bucket, Key="notes.txt", Body=body)
    s3.delete_object(Bucket=bucket, Key="notes.txt")  # a delete marker on top
    make_engine(built).down()
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_other_stacks_are_left_alone(stack_from, tmp_path: Path) -> None:
    first = stack_from("default", tmp_path / "a")  # stack threetier, restored; beta built beside it
    (tmp_path / "b").mkdir()
    up(tmp_path / "b", {"stack": "beta", "network": {"vpc_cidr": "10.1.0.0/16", "subnets": {
        "web": ["10.1.0.0/24", "10.1.1.0/24"], "app": ["10.1.2.0/24", "10.1.3.0/24"],
        "db": ["10.1.4.0/24", "10.1.5.0/24"]}}})
    make_engine(first).down()
    beta = make_engine(tmp_path / "b", {"stack": "beta"})
    assert len(scan.tagged(beta.ctx.aws, "beta")) > 15
    assert scan.tagged(beta.ctx.aws, STACK) == []


def test_state_file_holds_no_secret_and_is_only_an_index(built: Path) -> None:
    engine = make_engine(built)
    text = (built / "state.json").read_text()
    data = json.loads(text)
    assert data["schema_version"] == 1 and data["stack"] == STACK and data["account"] == "123456789012"
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=data["parts"]["3"]["resources"]["db_secret_arn"])
    password = json.loads(secret["SecretString"])["password"]
    assert len(password) >= 8 and password not in text
    assert "password" not in text.lower()
    # A wrong ID in the state file is not trusted: AWS's tags win.
    data["parts"]["2"]["resources"]["vpc"] = "vpc-00000000000000000"
    (built / "state.json").write_text(json.dumps(data))
    again = up(built)
    assert mutating(again) == []
    assert again.ctx.state.parts[2].resources["vpc"] == engine.ctx.state.parts[2].resources["vpc"]


def test_changing_the_vpc_cidr_is_refused_with_what_to_do(built: Path) -> None:
    engine = make_engine(built, {"network": {"vpc_cidr": "10.9.0.0/16", "subnets": {
        "web": ["10.9.0.0/24", "10.9.1.0/24"], "app": ["10.9.2.0/24", "10.9.3.0/24"],
        "db": ["10.9.4.0/24", "10.9.5.0/24"]}}})
    from threetier.config import ConfigError
    with pytest.raises(ConfigError, match=r"network.vpc_cidr: .*cannot change in place: `threetier down`"):
        engine.up()
    assert [c for c in mutating(engine) if c.startswith("Create")] == []


def test_subnets_are_inside_the_vpc(built: Path) -> None:
    engine = make_engine(built)
    vpc = ipaddress.ip_network(engine.ctx.config.network.vpc_cidr)
    for subnet in ec2().describe_subnets(Filters=stack_filter())["Subnets"]:
        assert ipaddress.ip_network(subnet["CidrBlock"]).subnet_of(vpc)
