"""Trust (issue 9): never act on the wrong account."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from helpers import cli, moto
from threetier.aws import STACK_TAG

OTHER_ACCOUNT = "111111111111"
STACK_FILTER = [{"Name": f"tag:{STACK_TAG}", "Values": ["threetier"]}]


@pytest.fixture
def built(tmp_path: Path):
    with moto():
        assert cli("up", cwd=tmp_path).code == 0
        yield tmp_path


def switch_to_other_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials of another account, as a different AWS_PROFILE would give (moto: MOTO_ACCOUNT_ID
    makes every later request that account's)."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", OTHER_ACCOUNT)
    assert boto3.client("sts").get_caller_identity()["Account"] == OTHER_ACCOUNT


@pytest.mark.parametrize("command", [("up",), ("down", "--yes"), ("replay", "network"), ("status",), ("plan",)])
def test_a_state_file_of_another_account_is_refused_before_anything(built: Path, monkeypatch, command) -> None:
    state_path = built / ".threetier" / "threetier.json"
    before = state_path.read_text()
    switch_to_other_account(monkeypatch)
    result = cli(*command, cwd=built)
    assert result.code == 2, result.stderr
    assert result.stderr.count("error:") == 1
    assert "123456789012" in result.stderr and OTHER_ACCOUNT in result.stderr and "nothing was done" in result.stderr
    # Nothing was built in the other account, and the state file still names the stack's own.
    assert boto3.client("ec2").describe_vpcs(Filters=STACK_FILTER)["Vpcs"] == []
    assert state_path.read_text() == before and json.loads(before)["account"] == "123456789012"


def test_the_stack_is_untouched_after_a_refused_down(built: Path, monkeypatch) -> None:
    switch_to_other_account(monkeypatch)
    assert cli("down", "--yes", cwd=built).code == 2
    monkeypatch.delenv("MOTO_ACCOUNT_ID")  # back to the stack's own account
    status = cli("status", "--json", cwd=built)
    assert status.code == 0, status.stderr
    assert all(part["status"] == "done" for part in json.loads(status.stdout)["parts"])


def test_sigterm_is_handled_like_ctrl_c(tmp_path: Path, monkeypatch) -> None:
    import os
    import signal

    import steps.network
    real, calls = steps.network.ensure_subnets, []

    def terminated(ctx, vpc, azs):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to the main thread, which runs the scheduler
        return real(ctx, vpc, azs)

    with moto():
        monkeypatch.setattr(steps.network, "ensure_subnets", terminated)
        result = cli("up", cwd=tmp_path)
        assert result.code == 130, result.stderr
        assert "interrupted; the state file is consistent" in result.stderr and "Traceback" not in result.stderr
        state = json.loads((tmp_path / ".threetier" / "threetier.json").read_text())
        assert any(part["error"] for part in state["parts"].values())  # the parts in flight say they stopped
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the CLI's only while it runs
        assert cli("up", cwd=tmp_path).code == 0


@pytest.mark.parametrize("part", ["3", "5", "7"])
def test_replay_works_from_aws_alone_without_a_state_file(built: Path, part: str) -> None:
    (built / ".threetier" / "threetier.json").unlink()
    result = cli("replay", part, cwd=built)
    assert result.code == 0, result.stderr
    assert "verified, nothing to do" in result.stderr


@pytest.mark.parametrize(("key", "part", "expected"), [
    ("app-tier/src/server.js", 1, "application code: 1 files missing or changed"),
    ("nginx.conf", 6, "nginx.conf in the bucket: missing"),
])
def test_status_sees_code_deleted_from_the_bucket_and_up_puts_it_back(built: Path, key, part, expected) -> None:
    state = json.loads((built / ".threetier" / "threetier.json").read_text())
    boto3.client("s3").delete_object(Bucket=state["parts"]["1"]["resources"]["bucket"], Key=key)
    status = cli("status", "--json", cwd=built)
    assert status.code == 3
    drift = json.loads(status.stdout)["parts"][part - 1]["drift"]
    assert any(expected in line for line in drift), drift
    assert cli("up", cwd=built).code == 0
    assert cli("status", "--json", cwd=built).code == 0


def test_status_says_when_the_state_file_is_missing(built: Path) -> None:
    (built / ".threetier" / "threetier.json").unlink()
    human = cli("status", cwd=built)
    assert human.code == 0 and "no state file at .threetier/threetier.json" in human.stderr
    assert json.loads(cli("status", "--json", cwd=built).stdout)["state_file"] is None
