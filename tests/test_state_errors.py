"""The state file failing is one line, never a crash (issue 9, item 7): a file of the wrong shape,
bytes that are not UTF-8, a directory that cannot be written, a full disk, a name too long, a lock
that cannot be taken. Each names the path, the reason and what to do; exit 2 when it is found
before any AWS change, 1 when the state cannot be written in the middle of a run."""
from __future__ import annotations

import copy
import errno
import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import Result, cli, moto, write_config
from threetier import state as statelib

STATE = Path(".threetier") / "threetier.json"
MOVE_AWAY = "move it away (the stack is found again by its tags)"

GOOD: dict[str, Any] = {
    "schema_version": 1, "stack": "threetier", "region": "us-east-1", "account": "123456789012",
    "updated_at": None,
    "parts": {
        "1": {"name": "storage", "status": "done", "resources": {"bucket": "b", "code_objects": 10},
              "started_at": None, "finished_at": None, "error": None},
        "2": {"name": "network", "status": "failed",
              "resources": {"vpc": "vpc-1", "azs": ["us-east-1a"], "subnets": {"public-web-subnet-az1": "subnet-1"}},
              "started_at": None, "finished_at": None, "error": "boom"},
    },
}


def changed(change: Any) -> bytes:
    data = copy.deepcopy(GOOD)
    change(data)
    return json.dumps(data).encode()


def one_error(result: Result) -> str:
    """The one `error:` line of a run that failed as it should: no crash, no traceback."""
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def nothing_in_aws() -> None:
    assert boto3.client("s3").list_buckets()["Buckets"] == []
    assert boto3.client("ec2").describe_vpcs(Filters=[{"Name": "tag-key", "Values": ["threetier:stack"]}])["Vpcs"] == []


BAD_FILES = {
    "resources null": (changed(lambda d: d["parts"]["1"].update(resources=None)), "parts.1.resources is null"),
    "parts an array": (changed(lambda d: d.update(parts=[])), "parts is an array"),
    "stack a number": (changed(lambda d: d.update(stack=5)), "stack is a number"),
    "status a number": (changed(lambda d: d["parts"]["1"].update(status=3)), "parts.1.status is a number"),
    "status unknown": (changed(lambda d: d["parts"]["1"].update(status="finished")), "parts.1.status is 'finished'"),
    "part key not a number": (changed(lambda d: d["parts"].update(one=d["parts"].pop("1"))), "parts has the key 'one'"),
    "part a string": (changed(lambda d: d["parts"].update({"1": "storage"})), "parts.1 is a string"),
    "part name missing": (changed(lambda d: d["parts"]["1"].pop("name")), "parts.1 has no name"),
    "resources an array": (changed(lambda d: d["parts"]["1"].update(resources=[])), "parts.1.resources is an array"),
    "subnets a string": (changed(lambda d: d["parts"]["2"]["resources"].update(subnets="subnet-1")),
                         "parts.2.resources.subnets is a string"),
    "route tables null": (changed(lambda d: d["parts"]["2"]["resources"].update(route_tables=None)),
                          "parts.2.resources.route_tables is null"),
    "resource nested": (changed(lambda d: d["parts"]["1"]["resources"].update(bucket={"name": {"deep": 1}})),
                        "parts.1.resources.bucket is an object"),
    "error a number": (changed(lambda d: d["parts"]["2"].update(error=1)), "parts.2.error is a number"),
    "account a list": (changed(lambda d: d.update(account=["123456789012"])), "account is an array"),
    "schema_version true": (changed(lambda d: d.update(schema_version=True)), "schema_version True is not 1"),
    "not an object": (b"[]", "the file holds an array"),
    "nested too deep": (b"[" * 100_000, "not valid JSON"),
    "number too long": (b'{"schema_version": ' + b"1" * 5000 + b"}", "not valid JSON"),
    "not UTF-8": (b'{"schema_version": 1, "stack": "thr\xffetier"}', "not UTF-8 text (byte 0xff at offset 35)"),
}


@pytest.mark.parametrize("content,where", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_state_file_of_the_wrong_shape_is_one_line_naming_the_field(tmp_path: Path, content: bytes,
                                                                      where: str) -> None:
    (tmp_path / STATE).parent.mkdir()
    (tmp_path / STATE).write_bytes(content)
    with moto():
        result = cli("status", cwd=tmp_path)
    line = one_error(result)
    assert result.code == 2  # found before any AWS change: nothing was done
    assert line.startswith(f"error: {STATE}: ") and where in line and line.endswith(MOVE_AWAY), line


@pytest.mark.parametrize("command", [["status"], ["plan"], ["up"], ["down", "--yes"], ["replay", "1"]])
def test_every_command_refuses_a_bad_state_file_before_any_aws_change(tmp_path: Path, command: list[str]) -> None:
    write_config(tmp_path)  # down and pause need a config file
    (tmp_path / STATE).parent.mkdir()
    (tmp_path / STATE).write_bytes(changed(lambda d: d["parts"]["1"].update(resources=None)))
    with moto():
        result = cli(*command, cwd=tmp_path)
        nothing_in_aws()
    line = one_error(result)
    assert result.code == 2
    assert f"{STATE}: not a threetier state file: parts.1.resources is null" in line and MOVE_AWAY in line


def test_a_good_state_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(changed(lambda d: None))
    state = statelib.StateFile(path).load()
    assert state is not None and state.parts[2].resources["subnets"] == {"public-web-subnet-az1": "subnet-1"}
    assert state.parts[2].status == "failed" and state.parts[1].resources["code_objects"] == 10


def test_an_unreadable_state_file_says_why(tmp_path: Path) -> None:
    (tmp_path / STATE).mkdir(parents=True)  # a directory where the file should be
    with moto():
        result = cli("status", cwd=tmp_path)
    line = one_error(result)
    assert result.code == 2
    assert line == f"error: {STATE}: cannot read the state file: Is a directory; make it readable, or {MOVE_AWAY}"


# -- a directory that cannot be written -------------------------------------------------------------
def read_only(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`directory` as without write permission: its files can be opened, no entry made, renamed or removed.
    chmod does that, except for root, who may write anywhere: then the os calls are refused instead."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        return
    real_open, real_replace, real_unlink = os.open, os.replace, os.unlink

    def inside(path: Any) -> bool:
        return Path(os.fsdecode(path)).absolute().parent == directory.absolute()

    def denied(path: Any) -> OSError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    def fake_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & os.O_CREAT and inside(path) and not os.path.exists(path):
            raise denied(path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def fake_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if inside(src) or inside(dst):
            raise denied(src)
        real_replace(src, dst, **kwargs)

    def fake_unlink(path: Any, **kwargs: Any) -> None:
        if inside(path):
            raise denied(path)
        real_unlink(path, **kwargs)
    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "replace", fake_replace)
    monkeypatch.setattr(os, "unlink", fake_unlink)


@pytest.fixture
def state_dir(tmp_path: Path) -> Any:
    directory = tmp_path / STATE.parent
    directory.mkdir()
    yield directory
    directory.chmod(0o700)  # pytest must be able to clean up


def test_an_unwritable_state_directory_is_refused_before_any_aws_change(tmp_path: Path, state_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    read_only(state_dir, monkeypatch)
    with moto():
        result = cli("up", "--yes", cwd=tmp_path)
        nothing_in_aws()
    line = one_error(result)
    assert result.code == 2
    assert line == (f"error: {STATE}: cannot lock the state file: Permission denied; make its directory "
                    f"writable, or use --state with a path you can write")


def test_a_directory_made_read_only_since_the_last_run_is_found_before_any_aws_change(
        tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The lock file of an earlier run can still be opened, but no state file could be written
    # beside it: that must be found now, not after Part 1 made its bucket.
    (state_dir / "threetier.json.lock").write_text("")
    read_only(state_dir, monkeypatch)
    with moto():
        result = cli("up", "--yes", cwd=tmp_path)
        nothing_in_aws()
    line = one_error(result)
    assert result.code == 2
    assert line.startswith(f"error: {STATE}: cannot lock the state file: Permission denied; ")


@pytest.mark.parametrize("command", [["up"], ["status"], ["down", "--yes"], ["replay", "1"]])
def test_a_state_path_too_long_is_one_line(tmp_path: Path, command: list[str]) -> None:
    write_config(tmp_path)  # down and pause need a config file
    long = "x" * 300 + ".json"
    with moto():
        result = cli(*command, "--state", long, cwd=tmp_path)
        nothing_in_aws()
    line = one_error(result)
    assert result.code == 2
    assert line.startswith(f"error: {long}: cannot ") and line.endswith(
        ": File name too long; use a shorter --state path"), line


def test_a_state_name_that_leaves_no_room_for_the_temp_file_is_found_before_any_aws_change(tmp_path: Path) -> None:
    name = "x" * 245 + ".json"  # its lock's name fits in 255 bytes; the temp file `save` writes does not
    with moto():
        result = cli("up", "--yes", "--state", name, cwd=tmp_path)
        nothing_in_aws()
    line = one_error(result)
    assert result.code == 2
    assert line == f"error: {name}: cannot lock the state file: File name too long; use a shorter --state path"


# -- the lock -------------------------------------------------------------------------------------
def test_a_lock_file_that_is_a_directory(tmp_path: Path, state_dir: Path) -> None:
    (state_dir / "threetier.json.lock").mkdir()
    with moto():
        result = cli("up", "--yes", cwd=tmp_path)
        nothing_in_aws()
    assert result.code == 2
    assert one_error(result).startswith(f"error: {STATE}: cannot lock the state file: Is a directory; ")


@pytest.mark.parametrize("call,code,advice", [
    ("flock", errno.ENOLCK, "use --state with a path on a local file system"),
    ("pwrite", errno.ENOSPC, "free some disk space"),
])
def test_a_lock_that_cannot_be_taken_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, code: int,
                                              advice: str) -> None:
    def fail(*_args: Any) -> None:
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(statelib.fcntl if call == "flock" else statelib.os, call, fail)
    with moto():
        result = cli("up", "--yes", cwd=tmp_path)
        nothing_in_aws()
    assert result.code == 2
    assert one_error(result) == f"error: {STATE}: cannot lock the state file: {os.strerror(code)}; {advice}"


# -- in the middle of a run -------------------------------------------------------------------------
def test_a_full_disk_in_the_middle_of_up_says_what_was_created_is_found_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace, saves = os.replace, []

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if Path(os.fsdecode(dst)).name == STATE.name:
            saves.append(dst)
            if len(saves) > 1:  # the first part's first save goes through, then the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst, **kwargs)
    monkeypatch.setattr(statelib.os, "replace", replace)
    with moto():
        result = cli("up", "--yes", cwd=tmp_path)
        line = one_error(result)
        assert result.code == 1  # AWS was changed by then: a failure of the run, not a refusal
        assert line == (f"error: {STATE}: cannot write the state file: No space left on device; free some disk "
                        f"space; what was created is tagged and is found again by `threetier up` (or `down`) once "
                        f"the state file can be written")
        # The file holds the last save whole, and no temp file is left beside it.
        assert statelib.StateFile(tmp_path / STATE).load() is not None
        assert sorted(p.name for p in (tmp_path / STATE.parent).iterdir()) == ["threetier.json"]  # nor the lock
        monkeypatch.setattr(statelib.os, "replace", real_replace)  # space again
        again = cli("up", "--yes", cwd=tmp_path)
        assert again.code == 0, again.stderr
        vpcs = boto3.client("ec2").describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])
        assert len(vpcs["Vpcs"]) == 1  # found again by its tags, not made twice
        assert len(boto3.client("s3").list_buckets()["Buckets"]) == 1


def test_a_state_file_that_cannot_be_deleted_after_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path)  # down and pause need a config file
    (tmp_path / STATE).parent.mkdir()
    (tmp_path / STATE).write_bytes(changed(lambda d: d.update(parts={})))
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name == STATE.name:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        real_unlink(self, missing_ok)
    monkeypatch.setattr(Path, "unlink", unlink)
    with moto():
        result = cli("down", "--yes", cwd=tmp_path)
    assert result.code == 1
    assert one_error(result) == (f"error: {STATE}: cannot delete the state file: Permission denied; the stack is "
                                 f"gone: delete the file by hand")


def test_any_other_file_the_machine_refuses_is_one_line_too(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "state").write_text("")  # a file where the directory of the sandbox's record should be
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with moto():
        result = cli("status", "--sandbox", cwd=tmp_path)
    assert result.code == 1
    assert one_error(result) == f"error: {tmp_path}/state/threetier/sandbox.json: Not a directory"
