"""The state file (CONTRACT.md, "State file").

An index for speed, never the truth: every part re-finds its resources in
AWS by tags and deterministic names. Written atomically (temp file + rename),
guarded by a lock so two commands cannot run on one stack at once, and never
holding a password or a secret value.
"""
from __future__ import annotations

import contextlib
import datetime as dt
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
STATE_DIR = Path(".threetier")
# Keys that would mean a secret value is about to be written: refused outright.
SECRET_KEY = re.compile(r"password|secret_?value|secret_?string|private_?key|access_?key", re.I)

DONE, PENDING, FAILED, DRIFTED = "done", "pending", "failed", "drifted"


class StateError(ThreetierError):
    pass


class Locked(UsageError):
    pass


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
class State:
    stack: str
    region: str
    account: str | None = None
    parts: dict[int, PartState] = field(default_factory=dict)
    updated_at: str | None = None

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
                    "name": p.name, "status": p.status, "resources": p.resources,
                    "started_at": p.started_at, "finished_at": p.finished_at, "error": p.error,
                }
                for number, p in sorted(self.parts.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> State:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise StateError(f"{path}: schema_version {version!r} is not {SCHEMA_VERSION}; "
                             f"move the file away (the stack is found again by its tags)")
        try:
            parts = {
                int(number): PartState(
                    name=p["name"], status=p.get("status", PENDING), resources=p.get("resources", {}),
                    started_at=p.get("started_at"), finished_at=p.get("finished_at"), error=p.get("error"),
                )
                for number, p in data.get("parts", {}).items()
            }
            return cls(stack=data["stack"], region=data["region"], account=data.get("account"),
                       parts=parts, updated_at=data.get("updated_at"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateError(f"{path}: not a threetier state file ({exc}); move it away") from None


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
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise StateError(f"{self.path}: not valid JSON; move it away (the stack is found again by its tags)") from None
        if not isinstance(data, dict):
            raise StateError(f"{self.path}: not a threetier state file; move it away")
        return State.from_json(data, self.path)

    def save(self, state: State) -> None:
        state.updated_at = now()
        data = state.to_json()
        secrets = find_secrets(data)
        if secrets:
            raise StateError(f"refusing to write {secrets[0]} to the state file: secrets live in Secrets Manager only")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
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

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the stack's lock; another command on the same stack is refused at once."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                raise Locked(f"{self.path}: another threetier command is running on this stack (pid {holder})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the flock
