"""The sandbox, drift in status, plan, convergence, and the terminal experience."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from helpers import cli, moto, write_config
from ptyrun import Terminal
from threetier.aws import is_mutating, tag_value
from threetier.blocks import colors

pytestmark = pytest.mark.slow


def threetier(cwd: Path, *args: str, check_code: int | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("threetier")
    assert exe, "the threetier console script is not installed (pip install -e .)"
    result = subprocess.run([exe, *args], cwd=cwd, env={**os.environ, "NO_COLOR": "1"},
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if check_code is not None:
        assert result.returncode == check_code, result.stderr
    return result


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not a server: look at its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def sandbox_home() -> Path:
    """The user's own sandbox directory (conftest points XDG_STATE_HOME at one per test)."""
    return Path(os.environ["XDG_STATE_HOME"]) / "threetier"


@pytest.fixture
def workdir(tmp_path: Path):
    """A working directory whose sandbox is always stopped afterwards: no stray server."""
    yield tmp_path
    record = sandbox_home() / "sandbox.json"
    if record.exists():
        pid = json.loads(record.read_text())["pid"]
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"a sandbox server (pid {pid}) was left running")


def test_sandbox_lifecycle(workdir: Path) -> None:
    status = threetier(workdir, "sandbox", "status")
    assert status.returncode == 3 and "not running" in status.stdout
    threetier(workdir, "sandbox", "start", check_code=0)
    record = json.loads((sandbox_home() / "sandbox.json").read_text())
    assert not (workdir / ".threetier").exists()  # the user's, not the working directory's
    assert pid_alive(record["pid"])
    again = threetier(workdir, "sandbox", "start", check_code=0)
    assert "already running" in again.stderr and str(record["pid"]) in again.stderr
    described = json.loads(threetier(workdir, "sandbox", "status", "--json", check_code=0).stdout)
    assert described == {"running": True, "url": f"http://127.0.0.1:{record['port']}", "pid": record["pid"],
                         "started_at": record["started_at"]}
    threetier(workdir, "sandbox", "stop", check_code=0)
    assert not pid_alive(record["pid"])
    assert not (sandbox_home() / "sandbox.json").exists()
    assert threetier(workdir, "sandbox", "status").returncode == 3
    assert "no sandbox was running" in threetier(workdir, "sandbox", "stop", check_code=0).stderr


def test_sandbox_commands_need_a_running_sandbox(workdir: Path) -> None:
    result = threetier(workdir, "status", "--sandbox")
    assert result.returncode == 2 and "the sandbox is not running" in result.stderr


def test_one_sandbox_up_status_pause_down_each_a_process_of_its_own_on_a_terminal_or_not(workdir: Path) -> None:
    """The sandbox as people use it, each command a process of its own: `up --sandbox` starts it and
    builds, on a terminal (progress); it is one per user, found from any directory; `down` on a
    terminal asks, and no keeps all; paused and torn down. One sandbox and one build for all of it:
    each start costs moto's import, each stop its exit, each build tens of seconds."""
    there = workdir / "there"  # another directory of the same user
    there.mkdir()
    env_profile = {"AWS_PROFILE": "does-not-exist"}  # --sandbox wins over the environment's AWS settings
    os.environ.update(env_profile)
    try:
        exe = shutil.which("threetier")
        on_terminal = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        up = Terminal([exe, "up", "--sandbox"], cwd=str(workdir), env=on_terminal)
        up.expect("Part 7 (web-tier)", timeout=120)
        assert up.wait() == 0, up.text
        screen = up.text
        assert "sandbox started on http://127.0.0.1:" in screen
        assert "\x1b[" in screen  # colours and cursor control on a terminal
        plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
        # A spinner and the elapsed time (any: a loaded machine takes longer than 10 s for Part 2).
        assert re.search(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Part 2 \(network\) network and security +\d+:\d\d", plain)
        assert "✓ Part 1 (storage)" in plain and "summary" in plain
        # Not a terminal (and NO_COLOR): plain text, the result on stdout (an `up` with nothing to do).
        up = threetier(workdir, "up", "--sandbox", check_code=0)
        assert "URL: http://threetier-ext-alb" in up.stdout and "not checked" in up.stdout  # the result: stdout
        assert "URL:" not in up.stderr and "summary" in up.stdout
        assert "\x1b[" not in up.stderr
        status = threetier(workdir, "--sandbox", "status", "--json", check_code=0)
        report = json.loads(status.stdout)  # stdout is pure JSON
        assert [p["status"] for p in report["parts"]] == ["done"] * 7
        assert report["outputs"]["url"].startswith("http://threetier-ext-alb")
        assert report["account"] == "123456789012"
        assert (sandbox_home() / "sandbox-stacks" / "threetier.json").exists()  # apart from real AWS state
        assert not (workdir / ".threetier" / "threetier.json").exists()
        # One sandbox per user, found from any directory (item 5).
        started = json.loads(threetier(workdir, "sandbox", "status", "--json").stdout)
        seen = threetier(there, "sandbox", "status", "--json")
        assert seen.returncode == 0 and json.loads(seen.stdout) == started  # the same one, from elsewhere
        again = threetier(there, "sandbox", "start")
        assert again.returncode == 0 and f"already running on {started['url']}" in again.stderr
        os.environ.pop("AWS_PROFILE", None)
        refused_on_a_terminal(workdir)
        # The sandbox needs no config file to pause (it bills nothing), and says no AWS bill or restart.
        assert not (workdir / "config.yaml").exists()
        paused = threetier(workdir, "pause", "--sandbox", check_code=0)
        assert "a month instead of" not in paused.stdout and "AWS starts the stopped Aurora" not in paused.stdout
        accepted_on_a_terminal(workdir)  # from paused
        after = json.loads(threetier(workdir, "status", "--sandbox", "--json", check_code=3).stdout)
        assert [p["status"] for p in after["parts"]] == ["pending"] * 7
        status = threetier(there, "status", "--sandbox")
        assert status.returncode == 3 and "is not deployed" in status.stdout  # it talked to the sandbox
        assert not (workdir / ".threetier").exists() and not (there / ".threetier").exists()
    finally:
        os.environ.pop("AWS_PROFILE", None)
        stopped = threetier(there, "sandbox", "stop")
    assert stopped.returncode == 0 and f"pid {started['pid']}" in stopped.stderr
    assert threetier(workdir, "sandbox", "status").returncode == 3


def refused_on_a_terminal(workdir: Path) -> None:
    """`down` on a terminal asks, listing everything by Part, what bills first; no keeps all."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    refuse = Terminal([shutil.which("threetier") or "threetier", "down", "--sandbox"], cwd=str(workdir), env=env)
    refuse.expect("will be deleted")
    refuse.expect("Delete stack threetier? [y/N]")
    refuse.send("n\r")
    assert refuse.wait() == 2
    assert "not confirmed; nothing was deleted" in refuse.text
    # Everything it asked about, by Part, what bills first; nothing cut (issue 11, item 3).
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", refuse.text)
    assert "  Part 7 (web-tier):" in shown and "  Part 1 (storage):" in shown and "more" not in shown
    assert "$ NAT gateway threetier-nat-az1 (nat-" in shown and "($: bills while it exists)" in shown
    assert json.loads(threetier(workdir, "status", "--sandbox", "--json", check_code=0).stdout)["parts"][0]["status"] == "done"


def accepted_on_a_terminal(workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    accept = Terminal([shutil.which("threetier") or "threetier", "down", "--sandbox", "--skip-final-snapshot"],
                      cwd=str(workdir), env=env)
    accept.expect("Delete stack threetier? [y/N]")
    accept.send("y\r")
    assert accept.wait() == 0, accept.text
    assert "is gone" in accept.text


# -- drift -----------------------------------------------------------------------
@pytest.fixture
def built(built: Path, monkeypatch: pytest.MonkeyPatch):
    """conftest's: the default stack restored, with its resources by Part from the state file. A
    deploy's watch (threetier/blocks/watch.py, tested on its own) sees nothing wrong here."""
    monkeypatch.setattr(colors, "run_watch", lambda ctx, **_: SimpleNamespace(problem=None, finished_early=False))
    state = json.loads((built / ".threetier" / "threetier.json").read_text())
    return built, {int(k): v["resources"] for k, v in state["parts"].items()}


def _drift_missing_security_group(r):
    ec2 = boto3.client("ec2")
    group = r[2]["security_groups"]["db-sg"]
    ec2.delete_security_group(GroupId=group)
    return 2, "security group threetier-db-sg"


def _drift_security_group_rule(r):
    boto3.client("ec2").authorize_security_group_ingress(GroupId=r[2]["security_groups"]["web-sg"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return 2, "threetier-web-sg: unexpected tcp 22-22 from 0.0.0.0/0"


def _drift_route_target(r):
    boto3.client("ec2").replace_route(RouteTableId=r[2]["route_tables"]["private-app-rt-az2"],
                                      DestinationCidrBlock="0.0.0.0/0", NatGatewayId=r[2]["nat_gateways"]["az1"])
    return 2, f"route table threetier-private-app-rt-az2: 0.0.0.0/0 goes to {r[2]['nat_gateways']['az1']}"


def _drift_asg_size(r):
    boto3.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName="threetier-web-asg", MinSize=1,
                                                          DesiredCapacity=1, MaxSize=3)
    # With scaling policies (the default) the desired capacity is theirs: min and max are drift.
    return 7, "Auto Scaling group threetier-web-asg: min/max (1, 3), config says (2, 4)"


def _drift_launch_template_ami(r):
    ec2 = boto3.client("ec2")
    other = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    version = ec2.create_launch_template_version(LaunchTemplateName="threetier-app-lt", SourceVersion="$Default",
                                                 LaunchTemplateData={"ImageId": other})["LaunchTemplateVersion"]
    ec2.modify_launch_template(LaunchTemplateName="threetier-app-lt", DefaultVersion=str(version["VersionNumber"]))
    return 5, f"deploy app: new image {r[4]['ami']}"


@pytest.mark.parametrize("damage", [_drift_missing_security_group, _drift_security_group_rule, _drift_route_target,
                                    _drift_asg_size, _drift_launch_template_ami],
                         ids=lambda f: f.__name__.removeprefix("_drift_"))
def test_status_reports_drift_then_up_repairs_it(built, damage) -> None:
    workdir, resources = built
    part, expected = damage(resources)
    status = cli("status", "--json", cwd=workdir)
    assert status.code == 3
    report = json.loads(status.stdout)
    entry = report["parts"][part - 1]
    assert entry["status"] == "drifted"
    assert any(expected in line for line in entry["drift"]), entry["drift"]
    assert all(p["status"] == "done" for p in report["parts"] if p["part"] != part)
    human = cli("status", cwd=workdir)
    assert human.code == 3 and "drifted" in human.stdout and "drifted" not in human.stderr  # the result: stdout
    assert "url: http://" in human.stdout  # `threetier status | grep url` finds it
    assert cli("up", "--yes", cwd=workdir).code == 0
    again = cli("status", "--json", cwd=workdir)
    assert again.code == 0, [(p["part"], p["drift"]) for p in json.loads(again.stdout)["parts"]]


def test_status_shows_target_health_database_and_url(built) -> None:
    workdir, _ = built
    report = json.loads(cli("status", "--json", cwd=workdir).stdout)
    parts = {p["part"]: p for p in report["parts"]}
    assert parts[5]["resources"]["healthy_targets"] == "2/2" and parts[7]["resources"]["healthy_targets"] == "2/2"
    assert parts[3]["resources"]["db_status"] == "available"
    assert report["outputs"]["url"] == parts[7]["resources"]["url"]
    assert report["outputs"]["db_writer_endpoint"].startswith("threetier-aurora.cluster-")
    assert report["outputs"]["internal_alb_dns"].startswith("threetier-int-alb")


# -- plan ------------------------------------------------------------------------
def test_plan_on_nothing_lists_everything_as_create_with_zero_mutating_calls(tmp_path: Path, calls) -> None:
    with moto():
        result = cli("plan", "--json", cwd=tmp_path)
        assert result.code == 0, result.stderr  # it planned
        detailed = cli("plan", "--detailed-exitcode", "--json", cwd=tmp_path)
        assert detailed.code == 2 and json.loads(detailed.stdout) == json.loads(result.stdout)  # Terraform's "changes"
        assert calls and [op for op in calls if is_mutating(op)] == []
        plan = json.loads(result.stdout)
        assert all(p["create"] for p in plan["parts"]) and all(not p["keep"] for p in plan["parts"])
        assert boto3.client("ec2").describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])["Vpcs"] == []


@pytest.mark.parametrize(("args", "config"), [(["--bogus"], {}), ([], {"network": {"nat_gateways": "three"}})],
                         ids=["bad usage", "bad config"])
def test_plan_detailed_exitcode_says_1_for_bad_usage_or_config_never_2(tmp_path: Path, args, config) -> None:
    """Terraform's 2 means "changes": a CI job must not read a refusal as that."""
    write_config(tmp_path, **config)
    plain = cli("plan", *args, cwd=tmp_path)  # refused before any AWS call: no moto needed
    detailed = cli("plan", "--detailed-exitcode", *args, cwd=tmp_path)
    assert (plain.code, detailed.code) == (2, 1)
    assert detailed.stderr == plain.stderr != "" and detailed.stdout == ""


def test_plan_shows_what_up_would_change(built, calls) -> None:
    workdir, _resources = built
    calls.clear()
    # min, not desired: with scaling policies (the default since issue 12) desired is theirs.
    write_config(workdir, app={"asg": {"min": 3, "desired": 3, "max": 4}}, access={"admin_cidr": "203.0.113.7/32"})
    plan = json.loads(cli("plan", "--json", cwd=workdir).stdout)
    assert [op for op in calls if is_mutating(op)] == []
    parts = {p["part"]: p for p in plan["parts"]}
    assert any("threetier-app-asg" in c and "(3, 4)" in c for c in parts[5]["change"])
    assert any("missing tcp 80 from 203.0.113.7/32" in c for c in parts[2]["change"])
    assert not parts[1]["change"] and not parts[1]["create"] and parts[1]["keep"]
    human = cli("plan", cwd=workdir)
    assert human.code == 0 and "up would create 0, change 3 and delete 0" in human.stdout and human.stderr == ""
    assert cli("plan", "--detailed-exitcode", cwd=workdir).code == 2  # changes
    write_config(workdir)
    assert cli("plan", "--detailed-exitcode", cwd=workdir).code == 0  # nothing to do


# -- convergence -----------------------------------------------------------------
def test_convergence_of_asg_size_and_instance_type(built) -> None:
    workdir, resources = built
    # With scaling policies (the default since issue 12) `up` sets min and max; AWS raises desired to the new min.
    write_config(workdir, app={"instance_type": "t3.small", "asg": {"min": 3, "desired": 3, "max": 5}})
    result = cli("up", "--yes", cwd=workdir)
    assert result.code == 0, result.stderr
    assert "app tier: deploying" in result.stderr and "on the green color beside blue" in result.stderr
    groups = boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    asg = next(g for g in groups if g["AutoScalingGroupName"] == "threetier-app-asg-g")
    assert "threetier-app-asg" not in {g["AutoScalingGroupName"] for g in groups}  # blue is gone
    assert (asg["MinSize"], asg["DesiredCapacity"], asg["MaxSize"]) == (3, 3, 5)
    ec2 = boto3.client("ec2")
    default = ec2.describe_launch_template_versions(LaunchTemplateName="threetier-app-lt-g", Versions=["$Default"])["LaunchTemplateVersions"][0]
    assert default["VersionNumber"] == 1 and default["LaunchTemplateData"]["InstanceType"] == "t3.small"
    assert default["LaunchTemplateData"]["ImageId"] == resources[4]["ami"]  # the same AMI: no rebake for a type
    again = cli("status", "--json", cwd=workdir)
    assert again.code == 0, [(p["part"], p["drift"]) for p in json.loads(again.stdout)["parts"]]
    again = cli("up", "--yes", cwd=workdir)
    assert "0 mutating AWS calls" in again.stdout


def test_changing_the_vpc_cidr_is_refused_with_exit_2(built) -> None:
    workdir, _ = built
    write_config(workdir, network={"vpc_cidr": "10.9.0.0/16", "subnets": {
        "web": ["10.9.0.0/24", "10.9.1.0/24"], "app": ["10.9.2.0/24", "10.9.3.0/24"], "db": ["10.9.4.0/24", "10.9.5.0/24"]}})
    result = cli("up", "--yes", cwd=workdir)
    assert result.code == 2
    assert "error: network.vpc_cidr: the stack's VPC" in result.stderr
    assert "cannot change in place: `threetier down`, then `up`" in result.stderr


def test_changing_the_azs_is_refused(built) -> None:
    workdir, _resources = built
    azs = sorted(z["ZoneName"] for z in boto3.client("ec2").describe_availability_zones()["AvailabilityZones"])
    write_config(workdir, network={"azs": [azs[0], azs[2]]})
    result = cli("up", "--yes", cwd=workdir)
    assert result.code == 2 and "network.subnets." in result.stderr and "cannot move or resize in place" in result.stderr


# -- the terminal ------------------------------------------------------------------
def test_nat_gateway_mode_converges_both_ways(built) -> None:
    workdir, resources = built
    ec2 = boto3.client("ec2")

    def live():
        return [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] in ("pending", "available")]

    write_config(workdir, network={"nat_gateways": "single"})
    plan = json.loads(cli("plan", "--json", cwd=workdir).stdout)
    assert [line.split(":")[0] for line in plan["parts"][1]["delete"]] == [
        "NAT gateway threetier-nat-az2", "Elastic IP threetier-nat-eip-az2"]  # and nothing else: the route is a change
    assert cli("up", "--yes", cwd=workdir).code == 0
    nats = live()
    assert [tag_value(n, "Name") for n in nats] == ["threetier-nat-az1"]
    assert [tag_value(a, "Name") for a in ec2.describe_addresses()["Addresses"]] == ["threetier-nat-eip-az1"]
    for table in ("private-app-rt-az1", "private-app-rt-az2"):
        routes = ec2.describe_route_tables(RouteTableIds=[resources[2]["route_tables"][table]])["RouteTables"][0]["Routes"]
        assert any(r.get("NatGatewayId") == nats[0]["NatGatewayId"] for r in routes)
    again = cli("status", "--json", cwd=workdir)
    assert again.code == 0, [(p["part"], p["drift"]) for p in json.loads(again.stdout)["parts"]]
    write_config(workdir, network={"nat_gateways": "per_az"})
    assert cli("up", "--yes", cwd=workdir).code == 0
    assert sorted(tag_value(n, "Name") for n in live()) == ["threetier-nat-az1", "threetier-nat-az2"]
    again = cli("status", "--json", cwd=workdir)
    assert again.code == 0, [(p["part"], p["drift"]) for p in json.loads(again.stdout)["parts"]]


def test_new_app_code_is_rebaked_and_deployed_and_the_old_image_kept_to_roll_back_to(built, monkeypatch) -> None:
    workdir, resources = built
    ec2 = boto3.client("ec2")
    old_ami = resources[4]["ami"]
    old_snapshots = [m["Ebs"]["SnapshotId"] for m in ec2.describe_images(ImageIds=[old_ami])["Images"][0]["BlockDeviceMappings"]
                     if "Ebs" in m]
    from threetier import artifacts
    real = artifacts.application_files
    monkeypatch.setattr(artifacts, "application_files",
                        lambda source=None: {**real(source), "app-tier/src/version.js": b"module.exports = 2;\n"})
    result = cli("up", "--yes", cwd=workdir)
    assert result.code == 0, result.stderr
    state = json.loads((workdir / ".threetier" / "threetier.json").read_text())
    new_ami = state["parts"]["4"]["resources"]["ami"]
    assert new_ami != old_ami
    app_images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:threetier:part", "Values": ["4"]}])["Images"]
    assert sorted(i["ImageId"] for i in app_images) == sorted([new_ami, old_ami])  # the old one: the rollback target
    assert len(ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": old_snapshots}])[
        "Snapshots"]) == len(old_snapshots)
    assert state["parts"]["5"]["resources"]["rollback_image"] == old_ami
    default = ec2.describe_launch_template_versions(LaunchTemplateName="threetier-app-lt-g", Versions=["$Default"])["LaunchTemplateVersions"][0]
    assert default["LaunchTemplateData"]["ImageId"] == new_ami  # the tier runs on the new one, on green
    assert state["parts"]["6"]["resources"]["ami"] == resources[6]["ami"]  # the web image is untouched


def test_switching_to_graviton_rebakes_an_arm64_image(built) -> None:
    workdir, resources = built
    write_config(workdir, web={"instance_type": "t4g.small"})
    result = cli("up", "--yes", cwd=workdir)
    assert result.code == 0, result.stderr
    state = json.loads((workdir / ".threetier" / "threetier.json").read_text())
    ec2 = boto3.client("ec2")
    web_ami = state["parts"]["6"]["resources"]["ami"]
    assert web_ami != resources[6]["ami"]
    builder = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["threetier-web-builder"]}])["Reservations"]
               for i in r["Instances"]]
    arm_base = boto3.client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")["Parameter"]["Value"]
    assert arm_base in {b["ImageId"] for b in builder}  # the new builder started from the arm64 base image
    default = ec2.describe_launch_template_versions(LaunchTemplateName="threetier-web-lt-g", Versions=["$Default"])["LaunchTemplateVersions"][0]
    assert (default["LaunchTemplateData"]["ImageId"], default["LaunchTemplateData"]["InstanceType"]) == (web_ami, "t4g.small")
    assert state["parts"]["4"]["resources"]["ami"] == resources[4]["ami"]  # the app tier stays on x86


def test_backup_retention_converges(built) -> None:
    workdir, _ = built
    write_config(workdir, database={"backup_retention_days": 14})
    status = cli("status", "--json", cwd=workdir)
    assert status.code == 3
    assert any("backup retention 7 days, config says 14" in d for d in json.loads(status.stdout)["parts"][2]["drift"])
    assert cli("up", "--yes", cwd=workdir).code == 0
    cluster = boto3.client("rds").describe_db_clusters(DBClusterIdentifier="threetier-aurora")["DBClusters"][0]
    assert cluster["BackupRetentionPeriod"] == 14
    again = cli("status", "--json", cwd=workdir)
    assert again.code == 0, [(p["part"], p["drift"]) for p in json.loads(again.stdout)["parts"]]
