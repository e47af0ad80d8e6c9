"""`threetier deploy` and `threetier rollback` (issue 25): the commands around the blue/green switch
(threetier.blocks.colors), from reference stacks; a deploy = a tier's code fingerprint changed."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import cli, moto, write_config
from test_bluegreen import forwards, names, only, part, status_clean, tier_images, watched
from threetier.blocks import baking, colors, watch

NO_WATCH = {"watch_minutes": 0}


@pytest.mark.parametrize("args", [("deploy", "--canary", "0"), ("deploy", "app", "--canary", "100"),
                                  ("deploy", "--finish", "--no-wait"), ("deploy", "app", "--finish", "--canary", "5"),
                                  ("deploy", "db"), ("rollback",)])
def test_usage_errors_exit_2_before_any_aws_call(args: tuple[str, ...], calls: list[str], tmp_path: Path) -> None:
    result = cli(*args, cwd=tmp_path)
    assert result.code == 2, (result.stdout, result.stderr)
    assert calls == []


def test_deploy_and_rollback_of_a_stack_not_built_are_refused(tmp_path: Path) -> None:
    with moto():
        for args in (("deploy", "app"), ("rollback", "web")):
            result = cli(*args, cwd=tmp_path)
            assert result.code == 2, result.stderr
            assert "it needs Part 1 (storage) done first" in result.stderr and "`threetier up`" in result.stderr
        assert cli("deploy", "--finish", cwd=tmp_path).code == 2  # no deploy to finish


def started(directory: Path) -> dict[str, str]:
    """When each Part last ran, as the state file says."""
    state = json.loads((directory / ".threetier" / "threetier.json").read_text())
    return {number: record.get("started_at") for number, record in state["parts"].items()}


def your_app(directory: Path, version: str, **config: Any) -> None:
    """config.yaml's app.source: a small Python app of this version (a new version = new code)."""
    source = directory / "your-app"
    source.mkdir(exist_ok=True)
    (source / "server.py").write_text(f"VERSION = {version!r}\n")
    write_config(directory, app={"source": "your-app", "runtime": "python3.12", "start": "python3 server.py"},
                 **{"deploy": NO_WATCH, **config})


def test_deploy_app_runs_only_parts_1_4_5_and_switches_colors(built: Path, calls: list[str]) -> None:
    your_app(built, "2")
    before, images = started(built), set(tier_images())
    result = cli("deploy", "app", "--json", cwd=built)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["command"] == "deploy app"
    assert report["tiers"] == {"app": {"color": "green", "switched": True, "finished": True}}
    assert names("app") == only("green", "app") and names("web") == only("blue", "web")
    assert forwards("threetier-int-alb") == {80: {"threetier-app-tg-g": 1}}
    assert len(set(tier_images()) - images) == 1  # Part 4 baked the new code
    after = started(built)
    assert {number for number in after if after[number] != before[number]} == {"4", "5"}
    assert "PutObject" in calls and "DeleteObjects" in calls  # Part 1's upload: your code for the demo's
    assert not {"CreateBucket", "CreateRole", "CreateDBCluster", "CreateLoadBalancer"} & set(calls)
    assert part(built, 5)["color"] == "green" and part(built, 7)["color"] == "blue"
    status_clean(built)  # the stack as `up` would leave it: nothing for `up` to do


def deploy_record(directory: Path) -> Any:
    return part(directory, 5).get("deploy")


def test_deploy_no_wait_returns_after_the_switch_and_up_finishes_it(
        built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    your_app(built, "2", deploy={"watch_minutes": 5})
    watch_run = watched(None)
    monkeypatch.setattr(colors, "run_watch", watch_run)
    result = cli("deploy", "app", "--no-wait", cwd=built)
    assert result.code == 0, result.stderr
    assert "green takes the traffic" in result.stdout and "--finish" in result.stdout
    assert forwards("threetier-int-alb") == {80: {"threetier-app-tg": 0, "threetier-app-tg-g": 100}}
    assert names("app")["asg"] == ["threetier-app-asg", "threetier-app-asg-g"]  # blue still there
    assert deploy_record(built)["phase"] == "watching" and watch_run.seen == []  # type: ignore[attr-defined]

    up = cli("up", "--yes", cwd=built)
    assert up.code == 0, up.stderr
    assert len(watch_run.seen) == 1  # type: ignore[attr-defined]  # the rest of the watch, then blue goes
    assert names("app") == only("green", "app") and deploy_record(built) is None
    status_clean(built)


def test_deploy_finish_asks_the_watching_run_or_finishes_a_no_wait_deploy(built: Path) -> None:
    from threetier import lock
    from threetier.aws import Aws
    your_app(built, "2", deploy={"watch_minutes": 30})
    assert cli("deploy", "app", "--no-wait", cwd=built).code == 0
    autoscaling = boto3.client("autoscaling")

    def finish_tagged() -> bool:
        [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["threetier-app-asg-g"])[
            "AutoScalingGroups"]
        return watch.finish_requested(group)

    # Another run holds the lock (it is watching): --finish only asks it, by the tag its watch reads.
    aws = Aws("us-east-1", emulator=True)
    holder = lock.acquire(aws, "threetier", "deploy")
    asked = cli("deploy", "--finish", cwd=built)
    assert asked.code == 0, asked.stderr
    assert "asked the watch of app (green) to end" in asked.stdout
    assert finish_tagged() and names("app")["asg"] == ["threetier-app-asg", "threetier-app-asg-g"]
    for args in (("deploy", "app"), ("rollback", "app")):  # the stack's lock: refused, as `up` would be
        refused = cli(*args, cwd=built)
        assert refused.code == 2 and "lock" in refused.stderr, refused.stderr
    lock.release(aws, "threetier", holder)

    # No run holds it: --finish takes the lock and finishes (the watch, 30 min, ends at its first look).
    finished = cli("deploy", "app", "--finish", cwd=built)
    assert finished.code == 0, finished.stderr
    assert names("app") == only("green", "app") and deploy_record(built) is None
    assert forwards("threetier-int-alb") == {80: {"threetier-app-tg-g": 1}}
    # Nothing left to finish: refused.
    assert cli("deploy", "--finish", cwd=built).code == 2


def test_rollback_with_no_previous_image_exits_2(built: Path) -> None:
    result = cli("rollback", "app", cwd=built)
    assert result.code == 2, result.stderr
    assert "no previous image of app to roll back to" in result.stderr
    assert names("app") == only("blue", "app")


def test_rollback_goes_back_tags_rejected_up_keeps_it_and_deploy_tries_again(built: Path) -> None:
    first = part(built, 5)["image"]
    your_app(built, "2")
    assert cli("deploy", "app", cwd=built).code == 0
    second = part(built, 5)["image"]
    assert second != first

    result = cli("rollback", "app", "--json", cwd=built)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["tiers"]["app"]["color"] == "blue"
    assert names("app") == only("blue", "app") and forwards("threetier-int-alb") == {80: {"threetier-app-tg": 1}}
    assert part(built, 5)["image"] == first
    images = tier_images()
    assert baking.REJECTED_TAG in images[second] and baking.REJECTED_TAG not in images[first]

    # `up` leaves the rejected image out, and plan says why.
    plan = json.loads(cli("plan", "--json", cwd=built).stdout)["parts"][4]
    assert any("rolled back at" in note and "`threetier deploy app`" in note for note in plan["notes"]), plan
    up = cli("up", "--yes", cwd=built)
    assert up.code == 0, up.stderr
    assert part(built, 5)["image"] == first and names("app") == only("blue", "app")

    # `deploy` deploys it again, and clears the tag.
    again = cli("deploy", "app", cwd=built)
    assert again.code == 0, again.stderr
    assert part(built, 5)["image"] == second and names("app") == only("green", "app")
    assert baking.REJECTED_TAG not in tier_images()[second]
    status_clean(built)


def test_status_shows_a_deploy_under_way_and_pause_is_refused_then(
        built: Path, monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    first = part(built, 5)["image"]
    your_app(built, "2", deploy={"watch_minutes": 5})
    monkeypatch.setattr(colors, "run_watch", watched(None))
    assert cli("deploy", "app", "--no-wait", cwd=built).code == 0
    status = cli("status", "--json", cwd=built)
    app = json.loads(status.stdout)["tiers"]["app"]
    assert set(app) == {"color", "image", "fingerprint", "deployed_at", "rollback_image", "deploy"}
    assert app["color"] == "green" and app["image"] == part(built, 5)["image"] != first
    assert app["rollback_image"] == first and app["deployed_at"] and app["fingerprint"]
    assert app["deploy"]["to"] == "green" and app["deploy"]["phase"] == "watching"
    assert "deploy" not in json.loads(status.stdout)["tiers"]["web"]

    calls.clear()
    paused = cli("pause", cwd=built)
    assert paused.code == 2, paused.stderr
    assert "two colors" in paused.stderr and "deploy app --finish" in paused.stderr
    changed = {call for call in calls if not call.startswith(("Describe", "Get", "List", "Head"))}
    assert changed == {"PutParameter", "DeleteParameter"}  # the stack's lock, taken and released: nothing else


def test_a_canary_share_is_watched_before_all_the_traffic_moves(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    your_app(built, "2", deploy={"watch_minutes": 5})
    seen: list[dict[int, dict[str, int]]] = []

    def run_watch(ctx: Any, **kwargs: Any) -> Any:
        seen.append(forwards("threetier-int-alb"))  # where the traffic is while it watches
        return watch.Watched(problem=None, finished_early=False)
    monkeypatch.setattr(colors, "run_watch", run_watch)
    result = cli("deploy", "app", "--canary", "10", cwd=built)
    assert result.code == 0, result.stderr
    assert seen == [{80: {"threetier-app-tg": 90, "threetier-app-tg-g": 10}},
                    {80: {"threetier-app-tg": 0, "threetier-app-tg-g": 100}}]
    assert names("app") == only("green", "app")


def test_deploy_all_deploys_both_tiers_and_a_problem_in_the_watch_fails_it(
        built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = built / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>yours</title>\n")
    your_app(built, "2", web={"source": "site"})
    result = cli("deploy", "--json", cwd=built)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["tiers"] == {tier: {"color": "green", "switched": True, "finished": True}
                                                  for tier in ("app", "web")}
    assert names("app") == only("green", "app") and names("web") == only("green", "web")
    assert forwards("threetier-ext-alb") == {80: {"threetier-web-tg-g": 1}}

    your_app(built, "3", web={"source": "site"}, deploy={"watch_minutes": 5})
    monkeypatch.setattr(colors, "run_watch", watched("alarm threetier-app-5xx-rate"))
    failed = cli("deploy", "app", cwd=built)
    assert failed.code == 1
    assert "deploy app rolled back to green: alarm threetier-app-5xx-rate" in failed.stderr
    assert names("app") == only("green", "app")
    assert [image for image, tags in tier_images().items() if baking.REJECTED_TAG in tags]


def test_rollback_web_leaves_its_alarms_and_the_dashboard_on_the_live_color(built: Path) -> None:
    site = built / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>yours</title>\n")
    write_config(built, web={"source": "site"}, deploy=NO_WATCH)
    assert cli("deploy", "web", "--no-wait", cwd=built).code == 0
    assert cli("deploy", "web", "--finish", cwd=built).code == 0
    assert names("web") == only("green", "web")
    status_clean(built)
    result = cli("rollback", "web", cwd=built)
    assert result.code == 0, result.stderr
    assert names("web") == only("blue", "web") and forwards("threetier-ext-alb") == {80: {"threetier-web-tg": 1}}
    status_clean(built)
