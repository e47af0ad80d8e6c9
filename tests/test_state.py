"""The state file: atomic writes, a lock per stack, a schema version, never a secret."""
from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from helpers import cli, moto
from threetier import state as statelib


def make_state() -> statelib.State:
    state = statelib.State(stack="demo", region="us-east-1", account="123456789012")
    state.part(2, "network").resources["vpc"] = "vpc-1"
    return state


def test_round_trip_with_schema_version(tmp_path: Path) -> None:
    sf = statelib.StateFile(tmp_path / "s.json")
    sf.save(make_state())
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["schema_version"] == statelib.SCHEMA_VERSION
    assert data["parts"]["2"]["resources"] == {"vpc": "vpc-1"}
    loaded = sf.load()
    assert loaded is not None and loaded.parts[2].resources["vpc"] == "vpc-1"
    assert oct(os.stat(tmp_path / "s.json").st_mode & 0o777) == "0o600"


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf = statelib.StateFile(tmp_path / "s.json")
    sf.save(make_state())
    before = (tmp_path / "s.json").read_text()

    def crash(*_a, **_k):
        raise OSError("disk full")
    monkeypatch.setattr(statelib.os, "fsync", crash)
    state = make_state()
    state.parts[2].resources["vpc"] = "vpc-2"
    with pytest.raises(OSError):
        sf.save(state)
    assert (tmp_path / "s.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temp file left


def test_secrets_are_refused(tmp_path: Path) -> None:
    sf = statelib.StateFile(tmp_path / "s.json")
    state = make_state()
    state.part(3, "database").resources["master_password"] = "hunter2"
    with pytest.raises(statelib.StateError, match="master_password"):
        sf.save(state)
    assert not (tmp_path / "s.json").exists()


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": 99, "stack": "demo", "region": "us-east-1", "parts": {}}))
    with pytest.raises(statelib.StateError, match="schema_version 99"):
        statelib.StateFile(path).load()


def test_what_a_check_saw_is_never_written_and_an_old_file_holding_it_is_mended(tmp_path: Path) -> None:
    sf = statelib.StateFile(tmp_path / "s.json")
    state = make_state()
    state.part(3, "database").resources.update(cluster="threetier-aurora", db_status="available")
    sf.save(state)
    assert json.loads((tmp_path / "s.json").read_text())["parts"]["3"]["resources"] == {"cluster": "threetier-aurora"}
    assert state.parts[3].resources["db_status"] == "available"  # still there for the run that saw it
    # A file a `replay` wrote before: loaded without it, so `status` has nothing stale to compare.
    data = json.loads((tmp_path / "s.json").read_text())
    data["parts"]["3"]["resources"].update(db_status="available", http_redirect=True)
    (tmp_path / "s.json").write_text(json.dumps(data))
    loaded = sf.load()
    assert loaded is not None and loaded.parts[3].resources == {"cluster": "threetier-aurora"}


@pytest.mark.parametrize("stack", ["default", "edge_waf"])
def test_what_only_a_check_finds_is_declared_observed(stack_from, stack: str) -> None:
    """A key a part's check puts in its resources that `up` does not record is what the check saw
    (a status, a count, a summary): declared in OBSERVED_RESOURCES, or a `replay`, which checks the
    parts it needs, would write it to the state file. (An ID `up` should record instead.)"""
    directory = stack_from(stack)
    written = json.loads((directory / ".threetier" / "threetier.json").read_text())["parts"]
    status = cli("status", "--json", cwd=directory)
    assert status.code == 0, status.stdout
    for part in json.loads(status.stdout)["parts"]:
        only_seen = set(part["resources"]) - set(written[str(part["part"])]["resources"])
        assert only_seen <= statelib.OBSERVED_RESOURCES, (part["part"], only_seen - statelib.OBSERVED_RESOURCES)


def _hold_lock(path: str, ready, release) -> None:  # runs in a child process
    with statelib.StateFile(Path(path)).locked():
        ready.set()
        release.wait(10)


def test_lock_refuses_a_second_command_on_the_same_stack(tmp_path: Path) -> None:
    path = tmp_path / ".threetier" / "threetier.json"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(statelib.Locked, match=f"pid {holder.pid}"), statelib.StateFile(path).locked():
            pass
        result = cli("up", "--yes", cwd=tmp_path)  # the CLI says so in one line, exit 2, before any AWS call
        assert result.code == 2
        assert "another threetier command is running" in result.stderr
    finally:
        release.set()
        holder.join(10)
    with statelib.StateFile(path).locked():  # free again once the holder is gone
        pass


# -- nothing left behind ---------------------------------------------------------------------
@pytest.mark.parametrize("command,refusal", [
    (["pause"], "is not deployed in us-east-1; nothing to pause"),
    (["replay", "no-such-part"], "PART: no part 'no-such-part'"),
])
def test_a_command_refused_before_any_change_leaves_no_lock_file_nor_directory(
        tmp_path: Path, command: list[str], refusal: str) -> None:
    (tmp_path / "config.yaml").write_text("{}\n")  # pause needs a config file
    with moto():
        refused = cli(*command, cwd=tmp_path)
    assert refused.code == 2 and refusal in refused.stderr, refused.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no .threetier/, made for the lock and empty again


def test_the_lock_file_is_there_only_while_held_and_a_directory_that_was_there_stays(tmp_path: Path) -> None:
    state = statelib.StateFile(tmp_path / ".threetier" / "threetier.json")
    (tmp_path / ".threetier").mkdir()
    with state.locked():
        assert state.lock_path.read_text() == str(os.getpid())
    assert [p.name for p in tmp_path.iterdir()] == [".threetier"] and list((tmp_path / ".threetier").iterdir()) == []
    deep = statelib.StateFile(tmp_path / "a" / "b" / "s.json")
    with deep.locked():
        deep.save(make_state())
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["s.json"]  # what holds the state stays
    with statelib.StateFile(tmp_path / "c" / "d" / "s.json").locked():
        pass
    assert not (tmp_path / "c").exists()  # both levels it made, and nothing more


def test_a_lock_file_removed_by_its_holder_as_it_was_opened_is_taken_anew(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The holder releasing removes the file another command has just opened: that one's lock on the
    removed file would hold nothing, so it opens the file at the path again."""
    state = statelib.StateFile(tmp_path / "s.json")
    real, opened = statelib.open_lock_file, []

    def released_meanwhile(path: Path) -> tuple[int, bool]:
        fd, created = real(path)
        if not opened:
            os.unlink(path)  # what the holder does as it releases it
        opened.append(os.fstat(fd).st_ino)
        return fd, created
    monkeypatch.setattr(statelib, "open_lock_file", released_meanwhile)
    with state.locked():
        assert len(opened) == 2 and os.stat(state.lock_path).st_ino == opened[1]
        with pytest.raises(statelib.Locked), statelib.StateFile(tmp_path / "s.json").locked():
            pass  # refused: the file at the path is the one held
    assert list(tmp_path.iterdir()) == []
