"""The stack's lock in AWS: one operator at a time changes a stack, from anywhere.

The lock is an SSM parameter, `/threetier/<stack>/lock`, in the stack's region. Taking it is
PutParameter without Overwrite, which AWS makes atomic: of two operators, exactly one creates it
and the other gets ParameterAlreadyExists. It needs nothing to exist first (it works from the
first call of the first `up`), costs nothing (a standard parameter), and `up`/`down`/`replay`/`pause`/`resume`
take it before their first read of the stack, because what they decide to create rests on
those reads. Releasing deletes it, so `down` leaves nothing behind.

Its value says who holds it (user, host, pid, command, since when, the caller's ARN) and a
random token; only the holder's token releases it. A run killed outright (SIGKILL, a lost
laptop) leaves it: nothing takes it over unless asked to (`--take-over-lock`), with the
holder shown, because only a person can tell a dead run from a slow one.
"""
from __future__ import annotations

import contextlib
import datetime
import getpass
import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from threetier.aws import STACK_TAG, Aws, AwsError, Call, Look
from threetier.errors import UsageError
from threetier.output import Output

TAKE_OVER = "--take-over-lock"
ALREADY_HELD = "ParameterAlreadyExists"
NOT_FOUND = ("ParameterNotFound",)


def parameter_name(stack: str) -> str:
    return f"/threetier/{stack}/lock"


def is_lock_call(call: Call) -> bool:
    """Taking and releasing the lock are writes to the account, not changes to the stack."""
    return call.service == "ssm" and call.params.get("Name", "").endswith("/lock")


@dataclass(frozen=True)
class Holder:
    """Who holds the lock: enough for another operator to find them, or to know the run is dead."""
    user: str
    host: str
    pid: int
    command: str
    since: str  # UTC, ISO 8601
    caller: str  # the AWS identity (ARN) that took it
    token: str

    @classmethod
    def me(cls, aws: Aws, command: str) -> Holder:
        return cls(user=_user(), host=socket.gethostname(), pid=os.getpid(), command=command,
                   since=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   caller=aws.caller_arn, token=uuid.uuid4().hex)

    @classmethod
    def parse(cls, value: str) -> Holder:
        try:
            data = json.loads(value)
            return cls(user=str(data["user"]), host=str(data["host"]), pid=int(data["pid"]),
                       command=str(data["command"]), since=str(data["since"]), caller=str(data.get("caller", "")),
                       token=str(data["token"]))
        except (ValueError, TypeError, KeyError):  # written by hand, or by another tool: still a lock
            return cls(user="?", host="?", pid=0, command="?", since="?", caller="", token="")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        """`alice@laptop (pid 4242, threetier up) since 2026-11-21T18:03:12Z (7 min ago) as arn:…`"""
        who = f"{self.user}@{self.host} (pid {self.pid}, threetier {self.command}) since {self.since}"
        age = _age(self.since)
        if age:
            who += f" ({age} ago)"
        if self.caller:
            who += f" as {self.caller}"
        return who

    def dead_here(self) -> bool:
        """Whether the holder was a process on this host that no longer runs (a hint, never a takeover)."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # exists, owned by someone else
            return False
        return False


class StackLocked(UsageError):
    """Another run holds the stack's lock; nothing was done (exit 2, like every refusal before a change)."""


def lock_look(stack: str) -> Look:
    """The lock as `status` reads it (in the inventory's first round)."""
    return Look("ssm", "get_parameter", {"Name": parameter_name(stack)}, missing_ok=NOT_FOUND)


def current(aws: Aws, stack: str) -> Holder | None:
    found = aws.look(lock_look(stack), resource=f"stack lock {parameter_name(stack)}")
    return Holder.parse(found["Parameter"]["Value"]) if found else None


def acquire(aws: Aws, stack: str, command: str, *, take_over: bool = False, out: Output | None = None) -> Holder:
    """Take the stack's lock, or refuse naming who holds it."""
    name, me = parameter_name(stack), Holder.me(aws, command)
    holder = None
    for _ in range(3):  # a lock released between our write and our read: try again
        try:
            aws.call("ssm", "put_parameter", resource=f"stack lock {name}", Name=name, Value=me.to_json(),
                     Type="String", Overwrite=False,
                     Description=f"threetier: who is changing stack {stack} in {aws.region}; deleted when done",
                     Tags=[{"Key": STACK_TAG, "Value": stack}, {"Key": "Name", "Value": f"{stack}-lock"}])
            return me
        except AwsError as exc:
            if exc.code != ALREADY_HELD:
                raise
        holder = _read(aws, name)
        if holder is not None:
            break
    if holder is None:
        raise StackLocked(f"lock: stack {stack}'s lock {name} keeps changing hands; nothing was done, try again")
    if not take_over:
        hint = (f" Process {holder.pid} no longer runs on this host: the lock is stale." if holder.dead_here()
                else "")
        raise StackLocked(
            f"lock: stack {stack} in {aws.region} is being changed by {holder.describe()}; nothing was done.{hint} "
            f"Wait for that run to end; if it is dead (killed, crashed, its machine gone), run again with {TAKE_OVER}")
    # Overwrite, then read back: of two operators taking over at once, the last write wins and the
    # other sees a token that is not its own.
    aws.call("ssm", "put_parameter", resource=f"stack lock {name}", Name=name, Value=me.to_json(),
             Type="String", Overwrite=True)
    now_held = _read(aws, name)
    if now_held is None or now_held.token != me.token:
        other = now_held.describe() if now_held else "nobody"
        raise StackLocked(f"lock: taken over by {other} at the same time; nothing was done")
    if out is not None:
        out.info(f"took over the stack lock from {holder.describe()}")
    return me


def release(aws: Aws, stack: str, me: Holder) -> None:
    """Delete the lock if it is still ours (someone may have taken it over meanwhile)."""
    name = parameter_name(stack)
    holder = _read(aws, name)
    if holder is not None and holder.token == me.token:
        aws.call("ssm", "delete_parameter", resource=f"stack lock {name}", Name=name, missing_ok=NOT_FOUND)


@contextlib.contextmanager
def held(aws: Aws, stack: str, command: str, *, take_over: bool, out: Output) -> Iterator[Holder]:
    """The lock for the length of a command, released however it ends (error, Ctrl-C, SIGTERM)."""
    me = acquire(aws, stack, command, take_over=take_over, out=out)
    try:
        yield me
    finally:
        try:
            release(aws, stack, me)
        except AwsError as exc:  # the command's own outcome matters more; say how to clear it
            out.error(f"could not release the stack lock {parameter_name(stack)} ({exc.code}); the next run "
                      f"needs {TAKE_OVER}")


def _read(aws: Aws, name: str) -> Holder | None:
    found: dict[str, Any] | None = aws.call("ssm", "get_parameter", resource=f"stack lock {name}", Name=name,
                                            missing_ok=NOT_FOUND)
    return Holder.parse(found["Parameter"]["Value"]) if found else None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry
        return f"uid {os.getuid()}"


def _age(since: str) -> str:
    try:
        then = datetime.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return ""
    seconds = (datetime.datetime.now(datetime.timezone.utc) - then).total_seconds()
    if seconds < 90:
        return f"{max(int(seconds), 0)} s"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{int(seconds // 86400)} days"
