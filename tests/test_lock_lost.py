"""Issue 23, item 3: a run that lost its lock stops at its next Part's changes and says so. Two operators
in one process: while run A works, "another operator" (a client of the test's own) takes the stack's lock
over, or deletes it, just before a Part's first change; A stops there, exit 1, its state file saved, with
no change sent after; undisturbed, A reads the lock once per Part that changes something."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError

from helpers import cli
from threetier import lock
from threetier.aws import is_mutating

STACK = "threetier"
LOCK = lock.parameter_name(STACK)
BOB = {"user": "bob", "host": "bobs-laptop", "pid": 4242, "command": "up", "since": "2026-11-21T09:00:00Z",
       "caller": "arn:aws:iam::123456789012:user/bob", "token": "bobs"}


@dataclass(frozen=True)
class Sent:
    """One request AWS received: from which thread (a Part's task is `threetier Part N (name)`)."""
    thread: str
    operation: str
    name: str | None  # the SSM parameter's, for the lock's calls

    @property
    def is_lock(self) -> bool:
        return self.name == LOCK

    @property
    def stack_change(self) -> bool:
        return is_mutating(self.operation) and not self.is_lock


@dataclass
class Operators:
    """Every request run A sends (a request refused before it is sent is not one), and the moment the other
    operator acted (`at`: how many had been sent), when asked to before the first change of a Part."""
    sent: list[Sent] = field(default_factory=list)
    at: int | None = None
    before: str = ""  # the Part (a prefix of its task's thread name) before whose first change the other acts
    act: Callable[[], None] = lambda: None

    def after(self) -> list[Sent]:
        assert self.at is not None, "the other operator never acted"
        return self.sent[self.at:]


def take_over() -> None:
    boto3.client("ssm").put_parameter(Name=LOCK, Value=json.dumps(BOB), Type="String", Overwrite=True)


def delete() -> None:
    boto3.client("ssm").delete_parameter(Name=LOCK)


def overwrite_unreadably() -> None:
    boto3.client("ssm").put_parameter(Name=LOCK, Value="[" * 10_000, Type="String", Overwrite=True)


@pytest.fixture
def operators(monkeypatch: pytest.MonkeyPatch) -> Operators:
    """Records what reaches AWS; the other operator acts on the first change `before` names, before
    run A's check of its lock (the check runs while botocore builds the request)."""
    seen = Operators()
    real = botocore.client.BaseClient._make_api_call
    acting = threading.local()

    def make_api_call(self, operation, params):
        thread = threading.current_thread().name
        if getattr(acting, "now", False):  # the other operator's own requests
            return real(self, operation, params)
        if (seen.at is None and seen.before and thread.startswith(f"threetier {seen.before}")
                and is_mutating(operation)):
            acting.now = True
            try:
                seen.act()
            finally:
                acting.now = False
            seen.at = len(seen.sent)
        sent = Sent(thread, operation, params.get("Name"))
        try:
            answer = real(self, operation, params)
        except ClientError:
            seen.sent.append(sent)
            raise
        seen.sent.append(sent)
        return answer
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    return seen


def damage(workdir: Path) -> None:
    """Something for Part 2 (a default route gone) and for Part 7 (its group's sizes) to repair."""
    state = json.loads((workdir / ".threetier" / "threetier.json").read_text())
    table = state["parts"]["2"]["resources"]["route_tables"]["private-app-rt-az1"]
    boto3.client("ec2").delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    boto3.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName="threetier-web-asg", MinSize=1,
                                                          DesiredCapacity=1, MaxSize=3)


def default_route(workdir: Path) -> bool:
    state = json.loads((workdir / ".threetier" / "threetier.json").read_text())
    table = state["parts"]["2"]["resources"]["route_tables"]["private-app-rt-az1"]
    routes = boto3.client("ec2").describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
    return any(route.get("DestinationCidrBlock") == "0.0.0.0/0" for route in routes)


def web_sizes() -> tuple[int, int]:
    group = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["threetier-web-asg"])["AutoScalingGroups"][0]
    return group["MinSize"], group["MaxSize"]


def lock_value() -> str | None:
    try:
        return boto3.client("ssm").get_parameter(Name=LOCK)["Parameter"]["Value"]
    except boto3.client("ssm").exceptions.ParameterNotFound:
        return None


def one_error(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    return line


def saved_parts(workdir: Path) -> dict[str, dict]:
    return json.loads((workdir / ".threetier" / "threetier.json").read_text())["parts"]


@pytest.mark.parametrize(("other", "now", "left"), [
    (take_over, "is now held by bob@bobs-laptop (pid 4242, threetier up)", json.dumps(BOB)),
    (delete, "was deleted by someone else", None),
    (overwrite_unreadably, "is now held by someone (a lock value threetier cannot read)", "[" * 10_000),
], ids=["taken-over", "deleted", "unreadable"])
def test_up_stops_before_the_next_parts_changes_when_its_lock_is_no_longer_its_own(
        built: Path, operators: Operators, other, now: str, left: str | None) -> None:
    damage(built)
    operators.before, operators.act = "Part 7", other
    result = cli("up", "--yes", cwd=built)
    assert result.code == 1, result.stderr
    said = one_error(result.stderr)
    assert f"lock: stack threetier's lock {LOCK} in us-east-1 {now}" in said, said
    assert "this run (threetier up) stopped before Part 7 (web-tier)'s changes, its state file saved" in said
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    # Part 2 repaired its route before; after the other operator acted, AWS received no change of A's,
    # only the read that found the lock gone from A and the release's read (which leaves it alone).
    assert default_route(built) and web_sizes() == (1, 3)
    assert [s.operation for s in operators.after() if s.stack_change] == []
    assert [(s.operation, s.is_lock) for s in operators.after()
            if s.thread.startswith("threetier Part 7")] == [("GetParameter", True)]
    assert lock_value() == left  # the other operator's lock (or none) stays as they left it
    # The state file is saved and consistent: every Part still done, Part 7 saying why it stopped (Part 2,
    # its route put back, may have been waiting still: then it was stopped there).
    parts = saved_parts(built)
    assert all(part["status"] == "done" for part in parts.values())
    assert now in parts["7"]["error"] and parts["2"]["error"] in (None, "stopped before it finished")


def test_an_undisturbed_run_reads_its_lock_once_per_part_that_changes_something(built: Path,
                                                                                 operators: Operators) -> None:
    damage(built)
    result = cli("up", "--yes", "--json", cwd=built)
    assert result.code == 0, result.stderr
    changed = {row["part"] for row in json.loads(result.stdout)["parts"]
               if row["created"] or row["changed"] or row["deleted"]}
    assert changed == {2, 7}
    reads = [s.thread for s in operators.sent if s.is_lock and s.operation == "GetParameter"]
    # One per Part that changed, just before its first change; one by the release, on the main thread.
    assert sorted(reads) == ["MainThread", "threetier Part 2 (network)", "threetier Part 7 (web-tier)"]
    first_change = {part: next(i for i, s in enumerate(operators.sent)
                               if s.stack_change and s.thread.startswith(f"threetier Part {part}"))
                    for part in changed}
    for part, index in first_change.items():
        assert operators.sent[index - 1].is_lock and operators.sent[index - 1].thread.startswith(
            f"threetier Part {part}")
    assert default_route(built) and web_sizes() == (2, 4) and lock_value() is None


def test_a_no_op_up_never_reads_its_lock(built: Path, operators: Operators) -> None:
    assert cli("up", "--yes", cwd=built).code == 0
    lock_calls = [s.operation for s in operators.sent if s.is_lock]
    assert lock_calls == ["PutParameter", "GetParameter", "DeleteParameter"]  # take, and release: no check


def test_down_stops_before_the_next_parts_deletions_and_the_rest_of_the_stack_stays(
        built: Path, operators: Operators) -> None:
    operators.before, operators.act = "Part 6", take_over
    result = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert result.code == 1, result.stderr
    said = one_error(result.stderr)
    assert "is now held by bob@bobs-laptop" in said
    assert "this run (threetier down) stopped before Part 6 (web-image)'s changes" in said
    assert [s.operation for s in operators.after() if s.stack_change] == []
    assert any(s.stack_change and s.thread.startswith("threetier Part 7") for s in operators.sent[:operators.at])
    # Part 7 went (and left the state file); the rest is there, as the state file says.
    parts = saved_parts(built)
    assert sorted(parts) == ["1", "2", "3", "4", "5", "6"]
    assert all(part["status"] == "done" for part in parts.values())
    assert "is now held by bob@bobs-laptop" in parts["6"]["error"]
    vpc = parts["2"]["resources"]["vpc"]
    assert boto3.client("ec2").describe_vpcs(VpcIds=[vpc])["Vpcs"]
    assert lock_value() == json.dumps(BOB)


def test_pause_stops_before_the_next_parts_changes(built: Path, operators: Operators) -> None:
    operators.before, operators.act = "Part 5", delete
    result = cli("pause", cwd=built)
    assert result.code == 1, result.stderr
    said = one_error(result.stderr)
    assert "was deleted by someone else; this run (threetier pause) stopped before Part 5 (app-tier)'s changes" in said
    assert "`threetier pause` again takes the lock and goes on" in said
    assert [s.operation for s in operators.after() if s.stack_change] == []
    state = json.loads((built / ".threetier" / "threetier.json").read_text())
    assert state["paused"] is not None  # said first: `pause` again finishes the job
    assert state["parts"]["5"]["error"].startswith("pause: lock:")
    # Nothing held it any more: the next pause takes the lock and finishes.
    again = cli("pause", cwd=built)
    assert again.code == 0, again.stderr
    assert lock_value() is None



def test_while_held_each_parts_first_change_reads_the_lock_and_once_lost_every_change_is_refused() -> None:
    import io

    from helpers import moto
    from threetier.aws import Aws
    from threetier.output import Output

    def change(name: str) -> None:  # a mutating call that is not the lock's
        aws.call("ssm", "put_parameter", resource=name, Name=f"/threetier/{STACK}/{name}", Value="x", Type="String")

    def lock_reads() -> int:
        return sum(1 for c in aws.calls if c.operation == "GetParameter" and c.params.get("Name") == LOCK)

    with moto():
        aws = Aws("us-east-1", emulator=True)
        ssm = boto3.client("ssm")
        with pytest.raises(lock.LockLost) as lost, \
                lock.held(aws, STACK, "replay network", take_over=False, out=Output(stderr=io.StringIO())):
            aws.part = "Part 2 (network)"
            change("a")
            change("b")  # the same Part's task: covered already
            assert lock_reads() == 1
            delete()
            aws.part = ""  # a change outside the Parts (none is made today) is checked too
            try:
                change("c")
            except lock.LockLost as first:
                reads = lock_reads()
                aws.part = "Part 3 (database)"
                with pytest.raises(lock.LockLost) as again:
                    change("d")
                assert str(again.value) == str(first) and lock_reads() == reads  # no read: lost already
                raise
        said = str(lost.value)
        assert "was deleted by someone else; this run (threetier replay network) stopped before its next change" \
            in said and "`threetier replay network` again takes the lock" in said
        written = {p["Name"] for p in ssm.describe_parameters()["Parameters"]}
        assert written == {f"/threetier/{STACK}/a", f"/threetier/{STACK}/b"}  # c and d never reached AWS
        assert aws.on_call is None  # the watch ends with the lock


def test_a_part_that_waited_reads_its_lock_again_before_its_next_change(tmp_path: Path) -> None:
    """Minutes may pass in a wait: the lock lost meanwhile stops the Part at its next change, not at the
    end of the Part."""
    import io

    from helpers import FakeClock, moto
    from threetier.aws import Aws, Poll
    from threetier.output import Output
    with moto():
        aws = Aws("us-east-1", clock=FakeClock(), emulator=True, read_threads=1)
        out = Output(stdout=io.StringIO(), stderr=io.StringIO())
        ssm = boto3.client("ssm", region_name="us-east-1")
        def change() -> None:
            aws.call("ec2", "create_vpc", resource="a VPC", CidrBlock="10.9.0.0/16")
        with lock.held(aws, STACK, "up", take_over=False, out=out):
            aws.part = "Part 2 (network)"
            reads = lambda: sum(c.operation == "GetParameter" for c in aws.calls)  # noqa: E731
            change()
            change()
            assert reads() == 1  # once per Part, not per change
            polls = iter([Poll(False, "pending"), Poll(True, "available")])

            def probe() -> Poll:
                poll = next(polls)
                if not poll.done:
                    take_over()  # another operator, while this Part waits
                return poll
            aws.wait("NAT gateway", probe, delay=15, timeout=600)
            with pytest.raises(lock.LockLost, match="is now held by bob@bobs-laptop"):
                change()
            assert reads() == 2
        assert json.loads(ssm.get_parameter(Name=LOCK)["Parameter"]["Value"])["token"] == "bobs"  # left as it is
