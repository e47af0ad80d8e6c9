"""Issue 23, item 4: every Route 53 record the stack writes is in its state file before it exists.

A record takes no tags: only the state file says the stack wrote it. So the state file knows each
one (the alias A record of edge.domain, each ACM validation CNAME) before the ChangeResourceRecordSets
that writes it, and a run killed outright right after that call (SIGKILL: no handler runs, nothing is
saved, no lock released) leaves a state that knows the record; the next `up` converges and `down`
removes it. A record remembered and never written is no harm: `down` deletes only what is there as
threetier would have written it, never someone else's record of the same name.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest

from helpers import cli, make_engine, moto, write_config
from threetier import state as statelib
from threetier.engine import Check, Ctx, Part
from threetier.lock import parameter_name

ZONE = "example.com"
DOMAIN = "shop.example.com"
EDGE = {"domain": DOMAIN, "hosted_zone": ZONE}
# moto's validation record for the domain (like ACM's: one per domain and account).
VALIDATION_NAME = f"_d930b28be6c5927595552b219965053e.{DOMAIN}."
USERS = {"Name": f"mail.{ZONE}.", "Type": "MX", "TTL": 300, "ResourceRecords": [{"Value": "10 mx.example.net."}]}


class Killed(BaseException):
    """SIGKILL: the process is gone. Not an Exception nor a KeyboardInterrupt: no handler of
    threetier's catches it, and once it is raised nothing more reaches AWS or the state file."""


@dataclass
class Kill:
    """The process dies at the first AWS call that `at` picks: right after AWS did it (`before`
    False), or just before it is sent (`before` True)."""
    at: Callable[[str, dict[str, Any]], bool] | None = None
    before: bool = False
    dead: bool = False

    def revive(self) -> None:
        """The next process: nothing armed."""
        self.at, self.dead = None, False


@pytest.fixture
def kill(monkeypatch: pytest.MonkeyPatch) -> Kill:
    switch = Kill()
    real_call = botocore.client.BaseClient._make_api_call
    real_save = statelib.StateFile.save

    def call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        picked = switch.at is not None and switch.at(operation, params)
        if switch.dead or (picked and switch.before):
            switch.dead = True
            raise Killed(operation)
        answer = real_call(self, operation, params)
        if picked:
            switch.dead = True
            raise Killed(operation)
        return answer

    def save(self: statelib.StateFile, state: statelib.State) -> None:
        if switch.dead:  # the handlers that would save on the way out never run
            raise Killed("state file")
        real_save(self, state)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)
    monkeypatch.setattr(statelib.StateFile, "save", save)
    return switch


def writes(record_type: str) -> Callable[[str, dict[str, Any]], bool]:
    """The ChangeResourceRecordSets that upserts a record of this type."""
    def picked(operation: str, params: dict[str, Any]) -> bool:
        return operation == "ChangeResourceRecordSets" and any(
            change["Action"] == "UPSERT" and change["ResourceRecordSet"]["Type"] == record_type
            for change in params["ChangeBatch"]["Changes"])
    return picked


def make_zone() -> str:
    return boto3.client("route53").create_hosted_zone(Name=ZONE, CallerReference=ZONE)["HostedZone"]["Id"].split("/")[-1]


def zone_records(zone_id: str) -> set[tuple[str, str]]:
    found = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(r["Name"], r["Type"]) for r in found}


def put_record(zone_id: str, record_set: dict[str, Any]) -> None:
    boto3.client("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": record_set}]})


def saved_records(directory: Path) -> list[str]:
    """The records the state FILE (as on disk, not as in memory) says the stack wrote."""
    saved = json.loads((directory / ".threetier" / "threetier.json").read_text())
    return saved["parts"]["7"]["resources"].get("edge_records", [])


def knows(directory: Path, zone_id: str, name: str, record_type: str) -> bool:
    return any(entry.split()[:3] == [zone_id, name, record_type] for entry in saved_records(directory))


def killed_up(directory: Path, kill: Kill) -> None:
    """`up` with the edge on, killed where `kill` says; then, as after a real SIGKILL, the stack's
    lock is still held by the dead run: cleared here (its holder is this live test process, which no
    take-over may take from)."""
    with pytest.raises(Killed):
        cli("up", "--yes", cwd=directory)
    assert kill.dead
    kill.revive()
    boto3.client("ssm").delete_parameter(Name=parameter_name("threetier"))


def up_then_down(directory: Path) -> None:
    result = cli("up", "--yes", cwd=directory)
    assert result.code == 0, result.stdout + result.stderr
    result = cli("down", "--yes", "--skip-final-snapshot", cwd=directory)
    assert result.code == 0, result.stdout + result.stderr


@pytest.mark.parametrize("record_type,name", [("CNAME", VALIDATION_NAME), ("A", f"{DOMAIN}.")])
def test_a_kill_right_after_a_record_is_written_leaves_a_state_that_knows_it_and_down_removes_it(
        built: Path, kill: Kill, record_type: str, name: str) -> None:
    zone_id = make_zone()
    put_record(zone_id, USERS)  # the user's: there before, there after
    write_config(built, edge=EDGE)
    kill.at = writes(record_type)
    killed_up(built, kill)
    assert (name, record_type) in zone_records(zone_id)  # AWS wrote it ...
    assert knows(built, zone_id, name, record_type)  # ... and the state file on disk knows it

    up_then_down(built)
    assert zone_records(zone_id) == {(f"{ZONE}.", "NS"), (f"{ZONE}.", "SOA"), (USERS["Name"], "MX")}


@pytest.mark.parametrize("record_type,name", [("CNAME", VALIDATION_NAME), ("A", f"{DOMAIN}.")])
def test_a_record_remembered_and_never_written_is_written_by_the_next_up(
        built: Path, kill: Kill, record_type: str, name: str) -> None:
    zone_id = make_zone()
    write_config(built, edge=EDGE)
    kill.at, kill.before = writes(record_type), True
    killed_up(built, kill)
    assert (name, record_type) not in zone_records(zone_id) and knows(built, zone_id, name, record_type)

    up_then_down(built)
    assert zone_records(zone_id) == {(f"{ZONE}.", "NS"), (f"{ZONE}.", "SOA")}


@pytest.mark.parametrize("record_type,name,theirs", [
    ("CNAME", VALIDATION_NAME, {"TTL": 300, "ResourceRecords": [{"Value": "elsewhere.example.net."}]}),
    ("A", f"{DOMAIN}.", {"TTL": 300, "ResourceRecords": [{"Value": "192.0.2.10"}]}),
])
def test_someone_elses_record_where_a_remembered_one_was_never_written_is_neither_taken_nor_deleted(
        built: Path, kill: Kill, record_type: str, name: str, theirs: dict[str, Any]) -> None:
    """Remembered, then the run died before the write; meanwhile someone wrote their own record of
    that name: it is not the stack's (it holds another value than threetier would write there)."""
    zone_id = make_zone()
    write_config(built, edge=EDGE)
    kill.at, kill.before = writes(record_type), True
    killed_up(built, kill)
    put_record(zone_id, {"Name": name, "Type": record_type, **theirs})
    before = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]

    refused = cli("up", "--yes", cwd=built)
    assert refused.code != 0 and "nothing was changed" in refused.stderr, refused.stdout + refused.stderr
    result = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert result.code == 0, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert re.search(rf"{re.escape(name.rstrip('.'))} in hosted zone ({ZONE}|{zone_id}) holds [^;]*, not what "
                     rf"threetier wrote there; left as it is", said), said  # named ...
    left = boto3.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    assert [r for r in left if r["Type"] not in ("NS", "SOA")] == [r for r in before if r["Name"] == name]  # ... and left


def test_a_part_writes_the_state_file_in_the_middle_of_its_run_and_nothing_outside_one(tmp_path: Path) -> None:
    """Ctx.save: what a Part noted before a change is in the file even if the process dies right
    after it (the engine's own saves, after `start` and on an error, never run then)."""
    def start(ctx: Ctx) -> None:
        ctx.resources["noted"] = "before the change"
        ctx.save()
        ctx.resources["after"] = "never saved"
        raise Killed("right after the change")

    part = Part(number=7, name="web_tier", title="the toy", needs=(), start=start, finish=lambda ctx: None,
                destroy=lambda ctx: None, check=lambda ctx: Check())
    with moto():
        engine = make_engine(tmp_path)
        engine.parts = (part,)
        engine.ctx.save()  # outside a run: no file to write
        assert not (tmp_path / "state.json").exists()
        with pytest.raises(Killed):
            engine.up()
    saved = json.loads((tmp_path / "state.json").read_text())["parts"]["7"]
    assert saved["resources"] == {"noted": "before the change"} and saved["status"] == "pending"
