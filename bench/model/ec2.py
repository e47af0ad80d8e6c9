"""EC2 in time: NAT gateways, instances and AMIs.

- NAT gateways: pending 100 s, deleting 60 s; CreateRoute to one created < 5 s ago:
  InvalidNatGatewayID.NotFound (eventual consistency, retried); its EIP cannot be released until it is
  deleted (`release-eip-of-nat`);
- instances: pending 30 s; shutting-down 60 s after terminate (a builder's bootstrap: builders.py);
- CreateImage needs a running instance (`image-of-non-running`); images pending 300 s; a new AMI ID is
  unknown to DescribeImages for 1 s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.model import figures
from bench.model.core import Span, after, before, override, tag, tags_of
from bench.model.userdata import bootstrap_actions, decode_user_data
from threetier.aws import PART_TAG

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


@dataclass
class NatGateway:
    id: str
    name: str
    part: int | None
    subnet: str
    vpc: str
    allocation: str
    created: float
    deleted: float | None = None


@dataclass
class Instance:
    id: str
    name: str
    part: int | None
    tier: str
    subnet: str
    vpc: str
    security_groups: tuple[str, ...]
    public: bool
    user_data: str
    launched: float
    terminated: float | None = None
    actions: list[tuple[str, float]] = field(default_factory=list)
    # the bootstrap, once judged: (segments, done_at, failed_at, reason)
    outcome: tuple[list[tuple[str, float, float]], float | None, float | None, str | None] | None = None

    @property
    def running_at(self) -> float:
        return self.launched + figures.EC2_PENDING_SECONDS

    @property
    def bootstrap_start(self) -> float:
        return self.running_at + figures.USER_DATA_START_SECONDS


@dataclass
class Image:
    id: str
    name: str
    part: int | None
    instance: str
    created: float


# -- NAT gateways ---------------------------------------------------------------------
def nat_state(model: LatencyModel, nat_id: str, at: float | None = None) -> str:
    t = model.now if at is None else at
    nat = model.nats.get(nat_id)
    if nat is None:
        return "available"
    if nat.deleted is not None and t >= nat.deleted:
        return "deleted" if t - nat.deleted >= figures.NAT_DELETE_SECONDS else "deleting"
    return "pending" if t - nat.created < figures.NAT_CREATE_SECONDS else "available"


@after("ec2", "CreateNatGateway")
def nat_created(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    nat = parsed.get("NatGateway")
    if not nat:
        return
    if nat["NatGatewayId"] not in model.nats:
        model.nats[nat["NatGatewayId"]] = NatGateway(
            nat["NatGatewayId"], tag(tags_of(params), "Name") or nat["NatGatewayId"], model.part(params),
            nat.get("SubnetId", params.get("SubnetId", "")), nat.get("VpcId", ""),
            params.get("AllocationId", ""), model.now)
    nat["State"] = "pending"


@after("ec2", "DeleteNatGateway")
def nat_deleted(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    nat_id = parsed.get("NatGatewayId") or params.get("NatGatewayId")
    if not nat_id:
        return
    if nat_id not in model.nats:  # made before the model was installed
        found = model.raw("ec2").describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
        n = found[0] if found else {}
        model.nats[nat_id] = NatGateway(nat_id, tag(n.get("Tags", []), "Name") or nat_id,
                                        int(tag(n.get("Tags", []), PART_TAG) or 0) or None, n.get("SubnetId", ""),
                                        n.get("VpcId", ""), next((a.get("AllocationId", "") for a in
                                                                 n.get("NatGatewayAddresses", [])), ""),
                                        created=-1e9)
    if model.nats[nat_id].deleted is None:
        model.nats[nat_id].deleted = model.now


@after("ec2", "DescribeNatGateways")
def describe_nats(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    for nat in parsed.get("NatGateways", []):
        if nat["NatGatewayId"] in model.nats:
            nat["State"] = nat_state(model, nat["NatGatewayId"])
            model.polls[nat["State"]] = model.polls.get(nat["State"], 0) + 1


def live_nats(model: LatencyModel) -> list[dict[str, Any]]:
    """NAT gateways that still exist in the model's time (moto's own state for the ones it did not see)."""
    live = []
    for nat in model.raw("ec2").describe_nat_gateways()["NatGateways"]:
        state = nat_state(model, nat["NatGatewayId"]) if nat["NatGatewayId"] in model.nats else nat["State"]
        if state in ("pending", "available", "deleting"):
            live.append(nat)
    return live


@before("ec2", "CreateRoute", "ReplaceRoute")
def create_route(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    nat = model.nats.get(params.get("NatGatewayId") or "")
    if nat and model.now - nat.created < figures.NAT_ROUTE_VISIBLE_SECONDS:
        # Not a mistake of the caller: eventual consistency, to be retried.
        return model.refuse("InvalidNatGatewayID.NotFound", f"The natGateway ID '{nat.id}' does not exist",
                            operation=operation)
    return None


@before("ec2", "ReleaseAddress")
def release_address(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    allocation = params.get("AllocationId")
    for nat in live_nats(model):
        if any(a.get("AllocationId") == allocation for a in nat.get("NatGatewayAddresses", [])):
            return model.refuse("InvalidIPAddress.InUse", f"{allocation} is in use by {nat['NatGatewayId']}",
                                operation=operation, rule="release-eip-of-nat")
    return None


def nat_spans(model: LatencyModel) -> list[Span]:
    spans = []
    for nat in model.nats.values():
        if nat.created > -1e8:
            spans.append(Span(nat.part, "NAT gateway", nat.name, nat.created,
                              nat.created + figures.NAT_CREATE_SECONDS))
        if nat.deleted is not None:
            spans.append(Span(nat.part, "NAT gateway", nat.name, nat.deleted,
                              nat.deleted + figures.NAT_DELETE_SECONDS, action="delete"))
    return spans


# -- instances ---------------------------------------------------------------------------
def instance_state(model: LatencyModel, instance_id: str, at: float | None = None) -> str | None:
    t = model.now if at is None else at
    instance = model.instances.get(instance_id)
    if instance is None:
        return None
    if instance.terminated is not None and t >= instance.terminated:
        return "terminated" if t - instance.terminated >= figures.EC2_TERMINATE_SECONDS else "shutting-down"
    return "pending" if t < instance.running_at else "running"


@after("ec2", "RunInstances")
def instances_launched(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    user_data = decode_user_data(params.get("UserData"))
    name = tag(tags_of(params), "Name") or ""
    tier = "web" if "web" in name else "app" if "app" in name else ""
    for i in parsed.get("Instances", []):
        subnet = i.get("SubnetId") or params.get("SubnetId", "")
        public = bool(i.get("PublicIpAddress")) or _maps_public_ip(model, subnet)
        instance = Instance(i["InstanceId"], name or i["InstanceId"], model.part(params), tier, subnet,
                            i.get("VpcId", ""), tuple(params.get("SecurityGroupIds") or
                                                      [g["GroupId"] for g in i.get("SecurityGroups", [])]),
                            public, user_data, model.now)
        if user_data:
            instance.actions = bootstrap_actions(user_data, tier)
        model.instances[instance.id] = instance
        i["State"] = {"Code": 0, "Name": "pending"}


def _maps_public_ip(model: LatencyModel, subnet: str) -> bool:
    if not subnet:
        return False
    found = model.raw("ec2").describe_subnets(SubnetIds=[subnet])["Subnets"]
    return bool(found and found[0].get("MapPublicIpOnLaunch"))


@after("ec2", "DescribeInstances")
def describe_instances(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
    for reservation in parsed.get("Reservations", []):
        for i in reservation.get("Instances", []):
            state = instance_state(model, i["InstanceId"])
            if state is not None:
                i["State"] = {"Code": codes[state], "Name": state}


@after("ec2", "TerminateInstances")
def instances_terminated(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    for change in parsed.get("TerminatingInstances", []):
        instance = model.instances.get(change["InstanceId"])
        if instance is not None and instance.terminated is None:
            instance.terminated = model.now
            change["CurrentState"] = {"Code": 32, "Name": "shutting-down"}


def instance_spans(model: LatencyModel) -> list[Span]:
    """An instance pending then running; a builder's boot and bootstrap after (its outcome: builders.py)."""
    spans = []
    for instance in model.instances.values():
        segments = [("pending", instance.launched, instance.running_at)]
        end: float | None = instance.running_at
        failed = None
        if instance.user_data:
            segments.append(("boot", instance.running_at, instance.bootstrap_start))
            if instance.outcome is not None:
                parts, done, failed_at, failed = instance.outcome
                segments += parts
                end = done if done is not None else failed_at
            else:
                end = None
        spans.append(Span(instance.part, "builder" if instance.user_data else "instance", instance.name,
                          instance.launched, end, segments=segments, failed=failed))
        if instance.terminated is not None:
            spans.append(Span(instance.part, "builder" if instance.user_data else "instance", instance.name,
                              instance.terminated, instance.terminated + figures.EC2_TERMINATE_SECONDS,
                              action="delete"))
    return spans


# -- AMIs ----------------------------------------------------------------------------------
def image_state(model: LatencyModel, image_id: str) -> str | None:
    image = model.images.get(image_id)
    if image is None:
        return None
    return "pending" if model.now - image.created < figures.IMAGE_CREATE_SECONDS else "available"


@before("ec2", "CreateImage")
def create_image(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    instance_id = params.get("InstanceId", "")
    state = instance_state(model, instance_id)
    if state is not None and state != "running":
        return model.refuse("IncorrectInstanceState", f"The instance '{instance_id}' is not in the 'running' "
                            f"state (it is {state})", operation=operation, rule="image-of-non-running")
    return None


@after("ec2", "CreateImage")
def image_created(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    image_id = parsed.get("ImageId")
    if image_id:
        model.images[image_id] = Image(image_id, params.get("Name", image_id), model.part(params),
                                       params.get("InstanceId", ""), model.now)


@before("ec2", "DescribeImages")
def describe_images_before(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    for image_id in params.get("ImageIds") or []:
        image = model.images.get(image_id)
        if image is not None and model.now - image.created < figures.IMAGE_ID_VISIBLE_SECONDS:
            return model.refuse("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist",
                                operation=operation)
    return None


@after("ec2", "DescribeImages")
def describe_images(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    override(parsed.get("Images", []), "ImageId", "State", lambda image_id: image_state(model, image_id))


def image_spans(model: LatencyModel) -> list[Span]:
    return [Span(image.part, "AMI", image.name, image.created, image.created + figures.IMAGE_CREATE_SECONDS)
            for image in model.images.values()]
