"""Baking a golden image, as Parts 4 and 6 of the guide do it by hand.

Launch one builder instance whose user data installs the tier, wait until the
tier answers its health check *on the instance* (SSM Run Command, not a
sleep), create an AMI of it, wait for the AMI, terminate the builder.

The AMI's name carries a fingerprint of everything baked into it (the tier's
code, its user data, nginx.conf for the web tier), so an unchanged tier is
found and kept, and a changed one gets a new image.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from steps import storage
from threetier.aws import AwsError, Look, Poll, client_token, tag_value
from threetier.engine import Ctx

AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
FINGERPRINT_TAG = "threetier:fingerprint"
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]
BOOT_TIMEOUT = 10 * 60
HEALTH_TIMEOUT = 25 * 60      # AL2023 dnf + npm ci (+ a React build for the web tier)
HEALTH_POLL_DELAY = 15
IMAGE_TIMEOUT = 30 * 60       # 2-6 min typically, can exceed 10
IMAGE_POLL_DELAY = 15
# An instance profile is usable by RunInstances some seconds after it is created.
PROFILE_NOT_YET_USABLE = ("InvalidParameterValue",)
BOOTSTRAP_FAILED_EXIT = 2


@dataclass(frozen=True)
class Bake:
    tier: str                 # "app" or "web"
    subnet_role: str          # where the builder runs
    security_group_role: str
    instance_type: str
    architecture: str         # of the instance type; part of the fingerprint (an x86 image won't boot on Graviton)
    user_data: str
    health_url: str           # answered on the builder itself once the tier is up
    keep_builder: bool
    baked_files: dict[str, bytes] = field(repr=False)
    # What a builder needs ready before it boots, as (part, milestone): the app builder sits in a
    # private subnet and its bootstrap needs the NAT gateway; the web builder goes out via the IGW.
    launch_needs: tuple[tuple[int, str], ...] = ()

    @property
    def builder_role(self) -> str:
        return f"{self.tier}-builder"

    @property
    def image_role(self) -> str:
        return f"{self.tier}-ami"

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.architecture.encode() + b"\0" + self.user_data.encode())
        for key, body in sorted(self.baked_files.items()):
            digest.update(key.encode() + b"\0" + hashlib.sha256(body).digest())
        return digest.hexdigest()[:16]


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
def start(ctx: Ctx, bake: Bake) -> None:
    """Keep an image with this fingerprint, or launch a builder for one (not waited for)."""
    ctx.resources["image_name"] = image_name(ctx, bake)
    image = find_image(ctx, bake)
    if image is not None:
        ctx.resources["ami"] = image["ImageId"]
        return
    ctx.resources.pop("ami", None)
    for number, milestone in bake.launch_needs:
        ctx.need(number, milestone)
    ctx.resources["builder"] = ensure_builder(ctx, bake)["InstanceId"]


def find_image(ctx: Ctx, bake: Bake) -> dict[str, Any] | None:
    images = [i for i in stack_images(ctx) if i.get("Name") == image_name(ctx, bake)
              and i.get("State") in ("pending", "available")]
    return sorted(images, key=lambda i: i["ImageId"])[0] if images else None


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

    storage_resources = ctx.resources_of(storage.NUMBER)
    network_resources = ctx.resources_of(2)
    image = base_image(ctx, bake.architecture)
    tags = [*ctx.tags(bake.builder_role), {"Key": FINGERPRINT_TAG, "Value": bake.fingerprint}]
    token = client_token(ctx.name(bake.builder_role), bake.fingerprint, str(len(every)))
    instance = aws.call(
        "ec2", "run_instances", resource=ctx.name(bake.builder_role),
        ImageId=image["ImageId"], InstanceType=bake.instance_type, MinCount=1, MaxCount=1,
        SubnetId=network_resources["subnets"][bake.subnet_role],
        SecurityGroupIds=[network_resources["security_groups"][bake.security_group_role]],
        IamInstanceProfile={"Arn": storage_resources[storage.profile_arn_key(bake.tier)]},  # the tier's own
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
        found = ctx.aws.call("ec2", "describe_instances", resource=what, InstanceIds=[instance_id],
                             missing_ok=("InvalidInstanceID.NotFound",))
        instances = [i for r in (found or {}).get("Reservations", []) for i in r["Instances"]]
        state = instances[0]["State"]["Name"] if instances else "pending"
        if state in ("shutting-down", "terminated", "stopping", "stopped"):
            reason = instances[0].get("StateReason", {}).get("Message", state)
            return Poll(False, state, failed=f"the builder is {state}: {reason}")
        return Poll(state == "running", state)

    ctx.aws.wait(what, probe, delay=5, timeout=BOOT_TIMEOUT)


def health_gate(ctx: Ctx, bake: Bake, instance_id: str) -> None:
    """Ask the builder itself, through SSM Run Command, whether the tier is healthy."""
    aws, what = ctx.aws, f"{bake.tier} tier health on builder {instance_id}"
    sent: dict[str, str] = {}

    def probe() -> Poll:
        if "command" not in sent:
            # Until the SSM agent has registered, the instance is unknown to Run Command.
            response = aws.call("ssm", "send_command", resource=what, InstanceIds=[instance_id],
                                DocumentName="AWS-RunShellScript", TimeoutSeconds=1800,
                                Comment=f"threetier {ctx.stack}: {bake.tier} health gate",
                                Parameters={"commands": health_script(bake), "executionTimeout": ["1800"]},
                                missing_ok=("InvalidInstanceId",))
            if response is None:
                return Poll(False, "waiting for the SSM agent to register")
            sent["command"] = response["Command"]["CommandId"]
        invocation = aws.call("ssm", "get_command_invocation", resource=what, CommandId=sent["command"],
                              InstanceId=instance_id, missing_ok=("InvocationDoesNotExist",))
        status = (invocation or {}).get("Status", "Pending")
        if status == "Success":
            return Poll(True, "healthy")
        if status in ("Pending", "InProgress", "Delayed"):
            return Poll(False, f"health check {status.lower()}")
        output = ((invocation or {}).get("StandardOutputContent") or "").strip()
        if (invocation or {}).get("ResponseCode") == BOOTSTRAP_FAILED_EXIT:
            tail = " | ".join(line for line in output[-600:].splitlines() if line.strip())  # one line for the user
            return Poll(False, "bootstrap failed", failed=f"the {bake.tier} bootstrap failed on {instance_id}: {tail}")
        del sent["command"]  # not healthy yet: ask again next time
        return Poll(False, f"not healthy yet: {output[-120:] or status}")

    aws.wait(what, probe, delay=HEALTH_POLL_DELAY, timeout=HEALTH_TIMEOUT)


def create_image(ctx: Ctx, bake: Bake, instance_id: str) -> str:
    aws = ctx.aws
    tags = [*ctx.tags(bake.image_role), {"Key": FINGERPRINT_TAG, "Value": bake.fingerprint}]
    specs = [{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}]
    if aws.endpoint_url:  # moto's server refuses snapshot tags in CreateImage (HTTP 500): tag them after
        specs = specs[:1]
    image_id = aws.call(
        "ec2", "create_image", resource=f"AMI {image_name(ctx, bake)}", InstanceId=instance_id,
        Name=image_name(ctx, bake), Description=f"threetier {ctx.stack} {bake.tier} tier (golden image)",
        NoReboot=False,  # a clean, consistent file system; the tier starts at boot anyway
        TagSpecifications=specs,
    )["ImageId"]
    ctx.record("created", f"{bake.tier} AMI", image_name(ctx, bake), image_id)
    if len(specs) == 1:
        images = aws.call("ec2", "describe_images", resource=f"AMI {image_id}", ImageIds=[image_id])["Images"]
        snapshots = [m["Ebs"]["SnapshotId"] for i in images for m in i.get("BlockDeviceMappings", [])
                     if m.get("Ebs", {}).get("SnapshotId")]
        if snapshots:
            aws.call("ec2", "create_tags", resource=f"snapshots of AMI {image_id}", Resources=snapshots, Tags=tags)
    return image_id


def wait_image(ctx: Ctx, image_id: str, name: str) -> None:
    def probe() -> Poll:
        # A just-created AMI ID may be unknown for a moment: not in the list yet, still pending.
        images = [i for i in stack_images(ctx) if i["ImageId"] == image_id]
        state = images[0]["State"] if images else "pending"
        if state in ("failed", "invalid", "deregistered", "error"):
            reason = images[0].get("StateReason", {}).get("Message", state)
            return Poll(False, state, failed=f"the AMI is {state}: {reason}")
        return Poll(state == "available", state)

    ctx.aws.wait(f"AMI {name}", probe, delay=IMAGE_POLL_DELAY, timeout=IMAGE_TIMEOUT)


def terminate(ctx: Ctx, instance_id: str, what: str) -> None:
    ctx.aws.call("ec2", "terminate_instances", resource=what, InstanceIds=[instance_id],
                 missing_ok=("InvalidInstanceID.NotFound",))
    ctx.record("deleted", "builder instance", what, instance_id)


# -- check / destroy -------------------------------------------------------------
def check_image(ctx: Ctx, bake: Bake, result: Any) -> None:
    image = find_image(ctx, bake)
    result.found(f"AMI {image_name(ctx, bake)}", image is not None)
    if image is not None:
        ctx.resources["ami"] = image["ImageId"]
        ctx.resources["image_name"] = image_name(ctx, bake)
        if image["State"] != "available":
            result.drift.append(f"AMI {image_name(ctx, bake)}: {image['State']}")
    if not bake.keep_builder:
        for instance in builders(ctx, bake):
            result.drift.append(f"builder {instance['InstanceId']} is still running")


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


def delete_images(ctx: Ctx, part: int, keep: str | None = None) -> None:
    """Deregister this part's AMIs (all, or all but `keep`) and delete their snapshots, which
    outlive an AMI and keep billing."""
    aws = ctx.aws
    part_filter = [{"Name": "tag:threetier:part", "Values": [str(part)]}]
    images = [i for i in stack_images(ctx, part) if i["ImageId"] != keep]
    snapshot_ids: set[str] = set()
    for image in images:
        snapshot_ids |= {m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
                         if m.get("Ebs", {}).get("SnapshotId")}
        aws.call("ec2", "deregister_image", resource=f"AMI {image.get('Name', image['ImageId'])}",
                 ImageId=image["ImageId"], missing_ok=("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"))
        ctx.record("deleted", "AMI", image.get("Name", image["ImageId"]), image["ImageId"])
    if keep is None:  # everything goes: tagged snapshots whose AMI is already gone too
        tagged = aws.call("ec2", "describe_snapshots", resource="snapshots", OwnerIds=["self"],
                          Filters=ctx.filters() + part_filter)["Snapshots"]
        snapshot_ids |= {s["SnapshotId"] for s in tagged}
    for snapshot_id in sorted(snapshot_ids):
        aws.call("ec2", "delete_snapshot", resource=f"snapshot {snapshot_id}", SnapshotId=snapshot_id,
                 missing_ok=("InvalidSnapshot.NotFound",), retry_codes=("InvalidSnapshot.InUse",),
                 retry_timeout=5 * 60, retry_delay=10)
        ctx.record("deleted", "AMI snapshot", snapshot_id, snapshot_id)


def wait_terminated(ctx: Ctx, instance_id: str) -> None:
    def probe() -> Poll:
        found = ctx.aws.call("ec2", "describe_instances", resource=instance_id, InstanceIds=[instance_id],
                             missing_ok=("InvalidInstanceID.NotFound",))
        instances = [i for r in (found or {}).get("Reservations", []) for i in r["Instances"]]
        state = instances[0]["State"]["Name"] if instances else "terminated"
        return Poll(state == "terminated", state)

    ctx.aws.wait(f"instance {instance_id} termination", probe, delay=10, timeout=10 * 60)
