"""Strays: instances tagged with the stack that no Auto Scaling group of the stack owns, and that no
bake is using.

Detaching an instance from its group to look at it is ordinary debugging; the instance keeps the
stack's tags (and its ENI in the stack's subnet, with the stack's security group and instance
profile) and bills until it is terminated. `status` shows each one as drift, `up` terminates it
(saying so), and `down` terminates it and waits until it is terminated: until then its ENI holds the
subnet and the security group, which Part 2 deletes once this Part is gone (steps/graph.py).

Which Part answers for a stray, the Part says (`claims`, on its threetier:part tag): each tier
its own, each bake its own, the web tier (the last) those of no Part that has instances.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from threetier.aws import PART_TAG, STACK_TAG, Look, tag_value
from threetier.blocks.baking import LIVE_INSTANCE_STATES, instances_look, wait_terminated
from threetier.engine import Check, Ctx

GROUP_TAG = "aws:autoscaling:groupName"  # set by Auto Scaling on the instances it launches


@dataclass(frozen=True)
class Stray:
    id: str
    name: str   # its Name tag ("" when it has none)
    state: str  # pending, running, stopping or stopped

    def describe(self) -> str:
        return f"stray instance {self.id} ({self.name or 'no Name tag'}, {self.state})"


def groups_look(ctx: Ctx) -> Look:
    """The stack's Auto Scaling groups, whatever their names: what owns an instance."""
    return Look("autoscaling", "describe_auto_scaling_groups",
                {"Filters": [{"Name": f"tag:{STACK_TAG}", "Values": [ctx.stack]}]}, key="AutoScalingGroups")


def looks(ctx: Ctx) -> tuple[Look, ...]:
    return groups_look(ctx), instances_look(ctx)


def part_of(instance: dict[str, Any]) -> int | None:
    value = tag_value(instance, PART_TAG)
    return int(value) if value and value.isdigit() else None


def owned(groups: list[dict[str, Any]], instance: dict[str, Any]) -> bool:
    """Whether one of `groups` owns the instance: it lists it; or it launched it a moment ago (pending,
    with the group's tag) and the group was read before it listed it."""
    if any(member["InstanceId"] == instance["InstanceId"] for group in groups for member in group.get("Instances", [])):
        return True
    names = {group["AutoScalingGroupName"] for group in groups}
    return instance["State"]["Name"] == "pending" and tag_value(instance, GROUP_TAG) in names


def find(ctx: Ctx, claims: Callable[[int | None], bool], builders: Collection[str] = ()) -> list[Stray]:
    """The strays this Part answers for: live instances tagged with the stack whose threetier:part
    tag it `claims`, that no group of the stack owns, and that are not one of `builders` (a bake's
    builder, by its Name or its ID)."""
    reservations = ctx.aws.look(instances_look(ctx), resource=f"instances of stack {ctx.stack}")
    groups = ctx.aws.look(groups_look(ctx), resource=f"Auto Scaling groups of stack {ctx.stack}") or []
    found = []
    for instance in (i for r in reservations or [] for i in r["Instances"]):
        name = tag_value(instance, "Name") or ""
        if (tag_value(instance, STACK_TAG) == ctx.stack and instance["State"]["Name"] in LIVE_INSTANCE_STATES
                and claims(part_of(instance)) and not owned(groups, instance)
                and name not in builders and instance["InstanceId"] not in builders):
            found.append(Stray(instance["InstanceId"], name, instance["State"]["Name"]))
    return sorted(found, key=lambda stray: stray.id)


def of_bake(ctx: Ctx, part: int, builder_name: str) -> list[Stray]:
    """A bake's strays: instances tagged with its Part that are not its builder, by Name or by the ID
    the state file has (its `down` terminates every instance of the Part, strays with the builder)."""
    return find(ctx, lambda tagged: tagged == part, builders=(builder_name, ctx.resources.get("builder", "")))


def check(ctx: Ctx, strays: list[Stray], result: Check) -> None:
    for stray in strays:
        result.unwanted(f"{stray.describe()}: tagged threetier:stack={ctx.stack}, in no Auto Scaling group of "
                        f"the stack (detached?), and billing; `threetier up` or `down` terminates it")


def terminate(ctx: Ctx, strays: list[Stray]) -> list[Stray]:
    """Terminate each stray still in no group of the stack (read again, live: a group may have taken
    it since the inventory was read), saying so; returns those terminated (not waited for)."""
    if not strays:
        return []
    groups = list(ctx.aws.items("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups",
                                resource=f"Auto Scaling groups of stack {ctx.stack}", **groups_look(ctx).params))
    members = {member["InstanceId"] for group in groups for member in group.get("Instances", [])}
    going = [stray for stray in strays if stray.id not in members]
    for stray in going:
        ctx.out.info(f"  terminating {stray.describe()}: tagged threetier:stack={ctx.stack}, in no Auto Scaling "
                     f"group of the stack")
        ctx.aws.call("ec2", "terminate_instances", resource=stray.describe(), InstanceIds=[stray.id],
                     missing_ok=("InvalidInstanceID.NotFound",))
        ctx.record("deleted", "stray instance", stray.name or stray.id, stray.id)
    return going


def wait_gone(ctx: Ctx, strays: list[Stray]) -> None:
    """Until each is terminated: its ENI holds its subnet and security group until then."""
    for stray in strays:
        wait_terminated(ctx, stray.id)
