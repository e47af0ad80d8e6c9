"""The stack's lock in AWS: one operator at a time changes a stack, from anywhere.

The lock is an SSM parameter, `/threetier/<stack>/lock`, in the stack's region. Taking it is
PutParameter without Overwrite, which AWS makes atomic: of two operators, exactly one creates it
and the other gets ParameterAlreadyExists. It needs nothing to exist first (it works from the
first call of the first `up`), costs nothing (a standard parameter), and `up`/`down`/`replay`/`pause`/`resume`
take it before their first read of the stack, because what they decide to create rests on
those reads. Releasing deletes it, so `down` leaves nothing behind.

Its value says who holds it (user, host, pid, command, since when, the caller's ARN), where that
process ran (the boot id, a keyed hash of the machine id, the pid namespace, the process's start
time: Linux's /proc; empty elsewhere) and a random token; only the holder's token releases it.

A run killed outright (SIGKILL, a crash, a reboot) leaves it. The next run on the same machine takes
it over by itself, saying whose it was, when that run is provably dead: the same host name and
  - the same machine (machine id) under another boot id: the machine rebooted since; or
  - the same boot and pid namespace, and no process with that pid, or one that has exited (a
    zombie), or one that started at another time (the pid was reused).
Anything else cannot be proved from here and is refused, saying what could not be told: another
host, another container (pid namespace), a host without /proc (macOS, where the same host name
and a missing pid do not tell this machine from another of the same name), a lock written by an
older threetier. Then only a person can tell a dead run from a slow one: `--take-over-lock`
takes it, except from a run that provably runs here right now. A value threetier cannot read is
reported as such and `--take-over-lock` takes it too.

While it runs, the holder checks that the lock is still its own before each Part's changes: one read,
just before the Part's first mutating call (a run that changes nothing reads nothing more). A lock
taken over meanwhile (someone thought the run dead) or deleted stops the run there, exit 1, its state
file saved, naming who holds the lock now; the other Parts stop at their next wait.
"""
from __future__ import annotations

import contextlib
import datetime
import getpass
import hashlib
import hmac
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from threetier.aws import STACK_TAG, Aws, AwsError, Call, Look
from threetier.errors import ThreetierError, UsageError
from threetier.output import Output

TAKE_OVER = "--take-over-lock"
ALREADY_HELD = "ParameterAlreadyExists"
NOT_FOUND = ("ParameterNotFound",)
VERSION_NOT_FOUND = ("ParameterNotFound", "ParameterVersionNotFound")
PID_LIMIT = 2**31  # above any system's pid_max; os.kill overflows on larger numbers
INODE_LIMIT = 2**64
# machine-id(5): the id is confidential and applications should use a keyed hash of it instead.
MACHINE_ID_KEY = b"threetier stack lock"
MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def parameter_name(stack: str) -> str:
    return f"/threetier/{stack}/lock"


def is_lock_call(call: Call) -> bool:
    """Taking and releasing the lock are writes to the account, not changes to the stack."""
    return call.service == "ssm" and call.params.get("Name", "").endswith("/lock")


@dataclass(frozen=True)
class Machine:
    """What tells this machine, its current boot and this pid namespace from any other (Linux's /proc;
    empty strings and 0 where there is none to read)."""
    host: str
    machine: str  # a keyed hash of the machine id: the same machine across reboots
    boot_id: str  # a new random id at every boot
    pid_namespace: int  # the inode of /proc/self/ns/pid: which pids this process sees


def this_machine() -> Machine:
    return Machine(host=socket.gethostname(), machine=_machine_hash(), boot_id=_read_text(BOOT_ID_FILE),
                   pid_namespace=_pid_namespace())


@dataclass(frozen=True)
class Holder:
    """Who holds the lock: enough for another operator to find them, or to know the run is dead."""
    user: str
    host: str
    pid: int
    command: str
    since: str  # UTC, ISO 8601
    caller: str  # the AWS identity (ARN) that took it
    token: str  # empty: the value could not be read
    # Where the process ran (absent from locks written before they were recorded: parsed as empty).
    machine: str = ""
    boot_id: str = ""
    pid_namespace: int = 0
    start_time: int = 0  # clock ticks after boot (field 22 of /proc/<pid>/stat)

    @classmethod
    def me(cls, aws: Aws, command: str) -> Holder:
        here, pid = this_machine(), os.getpid()
        started = process_start(pid, here)
        return cls(user=_user(), host=here.host, pid=pid, command=command,
                   since=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   caller=aws.caller_arn, token=uuid.uuid4().hex, machine=here.machine, boot_id=here.boot_id,
                   pid_namespace=here.pid_namespace, start_time=started[1] if started else 0)

    @classmethod
    def parse(cls, value: str) -> Holder:
        """The holder a lock's value names; any value at all (hand-written, another tool's, hostile) that
        is not one threetier wrote is an unreadable holder (`readable` False), never an exception."""
        try:
            data = json.loads(value)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            return cls(user=_text(data, "user"), host=_text(data, "host"), pid=_whole(data, "pid", 1, PID_LIMIT),
                       command=_text(data, "command"), since=_text(data, "since"),
                       caller=_text(data, "caller", ""), token=_text(data, "token", required=True),
                       machine=_text(data, "machine", ""), boot_id=_text(data, "boot_id", ""),
                       pid_namespace=_whole(data, "pid_namespace", 0, INODE_LIMIT, 0),
                       start_time=_whole(data, "start_time", 0, INODE_LIMIT, 0))
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
            return UNREADABLE

    @property
    def readable(self) -> bool:
        return bool(self.token)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        """`alice@laptop (pid 4242, threetier up) since 2026-11-21T18:03:12Z (7 min ago) as arn:…`"""
        if not self.readable:
            return "someone (a lock value threetier cannot read)"
        who = (f"{_shown(self.user)}@{_shown(self.host)} (pid {self.pid}, threetier {_shown(self.command)}) "
               f"since {_shown(self.since)}")
        age = _age(self.since)
        if age:
            who += f" ({age} ago)"
        if self.caller:
            who += f" as {_shown(self.caller)}"
        return who


UNREADABLE = Holder(user="?", host="?", pid=0, command="?", since="?", caller="", token="")

DEAD, ALIVE, UNKNOWN = "dead", "alive", "unknown"


@dataclass(frozen=True)
class Liveness:
    """Whether the holder's run is provably dead, provably running here, or neither; `why` says how we know
    (or what could not be told), as a clause."""
    state: str
    why: str


def liveness(holder: Holder, here: Machine) -> Liveness:
    """What this machine can prove about the holder's process (see the module's docstring)."""
    if not holder.readable:
        return Liveness(UNKNOWN, "the lock's value cannot be read")
    if holder.host != here.host:
        return Liveness(UNKNOWN, "it was taken on another host")
    if not here.boot_id:
        return Liveness(UNKNOWN, f"this host has no boot id to compare (no {BOOT_ID_FILE}), and a host name "
                                 f"alone does not say which machine took it")
    if not holder.boot_id:
        return Liveness(UNKNOWN, "the lock records no boot id (an older threetier, or a host without one, wrote "
                                 "it), and a host name alone does not say which machine or boot took it")
    if holder.boot_id != here.boot_id:
        if holder.machine and holder.machine == here.machine:
            return Liveness(DEAD, "this machine rebooted since")
        return Liveness(UNKNOWN, "it was taken under another boot id, and no machine id shows it was this "
                                 "machine (another may have the same host name)")
    if not holder.pid_namespace or holder.pid_namespace != here.pid_namespace:
        return Liveness(UNKNOWN, "it was taken in another pid namespace (another container) of this machine, "
                                 "whose processes cannot be seen from here")
    pid = holder.pid
    if not _pid_exists(pid):
        return Liveness(DEAD, f"no process {pid} runs here")
    started = process_start(pid, here)
    if started is None:
        return Liveness(UNKNOWN, f"a process {pid} runs here but its start time cannot be read")
    state, ticks = started
    if holder.start_time and ticks != holder.start_time:
        return Liveness(DEAD, f"process {pid} here is another one, started at another time")
    if state in ("Z", "X"):
        return Liveness(DEAD, f"process {pid} has exited")
    if not holder.start_time:
        return Liveness(UNKNOWN, f"a process {pid} runs here, and the lock does not record when its own started")
    return Liveness(ALIVE, f"process {pid}, started when it took the lock, runs here now")


class StackLocked(UsageError):
    """Another run holds the stack's lock; nothing was done (exit 2, like every refusal before a change)."""


class LockLost(ThreetierError):
    """The run's lock is no longer its own (taken over, deleted): it stopped before a Part's changes (exit 1)."""


def lock_look(stack: str) -> Look:
    """The lock as `status` reads it (in the inventory's first round)."""
    return Look("ssm", "get_parameter", {"Name": parameter_name(stack)}, missing_ok=NOT_FOUND)


def current(aws: Aws, stack: str) -> Holder | None:
    found = aws.look(lock_look(stack), resource=f"stack lock {parameter_name(stack)}")
    return Holder.parse(found["Parameter"]["Value"]) if found else None


@dataclass(frozen=True)
class Found:
    """The lock's value as read: who it names, the value itself and its version (SSM counts every write)."""
    holder: Holder
    value: str
    version: int


def acquire(aws: Aws, stack: str, command: str, *, take_over: bool = False, out: Output | None = None) -> Holder:
    """Take the stack's lock; take it over from a run that is provably dead (or, asked to, from one we
    cannot prove is alive here); else refuse naming who holds it."""
    name, me = parameter_name(stack), Holder.me(aws, command)
    found = None
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
        found = _read(aws, name)
        if found is not None:
            break
    if found is None:
        raise StackLocked(f"lock: stack {stack}'s lock {name} keeps changing hands; nothing was done, try again")
    holder = found.holder
    if holder.readable and holder.token == me.token:
        # Our own write: botocore retried a PutParameter whose first attempt succeeded but whose answer was lost.
        return me
    verdict = liveness(holder, this_machine())
    if verdict.state == ALIVE or (verdict.state == UNKNOWN and not take_over):
        raise StackLocked(_refusal(stack, aws.region, name, holder, verdict, take_over))
    _replace(aws, name, found, me)
    if out is not None:
        if not holder.readable:
            out.info(f"took over the stack lock {name}, whose value threetier could not read ({TAKE_OVER})")
        elif verdict.state == DEAD:
            out.info(f"took over the stack lock from {holder.describe()}: that run is dead ({verdict.why})")
        else:
            out.info(f"took over the stack lock from {holder.describe()} ({TAKE_OVER})")
    return me


def _refusal(stack: str, region: str, name: str, holder: Holder, verdict: Liveness, take_over: bool) -> str:
    if not holder.readable:
        return (f"lock: stack {stack}'s lock {name} in {region} holds a value threetier cannot read (aws ssm "
                f"get-parameter --name {name} shows it); nothing was done. If no run is changing the stack, run "
                f"again with {TAKE_OVER}")
    head = f"lock: stack {stack} in {region} is being changed by {holder.describe()}; nothing was done."
    if verdict.state == ALIVE:
        refused = f"; {TAKE_OVER} takes only a dead run's lock" if take_over else ""
        return f"{head} That run is alive on this host ({verdict.why}){refused}: wait for it to end"
    return (f"{head} {verdict.why[0].upper()}{verdict.why[1:]}, so threetier cannot tell whether that run is "
            f"still going: wait for it to end, or if it is dead (killed, crashed, its machine gone) run again "
            f"with {TAKE_OVER}")


def _replace(aws: Aws, name: str, found: Found, me: Holder) -> None:
    """Overwrite the lock `found` read. SSM has no compare-and-swap, but it numbers every write: of two
    operators replacing the same value at once, the one whose write follows it directly holds the lock;
    the other finds someone else's value under its own and puts that back before refusing."""
    written = aws.call("ssm", "put_parameter", resource=f"stack lock {name}", Name=name, Value=me.to_json(),
                       Type="String", Overwrite=True)["Version"]
    if written in (1, found.version + 1):  # it was gone, so ours replaced nobody's; or ours replaced that value
        return
    replaced = _read(aws, f"{name}:{written - 1}")
    if replaced is None or replaced.holder.token in (me.token, found.holder.token):
        return  # our own first attempt (a retried write), or the value we meant to replace
    aws.call("ssm", "put_parameter", resource=f"stack lock {name}", Name=name, Value=replaced.value,
             Type="String", Overwrite=True)
    raise StackLocked(f"lock: taken over by {replaced.holder.describe()} at the same time; nothing was done")


def release(aws: Aws, stack: str, me: Holder) -> None:
    """Delete the lock if it is still ours (someone may have taken it over meanwhile)."""
    name = parameter_name(stack)
    found = _read(aws, name)
    if found is not None and found.holder.token == me.token:
        aws.call("ssm", "delete_parameter", resource=f"stack lock {name}", Name=name, missing_ok=NOT_FOUND)


@dataclass
class Watch:
    """The holder's check that the lock is still its own, called with every AWS call (the AWS layer's
    `on_call`, before the call is sent): before the first change of each Part's task (the AWS layer's
    label of the Part running in this thread: `down` starts a stopped cluster for Part 3 on the main
    thread, then deletes it in Part 3's task), and before its first change after each wait, one read
    of the lock. It is an inventory look, but the
    change it precedes has just emptied the inventory (as every change does), so it reads AWS now."""
    aws: Aws
    stack: str
    me: Holder
    checked: set[tuple[str, int]] = field(default_factory=set)  # (Part, thread) whose changes it covers
    lost: str = ""  # once lost: what was said; every later change is refused with it, without a read

    def __call__(self, call: Call) -> None:
        if not call.mutating or is_lock_call(call):
            return
        part = self.aws.part
        if not self.lost:
            task = (part, threading.get_ident())
            if task in self.checked:
                return
            holder = current(self.aws, self.stack)
            if holder is not None and holder.token == self.me.token:
                self.checked.add(task)
                return
            self.lost = self._stopped(holder, part)
        raise LockLost(self.lost)

    def waited(self, _resource: str, _poll: Any) -> None:
        """A Part that waited (minutes, on AWS) reads the lock again before its next change: a run
        that lost its lock meanwhile stops there, not at the end of the Part."""
        self.checked.discard((self.aws.part, threading.get_ident()))

    def _stopped(self, holder: Holder | None, part: str) -> str:
        name = parameter_name(self.stack)
        before = f"{part}'s changes" if part else "its next change"
        head = f"lock: stack {self.stack}'s lock {name} in {self.aws.region}"
        stopped = f"this run (threetier {_shown(self.me.command)}) stopped before {before}, its state file saved"
        if holder is None:
            return (f"{head} was deleted by someone else; {stopped}: `threetier {_shown(self.me.command)}` "
                    f"again takes the lock and goes on")
        return f"{head} is now held by {holder.describe()}; {stopped}: that run changes the stack now"


@contextlib.contextmanager
def held(aws: Aws, stack: str, command: str, *, take_over: bool, out: Output) -> Iterator[Holder]:
    """The lock for the length of a command, released however it ends (error, Ctrl-C, SIGTERM); while it
    is held, each Part's changes are preceded by a check that it is still this run's (`Watch`)."""
    me = acquire(aws, stack, command, take_over=take_over, out=out)
    watch, shown, polled = Watch(aws, stack, me), aws.on_call, aws.on_poll

    def on_call(call: Call) -> None:
        watch(call)  # first: a change refused is not shown as made
        if shown is not None:
            shown(call)

    def on_poll(resource: str, poll: Any) -> None:
        watch.waited(resource, poll)
        if polled is not None:
            polled(resource, poll)
    aws.on_call, aws.on_poll = on_call, on_poll
    try:
        yield me
    finally:
        aws.on_call, aws.on_poll = shown, polled
        try:
            release(aws, stack, me)
        except AwsError as exc:  # the command's own outcome matters more; say how to clear it
            out.error(f"could not release the stack lock {parameter_name(stack)} ({exc.code}); the next run "
                      f"on this machine takes it over, elsewhere it needs {TAKE_OVER}")


def _read(aws: Aws, name: str) -> Found | None:
    """The lock's value (`name` may select a version, `…/lock:3`), or None when there is none."""
    got: dict[str, Any] | None = aws.call("ssm", "get_parameter", resource=f"stack lock {name}", Name=name,
                                          missing_ok=VERSION_NOT_FOUND)
    if not got:
        return None
    value = got["Parameter"]["Value"]
    return Found(Holder.parse(value), value, int(got["Parameter"].get("Version", 0)))


# -- this machine, from /proc ------------------------------------------------------------------
def process_start(pid: int, here: Machine) -> tuple[str, int] | None:
    """Process `pid`'s state and start time (clock ticks after boot), or None when they cannot be read:
    no /proc, a /proc of another pid namespace than ours, or pids hidden (hidepid)."""
    if not here.pid_namespace or not _proc_is_ours():
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
            text = stat.read()
        # `pid (comm) state ppid …`: comm may hold spaces and parentheses, so the fields start after the last ')'.
        fields = text[text.rindex(")") + 1:].split()
        return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    except (OSError, ValueError, IndexError):
        return None


def _pid_exists(pid: int) -> bool:
    """Signal 0 checks without sending anything, and sees pids that hidepid hides from /proc."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's; a number no pid can be
        return True
    return True


def _proc_is_ours() -> bool:
    try:
        return int(os.readlink("/proc/self")) == os.getpid()
    except (OSError, ValueError):
        return False


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _machine_hash() -> str:
    for path in MACHINE_ID_FILES:
        machine_id = _read_text(path)
        if machine_id:
            return hmac.new(MACHINE_ID_KEY, machine_id.encode(), hashlib.sha256).hexdigest()[:32]
    return ""


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read().strip()
    except OSError:
        return ""


# -- reading a value that anyone may have written ----------------------------------------------
def _text(data: dict[str, Any], key: str, default: str | None = None, *, required: bool = False) -> str:
    value = data.get(key, default) if default is not None else data[key]
    if not isinstance(value, str) or (required and not value):
        raise TypeError(key)
    return value


def _whole(data: dict[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    value = data.get(key, default) if default is not None else data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        raise ValueError(key)
    return value


def _shown(text: str) -> str:
    """A field as one short line, whatever was written into it."""
    line = " ".join(text.split())
    return line if len(line) <= 120 else line[:119] + "…"


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
