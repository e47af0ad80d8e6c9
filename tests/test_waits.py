"""What moto cannot show: pending states, waits, eventual consistency and the teardown
order, under the real-AWS model (bench/model/) on a virtual clock, and AWS errors via Stubber."""
from __future__ import annotations

from pathlib import Path

import pytest
from botocore.stub import Stubber

import bench.model
from bench.model import NAT_CREATE_SECONDS, NAT_DELETE_SECONDS, LatencyModel, VirtualClock
from helpers import FakeClock, make_engine, moto
from steps import network
from threetier import scan
from threetier.aws import AwsError, Poll, WaitTimeout


@pytest.fixture
def mocked():
    with moto():
        yield


def modelled(tmp_path: Path, raw: dict | None = None):
    clock = VirtualClock()
    engine = make_engine(tmp_path, raw, clock=clock)
    return engine, LatencyModel(engine.ctx.aws, clock), clock


def ops(engine) -> list[str]:
    return [c.operation for c in engine.ctx.aws.calls]


def test_up_waits_for_the_nat_gateways_retries_a_route_to_a_new_one_and_the_model_refuses_a_wrong_order(
        mocked, tmp_path: Path, monkeypatch) -> None:
    # Long enough that the routes made right after the NAT gateways meet an ID not yet visible.
    monkeypatch.setattr(bench.model, "NAT_ROUTE_VISIBLE_SECONDS", 60.0)
    engine, model, clock = modelled(tmp_path)
    engine.up()
    assert model.violations == []
    assert model.polls.get("pending", 0) >= 2 and model.polls.get("available", 0) >= 2
    # Part 2 is done only once both NAT gateways are available: at least the model's 100 s passed.
    assert clock.now() >= NAT_CREATE_SECONDS
    assert all(model.nat_state(n) == "available" for n in engine.ctx.state.parts[2].resources["nat_gateways"].values())
    # The first CreateRoute to the new NAT gateway was refused (not yet visible) and retried.
    calls = ops(engine)
    # 3 tables, plus a retry of each route to a NAT gateway created moments before.
    refused = [r for r in model.refusals if r.code == "InvalidNatGatewayID.NotFound"]
    assert refused and calls.count("CreateRoute") == 3 + len(refused)
    assert engine.ctx.state.parts[2].status == "done"

    # The model is not a rubber stamp: releasing a NAT gateway's EIP first is refused (by a model
    # that saw the NAT gateways made, as this one did).
    allocation = engine.ctx.state.parts[2].resources["elastic_ips"]["az1"]
    with pytest.raises(AwsError, match=r"InvalidIPAddress.InUse"):
        engine.ctx.aws.call("ec2", "release_address", resource="eip", AllocationId=allocation)
    assert model.violations


def test_down_follows_the_dependency_order(built: Path) -> None:
    engine, model, clock = modelled(built)  # a model of `down` alone: it did not see the stack made
    when: dict[str, list[float]] = {}
    started = clock.now()
    engine.ctx.aws.on_call = lambda call: when.setdefault(call.operation, []).append(clock.now() - started)
    engine.down()
    assert model.violations == [], model.violations  # nothing refused: no retry hid a wrong order
    calls = ops(engine)

    def first(op):
        return calls.index(op)

    def last(op):
        return len(calls) - 1 - calls[::-1].index(op)

    # The long deletes all start at once (in the first seconds: calls cost 80 ms), before anything
    # is waited for.
    for operation in ("DeleteAutoScalingGroup", "DeleteLoadBalancer", "DeleteDBInstance", "DeleteNatGateway"):
        assert len(when[operation]) == 2 and max(when[operation]) < 10, (operation, when[operation])
    # What holds the network and the instance profile (Parts 3-7) is gone before either goes.
    assert last("DeleteDBSubnetGroup") < first("DeleteSubnet") and last("DeleteDBSubnetGroup") < first("DeleteSecurityGroup")
    assert max(last("DeleteLaunchTemplate"), last("DeleteDBSubnetGroup")) < first("DeleteInstanceProfile")
    # NAT gateways are deleted first, their EIPs released only after a poll saw them deleted.
    assert first("DeleteNatGateway") < first("DeleteRouteTable")
    polls_before_release = [i for i, c in enumerate(calls[:first("ReleaseAddress")]) if c == "DescribeNatGateways"]
    assert polls_before_release and clock.now() - started >= NAT_DELETE_SECONDS
    assert last("ReleaseAddress") < first("DetachInternetGateway") < first("DeleteInternetGateway")
    # Security groups: group references revoked before any group is deleted.
    assert last("RevokeSecurityGroupIngress") < first("DeleteSecurityGroup")
    assert last("DisassociateRouteTable") < first("DeleteSubnet")
    assert max(last("DeleteSubnet"), last("DeleteInternetGateway"), last("DeleteSecurityGroup"),
               last("DeleteRouteTable")) < first("DeleteVpc")
    # Part 1: the profile lets go of the role before either is deleted; the bucket is emptied first.
    # (The tier roles: Part 2 deletes the flow-logs role, which no profile holds, much earlier.)
    tier_role_deletes = [i for i, c in enumerate(engine.ctx.aws.calls)
                         if c.operation == "DeleteRole" and not c.params["RoleName"].endswith("-flow-logs-role")]
    assert first("RemoveRoleFromInstanceProfile") < first("DeleteInstanceProfile") < tier_role_deletes[0]
    assert first("DeleteFlowLogs") < first("DeleteVpc")
    tier_role_calls = [c.operation for c in engine.ctx.aws.calls if "-flow-logs-" not in c.params.get("RoleName", "")]
    assert tier_role_calls.index("DeleteRole") > max(
        len(tier_role_calls) - 1 - tier_role_calls[::-1].index(op) for op in ("DetachRolePolicy", "DeleteRolePolicy"))
    assert last("DeleteObjects") < first("DeleteBucket")
    assert scan.tagged(engine.ctx.aws, "threetier") == []


def test_a_failed_nat_gateway_fails_the_part_naming_it(mocked, tmp_path: Path) -> None:
    engine, _model, _ = modelled(tmp_path)

    def fail(model, parsed, **_):
        for nat in parsed.get("NatGateways", []) if model.name == "DescribeNatGateways" else []:
            nat["State"], nat["FailureMessage"] = "failed", "Elastic IP address is already associated"
    engine.ctx.aws.client("ec2").meta.events.register_last("after-call", fail)  # after the model's own
    with pytest.raises(AwsError) as caught:
        engine.up()
    message = str(caught.value)
    assert message.startswith("Part 2 (network): waiting for NAT gateway threetier-nat-az1")
    assert "failed" in message and "already associated" in message
    assert engine.ctx.state.parts[2].status == "failed"
    assert engine.ctx.state.parts[2].error == message
    assert engine.ctx.state.parts[1].status == "done"


def test_wait_times_out_with_the_resource_and_last_status(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, clock=clock)
    aws = engine.ctx.aws
    aws.part = "Part 2 (network)"
    with pytest.raises(WaitTimeout, match=r"Part 2 \(network\): gave up waiting for NAT gateway x after 60s \(last status: pending\)"):
        aws.wait("NAT gateway x", lambda: Poll(False, "pending"), delay=7, timeout=60)
    assert clock.t == pytest.approx(60)
    assert clock.sleeps[:8] == [7] * 8  # explicit delays, the last one cut to the timeout


def test_nat_wait_with_stubbed_pending_then_available(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.name == "network")
    client = engine.ctx.aws.client("ec2")
    with Stubber(client) as stub:
        # The stack's NAT gateways, one read for all (another stack's NAT in the answer is not ours).
        for state in ("pending", "pending", "available"):
            stub.add_response("describe_nat_gateways",
                              {"NatGateways": [{"NatGatewayId": "nat-0", "State": "available"},
                                               {"NatGatewayId": "nat-1", "State": state}]},
                              {"Filter": [{"Name": "tag:threetier:stack", "Values": ["threetier"]}]})
        network.wait_nat_gateway(engine.ctx, "nat-1", "NAT gateway demo", want="available")
        stub.assert_no_pending_responses()
    assert clock.sleeps == [network.NAT_POLL_DELAY] * 2


def test_aws_error_names_part_resource_and_code(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    engine.ctx.part = next(p for p in engine.parts if p.name == "network")
    engine.ctx.aws.part = engine.ctx.part.label
    client = engine.ctx.aws.client("ec2")
    with Stubber(client) as stub:
        stub.add_response("describe_vpcs", {"Vpcs": []})
        stub.add_client_error("create_vpc", service_error_code="VpcLimitExceeded",
                              service_message="The maximum number of VPCs has been reached.")
        with pytest.raises(AwsError) as caught:
            network.ensure_vpc(engine.ctx)
    assert str(caught.value) == ("Part 2 (network): create vpc threetier-vpc failed: VpcLimitExceeded: "
                                 "The maximum number of VPCs has been reached.")
    assert caught.value.code == "VpcLimitExceeded"


def test_not_found_on_delete_is_success(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    client = engine.ctx.aws.client("ec2")
    with Stubber(client) as stub:
        stub.add_client_error("delete_subnet", service_error_code="InvalidSubnetID.NotFound")
        assert engine.ctx.aws.call("ec2", "delete_subnet", resource="subnet x", SubnetId="subnet-1",
                                   missing_ok=("InvalidSubnetID.NotFound",)) is None


def test_dependency_violation_is_retried_until_it_clears_then_gives_up(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, clock=clock)
    client = engine.ctx.aws.client("ec2")
    with Stubber(client) as stub:
        stub.add_client_error("delete_security_group", service_error_code="DependencyViolation")
        stub.add_client_error("delete_security_group", service_error_code="DependencyViolation")
        stub.add_response("delete_security_group", {})
        engine.ctx.aws.call("ec2", "delete_security_group", resource="sg", GroupId="sg-1",
                            retry_codes=("DependencyViolation",), retry_timeout=60, retry_delay=10)
    assert clock.sleeps == [10, 10]
    with Stubber(client) as stub:
        for _ in range(8):
            stub.add_client_error("delete_security_group", service_error_code="DependencyViolation")
        with pytest.raises(AwsError, match="DependencyViolation"):
            engine.ctx.aws.call("ec2", "delete_security_group", resource="sg", GroupId="sg-1",
                                retry_codes=("DependencyViolation",), retry_timeout=60, retry_delay=10)


def test_standard_retry_mode_is_configured(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    retries = engine.ctx.aws.client("ec2").meta.config.retries
    assert retries["mode"] == "standard" and retries["total_max_attempts"] >= 10
