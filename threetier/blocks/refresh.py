"""A tier's instances on its launch template's default version (Parts 5 and 7): an instance refresh
when a new version is made, the pending work a crash left (the template ahead of its instances),
and, on an emulator that has no instance refresh, the same one instance at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from threetier.aws import Look, Poll
from threetier.engine import Ctx

if TYPE_CHECKING:
    from threetier.blocks.balancing import Tier

REFRESH_TIMEOUT = 45 * 60         # instance by instance, each warmed up and health-checked
# An instance refresh in these states is under way: wait for it, never start a second.
REFRESH_UNDER_WAY = ("Pending", "InProgress", "Baking", "Cancelling", "RollbackInProgress")


def refreshes_look(ctx: Ctx, tier: Tier) -> Look:
    return Look("autoscaling", "describe_instance_refreshes", {"AutoScalingGroupName": ctx.name(tier.asg_role)})


@dataclass(frozen=True)
class Outdated:
    """The group's instances that do not run what the launch template's default version says."""
    group: str
    instances: list[dict[str, Any]]  # as DescribeInstances has them
    total: int                       # the group's instances in service or on their way
    default: dict[str, Any]          # the default version (VersionNumber, LaunchTemplateData)
    refresh: dict[str, Any] | None   # an instance refresh under way, if one is

    def describe(self, emulator: bool) -> str:
        data = self.default["LaunchTemplateData"]
        wanted = running(data.get("InstanceType"), data.get("ImageId"))
        runs = {running(i.get("InstanceType"), i.get("ImageId")) for i in self.instances}
        if wanted in runs:  # the same AMI and type: the security groups are what differs
            wanted += f" with {', '.join(sorted(data.get('SecurityGroupIds', [])))}"
            runs = {running(i.get("InstanceType"), i.get("ImageId")) + " with " +
                    ", ".join(sorted(g["GroupId"] for g in i.get("SecurityGroups", []))) for i in self.instances}
        said = (f"Auto Scaling group {self.group}: {len(self.instances)} of {self.total} instances run "
                f"{' / '.join(sorted(runs))}, the launch template's default version {self.default['VersionNumber']} "
                f"is {wanted}")
        if self.refresh is not None:
            return (f"{said}: an instance refresh is under way ({self.refresh['InstanceRefreshId']}: "
                    f"{self.refresh['Status']} {self.refresh.get('PercentageComplete', 0)}%), `up` waits for it")
        return f"{said}: an instance refresh is due (`up` {'replaces them' if emulator else 'starts it'})"


def running(instance_type: str | None, image: str | None) -> str:
    return f"{instance_type} ({image})"


def outdated_instances(group: dict[str, Any], data: dict[str, Any],
                       reservations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The group's instances in service or on their way whose AMI, type or security groups differ
    from the template data (what `ensure_launch_template` makes a new version for). Not the group's
    per-instance template version: AWS documents it as a number or "$Default", and moto shows the
    current default there whatever the instance was launched from; the instance itself tells."""
    wanted = (data.get("ImageId"), data.get("InstanceType"), sorted(data.get("SecurityGroupIds", [])))
    described = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
    found = [described[m["InstanceId"]] for m in serving(group) if m["InstanceId"] in described]
    return [i for i in found if (i.get("ImageId"), i.get("InstanceType"),
                                 sorted(g["GroupId"] for g in i.get("SecurityGroups", []))) != wanted]


def serving(group: dict[str, Any]) -> list[dict[str, Any]]:
    """In service or on their way (a refresh neither replaces nor waits for Standby or leaving ones)."""
    return [m for m in group.get("Instances", [])
            if m.get("LifecycleState") == "InService" or str(m.get("LifecycleState", "")).startswith("Pending")]


def refresh_under_way(ctx: Ctx, tier: Tier) -> dict[str, Any] | None:
    found = ctx.aws.look(refreshes_look(ctx, tier), resource=f"Auto Scaling group {ctx.name(tier.asg_role)}")
    under_way = [r for r in found["InstanceRefreshes"] if r.get("Status") in REFRESH_UNDER_WAY]
    return under_way[0] if under_way else None


def replace_outdated_instances(ctx: Ctx, tier: Tier, outdated: Outdated | None, new_version: bool) -> None:
    """Instances not on the template's default version (`outdated`, as balancing.find_outdated found
    them just now) are replaced: by the instance refresh this run's new version asks for, by the one a
    crash lost after the version was made (the template is ahead of its instances: pending work), or
    by the one already under way."""
    if ctx.aws.emulator:
        if outdated is not None:
            replace_one_by_one(ctx, tier, outdated)
        return
    if outdated is not None and outdated.refresh is not None:  # never a second: wait for that one
        ctx.resources["instance_refresh"] = outdated.refresh["InstanceRefreshId"]
        ctx.out.info(f"  {outdated.group}: instance refresh {outdated.refresh['InstanceRefreshId']} is under way")
    elif outdated is not None or new_version:
        start_instance_refresh(ctx, tier)


def replace_one_by_one(ctx: Ctx, tier: Tier, outdated: Outdated) -> None:
    """What an instance refresh does, on an emulator that has none: each out-of-date instance is
    terminated in the group, which launches its replacement from the default version."""
    name = ctx.name(tier.asg_role)
    ctx.out.info(f"  {name}: the emulator has no instance refresh: replacing {len(outdated.instances)} "
                 f"instances one by one")
    for instance in outdated.instances:
        ctx.aws.call("autoscaling", "terminate_instance_in_auto_scaling_group",
                     resource=f"instance {instance['InstanceId']} of {name}", InstanceId=instance["InstanceId"],
                     ShouldDecrementDesiredCapacity=False)
        ctx.record("changed", "instance", name, f"{instance['InstanceId']} replaced")


def start_instance_refresh(ctx: Ctx, tier: Tier) -> None:
    """Replace the running instances with the template's new default version, keeping half in service."""
    name = ctx.name(tier.asg_role)
    refresh = ctx.aws.call("autoscaling", "start_instance_refresh", resource=f"Auto Scaling group {name}",
                           AutoScalingGroupName=name, Strategy="Rolling",
                           # Not SkipMatching: the group follows $Default, so there is no saved
                           # configuration to match against, and every instance must move on.
                           Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 120},
                           missing_ok=("InstanceRefreshInProgress",))
    if refresh is None:  # one is running already: wait for that one (not one of the group's past ones)
        found = ctx.aws.call("autoscaling", "describe_instance_refreshes", resource=f"Auto Scaling group {name}",
                             AutoScalingGroupName=name)["InstanceRefreshes"]
        under_way = [r for r in found if r.get("Status") in REFRESH_UNDER_WAY]
        refresh = under_way[0] if under_way else None
    if refresh:
        ctx.resources["instance_refresh"] = refresh["InstanceRefreshId"]
        ctx.record("changed", "instance refresh", name, refresh["InstanceRefreshId"])


def wait_instance_refresh(ctx: Ctx, tier: Tier) -> None:
    name, refresh_id = ctx.name(tier.asg_role), ctx.resources.get("instance_refresh")
    if not refresh_id:
        return

    def probe() -> Poll:
        found = ctx.aws.call("autoscaling", "describe_instance_refreshes", resource=f"Auto Scaling group {name}",
                             AutoScalingGroupName=name, InstanceRefreshIds=[refresh_id])["InstanceRefreshes"]
        status = found[0]["Status"] if found else "Successful"
        if status in ("Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"):
            return Poll(False, status, failed=(found[0].get("StatusReason") or status))
        percent = found[0].get("PercentageComplete", 0) if found else 100
        return Poll(status == "Successful", f"{status} {percent}%")

    ctx.aws.wait(f"instance refresh of {name}", probe, delay=30, timeout=REFRESH_TIMEOUT)
    ctx.resources.pop("instance_refresh", None)
