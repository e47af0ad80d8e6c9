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
    assert cli("plan", "--detailed-exitcode", cwd=built).code == 2
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


# -- the preflight --------------------------------------------------------------------------------
def test_the_preflight_names_a_spot_type_not_offered_in_both_zones_and_counts_only_on_demand_vcpus() -> None:
    from test_preflight import judged, quota
    raw = {"app": {"spot": {**APP_SPOT, "instance_types": ["t3.micro", "m7i.large"]}}}
    offerings = [{"InstanceType": "t3.micro", "Location": az} for az in ("us-east-1a", "us-east-1b")]
    offerings.append({"InstanceType": "m7i.large", "Location": "us-east-1a"})
    [shortfall] = judged({"offerings": offerings}, raw)[1].shortfalls
    assert shortfall.key == "app.spot.instance_types[1]"
    assert "m7i.large is not offered in us-east-1b (offered in: us-east-1a)" in shortfall.line()

    # On-demand vCPUs: each tier's builder (t3.micro, 2) and web at max 4 x 2, as without Spot: 12; the
    # app's Spot group at max 4 with a base of 1 and 0 % above it: 1 on-demand, at the largest of its
    # types (m5.large, 2 vCPUs; t3.micro 2): 2. 14 in all, against 20 without Spot.
    sizes = [{"InstanceType": t, "VCpuInfo": {"DefaultVCpus": 2}} for t in ("t3.micro", "m5.large")]
    raw = {"app": {"spot": {**APP_SPOT, "instance_types": ["t3.micro", "m5.large"]}}}
    [shortfall] = judged({"quota L-1216C47A": quota(13), "instances": []}, raw,
                         follow_ups={"instance_types": sizes})[1].shortfalls
    assert "the stack needs 14 vCPUs" in shortfall.line(), shortfall.line()
    assert judged({"quota L-1216C47A": quota(14), "instances": []}, raw,
                  follow_ups={"instance_types": sizes})[1].shortfalls == []
    raw["app"]["spot"]["on_demand_percent"] = 50  # 1 + half of the other 3, rounded up: 3 on-demand
    [shortfall] = judged({"quota L-1216C47A": quota(17), "instances": []}, raw,
                         follow_ups={"instance_types": sizes})[1].shortfalls
    assert "the stack needs 18 vCPUs" in shortfall.line(), shortfall.line()


@pytest.mark.parametrize(("second", "said"), [
    ("zz9.large", "zz9.large is not offered in"),
    ("t4g.micro", "t4g.micro runs arm64, and the app image is baked for app.instance_type t3.micro (x86_64)"),
])
def test_up_refuses_a_spot_type_not_offered_or_of_another_architecture_before_any_change(
        built: Path, second: str, said: str) -> None:
    write_config(built, app={"spot": {**APP_SPOT, "instance_types": ["t3.micro", second]}})
    refused = cli("up", cwd=built)
    assert refused.code == 2
    assert f"blocked: app.spot.instance_types[1]: {said}" in refused.stderr, refused.stderr
    assert spot_of("threetier-app-asg") == (None, False)


@pytest.mark.parametrize(("spot", "key"), [
    ({**APP_SPOT, "on_demand_percent": 101}, "app.spot.on_demand_percent"),
    ({**APP_SPOT, "on_demand_base": -1}, "app.spot.on_demand_base"),
    ({**APP_SPOT, "instance_types": ["t3.micro"]}, "app.spot.instance_types"),
    ({**APP_SPOT, "instance_types": [f"t3.size{n}" for n in range(21)]}, "app.spot.instance_types"),
    ({**APP_SPOT, "instance_types": ["t3.micro", "T3 micro"]}, "app.spot.instance_types[1]"),
    ({**APP_SPOT, "instance_types": ["t3.micro", "t3.micro"]}, "app.spot.instance_types[1]"),
    ({**APP_SPOT, "on_demand": 1}, "app.spot.on_demand"),
    ("yes", "app.spot"),
])
def test_bad_spot_values_are_refused_naming_the_key(tmp_path: Path, spot: Any, key: str) -> None:
    write_config(tmp_path, app={"spot": spot})
    refused = cli("plan", cwd=tmp_path)  # before any AWS call: no moto here
    assert refused.code == 2
    assert f"{key}: " in refused.stderr, refused.stderr


# -- cost -----------------------------------------------------------------------------------------
def test_cost_json_prices_spot_as_a_dated_estimate_with_its_saving(tmp_path: Path) -> None:
    from threetier.pricing import EC2_INSTANCE_HOUR, SPOT_PRICES_DATE, SPOT_SAVING
    write_config(tmp_path, **SPOT)  # no AWS call: no moto here
    result = cli("cost", "--json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    priced = json.loads(result.stdout)
    lines = {line["item"]: line for line in priced["lines"]}
    # app: desired 2, base 1, 0 % above it: 1 on-demand t3.micro, 1 Spot at the mean of its types.
    assert lines["EC2 t3.micro x1 (app tier, on-demand)"]["unit_usd"] == EC2_INSTANCE_HOUR["t3.micro"][0]
    spot = lines[f"EC2 Spot x1 (app tier: t3.micro, t3a.micro; assumed prices of {SPOT_PRICES_DATE}, an estimate)"]
    spot_prices = [EC2_INSTANCE_HOUR[t][0] * (1 - SPOT_SAVING[t]) for t in APP_SPOT["instance_types"]]
    assert spot["unit_usd"] == pytest.approx(sum(spot_prices) / 2) and spot["quantity"] == 730
    # web: desired 2, base 0, 50 % above it: 1 on-demand t3.small, 1 Spot.
    assert "EC2 t3.small x1 (web tier, on-demand)" in lines
    assert not [item for item in lines if item.startswith("EC2 t3.micro x2")]
    on_demand = sum(EC2_INSTANCE_HOUR[t][0] for t in APP_SPOT["instance_types"]) / 2
    savings = {saving["setting"]: saving for saving in priced["savings"]}
    assert savings["app.spot"] == {"setting": "app.spot", "estimate": True,
                                   "monthly_usd": round(730 * (on_demand - sum(spot_prices) / 2), 2)}
    assert savings["web.spot"]["monthly_usd"] > 0
    assert any(note.startswith("app.spot: Spot is an estimate") for note in priced["notes"])
    assert priced["complete"] is True
    text = " ".join(cli("cost", cwd=tmp_path).stdout.split())
    assert "app.spot: Spot is an estimate" in text and "app.spot: of asg.desired 2, 1 on-demand" in text

    # A type the table has no Spot assumption for: its line is shown unpriced, the total says so.
    write_config(tmp_path, app={"spot": {**APP_SPOT, "instance_types": ["t3.micro", "r7i.large"]}})
    priced = json.loads(cli("cost", "--json", cwd=tmp_path).stdout)
    assert priced["complete"] is False and any("EC2 Spot x1 (app tier" in item for item in priced["unpriced"])
    assert {s["setting"]: s["monthly_usd"] for s in priced["savings"]}["app.spot"] is None
