"""Baking a golden image, as Parts 4 and 6 of the guide do it by hand.

Launch one builder instance whose user data installs the tier, wait until the
tier answers its health check *on the instance* (SSM Run Command, not a
sleep), create an AMI of it, wait for the AMI, terminate the builder.

The AMI's name carries a fingerprint of everything baked into it (the tier's
code, its user data -- with the CloudWatch agent's configuration, which names
the stack's log groups --, nginx.conf for the web tier), so an unchanged tier
is found and kept, and a changed one gets a new image.

Where the builder runs and as whom (a subnet and security group of Part 2, the
tier's instance profile of Part 1), the Part gives it in its `Bake`.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from threetier.aws import STACK_TAG, AwsError, Look, Poll, aws_cli, client_token, tag_value
from threetier.engine import Ctx

AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
FINGERPRINT_TAG = "threetier:fingerprint"
# Blue/green (threetier.blocks.colors): when the image's color took all the traffic (ISO-8601 UTC), and
# when and why it was moved away from by a rollback ("<UTC>: <reason>"; `up` does not deploy it again).
LIVE_SINCE_TAG = "threetier:live-since"
REJECTED_TAG = "threetier:rejected"
TAG_VALUE_MAX = 256
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]
# A builder in one of these will never answer the health gate.
GONE_INSTANCE_STATES = ("shutting-down", "terminated", "stopping", "stopped")
BOOT_TIMEOUT = 10 * 60
HEALTH_TIMEOUT = 25 * 60      # AL2023 dnf + npm ci (+ a React build for the web tier)
HEALTH_POLL_DELAY = 15
IMAGE_TIMEOUT = 30 * 60       # 2-6 min typically, can exceed 10
IMAGE_POLL_DELAY = 15
# AMI states it never leaves, yet it keeps its name: every CreateImage with that name fails
# (InvalidAMIName.Duplicate) until the image is deregistered.
DEAD_IMAGE_STATES = ("failed", "invalid", "error")
DUPLICATE_IMAGE_NAME = "InvalidAMIName.Duplicate"
# An instance profile is usable by RunInstances some seconds after it is created.
PROFILE_NOT_YET_USABLE = ("InvalidParameterValue",)
BOOTSTRAP_FAILED_EXIT = 2
# The SSM agent registers ~40 s after the builder runs; past this, an instance SSM does not know
# may be one that is gone, so its state is looked at.
AGENT_REGISTRATION_GRACE = 2 * 60
# Invocation outcomes (StatusDetails) that sending the command again cannot change, for one
# instance named by ID running AWS-RunShellScript:
HOPELESS_INVOCATIONS = {
    # The caller may not run commands on this instance (IAM): the same identity asks again.
    "AccessDenied": "this AWS identity may not run commands on the builder (ssm:SendCommand)",
    # The document's platform (Linux shell) does not match the instance's: it never will.
    "InvalidPlatform": "AWS-RunShellScript does not run on the builder's platform",
    # Only for commands that target by tag; nothing was targeted.
    "NoInstancesInTag": "the command targeted no instance",
}
# Everything else that is not Success is asked again until HEALTH_TIMEOUT: Failed (exit 1 "not
# yet", curl refused while the tier starts), DeliveryTimedOut (the agent was not up yet),
# ExecutionTimedOut (the script bounds itself below the execution timeout, so the agent stalled),
# Cancelled and Terminated (a cancel, or the command's own error limit: a new command has its
# own), RateExceeded/LimitExceeded (the account's pending commands: they drain), and
# Undeliverable while the builder still runs (its agent is not answering; it restarts).
# Undeliverable for a builder that is gone fails at once.


@dataclass(frozen=True)
class Bake:
    tier: str                 # "app" or "web"
    # Where the builder runs, and as whom: as the Part found them of Parts 2 and 1 ("" while unknown:
    # `status` of a stack without them).
    subnet: str
    security_group: str
    instance_profile_arn: str  # the tier's own
    instance_type: str
    architecture: str         # of the instance type; part of the fingerprint (an x86 image won't boot on Graviton)
    user_data: str
    health_url: str           # answered on the builder itself once the tier is up
    keep_builder: bool
    baked_files: dict[str, bytes] = field(repr=False)

    @property
    def builder_role(self) -> str:
        return builder_role(self.tier)

    @property
    def image_role(self) -> str:
        return f"{self.tier}-ami"

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.architecture.encode() + b"\0" + self.user_data.encode())
        for key, body in sorted(self.baked_files.items()):
            digest.update(key.encode() + b"\0" + hashlib.sha256(body).digest())
        return digest.hexdigest()[:16]


def builder_role(tier: str) -> str:
    return f"{tier}-builder"


def image_name(ctx: Ctx, bake: Bake) -> str:
    return f"{ctx.name(bake.image_role)}-{bake.fingerprint}"


def health_script(bake: Bake) -> list[str]:
    """Run on the builder through SSM: exit 0 healthy, 1 not yet, 2 the bootstrap failed for good."""
    return [
        "timeout 1500 cloud-init status --wait >/dev/null 2>&1 || true",
        "if [ -f /var/lib/threetier/bootstrap.failed ]; then",
        "  echo \"bootstrap failed (exit $(cat /var/lib/threetier/bootstrap.failed))\"",
        "  tail -n 25 /var/log/threetier-bootstrap.log",
        f"  exit {BOOTSTRAP_FAILED_EXIT}",
        "fi",
        "if [ ! -f /var/lib/threetier/bootstrap.done ]; then echo 'bootstrap still running'; exit 1; fi",
        f"curl -fsS --max-time 5 {bake.health_url}",
    ]


# -- what the finders read (the inventory) -------------------------------------------
def images_look(ctx: Ctx) -> Look:
    """The stack's own AMIs (tagged at creation), every part's: one read, filtered here."""
    return Look("ec2", "describe_images", {"Owners": ["self"], "Filters": ctx.filters()})


def instances_look(ctx: Ctx) -> Look:
    """The stack's instances (builders, and the tiers' instances), filtered here by Name and state."""
    return Look("ec2", "describe_instances", {"Filters": ctx.filters()}, key="Reservations")


def instance_type_look(instance_type: str) -> Look:
    return Look("ec2", "describe_instance_types", {"InstanceTypes": [instance_type]})


def looks(ctx: Ctx, instance_type: str) -> Iterator[Look]:
    yield images_look(ctx)
    yield instances_look(ctx)
    yield instance_type_look(instance_type)


def stack_images(ctx: Ctx, part: int | None = None) -> list[dict[str, Any]]:
    images = ctx.aws.look(images_look(ctx), resource="AMIs")["Images"]
    return [i for i in images if part is None or tag_value(i, "threetier:part") == str(part)]


# -- start -------------------------------------------------------------------------
def start(ctx: Ctx, bake: Bake, before_launch: Callable[[], None] | None = None) -> None:
    """Keep an image with this fingerprint, or launch a builder for one (not waited for).
    `before_launch`: what the Part waits for before a builder boots, only when one is launched (the
    app builder sits in a private subnet and its bootstrap needs the NAT gateway's route)."""
    ctx.resources["image_name"] = image_name(ctx, bake)
    image = find_image(ctx, bake)
    if image is not None:
        ctx.resources["ami"] = image["ImageId"]
        return
    ctx.resources.pop("ami", None)
    for dead in dead_images(ctx, bake):  # it holds the name this bake will give its image
        discard_dead_image(ctx, dead)
    if before_launch is not None:
        before_launch()
    ctx.resources["builder"] = ensure_builder(ctx, bake)["InstanceId"]


def find_image(ctx: Ctx, bake: Bake) -> dict[str, Any] | None:
    images = [i for i in stack_images(ctx) if i.get("Name") == image_name(ctx, bake)
              and i.get("State") in ("pending", "available")]
    return sorted(images, key=lambda i: i["ImageId"])[0] if images else None


def dead_images(ctx: Ctx, bake: Bake) -> list[dict[str, Any]]:
    """The stack's own images of this name that failed: they keep the name from a new bake."""
    return [i for i in stack_images(ctx) if i.get("Name") == image_name(ctx, bake)
            and i.get("State") in DEAD_IMAGE_STATES]


def state_reason(image: dict[str, Any]) -> str:
    reason = image.get("StateReason") or {}
    return ": ".join(part for part in (reason.get("Code"), reason.get("Message")) if part) or image.get("State", "")


def discard_dead_image(ctx: Ctx, image: dict[str, Any]) -> None:
    """Deregister an image that failed, and delete its snapshots, saying so: the next bake needs its name."""
    name = image.get("Name", image["ImageId"])
    ctx.out.info(f"  AMI {name} ({image['ImageId']}) is {image.get('State')} ({state_reason(image)}): "
                 "deregistering it and its snapshots, so that the image can be baked again")
    deregister_image(ctx, image, kind=f"{image.get('State')} AMI")
    for snapshot_id in sorted(image_snapshots(image)):
        delete_snapshot(ctx, snapshot_id)


def architecture(ctx: Ctx, instance_type: str) -> str:
    """arm64 for Graviton instance types, x86_64 otherwise: the AMI must match the tier's instances."""
    types = ctx.aws.look(instance_type_look(instance_type), resource=f"instance type {instance_type}")["InstanceTypes"]
    architectures = types[0]["ProcessorInfo"]["SupportedArchitectures"] if types else ["x86_64"]
    return "arm64" if "arm64" in architectures else "x86_64"


def base_image(ctx: Ctx, arch: str) -> dict[str, Any]:
    """The current Amazon Linux 2023 AMI for the architecture, from SSM (never hard-coded)."""
    aws = ctx.aws
    parameter = AL2023_PARAMETER.format(arch=arch)
    image_id = aws.call("ssm", "get_parameter", resource=f"SSM parameter {parameter}", Name=parameter)["Parameter"]["Value"]
    images = aws.call("ec2", "describe_images", resource=f"AMI {image_id}", ImageIds=[image_id])["Images"]
    if not images:
        raise AwsError(aws.part, "find", f"Amazon Linux 2023 AMI {image_id}", "InvalidAMIID.NotFound",
                       f"{parameter} names an AMI this account cannot see")
    return images[0]


def root_volume_size(image: dict[str, Any]) -> int:
    """The base image's own root size (GiB): encrypted gp3 instead of its defaults, not bigger."""
    root: dict[str, Any] = next(
        (m for m in image.get("BlockDeviceMappings", []) if m.get("DeviceName") == image["RootDeviceName"]), {})
    return int(root.get("Ebs", {}).get("VolumeSize") or 8)


def builders(ctx: Ctx, bake: Bake, states: list[str] | None = None) -> list[dict[str, Any]]:
    wanted = states or LIVE_INSTANCE_STATES
    return [i for r in ctx.aws.look(instances_look(ctx), resource=ctx.name(bake.builder_role)) for i in r["Instances"]
            if tag_value(i, "Name") == ctx.name(bake.builder_role) and i["State"]["Name"] in wanted]


def ensure_builder(ctx: Ctx, bake: Bake) -> dict[str, Any]:
    aws = ctx.aws
    every = builders(ctx, bake, states=[*LIVE_INSTANCE_STATES, "shutting-down", "terminated"])
    live = [i for i in every if i["State"]["Name"] in LIVE_INSTANCE_STATES]
    current = [i for i in live if tag_value(i, FINGERPRINT_TAG) == bake.fingerprint]
    for stale in (i for i in live if i not in current):  # built from other code: of no use now
        terminate(ctx, stale["InstanceId"], ctx.name(bake.builder_role))
    if current:
        return sorted(current, key=lambda i: i["InstanceId"])[0]

    image = base_image(ctx, bake.architecture)
    tags = [*ctx.tags(bake.builder_role), {"Key": FINGERPRINT_TAG, "Value": bake.fingerprint}]
    token = client_token(ctx.name(bake.builder_role), bake.fingerprint, str(len(every)))
    instance = aws.call(
        "ec2", "run_instances", resource=ctx.name(bake.builder_role),
        ImageId=image["ImageId"], InstanceType=bake.instance_type, MinCount=1, MaxCount=1,
        SubnetId=bake.subnet, SecurityGroupIds=[bake.security_group],
        IamInstanceProfile={"Arn": bake.instance_profile_arn},  # the tier's own
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
        BlockDeviceMappings=[{"DeviceName": image["RootDeviceName"],
                              "Ebs": {"Encrypted": True, "VolumeType": "gp3", "DeleteOnTermination": True,
                                      "VolumeSize": root_volume_size(image)}}],
        UserData=bake.user_data, ClientToken=token,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
        retry_codes=PROFILE_NOT_YET_USABLE, retry_message="iamInstanceProfile", retry_timeout=90, retry_delay=5,
    )["Instances"][0]
    ctx.record("created", f"{bake.tier} builder instance", ctx.name(bake.builder_role), instance["InstanceId"])
    return instance


# -- finish ------------------------------------------------------------------------
def finish(ctx: Ctx, bake: Bake) -> None:
    """Health-gate the builder, bake the image, wait for it, let the builder go."""
    if "ami" not in ctx.resources:
        builder = ctx.resources["builder"]
        wait_running(ctx, builder, ctx.name(bake.builder_role))
        try:
            health_gate(ctx, bake, builder)
        except AwsError as exc:
            if exc.code == "bootstrap failed" and not bake.keep_builder:
                # Of no use now, and the next `up` must start from a fresh builder, not this one.
                terminate(ctx, builder, ctx.name(bake.builder_role))
            raise
        ctx.resources["ami"] = create_image(ctx, bake, builder)
    wait_image(ctx, ctx.resources["ami"], image_name(ctx, bake))
    if not bake.keep_builder:
        for instance in builders(ctx, bake):
            terminate(ctx, instance["InstanceId"], ctx.name(bake.builder_role))
        ctx.resources.pop("builder", None)


def wait_running(ctx: Ctx, instance_id: str, what: str) -> None:
    def probe() -> Poll:
        instance = describe_instance(ctx, instance_id, what)
        state = instance["State"]["Name"] if instance else "pending"
        if instance and state in GONE_INSTANCE_STATES:
            reason = instance.get("StateReason", {}).get("Message", state)
            return Poll(False, state, failed=f"the builder is {state}: {reason}")
        return Poll(state == "running", state)

    ctx.aws.wait(what, probe, delay=5, timeout=BOOT_TIMEOUT)


def health_gate(ctx: Ctx, bake: Bake, instance_id: str) -> None:
    """Ask the builder itself, through SSM Run Command, whether the tier is healthy."""
    aws, what = ctx.aws, f"{bake.tier} tier health on builder {instance_id}"
    sent: dict[str, Any] = {}

    def probe() -> Poll:
        if "command" not in sent:
            # Until the SSM agent has registered, the instance is unknown to Run Command (InvalidInstanceId);
            # any other refusal (AccessDeniedException, InvalidDocument, ...) is raised at once.
            response = aws.call("ssm", "send_command", resource=what, InstanceIds=[instance_id],
                                DocumentName="AWS-RunShellScript", TimeoutSeconds=1800,
                                Comment=f"threetier {ctx.stack}: {bake.tier} health gate",
                                Parameters={"commands": health_script(bake), "executionTimeout": ["1800"]},
                                missing_ok=("InvalidInstanceId",))
            if response is None:
                unknown_since = sent.setdefault("unknown_since", aws.clock.now())
                if aws.clock.now() - unknown_since >= AGENT_REGISTRATION_GRACE:
                    gone = builder_gone(ctx, instance_id, what)
                    if gone:
                        return Poll(False, "InvalidInstanceId", failed=(
                            f"SSM does not know builder {instance_id}, and it never will: {gone}"))
                return Poll(False, "waiting for the SSM agent to register")
            sent.pop("unknown_since", None)
            sent["command"] = response["Command"]["CommandId"]
        invocation = aws.call("ssm", "get_command_invocation", resource=what, CommandId=sent["command"],
                              InstanceId=instance_id, missing_ok=("InvocationDoesNotExist",)) or {}
        status = invocation.get("Status", "Pending")
        details = "".join((invocation.get("StatusDetails") or status).split())  # "Delivery Timed Out" too
        if status == "Success":
            return Poll(True, "healthy")
        if status in ("Pending", "InProgress", "Delayed", "Cancelling"):
            return Poll(False, f"health check {status.lower()}")
        output = (invocation.get("StandardOutputContent") or "").strip()
        if invocation.get("ResponseCode") == BOOTSTRAP_FAILED_EXIT:
            tail = " | ".join(line for line in output[-600:].splitlines() if line.strip())  # one line for the user
            return Poll(False, "bootstrap failed", failed=f"the {bake.tier} bootstrap failed on {instance_id}: {tail}")
        hopeless = HOPELESS_INVOCATIONS.get(details)
        if hopeless is None and details == "Undeliverable":
            gone = builder_gone(ctx, instance_id, what)
            hopeless = f"the command cannot reach the builder: {gone}" if gone else None
        if hopeless is not None:
            errors = " | ".join(line for line in (invocation.get("StandardErrorContent") or "")[-300:].splitlines()
                                if line.strip())
            return Poll(False, details, failed=(
                f"the health check on {instance_id} ended {status} ({details}): {hopeless}"
                + (f"; stderr: {errors}" if errors else "")))
        del sent["command"]  # not healthy yet: ask again next time
        return Poll(False, f"not healthy yet: {output[-120:] or details}")

    aws.wait(what, probe, delay=HEALTH_POLL_DELAY, timeout=HEALTH_TIMEOUT)


def builder_gone(ctx: Ctx, instance_id: str, what: str) -> str | None:
    """Why the builder can no longer run anything (its state, and AWS's reason), or None while it runs."""
    instance = describe_instance(ctx, instance_id, what)
    if instance is None:
        return "it no longer exists"
    state = instance["State"]["Name"]
    if state not in GONE_INSTANCE_STATES:
        return None
    return f"it is {state}: {instance.get('StateReason', {}).get('Message', state)}"


def describe_instance(ctx: Ctx, instance_id: str, what: str) -> dict[str, Any] | None:
    """One instance as AWS has it now (None: unknown, or gone for good), read live: the waits poll it."""
    found = ctx.aws.call("ec2", "describe_instances", resource=what, InstanceIds=[instance_id],
                         missing_ok=("InvalidInstanceID.NotFound",))
    instances = [i for r in (found or {}).get("Reservations", []) for i in r["Instances"]]
    return instances[0] if instances else None


def create_image(ctx: Ctx, bake: Bake, instance_id: str) -> str:
    aws = ctx.aws
    tags = [*ctx.tags(bake.image_role), {"Key": FINGERPRINT_TAG, "Value": bake.fingerprint}]
    specs = [{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}]
    if aws.endpoint_url:  # moto's server refuses snapshot tags in CreateImage (HTTP 500): tag them after
        specs = specs[:1]
    try:
        image_id = request_image(ctx, bake, instance_id, specs)
    except AwsError as exc:
        if exc.code != DUPLICATE_IMAGE_NAME:
            raise
        adopted = claim_image_name(ctx, bake, exc)
        # Adopted, or the name is free again: CreateImage once more (a second refusal is raised).
        image_id = adopted or request_image(ctx, bake, instance_id, specs)
    if len(specs) == 1:
        images = aws.call("ec2", "describe_images", resource=f"AMI {image_id}", ImageIds=[image_id])["Images"]
        snapshots = [m["Ebs"]["SnapshotId"] for i in images for m in i.get("BlockDeviceMappings", [])
                     if m.get("Ebs", {}).get("SnapshotId")]
        if snapshots:
            aws.call("ec2", "create_tags", resource=f"snapshots of AMI {image_id}", Resources=snapshots, Tags=tags)
    return image_id


def request_image(ctx: Ctx, bake: Bake, instance_id: str, specs: list[dict[str, Any]]) -> str:
    image_id: str = ctx.aws.call(
        "ec2", "create_image", resource=f"AMI {image_name(ctx, bake)}", InstanceId=instance_id,
        Name=image_name(ctx, bake), Description=f"threetier {ctx.stack} {bake.tier} tier (golden image)",
        NoReboot=False,  # a clean, consistent file system; the tier starts at boot anyway
        TagSpecifications=specs,
    )["ImageId"]
    ctx.record("created", f"{bake.tier} AMI", image_name(ctx, bake), image_id)
    return image_id


def claim_image_name(ctx: Ctx, bake: Bake, refused: AwsError) -> str | None:
    """CreateImage said an image already has this name. The stack's own one, pending or available,
    is the image of this very bake (a crash between CreateImage and saving the state): adopt it. The
    stack's own failed one is deregistered (None: create again). Anything else is refused, named."""
    name = image_name(ctx, bake)
    holders = ctx.aws.call("ec2", "describe_images", resource=f"AMI {name}", Owners=["self"],
                           Filters=[{"Name": "name", "Values": [name]}])["Images"]
    ours = [i for i in holders if tag_value(i, STACK_TAG) == ctx.stack]
    usable = sorted((i for i in ours if i.get("State") in ("pending", "available")), key=lambda i: i["ImageId"])
    if usable:
        ctx.out.info(f"  AMI {name} already exists ({usable[0]['ImageId']}, {usable[0]['State']}): using it")
        return str(usable[0]["ImageId"])
    dead = [i for i in ours if i.get("State") in DEAD_IMAGE_STATES]
    for image in dead:
        discard_dead_image(ctx, image)
    if dead:
        return None
    if ours:
        ami = ours[0]["ImageId"]
        why = (f"it is this stack's AMI {ami} in state {ours[0].get('State')}: enable it "
               f"({aws_cli(ctx.aws, f'ec2 enable-image --image-id {ami}')}) or deregister it, then run `up` again")
    elif holders:
        why = (f"AMI {holders[0]['ImageId']} has it and is not this stack's (no {STACK_TAG}={ctx.stack} tag): "
               "deregister or rename it, then run `up` again")
    else:
        why = "no AMI of this account shows that name yet: run `up` again in a minute"
    raise AwsError(refused.part, refused.action, refused.resource, refused.code, f"{refused.aws_message}; {why}")


def wait_image(ctx: Ctx, image_id: str, name: str) -> None:
    def probe() -> Poll:
        # A just-created AMI ID may be unknown for a moment: not in the list yet, still pending.
        images = [i for i in stack_images(ctx) if i["ImageId"] == image_id]
        state = images[0]["State"] if images else "pending"
        if state in DEAD_IMAGE_STATES:
            # It would keep the name from the next bake: it goes now, so the next `up` starts clean.
            discard_dead_image(ctx, images[0])
            ctx.resources.pop("ami", None)
            return Poll(False, state, failed=(f"the AMI {image_id} is {state}: {state_reason(images[0])} "
                                              "(deregistered, with its snapshots: `up` bakes it again)"))
        if state == "deregistered":
            ctx.resources.pop("ami", None)
            return Poll(False, state, failed=f"the AMI {image_id} is deregistered: {state_reason(images[0])}")
        return Poll(state == "available", state)

    ctx.aws.wait(f"AMI {name}", probe, delay=IMAGE_POLL_DELAY, timeout=IMAGE_TIMEOUT)


def terminate(ctx: Ctx, instance_id: str, what: str) -> None:
    ctx.aws.call("ec2", "terminate_instances", resource=what, InstanceIds=[instance_id],
                 missing_ok=("InvalidInstanceID.NotFound",))
    ctx.record("deleted", "builder instance", what, instance_id)


# -- check / destroy -------------------------------------------------------------
def check_image(ctx: Ctx, bake: Bake, result: Any) -> None:
    image = find_image(ctx, bake)
    running = builders(ctx, bake)
    result.found(f"AMI {image_name(ctx, bake)}", image is not None)
    # An image of other code: the tier runs the newest one that went live (or was baked) until a deploy.
    earlier = [i for i in tier_images(ctx, bake.tier) if tag_value(i, FINGERPRINT_TAG) != bake.fingerprint]
    if image is None and earlier:
        serving = max(earlier, key=lambda i: (tag_value(i, LIVE_SINCE_TAG) or "", i.get("CreationDate") or ""))
        result.notes.append(f"deploy {bake.tier}: new code (fingerprint {bake.fingerprint}, was "
                            f"{tag_value(serving, FINGERPRINT_TAG) or 'unknown'}): baked, then blue/green at the load balancer")
    if image is None and not any(tag_value(i, FINGERPRINT_TAG) == bake.fingerprint for i in running):
        check_builder(ctx, bake.tier, bake.keep_builder, result)  # none to bake it on: `up` launches one
    if image is not None:
        ctx.resources["ami"] = image["ImageId"]
        ctx.resources["image_name"] = image_name(ctx, bake)
        if image["State"] != "available":
            result.drift.append(f"AMI {image_name(ctx, bake)}: {image['State']}")
    if not bake.keep_builder:
        for instance in running:
            result.unwanted(f"builder {instance['InstanceId']} is still running (`up` terminates it)")


def check_builder(ctx: Ctx, tier: str, keep_builder: bool, result: Any) -> None:
    """The builder `up` launches for an image it bakes: created, and (unless kept) terminated once
    the image is there, so the run counts it deleted too."""
    builder = f"{tier} builder instance {ctx.name(builder_role(tier))}"
    result.missing.append(builder)
    if not keep_builder:
        result.deletes.append(f"{builder}, once its AMI is baked")


def destroy(ctx: Ctx, part: int) -> None:
    """Builders (waited for: their ENIs hold the subnet), then every image of this part and its snapshots."""
    aws = ctx.aws
    part_filter = [{"Name": "tag:threetier:part", "Values": [str(part)]}]
    instances = [i for r in aws.items("ec2", "describe_instances", "Reservations", resource="builders",
                                      Filters=ctx.filters() + part_filter +
                                      [{"Name": "instance-state-name", "Values": [*LIVE_INSTANCE_STATES, "shutting-down"]}])
                 for i in r["Instances"]]
    for instance in instances:
        if instance["State"]["Name"] != "shutting-down":
            terminate(ctx, instance["InstanceId"], tag_value(instance, "Name") or instance["InstanceId"])
    for instance in instances:
        wait_terminated(ctx, instance["InstanceId"])

    delete_images(ctx, part)


def tier_images(ctx: Ctx, tier: str) -> list[dict[str, Any]]:
    """The tier's AMIs (named <stack>-<tier>-ami), every fingerprint's."""
    name = ctx.name(f"{tier}-ami")
    return [i for i in stack_images(ctx) if tag_value(i, "Name") == name]


def tag_image(ctx: Ctx, image_id: str, key: str, value: str) -> None:
    ctx.aws.call("ec2", "create_tags", resource=f"AMI {image_id}", Resources=[image_id],
                 Tags=[{"Key": key, "Value": value[:TAG_VALUE_MAX]}])
    ctx.record("changed", "AMI tag", image_id, f"{key}={value[:TAG_VALUE_MAX]}")


def untag_image(ctx: Ctx, image_id: str, key: str) -> None:
    ctx.aws.call("ec2", "delete_tags", resource=f"AMI {image_id}", Resources=[image_id], Tags=[{"Key": key}])
    ctx.record("changed", "AMI tag", image_id, f"{key} removed")


def rollback_target(images: list[dict[str, Any]], live: str | None) -> str | None:
    """The image to go back to: the newest other one that served all the traffic once (live-since)
    before the live one did, and was not rolled back from."""
    since = {i["ImageId"]: tag_value(i, LIVE_SINCE_TAG) for i in images}
    before = since.get(live) if live else None
    candidates = [(stamp, image_id) for image_id, stamp in since.items()
                  if stamp and image_id != live and (before is None or stamp <= before)
                  and not any(tag_value(i, REJECTED_TAG) for i in images if i["ImageId"] == image_id)]
    return max(candidates)[1] if candidates else None


def delete_images(ctx: Ctx, part: int, keep: str | Collection[str] | None = None) -> None:
    """Deregister this part's AMIs (all, or all but those in `keep`) and delete their snapshots,
    which outlive an AMI and keep billing."""
    aws = ctx.aws
    part_filter = [{"Name": "tag:threetier:part", "Values": [str(part)]}]
    kept = {keep} if isinstance(keep, str) else set(keep or ())
    snapshot_ids: set[str] = set()
    if keep is None:  # everything goes: tagged snapshots whose AMI is already gone too
        tagged = aws.call("ec2", "describe_snapshots", resource="snapshots", OwnerIds=["self"],
                          Filters=ctx.filters() + part_filter)["Snapshots"]
        snapshot_ids |= {s["SnapshotId"] for s in tagged}
    discard_images(ctx, [i for i in stack_images(ctx, part) if i["ImageId"] not in kept], snapshot_ids)


def discard_images(ctx: Ctx, images: list[dict[str, Any]], snapshot_ids: Collection[str] = ()) -> None:
    """Deregister these AMIs, then delete their snapshots (and `snapshot_ids`)."""
    snapshots = set(snapshot_ids)
    for image in images:
        snapshots |= image_snapshots(image)
        deregister_image(ctx, image)
    for snapshot_id in sorted(snapshots):
        delete_snapshot(ctx, snapshot_id)


def image_snapshots(image: dict[str, Any]) -> set[str]:
    return {m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")}


def deregister_image(ctx: Ctx, image: dict[str, Any], kind: str = "AMI") -> None:
    ctx.aws.call("ec2", "deregister_image", resource=f"AMI {image.get('Name', image['ImageId'])}",
                 ImageId=image["ImageId"], missing_ok=("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"))
    ctx.record("deleted", kind, image.get("Name", image["ImageId"]), image["ImageId"])


def delete_snapshot(ctx: Ctx, snapshot_id: str) -> None:
    ctx.aws.call("ec2", "delete_snapshot", resource=f"snapshot {snapshot_id}", SnapshotId=snapshot_id,
                 missing_ok=("InvalidSnapshot.NotFound",), retry_codes=("InvalidSnapshot.InUse",),
                 retry_timeout=5 * 60, retry_delay=10)
    ctx.record("deleted", "AMI snapshot", snapshot_id, snapshot_id)


def wait_terminated(ctx: Ctx, instance_id: str) -> None:
    def probe() -> Poll:
        instance = describe_instance(ctx, instance_id, instance_id)
        state = instance["State"]["Name"] if instance else "terminated"
        return Poll(state == "terminated", state)

    ctx.aws.wait(f"instance {instance_id} termination", probe, delay=10, timeout=10 * 60)
