"""The state file (docs/interface.md, "State file").

An index for speed, never the truth: every part re-finds its resources in
AWS by tags and deterministic names. Written atomically (temp file + rename),
guarded by a lock so two commands cannot run on one stack at once, and never
holding a password or a secret value.

What cannot be read, trusted, locked or written is one line naming the path,
the reason and what to do. Reading and locking come before any AWS change, so
their failures are `StateUnusable` (exit 2, like a bad config: nothing was
done); a write failing in the middle of a run is the engine's to report
(`Engine.save`, exit 1), because only it knows that AWS was changed by then.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threetier.errors import ThreetierError, UsageError

SCHEMA_VERSION = 1
LOCK_ATTEMPTS = 5  # a lock file removed by its holder just as this command opened it: take the new one
STATE_DIR = Path(".threetier")
# Keys that would mean a secret value is about to be written: refused outright.
SECRET_KEY = re.compile(r"password|secret_?value|secret_?string|private_?key|access_?key", re.I)

DONE, PENDING, FAILED, DRIFTED = "done", "pending", "failed", "drifted"
STATUSES = (DONE, PENDING, FAILED, DRIFTED)

MOVE_AWAY = "move it away (the stack is found again by its tags)"
WRITABLE = "make its directory writable, or use --state with a path you can write"
# Resources the parts index into or update in place (subnets[role], instances[role] = ...): any
# other shape there would fail deep inside a part, so it is refused when the file is read.
LIST_RESOURCES = frozenset({"azs", "edge_records"})
# Resources AWS cannot be asked about by tag (the Route 53 records Part 7 wrote: records take no
# tags), or whose presence says whether to ask at all (a web ACL kept after edge.waf or edge.cdn went off,
# a distribution after edge.cdn went off): the state file alone knows them, so `status` and `plan` start
# from them too.
REMEMBERED_RESOURCES = frozenset({"edge_records", "web_acl_arn", "cdn_web_acl_arn", "cdn_distribution_id"})
# What a part's check saw of its resources at one moment (a cluster's status, a count of healthy
# targets, a summary of policies): `status` shows them, but they are no index, so the state file never
# holds them. Saved, a `replay` (which checks the parts it needs) would leave yesterday's
# "db_status=available" in the file, and `status` would take a stack paused since for drift. Dropped
# when read as well: a file written before they were kept out is mended by the next command.
OBSERVED_RESOURCES = frozenset({"db_status", "healthy_targets", "scaling", "certificate_status", "http_redirect",
                                "cdn_status"})
MAP_RESOURCES = frozenset({"subnets", "security_groups", "nat_gateways", "elastic_ips", "route_tables", "instances"})


class StateError(ThreetierError):
    pass


class StateUnusable(StateError, UsageError):
    """The state file cannot be read, trusted or locked: found before any AWS change, so exit 2."""


class Locked(UsageError):
    pass


def reason(exc: OSError, path: Path) -> str:
    """The OS's reason; it names the file only when that is not the state file or one beside it
    (a directory on the way that is a file, or missing)."""
    why = exc.strerror or str(exc)  # OSError("disk full") has no strerror
    if isinstance(exc.filename, (str, bytes, os.PathLike)):
        failed = Path(os.fsdecode(exc.filename))
        if failed.absolute().parent != path.absolute().parent:  # tempfile names its files absolutely
            return f"{failed}: {why}"
    return why


def advice(exc: OSError, otherwise: str) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some disk space"
    if exc.errno == errno.ENAMETOOLONG:
        return "use a shorter --state path"
    if exc.errno == errno.EROFS:
        return "use --state with a path on a writable file system"
    if exc.errno == errno.ENOLCK:  # a network file system without locks
        return "use --state with a path on a local file system"
    return otherwise


def cannot(path: Path, doing: str, exc: OSError, otherwise: str) -> str:
    """One line: `<path>: cannot <doing>: <the OS's reason>; <what to do>`."""
    return f"{path}: cannot {doing}: {reason(exc, path)}; {advice(exc, otherwise)}"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def default_path(stack: str) -> Path:
    return STATE_DIR / f"{stack}.json"


@dataclass
class PartState:
    name: str
    status: str = PENDING
    resources: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None


@dataclass
class Paused:
    """The stack is paused (`threetier pause`, lab mode): since when, and when AWS will start its
    stopped Aurora cluster by itself (7 days after it stopped it; None until pause stopped it). Kept
    in the state file as `"paused": {"since": ..., "aurora_restarts_at": ...}`, present only while
    paused; `up` (or `resume`) clears it once the stack is as config.yaml says again."""
    since: str
    aurora_restarts_at: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"since": self.since, "aurora_restarts_at": self.aurora_restarts_at}


@dataclass
class State:
    stack: str
    region: str
    account: str | None = None
    parts: dict[int, PartState] = field(default_factory=dict)
    updated_at: str | None = None
    paused: Paused | None = None

    def part(self, number: int, name: str) -> PartState:
        if number not in self.parts:
            self.parts[number] = PartState(name=name)
        return self.parts[number]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "stack": self.stack,
            "region": self.region,
            "account": self.account,
            "updated_at": self.updated_at,
            "parts": {
                str(number): {
                    "name": p.name, "status": p.status, "resources": indexed(p.resources),
                    "started_at": p.started_at, "finished_at": p.finished_at, "error": p.error,
                }
                for number, p in sorted(self.parts.items())
            },
            # Only while paused: a running stack's file is as it was before pause existed.
            **({"paused": self.paused.to_json()} if self.paused else {}),
        }

    @classmethod
    def from_json(cls, data: Any, path: Path) -> State:
        """The file's contents, every field checked: a wrong type is refused here, in one line naming
        the field, never met later as a crash somewhere inside a command."""
        def refuse(problem: str) -> StateUnusable:
            return StateUnusable(f"{path}: not a threetier state file: {problem}; {MOVE_AWAY}")

        def expect(ok: bool, where: str, value: Any, want: str) -> None:
            if not ok:
                raise refuse(f"{where} is {kind(value)}, not {want}")

        if not isinstance(data, dict):
            raise refuse(f"the file holds {kind(data)}, not an object")
        version = data.get("schema_version")
        if type(version) is not int or version != SCHEMA_VERSION:  # `true == 1` in Python, not in the file
            raise StateUnusable(f"{path}: schema_version {version!r} is not {SCHEMA_VERSION}; {MOVE_AWAY}")
        for key in ("stack", "region"):
            expect(isinstance(data.get(key), str), key, data.get(key), "a string")
            if not data[key]:
                raise refuse(f"{key} is empty")
        for key in ("account", "updated_at"):
            expect(data.get(key) is None or isinstance(data[key], str), key, data.get(key), "a string")
        raw_parts = data.get("parts", {})
        expect(isinstance(raw_parts, dict), "parts", raw_parts, "an object")
        parts: dict[int, PartState] = {}
        for number, p in raw_parts.items():
            if not (isinstance(number, str) and re.fullmatch(r"[1-9][0-9]{0,3}", number)):
                raise refuse(f"parts has the key {str(number)[:40]!r}, not a part number")
            where = f"parts.{number}"
            expect(isinstance(p, dict), where, p, "an object")
            if "name" not in p:
                raise refuse(f"{where} has no name")
            expect(isinstance(p["name"], str), f"{where}.name", p["name"], "a string")
            status = p.get("status", PENDING)
            if isinstance(status, str) and status not in STATUSES:
                raise refuse(f"{where}.status is {status[:40]!r}, not one of {', '.join(STATUSES)}")
            expect(isinstance(status, str), f"{where}.status", status, "a string")
            resources = p.get("resources", {})
            expect(isinstance(resources, dict), f"{where}.resources", resources, "an object")
            resources = indexed(resources)
            for key, value in resources.items():
                want = resource_shape(key, value)
                if want:
                    raise refuse(f"{where}.resources.{key} is {kind(value)}, not {want}")
            for key in ("started_at", "finished_at", "error"):
                expect(p.get(key) is None or isinstance(p[key], str), f"{where}.{key}", p.get(key), "a string")
            parts[int(number)] = PartState(name=p["name"], status=status, resources=resources,
                                           started_at=p.get("started_at"), finished_at=p.get("finished_at"),
                                           error=p.get("error"))
        paused = data.get("paused")
        expect(paused is None or isinstance(paused, dict), "paused", paused, "an object")
        if paused is not None:
            expect(isinstance(paused.get("since"), str), "paused.since", paused.get("since"), "a string")
            restarts = paused.get("aurora_restarts_at")
            expect(restarts is None or isinstance(restarts, str), "paused.aurora_restarts_at", restarts, "a string")
        return cls(stack=data["stack"], region=data["region"], account=data.get("account"),
                   parts=parts, updated_at=data.get("updated_at"),
                   paused=Paused(paused["since"], paused.get("aurora_restarts_at")) if paused else None)


def indexed(resources: dict[str, Any]) -> dict[str, Any]:
    """A part's resources less what its check only saw (OBSERVED_RESOURCES): what the file holds."""
    return {key: value for key, value in resources.items() if key not in OBSERVED_RESOURCES}


def kind(value: Any) -> str:
    """What a JSON value is, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def resource_shape(key: str, value: Any) -> str | None:
    """None when `value` has a shape the parts write (an ID or a name, a count, a list or map of IDs),
    else the shape it should have."""
    strings = isinstance(value, list) and all(isinstance(item, str) for item in value)
    mapping = isinstance(value, dict) and all(isinstance(item, str) for item in value.values())
    if key in LIST_RESOURCES:
        return None if strings else "an array of strings"
    if key in MAP_RESOURCES:
        return None if mapping else "an object of strings"
    count = isinstance(value, int) and not isinstance(value, bool)
    return None if isinstance(value, str) or count or strings or mapping else (
        "a string, a whole number, or an array or object of strings")


def find_secrets(value: Any, path: str = "") -> list[str]:
    """Paths of keys in `value` that name secret material."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if SECRET_KEY.search(str(key)):
                found.append(where)
            found.extend(find_secrets(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(find_secrets(item, f"{path}[{index}]"))
    return found


class StateFile:
    """One stack's state file and its lock."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def load(self) -> State | None:
        """The state, or None when there is no file; anything else that stops it being read or
        trusted is a StateUnusable saying what to do."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateUnusable(cannot(self.path, "read the state file", exc, f"make it readable, or {MOVE_AWAY}")) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StateUnusable(f"{self.path}: not a threetier state file: not UTF-8 text (byte {raw[exc.start]:#04x} "
                                f"at offset {exc.start}); {MOVE_AWAY}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateUnusable(f"{self.path}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}); "
                                f"{MOVE_AWAY}") from None
        except (ValueError, RecursionError):  # a number thousands of digits long, arrays nested thousands deep
            raise StateUnusable(f"{self.path}: not valid JSON for a state file (too long a number or too deep a "
                                f"nesting); {MOVE_AWAY}") from None
        return State.from_json(data, self.path)

    def save(self, state: State) -> None:
        """Write `state` atomically. An OSError (a full disk, a directory made read-only) is raised as
        it is: what it means to the user depends on what the run has done by then (Engine.save)."""
        state.updated_at = now()
        data = state.to_json()
        secrets = find_secrets(data)
        if secrets:
            raise StateError(f"refusing to write {secrets[0]} to the state file: secrets live in Secrets Manager only")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = self._temp_file()
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=False)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)  # atomic: readers see the old file or the new one
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _temp_file(self) -> tuple[int, str]:
        return tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)

    def delete(self) -> None:
        """After `down`: the stack is gone, only the file is left to remove."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StateError(cannot(self.path, "delete the state file", exc,
                                    "the stack is gone: delete the file by hand")) from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the stack's lock; another command on the same stack is refused at once. Taking it
        comes before any AWS change, and so does a trial write of a temp file where `save` writes
        its own: a directory this run could not write its state to (read-only, a name too long)
        is refused here, not found out after the first part made something.

        The lock file exists only while a command holds it, and the directories made for it only
        while something is in them: a command refused before any change leaves nothing behind."""
        made = absent_directories(self.lock_path.parent)
        try:
            fd = self._take_lock()
            try:
                yield
            finally:
                # Removed while still held: a command that opened it meanwhile finds it gone once it
                # has it (`_take_lock`) and takes a new one, so two never hold two files at once.
                with contextlib.suppress(OSError):  # a directory made read-only since: it stays, harmless
                    os.unlink(self.lock_path)
                os.close(fd)  # closing releases the flock
        finally:
            for directory in made:  # the deepest first; one holding anything (the state file) stays
                try:
                    directory.rmdir()
                except OSError:
                    break

    def _take_lock(self) -> int:
        """The locked file descriptor of the lock file, its holder's pid written in it."""
        for _ in range(LOCK_ATTEMPTS):
            try:
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
                fd, created = open_lock_file(self.lock_path)
            except FileNotFoundError:  # removed (or its directory) by a command that just released it
                continue
            except OSError as exc:
                raise StateUnusable(cannot(self.path, "lock the state file", exc, WRITABLE)) from None
            held = False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                if not same_file(fd, self.lock_path):  # its holder removed it as this one opened it
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
                trial, trial_path = self._temp_file()
                os.close(trial)
                os.unlink(trial_path)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise Locked(f"{self.path}: another threetier command is running on this stack (pid {holder})") from None
            except OSError as exc:
                # Its own to remove: held, as on release, or made just now on a file system where nobody
                # can hold it (flock failed there); never a file another command may hold.
                if held or created:
                    with contextlib.suppress(OSError):
                        os.unlink(self.lock_path)
                os.close(fd)
                raise StateUnusable(cannot(self.path, "lock the state file", exc, WRITABLE)) from None
            return fd
        raise Locked(f"{self.path}: other threetier commands keep taking this stack's lock; try again")


def open_lock_file(path: Path) -> tuple[int, bool]:
    """The lock file opened for writing, and whether this call made it."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), True
    except FileExistsError:
        return os.open(path, os.O_RDWR), False


def same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (now.st_dev, now.st_ino)


def absent_directories(directory: Path) -> list[Path]:
    """`directory` and those above it that do not exist yet, the deepest first: what taking the lock makes."""
    absent = []
    for candidate in (directory, *directory.parents):
        try:
            os.stat(candidate)
        except FileNotFoundError:
            absent.append(candidate)
            continue
        except OSError:  # there but not to be looked at, or not a directory: taking the lock says why
            pass
        break
    return absent
