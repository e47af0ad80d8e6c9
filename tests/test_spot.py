"""`app.spot` / `web.spot` (issue 26): a tier's Auto Scaling groups (both colors) as a mixed instances
policy over the tier's launch template, from reference stacks (`built` + a config change + `up`).

moto 5.2.1 stores CreateAutoScalingGroup's MixedInstancesPolicy and CapacityRebalance and describes them
back; its UpdateAutoScalingGroup drops the policy unless it is repeated and ignores CapacityRebalance,
which bench.moto_env.mocked_aws makes AWS's (keeps the policy, sets the flag)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import cli, write_config
from test_bluegreen import names, only, status_clean

APP_SPOT = {"on_demand_base": 1, "on_demand_percent": 0, "instance_types": ["t3.micro", "t3a.micro"]}
WEB_SPOT = {"on_demand_base": 0, "on_demand_percent": 50, "instance_types": ["t3.small", "t3a.small", "t3.micro"]}
SPOT = {"app": {"spot": APP_SPOT}, "web": {"spot": WEB_SPOT}}


def group(name: str) -> dict[str, Any]:
    found = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return found["AutoScalingGroups"][0]


def spot_of(name: str) -> tuple[Any, ...]:
    """What the group launches from, in short: (template, types, base, percent, strategy, rebalance)."""
    found = group(name)
    policy = found.get("MixedInstancesPolicy")
    if not policy:
        return (None, found.get("CapacityRebalance"))
    template = policy["LaunchTemplate"]
    distribution = policy["InstancesDistribution"]
    return (template["LaunchTemplateSpecification"]["LaunchTemplateName"],
            [o["InstanceType"] for o in template["Overrides"]], distribution["OnDemandBaseCapacity"],
            distribution["OnDemandPercentageAboveBaseCapacity"], distribution["SpotAllocationStrategy"],
            found["CapacityRebalance"])


def wanted(tier: str, spot: dict[str, Any], suffix: str = "") -> tuple[Any, ...]:
    return (f"threetier-{tier}-lt{suffix}", spot["instance_types"], spot["on_demand_base"],
            spot["on_demand_percent"], "price-capacity-optimized", True)


def up(directory: Path) -> dict[str, Any]:
    result = cli("up", "--json", cwd=directory)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_spot_config_puts_both_tiers_groups_on_a_mixed_policy_and_status_says_drift_until_up(
        built: Path, calls: list[str]) -> None:
    write_config(built, **SPOT)
    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    drift = [line for p in json.loads(status.stdout)["parts"] for line in p["drift"]]
    assert any("threetier-app-asg: on-demand only, config says Spot" in line for line in drift), drift
    assert any("threetier-web-asg: on-demand only, config says Spot" in line for line in drift), drift
    up(built)
    assert calls.count("UpdateAutoScalingGroup") == 2 and "CreateAutoScalingGroup" not in calls
    assert spot_of("threetier-app-asg") == wanted("app", APP_SPOT)
    assert spot_of("threetier-web-asg") == wanted("web", WEB_SPOT)
    assert names("app") == only("blue", "app")  # in place: no second color for a policy
    status_clean(built)

    # Changed by hand: drift, and `up` puts it back.
    boto3.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName="threetier-app-asg", MixedInstancesPolicy={
            "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateName": "threetier-app-lt"},
                               "Overrides": [{"InstanceType": "t3.micro"}, {"InstanceType": "m5.large"}]},
            "InstancesDistribution": {"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 100,
                                      "SpotAllocationStrategy": "lowest-price"}}, CapacityRebalance=False)
    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    drift = [line for p in json.loads(status.stdout)["parts"] for line in p["drift"]]
    assert any("threetier-app-asg: Spot: on-demand base 0, 100 % above it, lowest-price, t3.micro, m5.large, "
               "capacity rebalance off, config says" in line for line in drift), drift
    up(built)
    assert spot_of("threetier-app-asg") == wanted("app", APP_SPOT)
    status_clean(built)

    # Spot off again: the groups back on the launch template alone.
    write_config(built)
    up(built)
    assert spot_of("threetier-app-asg") == (None, False)
    assert spot_of("threetier-web-asg") == (None, False)
    status_clean(built)


def test_a_spot_tier_keeps_its_policy_through_pause_and_resume(built: Path) -> None:
    write_config(built, **SPOT)
    up(built)
    assert cli("pause", cwd=built).code == 0
    assert group("threetier-app-asg")["MaxSize"] == 0
    assert spot_of("threetier-app-asg") == wanted("app", APP_SPOT)  # a pause changes sizes only
    status_clean(built)
    assert cli("resume", cwd=built).code == 0
    assert group("threetier-app-asg")["MinSize"] == 2
    assert spot_of("threetier-app-asg") == wanted("app", APP_SPOT)
    assert spot_of("threetier-web-asg") == wanted("web", WEB_SPOT)
    status_clean(built)


@pytest.fixture
def no_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from threetier.blocks import colors
    monkeypatch.setattr(colors, "run_watch", lambda ctx, **_: SimpleNamespace(problem=None, finished_early=False))


def test_a_blue_green_deploy_of_a_spot_tier_gives_the_green_group_the_same_policy(built: Path, no_watch: None) -> None:
    write_config(built, **SPOT, deploy={"watch_minutes": 0})
    up(built)
    # A new instance type is a new launch template: a deploy on the other color.
    write_config(built, app={"spot": APP_SPOT, "instance_type": "t3.small"}, web={"spot": WEB_SPOT},
                 deploy={"watch_minutes": 0})
    result = cli("deploy", "app", "--json", cwd=built)
    assert result.code == 0, result.stderr
    assert names("app") == only("green", "app")
    assert spot_of("threetier-app-asg-g") == wanted("app", APP_SPOT, "-g")
    status_clean(built)
