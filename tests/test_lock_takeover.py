"""Issue 22, item 3: a crash is resumed, not refused. The stack's lock of a run that is provably dead
on this machine is taken over by the next run by itself; what cannot be proved is refused, saying why;
a run alive here keeps its lock even against --take-over-lock; any value at all parses."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError

from helpers import cli, moto
from threetier import lock
from threetier.aws import Aws
from threetier.output import Output

STACK = "threetier"
LOCK = lock.parameter_name(STACK)
REPO = Path(__file__).resolve().parents[1]
HERE = lock.this_machine()
needs_proc = pytest.mark.skipif(not (HERE.boot_id and HERE.pid_namespace), reason="needs Linux's /proc")


def holder_here(pid: int, **changes: object) -> lock.Holder:
    """A holder that took the lock on this machine, in this boot and pid namespace (as `changes` do not say)."""
    started = lock.process_start(pid, HERE)
    base = lock.Holder(user="alice", host=HERE.host, pid=pid, command="up", since="2026-11-21T09:00:00Z",
                       caller="arn:aws:iam::123456789012:user/alice", token="alices", machine=HERE.machine,
                       boot_id=HERE.boot_id, pid_namespace=HERE.pid_namespace,
                       start_time=started[1] if started else 12345)
    return dataclasses.replace(base, **changes)


def hold(value: lock.Holder | str) -> None:
    boto3.client("ssm").put_parameter(Name=LOCK, Value=value if isinstance(value, str) else value.to_json(),
                                      Type="String")


def lock_token() -> str | None:
    try:
        return json.loads(boto3.client("ssm").get_parameter(Name=LOCK)["Parameter"]["Value"]).get("token")
    except boto3.client("ssm").exceptions.ParameterNotFound:
        return None


def acquire(take_over: bool = False) -> tuple[lock.Holder, str]:
    """acquire() as `up` calls it, with what it said."""
    said = io.StringIO()
    me = lock.acquire(Aws("us-east-1", emulator=True), STACK, "up", take_over=take_over,
                      out=Output(stdout=io.StringIO(), stderr=said))
    return me, said.getvalue()


def refused(take_over: bool = False) -> str:
    with pytest.raises(lock.StackLocked) as caught:
        acquire(take_over)
    message = str(caught.value)
    assert "\n" not in message and "nothing was done" in message
    return message


def dead_pid() -> int:
    """The pid of a process that ran here and is gone (waited for: no zombie left)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


# -- what is recorded, and what any value parses to --------------------------------------------
@needs_proc
def test_the_lock_records_where_its_process_runs() -> None:
    with moto():
        me, _ = acquire()
        value = json.loads(boto3.client("ssm").get_parameter(Name=LOCK)["Parameter"]["Value"])
    assert value["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert value["pid_namespace"] == os.stat("/proc/self/ns/pid").st_ino and value["pid"] == os.getpid()
    stat = Path(f"/proc/{os.getpid()}/stat").read_text()
    assert value["start_time"] == int(stat[stat.rindex(")") + 1:].split()[19]) > 0
    assert value["token"] == me.token and lock.Holder.parse(json.dumps(value)) == me
    machine_id = Path("/etc/machine-id").read_text().strip() if Path("/etc/machine-id").exists() else ""
    assert bool(value["machine"]) == bool(machine_id)
    assert not machine_id or machine_id not in value["machine"]  # a keyed hash: the id itself is confidential


@needs_proc
def test_a_process_name_with_spaces_and_parentheses_is_read_after_its_last_parenthesis(tmp_path: Path) -> None:
    odd = tmp_path / "a) b (c"
    odd.symlink_to(sys.executable)
    sleeper = subprocess.Popen([str(odd), "-c", "import time; time.sleep(60)"])
    try:
        stat = Path(f"/proc/{sleeper.pid}/stat").read_text()
        assert stat.count(")") > 1, stat  # the comm field itself holds one
        started, mine = lock.process_start(sleeper.pid, HERE), lock.process_start(os.getpid(), HERE)
        assert started is not None and mine is not None
        assert started[0] in ("R", "S") and started[1] >= mine[1]  # read at the first ')', the state would be "b"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_an_old_value_without_the_new_fields_still_parses() -> None:
    old = {"user": "bob", "host": "bobs-laptop", "pid": 4242, "command": "up", "since": "2026-11-21T09:00:00Z",
           "caller": "arn:aws:iam::123456789012:user/bob", "token": "bobs"}
    holder = lock.Holder.parse(json.dumps(old))
    assert holder.readable and holder.pid == 4242 and holder.token == "bobs"
    assert (holder.boot_id, holder.machine, holder.pid_namespace, holder.start_time) == ("", "", 0, 0)


HOSTILE = [
    "", "not json", "null", "[]", '"a string"', "42", "1e400", "[" * 100_000 + "]" * 100_000,
    '{"a":' * 100_000 + "1" + "}" * 100_000, "9" * 5000,
    json.dumps({"user": "bob"}),
    '{"user": "b", "host": "h", "pid": 1e400, "command": "up", "since": "s", "token": "t"}',
    json.dumps({"user": "b", "host": "h", "pid": 10**400, "command": "up", "since": "s", "token": "t"}),
    json.dumps({"user": "b", "host": "h", "pid": -1, "command": "up", "since": "s", "token": "t"}),
    json.dumps({"user": "b", "host": "h", "pid": True, "command": "up", "since": "s", "token": "t"}),
    json.dumps({"user": ["b"], "host": "h", "pid": 1, "command": "up", "since": "s", "token": "t"}),
    json.dumps({"user": "b", "host": "h", "pid": 1, "command": "up", "since": "s", "token": ""}),
    json.dumps({"user": "b", "host": "h", "pid": 1, "command": "up", "since": "s", "token": "t",
                "start_time": 2**70}),
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_any_value_parses_to_a_holder_and_an_unreadable_one_is_said_to_be(value: str) -> None:
    holder = lock.Holder.parse(value)
    assert not holder.readable
    assert "cannot read" in holder.describe()


def test_a_readable_value_with_control_characters_is_shown_on_one_line() -> None:
    holder = lock.Holder.parse(json.dumps({"user": "bob\nerror: fake", "host": "h\r", "pid": 7, "command": "up",
                                           "since": "x", "token": "t", "caller": "a" * 500}))
    assert holder.readable and "\n" not in holder.describe() and "\r" not in holder.describe()
    assert len(holder.describe()) < 400


def test_an_unreadable_lock_is_refused_as_unreadable_and_taken_with_take_over() -> None:
    with moto():
        hold("[" * 50_000 + "]" * 50_000)
        message = refused()
        assert f"{LOCK} in us-east-1 holds a value threetier cannot read" in message and "--take-over-lock" in message
        me, said = acquire(take_over=True)
        assert f"took over the stack lock {LOCK}, whose value threetier could not read" in said
        assert lock_token() == me.token


# -- provably dead here: taken over by itself ---------------------------------------------------
@pytest.mark.slow
@needs_proc
def test_a_run_killed_outright_is_taken_over_by_the_next_and_a_live_one_never(moto_server: str, monkeypatch) -> None:
    """Two processes: one takes the lock and sleeps; while it lives, the other is refused, with and without
    --take-over-lock; once it is SIGKILLed, the other takes the lock by itself, saying whose it was."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    take_and_sleep = ("import sys, time\nfrom threetier import lock\nfrom threetier.aws import Aws\n"
                      "me = lock.acquire(Aws('us-east-1'), 'threetier', 'up')\n"
                      "print(me.pid, flush=True)\ntime.sleep(300)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen([sys.executable, "-c", take_and_sleep], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and int(holder.stdout.readline()) == holder.pid
        alive = refused()
        assert f"That run is alive on this host (process {holder.pid}, started when it took the lock" in alive
        assert "--take-over-lock" not in alive and "stale" not in alive
        forced = refused(take_over=True)
        assert f"(pid {holder.pid}, threetier up)" in forced
        assert "--take-over-lock takes only a dead run's lock: wait for it to end" in forced
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    me, said = acquire()
    assert said.count("took over the stack lock") == 1
    assert "took over the stack lock from " in said and f"(pid {holder.pid}, threetier up)" in said
    assert f"that run is dead (no process {holder.pid} runs here)" in said
    ssm = boto3.client("ssm", endpoint_url=moto_server)
    assert json.loads(ssm.get_parameter(Name=LOCK)["Parameter"]["Value"])["token"] == me.token


@needs_proc
def test_a_dead_pid_of_this_boot_is_taken_over() -> None:
    with moto():
        pid = dead_pid()
        hold(holder_here(pid))
        me, said = acquire()
        assert f"that run is dead (no process {pid} runs here)" in said and lock_token() == me.token


@needs_proc
def test_a_reused_pid_is_taken_over() -> None:
    """The pid runs (it is this very process) but started at another time than the holder's did."""
    started = lock.process_start(os.getpid(), HERE)
    assert started is not None
    with moto():
        hold(holder_here(os.getpid(), start_time=started[1] - 1))
        me, said = acquire()
        assert f"that run is dead (process {os.getpid()} here is another one, started at another time)" in said
        assert lock_token() == me.token


@needs_proc
def test_an_exited_process_not_yet_reaped_is_dead() -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = holder_here(zombie.pid)
        zombie.kill()
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, left a zombie: not reaped
        with moto():
            hold(holder)
            _, said = acquire()
        assert f"that run is dead (process {zombie.pid} has exited)" in said
    finally:
        zombie.wait()


@needs_proc
def test_another_boot_of_this_machine_is_taken_over(monkeypatch) -> None:
    monkeypatch.setattr(lock, "_machine_hash", lambda: "this-machine")
    with moto():
        hold(holder_here(os.getpid(), boot_id="00000000-0000-0000-0000-000000000000", machine="this-machine"))
        me, said = acquire()
        assert "that run is dead (this machine rebooted since)" in said and lock_token() == me.token


# -- not provable: refused, saying why, and --take-over-lock takes it --------------------------
@needs_proc
@pytest.mark.parametrize(("changes", "why"), [
    ({"host": "bobs-laptop"}, "It was taken on another host, so threetier cannot tell whether that run is still going"),
    ({"boot_id": "00000000-0000-0000-0000-000000000000", "machine": "another-machine"},
     "It was taken under another boot id, and no machine id shows it was this machine"),
    ({"boot_id": "00000000-0000-0000-0000-000000000000", "machine": ""},
     "It was taken under another boot id, and no machine id shows it was this machine"),
    ({"pid_namespace": 1}, "It was taken in another pid namespace (another container) of this machine"),
    ({"boot_id": ""}, "The lock records no boot id"),
])
def test_a_holder_not_provably_dead_is_refused_saying_why(changes: dict, why: str) -> None:
    with moto():
        pid = dead_pid()
        hold(holder_here(pid, **changes))
        message = refused()
        assert why in message, message
        assert message.endswith("wait for it to end, or if it is dead (killed, crashed, its machine gone) run again "
                                "with --take-over-lock")
        assert "stale" not in message and lock_token() == "alices"
        me, said = acquire(take_over=True)
        assert f"took over the stack lock from alice@{changes.get('host', HERE.host)} (pid {pid}" in said
        assert "(--take-over-lock)" in said and lock_token() == me.token


def test_without_proc_a_missing_pid_on_a_host_of_this_name_is_not_proof(monkeypatch) -> None:
    """macOS and the like: no boot id to compare, so the name alone does not say it was this machine."""
    monkeypatch.setattr(lock, "this_machine", lambda: lock.Machine(host=HERE.host, machine="", boot_id="",
                                                                   pid_namespace=0))
    with moto():
        hold(lock.Holder(user="alice", host=HERE.host, pid=dead_pid(), command="up", since="2026-11-21T09:00:00Z",
                         caller="", token="alices"))
        assert "This host has no boot id to compare" in refused()


@needs_proc
def test_a_live_holder_in_this_process_is_refused_even_with_take_over() -> None:
    with moto():
        hold(holder_here(os.getpid()))
        for take_over in (False, True):
            message = refused(take_over)
            assert f"That run is alive on this host (process {os.getpid()}" in message
        assert lock_token() == "alices"


# -- AWS's own races -----------------------------------------------------------------------------
def test_a_retried_put_that_finds_its_own_token_holds_the_lock(monkeypatch) -> None:
    """botocore retried a PutParameter whose first attempt wrote the lock but whose answer was lost:
    the retry's ParameterAlreadyExists is our own lock, not someone else's."""
    real = botocore.client.BaseClient._make_api_call
    puts: list[dict] = []

    def lost_answer(self, operation, params):
        answer = real(self, operation, params)
        if operation == "PutParameter" and not params.get("Overwrite"):
            puts.append(params)
            raise ClientError({"Error": {"Code": "ParameterAlreadyExists", "Message": "The parameter already "
                                         "exists."}}, operation)
        return answer
    with moto():
        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", lost_answer)
        me, said = acquire()
        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", real)
        assert len(puts) == 1 and said == "" and lock_token() == me.token
        lock.release(Aws("us-east-1", emulator=True), STACK, me)
        assert lock_token() is None


@needs_proc
def test_of_two_taking_over_at_once_the_first_write_holds_and_the_second_puts_it_back(monkeypatch) -> None:
    """Both read the dead run's lock; the other operator's overwrite lands between our read and ours:
    we find their value under ours, put it back and refuse."""
    theirs = holder_here(dead_pid(), user="bob", token="bobs", start_time=1)
    real = botocore.client.BaseClient._make_api_call

    def they_write_first(self, operation, params):
        if operation == "PutParameter" and params.get("Overwrite") and json.loads(params["Value"])["user"] != "bob":
            real(self, operation, {**params, "Value": theirs.to_json()})
        return real(self, operation, params)
    with moto():
        hold(holder_here(dead_pid()))
        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", they_write_first)
        message = refused()
        assert message.startswith("lock: taken over by bob@") and "at the same time" in message
        assert lock_token() == "bobs"


# -- end to end -----------------------------------------------------------------------------------
@needs_proc
def test_up_after_a_crash_takes_the_dead_runs_lock_and_finishes(built: Path) -> None:
    pid = dead_pid()
    hold(holder_here(pid))
    result = cli("up", "--yes", cwd=built)
    assert result.code == 0, result.stderr
    assert result.stderr.count("took over the stack lock") == 1
    assert f"took over the stack lock from alice@{HERE.host} (pid {pid}, threetier up) since 2026-11-21T09:00:00Z" \
        in result.stderr and f"that run is dead (no process {pid} runs here)" in result.stderr
    assert lock_token() is None  # released at the end, like any run's
    status = cli("status", "--json", cwd=built)
    assert status.code == 0 and json.loads(status.stdout)["lock"] is None
