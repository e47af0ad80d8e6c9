"""bench.model's builders and their way out: a builder launched while its NAT gateway is pending is
fine when its user data waits for the network (common.sh wait_for_network) and a violation when it
does not; its SSM agent registers only once the way out is there."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import bench.model
from bench.model import (
    DNF_SECONDS,
    EC2_PENDING_SECONDS,
    NAT_CREATE_SECONDS,
    NAT_ROUTE_VISIBLE_SECONDS,
    NETWORK_WAIT_SECONDS,
    SSM_AGENT_SECONDS,
    USER_DATA_START_SECONDS,
    LatencyModel,
    VirtualClock,
)
from helpers import make_engine, moto
from threetier.artifacts import BOOTSTRAP_DIR, render_app_user_data

USER_DATA = render_app_user_data(
    bucket="threetier-code-123456789012-us-east-1", region="us-east-1",
    db_host="threetier-db.cluster-c1a2b3c4d5e6.us-east-1.rds.amazonaws.com", db_name="webappdb",
    db_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-0a1b2c3d-AbCdEf", port=4000,
    log_group="/threetier/threetier/app")
NO_WAIT = USER_DATA.replace("\nwait_for_network\n", "\n")


class World:
    """moto behind the model, on a virtual clock: a VPC whose private subnet routes to a NAT
    gateway created moments ago (so still pending for about 100 s)."""

    def __init__(self, tmp_path: Path):
        self.clock = VirtualClock()
        engine = make_engine(tmp_path, clock=self.clock)
        self.model = LatencyModel(engine.ctx.aws, self.clock)
        self.ec2 = engine.ctx.aws.client("ec2")
        self.ssm = engine.ctx.aws.client("ssm")
        ec2 = self.ec2
        self.vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        public = ec2.create_subnet(VpcId=self.vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        self.private = ec2.create_subnet(VpcId=self.vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        self.unrouted = ec2.create_subnet(VpcId=self.vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=self.vpc)
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        self.nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
        self.nat_available = self.model.nats[self.nat].created + NAT_CREATE_SECONDS
        self.clock.advance(NAT_ROUTE_VISIBLE_SECONDS)
        table = ec2.create_route_table(VpcId=self.vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=self.nat)
        ec2.associate_route_table(RouteTableId=table, SubnetId=self.private)
        self.image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def launch(self, user_data: str, subnet: str | None = None) -> Any:
        instance = self.ec2.run_instances(
            ImageId=self.image, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet or self.private,
            UserData=user_data,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "threetier-app-builder"}]}],
        )["Instances"][0]
        return self.model.instances[instance["InstanceId"]]

    def until(self, t: float) -> None:
        self.clock.advance(t - self.clock.now())

    def span(self, instance: Any) -> Any:
        return next(s for s in self.model.spans if s.kind == "builder" and s.action == "create"
                    and s.start == instance.launched)

    def run_command(self, instance: Any) -> str:
        try:
            self.ssm.send_command(InstanceIds=[instance.id], DocumentName="AWS-RunShellScript",
                                  Parameters={"commands": ["true"]})
            return "sent"
        except ClientError as exc:
            return exc.response["Error"]["Code"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with moto():
        yield World(tmp_path)


def test_a_builder_that_waits_for_the_network_boots_before_its_nat_gateway(world: World) -> None:
    builder = world.launch(USER_DATA)
    assert builder.bootstrap_start < world.nat_available  # launched while the NAT gateway is pending
    world.until(world.nat_available + 600)
    done, failed, reason = world.model.bootstrap(builder.id)
    assert world.model.violations == [] and failed is None and reason is None
    segments = world.span(builder).segments
    labels = [label for label, _, _ in segments]
    assert labels[:4] == ["pending", "boot", "wait for the network", "dnf"]
    wait = segments[2]
    assert (wait[1], wait[2]) == (builder.bootstrap_start, world.nat_available)
    assert segments[3][1:] == (world.nat_available, world.nat_available + DNF_SECONDS)
    assert done == segments[-1][2] and world.span(builder).end == done


def test_a_builder_that_does_not_wait_fails_offline(world: World) -> None:
    builder = world.launch(NO_WAIT)
    world.until(world.nat_available + 600)
    _, failed, reason = world.model.bootstrap(builder.id)
    assert failed is not None and "pending" in reason and world.nat in reason
    assert len(world.model.violations) == 1
    assert world.model.refusals[-1].rule == "bootstrap-offline"


def test_waiting_does_not_excuse_a_subnet_with_no_way_out(world: World) -> None:
    builder = world.launch(USER_DATA, subnet=world.unrouted)
    world.until(builder.bootstrap_start + NETWORK_WAIT_SECONDS + 60)
    _, failed, reason = world.model.bootstrap(builder.id)
    assert "has no route to the internet" in reason
    assert failed == builder.bootstrap_start + NETWORK_WAIT_SECONDS  # the script gives up after its wait
    assert [r.rule for r in world.model.refusals if r.violation] == ["bootstrap-offline"]
    assert world.span(builder).segments[-1] == ("wait for the network", builder.bootstrap_start, failed)
    assert world.run_command(builder) == "InvalidInstanceId"  # its SSM agent never registers


def test_a_nat_gateway_slower_than_the_wait_is_a_violation(world: World, monkeypatch) -> None:
    monkeypatch.setattr(bench.model, "NETWORK_WAIT_SECONDS", 10.0)
    builder = world.launch(USER_DATA)
    world.until(world.nat_available + 600)
    _, failed, reason = world.model.bootstrap(builder.id)
    assert failed == builder.bootstrap_start + 10.0 and "longer than the wait for the network" in reason
    assert [r.rule for r in world.model.refusals if r.violation] == ["bootstrap-offline"]


def test_the_ssm_agent_registers_once_there_is_a_way_out(world: World) -> None:
    builder = world.launch(USER_DATA)
    agent = builder.launched + EC2_PENDING_SECONDS + SSM_AGENT_SECONDS
    assert agent < world.nat_available
    world.until(agent)
    assert world.run_command(builder) == "InvalidInstanceId"  # running 40 s, but no way out yet
    world.until(world.nat_available)
    assert world.run_command(builder) == "sent"
    assert world.model.violations == []


def test_a_builder_behind_an_available_nat_gateway_starts_at_once(world: World) -> None:
    world.until(world.nat_available)
    builder = world.launch(USER_DATA)
    world.until(builder.bootstrap_start + 600)
    world.model.bootstrap(builder.id)
    labels = [label for label, _, _ in world.span(builder).segments]
    assert "wait for the network" not in labels and labels[2] == "dnf"
    world.until(builder.launched + EC2_PENDING_SECONDS + SSM_AGENT_SECONDS)
    assert world.run_command(builder) == "sent" and world.model.violations == []
    assert builder.bootstrap_start == builder.launched + EC2_PENDING_SECONDS + USER_DATA_START_SECONDS


def test_the_model_waits_as_long_as_the_script_does() -> None:
    common = (BOOTSTRAP_DIR / "common.sh").read_text()
    assert float(re.search(r"^NETWORK_WAIT_SECONDS=(\d+)$", common, re.M).group(1)) == NETWORK_WAIT_SECONDS


def test_the_app_builder_launches_while_its_nat_gateway_is_pending(modeled_up) -> None:
    """The engine launches the app builder once the network exists, not once it is done (conftest's
    modeled up, shared with test_progress)."""
    model = modeled_up.model
    assert model.violations == []
    builder = next(i for i in model.instances.values() if i.name == "threetier-app-builder")
    nat_available = min(n.created for n in model.nats.values()) + NAT_CREATE_SECONDS
    assert builder.launched < nat_available
