"""What real AWS does to a bake and moto does not. An AMI that fails keeps
its name (CreateImage then answers InvalidAMIName.Duplicate, which moto never does), and an SSM
invocation can end in states that sending the command again cannot change. botocore's Stubber
plays AWS's answers, a FakeClock the time between them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, make_engine
from threetier.aws import AwsError
from threetier.blocks import baking
from threetier.engine import Engine

STACK = "threetier"
BUILDER = "i-0b1d2e3f4a5b6c7d8"
COMMAND = "11111111-1111-1111-1111-111111111111"
AGAIN = "22222222-2222-2222-2222-222222222222"


def app_bake() -> baking.Bake:
    return baking.Bake(tier="app", subnet="subnet-0123456789abcdef0", security_group="sg-0123456789abcdef0",
                       instance_profile_arn="arn:aws:iam::123456789012:instance-profile/threetier-us-east-1-app-profile",
                       instance_type="t3.micro", architecture="x86_64", user_data="#!/bin/bash",
                       health_url="http://localhost:4000/health", keep_builder=False, baked_files={})


def part_4_engine(tmp_path: Path, clock: FakeClock) -> Engine:
    engine = make_engine(tmp_path, clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == 4)
    engine.ctx.aws.part = "Part 4 (app-image)"
    return engine


def image(ctx: Any, image_id: str, state: str, *, ours: bool = True, snapshot: str | None = None,
          reason: dict[str, str] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"ImageId": image_id, "Name": baking.image_name(ctx, app_bake()), "State": state}
    if ours:
        found["Tags"] = [{"Key": "threetier:stack", "Value": STACK}, {"Key": "threetier:part", "Value": "4"}]
    if snapshot:
        found["BlockDeviceMappings"] = [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}]
    if reason:
        found["StateReason"] = reason
    return found


def duplicate(stub: Stubber, holder: str) -> None:
    stub.add_client_error("create_image", service_error_code="InvalidAMIName.Duplicate",
                          service_message=f"AMI name threetier-app-ami-x is already in use by AMI {holder}")


def operations(engine: Engine) -> list[str]:
    return [c.operation for c in engine.ctx.aws.calls]


def info(engine: Engine) -> str:
    return engine.ctx.out.stderr.getvalue()  # where Output.info writes


# -- item 5: an AMI in `failed` keeps its name -------------------------------------------------
def test_create_image_adopts_our_own_image_that_already_has_the_name(tmp_path: Path) -> None:
    """A crash between CreateImage and saving the state: the image is there, pending; it is the bake's."""
    engine = part_4_engine(tmp_path, FakeClock())
    ec2 = engine.ctx.aws.client("ec2")
    with Stubber(ec2) as stub:
        duplicate(stub, "ami-0aaaaaaaaaaaaaaaa")
        stub.add_response("describe_images", {"Images": [image(engine.ctx, "ami-0aaaaaaaaaaaaaaaa", "pending")]},
                          {"Owners": ["self"], "Filters": [{"Name": "name",
                                                            "Values": [baking.image_name(engine.ctx, app_bake())]}]})
        assert baking.create_image(engine.ctx, app_bake(), BUILDER) == "ami-0aaaaaaaaaaaaaaaa"
        stub.assert_no_pending_responses()
    assert operations(engine).count("CreateImage") == 1  # adopted, not created again
    assert "DeregisterImage" not in operations(engine)


def test_create_image_deregisters_our_failed_image_of_that_name_and_creates_once_more(tmp_path: Path) -> None:
    engine = part_4_engine(tmp_path, FakeClock())
    ec2 = engine.ctx.aws.client("ec2")
    failed = image(engine.ctx, "ami-0fffffffffffffff0", "failed", snapshot="snap-0ddddddddddddddd0",
                   reason={"Code": "Client.InternalError", "Message": "Client error on launch"})
    with Stubber(ec2) as stub:
        duplicate(stub, "ami-0fffffffffffffff0")
        stub.add_response("describe_images", {"Images": [failed]})
        stub.add_response("deregister_image", {}, {"ImageId": "ami-0fffffffffffffff0"})
        stub.add_response("delete_snapshot", {}, {"SnapshotId": "snap-0ddddddddddddddd0"})
        stub.add_response("create_image", {"ImageId": "ami-0bbbbbbbbbbbbbbb0"})
        assert baking.create_image(engine.ctx, app_bake(), BUILDER) == "ami-0bbbbbbbbbbbbbbb0"
        stub.assert_no_pending_responses()
    deleted = [(c.kind, c.id) for c in engine.ctx.changes if c.action == "deleted"]
    assert deleted == [("failed AMI", "ami-0fffffffffffffff0"), ("AMI snapshot", "snap-0ddddddddddddddd0")]
    said = info(engine)
    assert "ami-0fffffffffffffff0" in said and "failed" in said and "Client error on launch" in said


def test_create_image_retries_only_once_and_never_touches_an_image_that_is_not_ours(tmp_path: Path) -> None:
    engine = part_4_engine(tmp_path, FakeClock())
    ec2 = engine.ctx.aws.client("ec2")
    with Stubber(ec2) as stub:
        duplicate(stub, "ami-0ccccccccccccccc0")
        stub.add_response("describe_images", {"Images": [image(engine.ctx, "ami-0ccccccccccccccc0", "failed", ours=False)]})
        with pytest.raises(AwsError) as caught:
            baking.create_image(engine.ctx, app_bake(), BUILDER)
        stub.assert_no_pending_responses()
    assert caught.value.code == "InvalidAMIName.Duplicate"
    assert "ami-0ccccccccccccccc0" in str(caught.value) and "not this stack's" in str(caught.value)
    assert "DeregisterImage" not in operations(engine)

    engine = part_4_engine(tmp_path, FakeClock())  # ours and failed, but the name is refused again
    ec2 = engine.ctx.aws.client("ec2")
    with Stubber(ec2) as stub:
        duplicate(stub, "ami-0fffffffffffffff0")
        stub.add_response("describe_images", {"Images": [image(engine.ctx, "ami-0fffffffffffffff0", "failed")]})
        stub.add_response("deregister_image", {})
        duplicate(stub, "ami-0eeeeeeeeeeeeeee0")
        with pytest.raises(AwsError, match=r"InvalidAMIName\.Duplicate"):
            baking.create_image(engine.ctx, app_bake(), BUILDER)
        stub.assert_no_pending_responses()
    assert operations(engine).count("CreateImage") == 2


def test_our_disabled_image_of_that_name_is_refused_with_the_command_that_enables_it(tmp_path: Path) -> None:
    engine = part_4_engine(tmp_path, FakeClock())
    with Stubber(engine.ctx.aws.client("ec2")) as stub:
        duplicate(stub, "ami-0aaaaaaaaaaaaaaa0")
        stub.add_response("describe_images", {"Images": [image(engine.ctx, "ami-0aaaaaaaaaaaaaaa0", "disabled")]})
        with pytest.raises(AwsError) as caught:
            baking.create_image(engine.ctx, app_bake(), BUILDER)
        stub.assert_no_pending_responses()
    assert ("enable it (aws ec2 enable-image --image-id ami-0aaaaaaaaaaaaaaa0 --region us-east-1) or deregister it"
            in str(caught.value))
    assert "DeregisterImage" not in operations(engine)


def test_an_ami_that_fails_while_waited_for_is_deregistered_at_once_with_its_reason_kept(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = part_4_engine(tmp_path, clock)
    engine.ctx.resources["ami"] = "ami-0fffffffffffffff0"
    ec2 = engine.ctx.aws.client("ec2")
    failed = image(engine.ctx, "ami-0fffffffffffffff0", "failed", snapshot="snap-0ddddddddddddddd0",
                   reason={"Code": "Server.InternalError", "Message": "An internal error has occurred"})
    with Stubber(ec2) as stub:
        stub.add_response("describe_images", {"Images": [image(engine.ctx, "ami-0fffffffffffffff0", "pending")]})
        stub.add_response("describe_images", {"Images": [failed]})
        stub.add_response("deregister_image", {}, {"ImageId": "ami-0fffffffffffffff0"})
        stub.add_response("delete_snapshot", {}, {"SnapshotId": "snap-0ddddddddddddddd0"})
        with pytest.raises(AwsError) as caught:
            baking.wait_image(engine.ctx, "ami-0fffffffffffffff0", "threetier-app-ami-x")
        stub.assert_no_pending_responses()
    message = str(caught.value)
    assert message.startswith("Part 4 (app-image): waiting for AMI threetier-app-ami-x failed: failed:")
    assert "Server.InternalError: An internal error has occurred" in message
    assert clock.sleeps == [baking.IMAGE_POLL_DELAY]  # one poll pending, then failed: no more waiting
    assert "ami" not in engine.ctx.resources  # the next `up` bakes afresh


def test_up_deregisters_a_failed_ami_of_the_same_name_before_it_bakes_again(built: Path) -> None:
    """moto never fails an AMI: its state is set in moto's backend, as real AWS leaves one."""
    from moto.ec2.models import ec2_backends
    first = make_engine(built)  # the restored stack's state, as the `up` that made it left it
    failed_id = first.ctx.state.parts[4].resources["ami"]
    name = first.ctx.state.parts[4].resources["image_name"]
    ec2_backends[first.ctx.aws.account]["us-east-1"].amis[failed_id].state = "failed"

    again = make_engine(built)
    again.up()
    ops = [(c.operation, c.params) for c in again.ctx.aws.mutating_calls()]
    deregistered = next(i for i, (op, p) in enumerate(ops) if op == "DeregisterImage" and p["ImageId"] == failed_id)
    created = next(i for i, (op, p) in enumerate(ops) if op == "CreateImage" and p["Name"] == name)
    assert deregistered < created  # the name is free before CreateImage asks for it
    assert f"AMI {name} ({failed_id}) is failed" in info(again)
    images = [i for i in boto3.client("ec2").describe_images(Owners=["self"])["Images"] if i["Name"] == name]
    assert [(i["ImageId"] != failed_id, i["State"]) for i in images] == [(True, "available")]
    assert again.ctx.state.parts[4].resources["ami"] == images[0]["ImageId"]


# -- item 6: the SSM health gate --------------------------------------------------------------
def invocation(status: str, details: str | None = None, code: int = -1, **output: str) -> dict[str, Any]:
    return {"CommandId": COMMAND, "InstanceId": BUILDER, "Status": status, "StatusDetails": details or status,
            "ResponseCode": code, **output}


def instance(state: str, reason: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {"InstanceId": BUILDER, "State": {"Name": state, "Code": 0}}
    if reason:
        found["StateReason"] = {"Code": reason, "Message": reason}
    return {"Reservations": [{"Instances": [found]}]}


def test_an_access_denied_invocation_fails_at_once_naming_status_details_and_the_builder(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = part_4_engine(tmp_path, clock)
    with Stubber(engine.ctx.aws.client("ssm")) as ssm:
        ssm.add_response("send_command", {"Command": {"CommandId": COMMAND}})
        ssm.add_response("get_command_invocation", invocation(
            "Failed", "AccessDenied", StandardErrorContent="one\nAccessDenied: not authorized on the node\n"))
        with pytest.raises(AwsError) as caught:
            baking.health_gate(engine.ctx, app_bake(), BUILDER)
        ssm.assert_no_pending_responses()
    message = str(caught.value)
    assert caught.value.code == "AccessDenied"
    assert f"the health check on {BUILDER} ended Failed (AccessDenied)" in message
    assert message.endswith("stderr: one | AccessDenied: not authorized on the node")
    assert clock.sleeps == []  # not sent again for 25 minutes


def test_an_undeliverable_invocation_fails_at_once_when_the_builder_is_gone(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = part_4_engine(tmp_path, clock)
    with Stubber(engine.ctx.aws.client("ssm")) as ssm, Stubber(engine.ctx.aws.client("ec2")) as ec2:
        ssm.add_response("send_command", {"Command": {"CommandId": COMMAND}})
        ssm.add_response("get_command_invocation", invocation("Failed", "Undeliverable"))
        ec2.add_response("describe_instances", instance("terminated", "Server.SpotInstanceTermination"),
                         {"InstanceIds": [BUILDER]})
        with pytest.raises(AwsError) as caught:
            baking.health_gate(engine.ctx, app_bake(), BUILDER)
        ssm.assert_no_pending_responses()
        ec2.assert_no_pending_responses()
    assert caught.value.code == "Undeliverable"
    assert f"{BUILDER} ended Failed (Undeliverable)" in str(caught.value)
    assert "it is terminated: Server.SpotInstanceTermination" in str(caught.value)
    assert clock.sleeps == []


def test_not_yet_outcomes_are_sent_again_until_success(tmp_path: Path) -> None:
    """Exit 1 (bootstrap still running), a delivery timeout while the agent comes up, and an
    undeliverable command to a builder that still runs are all asked again."""
    clock = FakeClock()
    engine = part_4_engine(tmp_path, clock)
    with Stubber(engine.ctx.aws.client("ssm")) as ssm, Stubber(engine.ctx.aws.client("ec2")) as ec2:
        ssm.add_response("send_command", {"Command": {"CommandId": COMMAND}})
        ssm.add_response("get_command_invocation", invocation("Failed", "Failed", 1,
                                                              StandardOutputContent="bootstrap still running"))
        ssm.add_response("send_command", {"Command": {"CommandId": AGAIN}})
        ssm.add_response("get_command_invocation", invocation("TimedOut", "DeliveryTimedOut"))
        ssm.add_response("send_command", {"Command": {"CommandId": AGAIN}})
        ssm.add_response("get_command_invocation", invocation("Failed", "Undeliverable"))
        ec2.add_response("describe_instances", instance("running"))
        ssm.add_response("send_command", {"Command": {"CommandId": AGAIN}})
        ssm.add_response("get_command_invocation", invocation("Success", code=0, StandardOutputContent="ok"))
        baking.health_gate(engine.ctx, app_bake(), BUILDER)
        ssm.assert_no_pending_responses()
        ec2.assert_no_pending_responses()
    assert clock.sleeps == [baking.HEALTH_POLL_DELAY] * 3


def test_a_builder_unknown_to_ssm_is_looked_at_after_the_agents_grace_and_fails_when_gone(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = part_4_engine(tmp_path, clock)
    polls_in_grace = -(-baking.AGENT_REGISTRATION_GRACE // baking.HEALTH_POLL_DELAY)  # ceil
    with Stubber(engine.ctx.aws.client("ssm")) as ssm, Stubber(engine.ctx.aws.client("ec2")) as ec2:
        for _ in range(polls_in_grace + 2):
            ssm.add_client_error("send_command", service_error_code="InvalidInstanceId")
        ec2.add_response("describe_instances", instance("running"))  # still booting: keep waiting
        ec2.add_response("describe_instances", instance("terminated", "Client.UserInitiatedShutdown"))
        with pytest.raises(AwsError) as caught:
            baking.health_gate(engine.ctx, app_bake(), BUILDER)
        ssm.assert_no_pending_responses()
        ec2.assert_no_pending_responses()
    assert caught.value.code == "InvalidInstanceId"
    assert "it is terminated: Client.UserInitiatedShutdown" in str(caught.value)
    assert clock.t == (polls_in_grace + 1) * baking.HEALTH_POLL_DELAY  # minutes, not 25


def test_a_send_command_refusal_other_than_an_unknown_instance_fails_at_once(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = part_4_engine(tmp_path, clock)
    with Stubber(engine.ctx.aws.client("ssm")) as ssm:
        ssm.add_client_error("send_command", service_error_code="AccessDeniedException",
                             service_message="not authorized to perform: ssm:SendCommand")
        with pytest.raises(AwsError) as caught:
            baking.health_gate(engine.ctx, app_bake(), BUILDER)
    assert caught.value.code == "AccessDeniedException" and "ssm:SendCommand" in str(caught.value)
    assert clock.sleeps == []
