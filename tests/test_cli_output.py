"""The CLI as people use it (help, completion, terminals)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from helpers import cli, make_engine, moto, write_config
from threetier.display import Display
from threetier.output import Output


def help_text(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli(*args, "--help").code == 0
    return capsys.readouterr().out  # click writes help to sys.stdout itself


@pytest.mark.parametrize("subcommand", ["start", "stop", "status"])
def test_sandbox_subcommands_offer_only_the_options_that_apply(subcommand: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, "sandbox", subcommand)
    for absent in ("--config", "--state", "--sandbox"):  # the sandbox reads no config, state or sandbox flag
        assert absent not in text, text
    assert "--no-color" in text and "--verbose" in text
    assert cli("sandbox", subcommand, "--config", "x.yaml").code == 2  # refused, not silently ignored


def test_stack_commands_keep_every_global_option(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("up", "down", "status", "plan", "replay", "deploy", "rollback", "cost", "pause", "resume"):
        text = help_text(capsys, command)
        assert all(option in text for option in ("--config", "--state", "--sandbox", "--no-color", "--verbose"))


def _display_on_a_terminal(term: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Display, str]:
    """Run a Display on a pseudo-terminal for ~0.8 s with one part in flight; what the terminal got."""
    monkeypatch.setenv("TERM", term)
    master, slave = os.openpty()
    os.set_blocking(master, False)
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        out = Output(stdout=terminal, stderr=terminal)
        aws = SimpleNamespace(on_poll=None, part="Part 2 (network)")
        display = Display(out, aws, clock=SimpleNamespace(now=time.monotonic))  # type: ignore[arg-type]
        with display:
            display.begin("Part 2 (network)", "network and security")
            time.sleep(0.8)  # a few refreshes at 4 a second
            display.end("Part 2 (network)")
            out.info("✓ Part 2 (network) network and security: done")
        terminal.flush()
    written = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(master, 65536):
            written += chunk
    os.close(master)
    return display, written.decode("utf-8", "replace")


def test_a_dumb_terminal_gets_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    display, written = _display_on_a_terminal("dumb", monkeypatch)
    assert display.live is None
    lines = written.replace("\r\n", "\n").split("\n")
    assert lines == ["[ 0:00] Part 2 (network) network and security: started",  # no frames, no blank lines
                     "[ 0:00] ✓ Part 2 (network) network and security: done", ""], written


def test_a_capable_terminal_shows_parts_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    # The counterpart of the dumb terminal: the live lines are there, and gone when the part ends.
    display, written = _display_on_a_terminal("xterm-256color", monkeypatch)
    assert display.live is not None
    assert "Part 2 (network) network and security" in written
    assert "✓ Part 2 (network) network and security: done" in written


def test_shell_completion_completes_commands_and_part_names(capsys: pytest.CaptureFixture[str]) -> None:
    exe = shutil.which("threetier")
    assert exe, "the threetier console script is not installed (pip install -e .)"

    def complete(*words: str) -> list[str]:
        env = {**os.environ, "COMP_WORDS": " ".join(("threetier", *words)), "COMP_CWORD": str(len(words)),
               "_THREETIER_COMPLETE": "bash_complete"}
        answer = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=60, check=True).stdout
        return [line.split(",", 1)[1] for line in answer.splitlines()]

    assert complete("sa") == ["sandbox"]
    assert complete("replay", "app") == ["app-image", "app-tier"]
    assert "--take-over-lock" in complete("up", "--t")
    assert "source <(threetier completion bash)" in help_text(capsys)


# -- one count, one meaning (item 2), --json on up, replay and down (item 7) ------------------
TICK = re.compile(r"✓ Part (\d) \([a-z-]+\) [^:]+: (?:done|repaired) \(([^)]*)\)")


def tally_of(text: str) -> dict[str, int]:
    """ "5 created, 1 deleted" -> {"created": 5, "changed": 0, "deleted": 1}"""
    found = dict.fromkeys(("created", "changed", "deleted"), 0)
    for number, action in re.findall(r"(\d+) (created|changed|deleted)", text):
        found[action] = int(number)
    return found


def summary_table(stdout: str) -> dict[int, dict[str, int]]:
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if len(cells) >= 5 and re.fullmatch(r"\d [a-z-]+", cells[0]):
            rows[int(cells[0][0])] = {"created": int(cells[1]), "changed": int(cells[2]), "deleted": int(cells[3])}
    return rows


def test_every_count_of_a_run_says_the_same(tmp_path: Path) -> None:
    write_config(tmp_path)  # down and pause need a config file
    # A build: what a new stack's first `up` says is asserted.
    with moto():
        up = cli("up", "--yes", cwd=tmp_path)
        assert up.code == 0, up.stderr
        ticks = {int(number): tally_of(text) for number, text in TICK.findall(up.stderr)}
        table = summary_table(up.stdout)
        assert sorted(ticks) == sorted(table) == list(range(1, 8))
        assert ticks == table  # each part's ✓ line says what its row says
        totals = {action: sum(row[action] for row in table.values()) for action in ("created", "changed", "deleted")}
        last = next(line for line in up.stdout.splitlines() if "is up:" in line)
        assert tally_of(last.split(";")[0]) == totals, last
        # A brand-new stack: settings applied to what this run created are part of creating it.
        assert totals["changed"] == 0 and totals["created"] > 40
        assert totals["deleted"] == 2  # the two builders, once their images are baked

        again = cli("up", "--yes", "--json", cwd=tmp_path)
        report = json.loads(again.stdout)  # stdout is the JSON and nothing else
        assert again.code == 0 and report["command"] == "up"
        assert (report["created"], report["changed"], report["deleted"], report["mutating_calls"]) == (0, 0, 0, 0)
        assert report["outputs"]["url"].startswith("http://threetier-ext-alb")
        assert [row["part"] for row in report["parts"]] == list(range(1, 8))

        boto3.client("ec2").delete_route(RouteTableId=route_table(tmp_path), DestinationCidrBlock="0.0.0.0/0")
        replay = cli("replay", "network", "--json", cwd=tmp_path)
        fixed = json.loads(replay.stdout)
        assert replay.code == 0 and fixed["command"] == "replay network" and fixed["part"] == 2
        assert (fixed["created"], fixed["changed"]) == (0, 1)  # a route put back into a table that was there
        assert [c["kind"] for c in fixed["changes"]] == ["route"]

        down = cli("down", "--yes", "--skip-final-snapshot", "--json", cwd=tmp_path)
        gone = json.loads(down.stdout)
        said = sum(int(n) for n in re.findall(r"✓ Part \d \([a-z-]+\) [^:]+: deleted (\d+)", down.stderr))
        assert down.code == 0 and gone["command"] == "down" and gone["deleted"] == said > 40
        assert gone["kept_snapshots"] == [] and gone["outputs"] == {}


def route_table(workdir: Path) -> str:
    state = json.loads((workdir / ".threetier" / "threetier.json").read_text())
    return state["parts"]["2"]["resources"]["route_tables"]["private-app-rt-az1"]


# -- one sandbox per user (item 5; found from any directory: in test_drift_and_convergence) -----
def run_threetier(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("threetier")
    assert exe, "the threetier console script is not installed (pip install -e .)"
    return subprocess.run([exe, *args], cwd=cwd, env={**os.environ, "NO_COLOR": "1"}, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_sandbox_status_exits_3_when_it_is_not_running_as_its_help_says(capsys: pytest.CaptureFixture[str]) -> None:
    assert "Exit 0 if it is, 3 if not" in " ".join(help_text(capsys, "sandbox", "status").split())
    stopped = cli("sandbox", "status", "--json")
    assert stopped.code == 3 and json.loads(stopped.stdout) == {"running": False}


# -- AWS CLI commands threetier prints reach what threetier reached -------------------------------
def test_a_hint_printed_with_the_sandbox_names_its_endpoint_region_and_dummy_keys(
        tmp_path: Path, moto_server_as_sandbox: dict[str, Any]) -> None:
    from threetier import sandbox
    sandbox.home().mkdir(parents=True, exist_ok=True)
    sandbox.record_path().write_text(json.dumps(moto_server_as_sandbox))  # the sandbox that runs
    box = sandbox.running()
    assert box is not None
    ec2 = boto3.client("ec2", endpoint_url=box.url, region_name="us-east-1", aws_access_key_id="sandbox",
                       aws_secret_access_key="sandbox")
    tags = [{"ResourceType": "vpc", "Tags": [{"Key": "threetier:stack", "Value": "threetier"},
                                             {"Key": "Name", "Value": "threetier-vpc"}]}]
    for cidr in ("10.0.0.0/16", "10.1.0.0/16"):  # two VPCs with the tags of one: status says how one goes
        ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tags)
    status = cli("status", "--sandbox", "--json", cwd=tmp_path)
    assert status.code == 3, status.stderr
    network = json.loads(status.stdout)["parts"][1]
    assert (f"(AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox aws ec2 delete-vpc --vpc-id <ID> "
            f"--region us-east-1 --endpoint-url {box.url})") in " ".join(network["drift"]), network["drift"]


def test_an_aws_cli_command_says_the_region_always_the_endpoint_when_there_is_one() -> None:
    from threetier.aws import Aws, aws_cli
    keys = {"aws_access_key_id": "AKIAREAL", "aws_secret_access_key": "real-secret"}
    on_aws = Aws("eu-west-3", credentials=keys)
    assert aws_cli(on_aws, "logs tail /x") == "aws logs tail /x --region eu-west-3"
    # AWS_ENDPOINT_URL (LocalStack...): its endpoint, never the user's own keys.
    elsewhere = Aws("eu-west-3", endpoint_url="http://localhost:4566", credentials=keys)
    assert aws_cli(elsewhere, "logs tail /x") == "aws logs tail /x --region eu-west-3 --endpoint-url http://localhost:4566"


# -- down shows everything it will delete (item 3) -----------------------------------------
class Keyboard(io.StringIO):
    """Standard input that is a terminal: what a person types."""

    def isatty(self) -> bool:
        return True


def test_down_lists_everything_it_asks_about_by_part_billable_first(built: Path, monkeypatch) -> None:
    from threetier import scan
    found = scan.tagged(make_engine(built).ctx.aws, "threetier")
    monkeypatch.setattr(sys, "stdin", Keyboard("n\n"))
    refused = cli("down", cwd=built)
    assert refused.code == 2 and "not confirmed; nothing was deleted" in refused.stderr
    assert len(scan.tagged(make_engine(built).ctx.aws, "threetier")) == len(found)
    lines = refused.stderr.splitlines()
    assert lines[0].startswith("threetier down: stack threetier in us-east-1, account 123456789012 (config: ")
    assert f"{len(found)} tagged resources will be deleted" in lines[1]
    assert "more" not in refused.stderr  # nothing cut
    listed = [line[6:] for line in lines if line.startswith("    ")]
    assert sorted(listed) == sorted(item.describe() for item in found)  # each once, every one
    assert "threetier-app-asg threetier-app-asg" not in refused.stderr  # a name is not said twice
    headers = [line.strip() for line in lines if re.fullmatch(r"  Part \d \([a-z-]+\):", line)]
    assert headers == [f"Part {n} ({name}):" for n, name in
                       ((7, "web-tier"), (6, "web-image"), (5, "app-tier"), (4, "app-image"), (3, "database"),
                        (2, "network"), (1, "storage"))]  # in the order they go
    network = lines[lines.index("  Part 2 (network):") + 1:lines.index("  Part 1 (storage):")]
    marks = [line[4] for line in network]
    assert marks == sorted(marks, key=lambda mark: mark != "$") and "$" in marks  # what bills comes first
    assert any("$ NAT gateway threetier-nat-az1 (nat-" in line for line in network)


def test_a_change_to_an_old_resource_for_a_new_one_counts_as_a_change(built: Path) -> None:
    # A NAT gateway deleted out of band: `up` makes a new one (created) and points the existing
    # route table at it (changed), not "configured" because the record mentions the new gateway.
    state = json.loads((built / ".threetier" / "threetier.json").read_text())
    boto3.client("ec2").delete_nat_gateway(NatGatewayId=state["parts"]["2"]["resources"]["nat_gateways"]["az1"])
    again = cli("up", "--yes", "--json", cwd=built)
    report = json.loads(again.stdout)
    network = next(row for row in report["parts"] if row["part"] == 2)
    actions = {(c["action"], c["kind"]) for c in network["changes"]}
    assert ("created", "NAT gateway") in actions and ("changed", "route") in actions, network["changes"]
    assert report["changed"] >= 1 and network["changed"] >= 1


def test_a_sandbox_of_an_earlier_threetier_is_pointed_out(tmp_path: Path, moto_server_as_sandbox: dict[str, Any]) -> None:
    # An earlier threetier kept the record in ./.threetier/sandbox.json: this one does not find it there.
    # (That earlier sandbox, running and answering: the session's moto server, not stopped here.)
    earlier = moto_server_as_sandbox
    (tmp_path / ".threetier").mkdir()
    (tmp_path / ".threetier" / "sandbox.json").write_text(json.dumps(earlier) + "\n")
    try:
        started = run_threetier(tmp_path, "sandbox", "start")
        assert started.returncode == 0
        assert (f"warning: a sandbox started by an earlier threetier still runs on http://127.0.0.1:{earlier['port']} "
                f"(pid {earlier['pid']})") in started.stderr and f"`kill {earlier['pid']}` stops it" in started.stderr
    finally:
        run_threetier(tmp_path, "sandbox", "stop")
