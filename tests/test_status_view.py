"""`threetier status` as people read it (issue 24, item 2): one row per Part and the outputs whole,
nothing split at 80 columns; `status PART` for everything about one Part; the duplicate keys gone
from the views but kept one release in --json; and a reader that goes away (`status | head -1`)."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import cli
from threetier.cli import run
from threetier.cli.status import DEPRECATED_KEYS

NAMES = ["storage", "network", "database", "app-image", "app-tier", "web-image", "web-tier"]
STATE = Path(".threetier") / "threetier.json"


@pytest.fixture
def columns_80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # rich's Console width, as a terminal of 80 columns


def report(workdir: Path) -> dict[str, Any]:
    return json.loads(cli("status", "--json", cwd=workdir).stdout)


def ids(report: dict[str, Any]) -> set[str]:
    """Every ID, name, ARN and address of the stack: the strings without a blank in --json."""
    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for item in value.values() for s in strings(item)]
        if isinstance(value, list):
            return [s for item in value for s in strings(item)]
        return [value] if isinstance(value, str) and " " not in value and len(value) > 3 else []
    return set(strings([p["resources"] for p in report["parts"]]) + strings(report["outputs"]))


def assert_nothing_split(stdout: str, report: dict[str, Any]) -> None:
    """No ID is cut across lines, and the lines longer than 80 columns are only those an unbreakable
    value makes so (an output, or a table row whose ID is that long)."""
    lines = stdout.splitlines()
    squashed = re.sub(r"\s", "", stdout)
    for value in ids(report):
        if value in squashed:
            assert any(value in line for line in lines), f"{value} is split across lines:\n{stdout}"
    for line in lines:
        if len(line) > 80:
            assert line.split()[-1] in ids(report) and len(line.split()[-1]) > 40, line


def table_rows(stdout: str) -> dict[int, list[str]]:
    return {int(line.split()[0]): line.split() for line in stdout.splitlines() if re.match(r"^\s+[1-7]  ", line)}


def test_status_is_one_row_per_part_then_the_outputs_whole(built: Path, columns_80: None) -> None:
    human = cli("status", cwd=built)
    assert human.code == 0, human.stdout + human.stderr
    seen = report(built)
    parts = {p["part"]: p["resources"] for p in seen["parts"]}
    lines = human.stdout.splitlines()
    assert lines[0] == "stack threetier in us-east-1 (123456789012)"
    assert lines[1].split() == ["part", "name", "status", "drift", "id"]
    rows = table_rows(human.stdout)
    assert [row[:4] for row in rows.values()] == [[str(n), name, "done", "0"] for n, name in enumerate(NAMES, 1)]
    named = {1: parts[1]["bucket"], 2: parts[2]["vpc"], 3: parts[3]["cluster"], 4: parts[4]["ami"],
             5: parts[5]["auto_scaling_group"], 6: parts[6]["ami"], 7: parts[7]["auto_scaling_group"]}
    assert {n: row[4] for n, row in rows.items()} == named
    assert rows[5][5:] == rows[7][5:] == ["(2/2", "healthy)"]
    # the outputs: one a line, whole, even the dashboard's URL at 80 columns
    for key, value in seen["outputs"].items():
        assert f"{key}: {value}" in lines
    assert len(f"dashboard_url: {seen['outputs']['dashboard_url']}") > 80
    assert "dashboard_url: https://" in human.stdout and next(iter(seen["outputs"])) == "url"
    # the alarms, below the table, each line naming its Part; the repeated keys nowhere
    assert "3 database: alarms: 2 OK" in lines and "7 web-tier: alarms: 3 OK" in lines
    assert not any(f"{key}" in human.stdout for key in DEPRECATED_KEYS)
    assert_nothing_split(human.stdout, seen)
    # one line (wrapped between words) per application tier: its color, image, code, rollback target
    assert set(seen["tiers"]) == {"app", "web"}
    for tier, number in (("app", 5), ("web", 7)):
        said = seen["tiers"][tier]
        assert said == {"color": "blue", "image": parts[number]["image"], "fingerprint": parts[number]["fingerprint"],
                        "deployed_at": None, "rollback_image": None}, said
        assert f"{tier}: blue, {said['image']} (code {said['fingerprint']}); rollback: none" in " ".join(
            human.stdout.split())


def drift(workdir: Path) -> str:
    """Two drifts of Part 2: a rule added to the web tier's security group by hand, and a state file
    that names another VPC (a long drift line with two IDs). Returns the forged VPC ID."""
    ec2 = boto3.client("ec2")
    group = ec2.describe_security_groups(Filters=[{"Name": "tag:Name", "Values": ["threetier-web-sg"]}])
    ec2.authorize_security_group_ingress(GroupId=group["SecurityGroups"][0]["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    state = json.loads((workdir / STATE).read_text())
    forged = "vpc-0123456789abcdef0"
    state["parts"]["2"]["resources"]["vpc"] = forged
    (workdir / STATE).write_text(json.dumps(state))
    return forged


def test_a_drifted_stack_shows_each_drift_line_below_its_row_unsplit(built: Path, columns_80: None) -> None:
    forged = drift(built)
    seen = report(built)
    lines_of_2 = seen["parts"][1]["drift"]
    assert len(lines_of_2) == 2 and any(forged in line for line in lines_of_2), lines_of_2
    human = cli("status", cwd=built)
    assert human.code == 3  # the exit status counts as before
    assert table_rows(human.stdout)[2][:4] == ["2", "network", "drifted", "2"]
    assert table_rows(human.stdout)[1][:4] == ["1", "storage", "done", "0"]
    # each drift line follows the table, prefixed with its Part, wrapped between words only
    below = re.sub(r"\s+", " ", human.stdout)
    for line in lines_of_2:
        assert f"2 network: drift: {line}" in below
    assert sum(line.startswith("2 network: drift: ") for line in human.stdout.splitlines()) == 2
    assert all(len(line) <= 80 for line in human.stdout.splitlines() if "drift:" in line)
    assert_nothing_split(human.stdout, seen)
    # status PART judges that Part alone
    assert cli("status", "network", cwd=built).code == 3 and cli("status", "7", cwd=built).code == 0


def test_status_part_shows_every_resource_of_that_part(built: Path, columns_80: None) -> None:
    seen = report(built)
    storage = seen["parts"][0]
    detail = cli("status", "1", cwd=built)
    assert detail.code == 0
    lines = detail.stdout.splitlines()
    assert lines[:3] == ["stack threetier in us-east-1 (123456789012)", "Part 1 storage: done", "resources:"]
    shown = [line.strip() for line in lines if line.startswith("    ") and " = " in line]
    for key in ("bucket", "role", "role_arn", "instance_profile", "instance_profile_arn", "web_role", "web_role_arn",
                "web_instance_profile", "web_instance_profile_arn"):
        assert f"{key} = {storage['resources'][key]}" in shown  # ARNs included, each whole on its line
    assert not any(line.startswith("app_") for line in shown)  # the repeats, once each
    assert {"drift: none", "notes: none", "alarms: none", "state file:", "    status = done"} <= set(lines)

    network = cli("status", "network", cwd=built)
    assert network.stdout == cli("status", "2", cwd=built).stdout
    subnets = seen["parts"][1]["resources"]["subnets"]
    assert f"    subnets.public-web-subnet-az1 = {subnets['public-web-subnet-az1']}" in network.stdout.splitlines()
    assert "    azs[0] = us-east-1a" in network.stdout.splitlines()

    app = cli("status", "app-tier", cwd=built).stdout.splitlines()
    assert "    healthy_targets = 2/2" in app and "    threetier-app-unhealthy-hosts = OK" in app
    assert sum(line.startswith("    internal_alb_dns = ") for line in app) == 1
    assert not any(line.startswith("    load_balancer_dns") for line in app)  # Part 5's repeat of internal_alb_dns
    web = cli("status", "7", cwd=built).stdout.splitlines()
    assert "    scaling = cpu 60, requests 1000" in web and any(line.startswith("    load_balancer_dns = ") for line in web)


def test_status_part_json_is_that_parts_entry_and_json_keeps_the_old_keys(built: Path) -> None:
    seen = report(built)
    entry = cli("status", "5", "--json", cwd=built)
    assert entry.code == 0 and json.loads(entry.stdout) == seen["parts"][4]
    assert set(json.loads(entry.stdout)) == {"part", "name", "status", "resources", "drift", "notes", "alarms",
                                             "state_file"}
    # the deprecated keys, one release more, in --json only; the contract's keys stay
    storage, app = seen["parts"][0]["resources"], seen["parts"][4]["resources"]
    for old, new in DEPRECATED_KEYS.items():
        holder = app if old == "load_balancer_dns" else storage
        assert holder[old] == holder[new]
    assert {"bucket", "role"} <= set(storage)
    assert {"url", "db_writer_endpoint", "internal_alb_dns"} <= set(seen["outputs"])


@pytest.mark.parametrize("part", ["8", "0", "nope", "Network"])
def test_a_bad_part_is_exit_2_before_any_aws_call(tmp_path: Path, calls: list[str], part: str) -> None:
    result = cli("status", part, cwd=tmp_path)
    assert result.code == 2 and calls == []
    assert result.stderr.startswith(f"error: PART: no part {part!r} (parts: 1/storage, 2/network")


# -- a reader that goes away ------------------------------------------------------------------
class ClosedPipe(io.StringIO):
    """A stream whose reader has gone: every write and flush meets a closed pipe."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_status_to_a_closed_pipe_exits_0_quietly(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = io.StringIO()
    monkeypatch.chdir(built)
    assert run(["status"], stdout=ClosedPipe(), stderr=stderr) == 0
    # nothing but the account's notes (stderr by design: moto's account has no trail, no detector)
    assert [line for line in stderr.getvalue().splitlines() if not line.startswith("note: ")] == []


def test_up_whose_reader_went_away_finishes_its_work(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`up | head -1`: nobody reads its progress or summary, and it still finishes (then `status` is
    clean), with the work's own exit status."""
    drift(built)
    monkeypatch.chdir(built)
    assert run(["up", "--yes"], stdout=ClosedPipe(), stderr=ClosedPipe()) == 0
    assert cli("status", cwd=built).code == 0


@pytest.mark.parametrize("args", [["graph"], ["cost"], ["--help"]], ids=" ".join)
def test_a_real_closed_pipe_is_exit_0_without_a_word(tmp_path: Path, args: list[str]) -> None:
    """`threetier graph | head -1` in a process of its own: the pipe's reading end is closed before
    the first write, so every write meets it (no race with a reader)."""
    reading, writing = os.pipe()
    os.close(reading)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    try:
        process = subprocess.run([sys.executable, "-m", "threetier", *args], stdout=writing, stderr=subprocess.PIPE,
                                 text=True, cwd=tmp_path, env=env, timeout=120)
    finally:
        os.close(writing)
    assert (process.returncode, process.stderr) == (0, "")
