"""The engine's scheduling: parts side by side, switching only where they wait, never acting on
a resource before the real-AWS model says it is ready, one writer of the state file, and a crash
anywhere still resuming to one of everything. Not timing-based: the model runs on a virtual clock."""
from __future__ import annotations

import http.server
import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bench.model import LatencyModel, VirtualClock
from helpers import FakeClock, make_engine, moto
from steps import web_tier
from test_crash_recovery import EXPECTED, Crash, census
from threetier import scan
from threetier import state as statelib
from threetier.engine import DONE, EXISTS
from threetier.scheduler import Cancelled, Deadlock, Scheduler, Task, TaskClock


# -- the scheduler -----------------------------------------------------------------
def test_tasks_take_turns_where_they_wait_in_virtual_time() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock)
    tick = TaskClock(scheduler)
    seen: list[tuple[str, float]] = []
    flags: set[str] = set()

    def slow() -> None:
        seen.append(("slow starts", clock.t))
        tick.sleep(100)  # a NAT gateway, say
        flags.add("nat")
        seen.append(("slow ready", clock.t))

    def quick() -> None:
        seen.append(("quick starts", clock.t))
        tick.sleep(30)
        seen.append(("quick slept", clock.t))
        scheduler.wait_until(lambda: "nat" in flags, "the NAT")
        seen.append(("quick goes on", clock.t))

    scheduler.run([Task("slow", slow), Task("quick", quick)])
    assert seen == [("slow starts", 0), ("quick starts", 0), ("quick slept", 30), ("slow ready", 100),
                    ("quick goes on", 100)]
    assert clock.t == 100  # overlapped: not 130


def test_only_one_task_runs_at_a_time() -> None:
    clock, running, overlaps = FakeClock(), [], []
    scheduler = Scheduler(clock)
    tick = TaskClock(scheduler)

    def body(name: str) -> Any:
        def run() -> None:
            for step in range(20):
                running.append(name)
                if len(running) > 1:
                    overlaps.append(list(running))
                sum(range(2000))  # some work while "holding the turn"
                running.remove(name)
                tick.sleep(step % 3)
        return run

    scheduler.run([Task(str(n), body(str(n))) for n in range(5)])
    assert overlaps == []


def test_a_failure_stops_the_others_at_their_next_wait_and_is_raised() -> None:
    clock, unwound = FakeClock(), []
    scheduler = Scheduler(clock)
    tick = TaskClock(scheduler)

    def failing() -> None:
        tick.sleep(5)
        raise RuntimeError("CreateDBCluster refused")

    def waiting() -> None:
        try:
            tick.sleep(600)
        except Cancelled:
            unwound.append(clock.t)
            raise

    with pytest.raises(RuntimeError, match="refused"):
        scheduler.run([Task("db", failing), Task("bake", waiting)])
    assert unwound == [5]  # stopped when the failure happened, not after its 600 s


def test_ctrl_c_lets_the_running_task_end_its_call_before_any_other_unwinds() -> None:
    """Ctrl-C reaches the main thread while a task is in the middle of an AWS call: that task
    finishes the call and stops at its next wait before any other task runs its unwinding."""
    import os
    import signal
    import time

    from threetier.aws import Clock
    scheduler = Scheduler(Clock())
    tick = TaskClock(scheduler)
    events: list[str] = []

    def calling() -> None:
        try:
            tick.sleep(0.05)
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
            time.sleep(0.4)  # the call in flight when Ctrl-C comes
            events.append("call returned")
            tick.sleep(10)
        except Cancelled:
            events.append("caller unwound")
            raise

    def parked() -> None:
        try:
            tick.sleep(60)
        except Cancelled:
            events.append("parked unwound")
            raise

    # Python's own Ctrl-C handler, whatever an earlier test in this worker process left installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            scheduler.run([Task("parked", parked), Task("calling", calling)])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert events == ["call returned", "caller unwound", "parked unwound"], f"SIGINT handler was {previous!r}"


def test_waiting_for_something_nobody_will_do_is_a_deadlock_not_a_hang() -> None:
    scheduler = Scheduler(FakeClock())

    def stuck() -> None:
        scheduler.wait_until(lambda: False, "Part 9 done")

    with pytest.raises(Deadlock, match="Part 9 done"):
        scheduler.run([Task("stuck", stuck)])


# -- the engine against the real-AWS model ------------------------------------------------
@pytest.fixture
def mocked() -> Iterator[None]:
    with moto():
        yield


def modeled(tmp_path: Path, *, sequential: bool = False):
    clock = VirtualClock()
    engine = make_engine(tmp_path, clock=clock)
    engine.sequential = sequential
    return engine, LatencyModel(engine.ctx.aws, clock), clock


def test_up_never_acts_before_the_model_says_ready_and_overlaps_the_waits(mocked, tmp_path: Path) -> None:
    engine, model, clock = modeled(tmp_path)
    engine.up()
    assert model.violations == [], model.violations
    # Only refusals a correct caller meets and retries: an SSM agent not registered yet, a NAT
    # gateway or a profile or an AMI not yet visible everywhere.
    codes = {r.code for r in model.refusals}
    assert codes <= {"InvalidInstanceId", "InvalidNatGatewayID.NotFound", "InvalidParameterValue",
                     "InvalidAMIID.NotFound"}, codes
    assert all(part.status == DONE for part in engine.ctx.state.parts.values())
    spans = engine.timeline
    # The database starts in the first minute, not after the NAT gateways (Part 2's wait).
    assert spans[3].start < 60 < spans[2].end
    # Both images bake side by side, and alongside Aurora.
    assert spans[6].start < spans[4].end and spans[4].start < spans[3].end
    # The whole is much shorter than the sum of the parts.
    assert clock.now() < 0.6 * sum(span.seconds for span in spans.values())


def test_the_round_trip_waits_for_a_slow_database(mocked, tmp_path: Path, monkeypatch) -> None:
    """The tiers turn healthy on liveness alone; the round trip at the end of Part 7 goes all the way
    to Aurora, so with a database slower than both bakes, `up` still ends only after it is available."""
    import bench.model
    monkeypatch.setattr(bench.model, "DB_INSTANCE_CREATE_SECONDS", 20 * 60.0)
    engine, model, _ = modeled(tmp_path)
    engine.up()
    assert model.violations == []
    assert engine.timeline[5].end < engine.timeline[3].end <= engine.timeline[7].end


def test_down_overlaps_and_leaves_nothing(mocked, tmp_path: Path) -> None:
    engine, _model, _clock = modeled(tmp_path)
    engine.up()
    down, down_model, down_clock = modeled(tmp_path)
    started = down_clock.now()
    down.ctx.skip_final_snapshot = True
    down.down()
    assert down_model.violations == [], down_model.violations
    assert scan.tagged(down.ctx.aws, "threetier") == []
    # Bounded by the database (instances, then the cluster), not by the sum of every part's waits.
    spans = down.timeline
    assert down_clock.now() - started < 1.2 * spans[3].seconds + 60
    assert spans[2].end >= spans[3].end and spans[1].end >= spans[3].end  # held by the database's ENIs/role


def test_sequential_runs_one_part_after_another(mocked, tmp_path: Path) -> None:
    engine, model, _clock = modeled(tmp_path, sequential=True)
    engine.up()
    assert model.violations == []
    spans = [engine.timeline[n] for n in sorted(engine.timeline)]
    assert all(earlier.end <= later.start for earlier, later in itertools.pairwise(spans))


def test_one_writer_of_the_state_file_and_it_stays_consistent(mocked, tmp_path: Path, monkeypatch) -> None:
    engine, _model, _clock = modeled(tmp_path)
    writing = threading.Lock()
    snapshots: list[dict[str, Any]] = []
    real_save = statelib.StateFile.save

    def save(self: statelib.StateFile, state: statelib.State) -> None:
        assert writing.acquire(blocking=False), "two parts wrote the state file at once"
        try:
            real_save(self, state)
            snapshots.append(json.loads(self.path.read_text()))
        finally:
            writing.release()

    monkeypatch.setattr(statelib.StateFile, "save", save)
    engine.up()
    assert len(snapshots) >= 2 * len(engine.parts)  # after each start and each finish
    for snapshot in snapshots:
        statelib.State.from_json(snapshot, tmp_path)  # every intermediate file loads
        parts = snapshot["parts"]
        # A part recorded done had every part it needs done or at least existing already.
        for number, part in parts.items():
            if part["status"] == "done":
                needs = next(p.needs for p in engine.parts if p.number == int(number))
                assert all(str(n) in parts for n in needs), (number, sorted(parts))
    final = snapshots[-1]["parts"]
    assert {n: p["status"] for n, p in final.items()} == {str(n): "done" for n in range(1, 8)}


# test_crash_recovery.py leaves these crash points to this test (its SIDE_BY_SIDE): keep the two the same.
CRASH_AFTER = ("CreateDBCluster", "RunInstances", "CreateLoadBalancer", "CreateImage", "CreateAutoScalingGroup",
               "CreateDBInstance", "CreateNatGateway")


@pytest.mark.parametrize("operation", CRASH_AFTER)
def test_a_crash_while_parts_run_side_by_side_resumes_to_one_of_everything(mocked, tmp_path: Path,
                                                                            operation: str) -> None:
    """As test_crash_recovery, but with the real-AWS model: other parts are mid-wait when one crashes."""
    engine, _model, _clock = modeled(tmp_path)

    def crash(model: Any, **_: Any) -> None:
        if model.name == operation:
            raise Crash(operation)

    for service in ("ec2", "rds", "elbv2", "autoscaling"):  # the model made these clients already
        engine.ctx.aws.client(service).meta.events.register("after-call", crash)
    with pytest.raises(Crash):
        engine.up()
    saved = json.loads((tmp_path / "state.json").read_text())
    unfinished = {n: p for n, p in saved["parts"].items() if p["status"] != "done"}
    assert any(p["error"] == "interrupted" for p in unfinished.values())
    assert len(unfinished) >= 2, unfinished  # the crash stopped other parts in flight too

    again, model_again, _ = modeled(tmp_path)
    again.up()
    assert model_again.violations == []
    assert census() == EXPECTED
    final, _, _ = modeled(tmp_path)
    final.up()
    assert final.ctx.aws.mutating_calls() == []


def test_a_part_that_needs_a_part_outside_the_run_says_so(mocked, tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    with pytest.raises(Exception, match=r"internal error: Part 5 .*needs Part 9 exists"):
        from threetier.engine import Run
        run = Run(numbers=(5,), scheduler=Scheduler(FakeClock()))
        run.need(next(p for p in engine.parts if p.number == 5), 9, EXISTS)


# -- the round trip: liveness, readiness, the page's API -------------------------------------
class _Stack(http.server.BaseHTTPRequestHandler):
    ready_after = 2  # /api/ready answers 503 this many times (the database is still coming up)
    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:  # http.server's name
        _Stack.asked.append(self.path)
        if self.path == "/api/ready":
            ready = _Stack.asked.count("/api/ready") > _Stack.ready_after
            self._send(200 if ready else 503, {"database": "up" if ready else "down"})
        elif self.path == "/api/transaction":
            self._send(200, {"result": [{"id": 1, "amount": 400, "description": "groceries"}]})
        else:
            self._send(200, {"status": "ok"})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


def test_the_round_trip_waits_for_readiness_through_the_front_door(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stack)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Stack.asked = []
    try:
        clock = FakeClock()
        engine = make_engine(tmp_path, clock=clock)
        engine.ctx.aws.emulator = False  # a real front door: this machine's loopback
        engine.ctx.part = next(p for p in engine.parts if p.number == 7)
        outcome = web_tier.round_trip(engine.ctx, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert outcome == "working: /health 200, /api/ready 200, /api/transaction 200 with 1 transactions"
    assert _Stack.asked.count("/api/ready") == 3 and _Stack.asked[-1] == "/api/transaction"
    assert clock.sleeps == [10, 10]  # polled again while the database was not ready


# -- looking is cheap ------------------------------------------------------------------
def test_a_no_op_up_and_status_are_answered_by_the_inventory(mocked, tmp_path: Path) -> None:
    """On a complete stack every read of a no-op `up` (finds, first polls of its waits, the summary's
    checks) comes from the inventory taken at its start: nothing is read one by one afterwards."""
    make_engine(tmp_path).up()
    engine = make_engine(tmp_path)
    aws = engine.ctx.aws
    real_take = engine.take_inventory
    after_inventory: list[int] = []

    def take_inventory(parts: Any = None) -> None:
        real_take(parts)
        after_inventory.append(len(aws.calls))

    engine.take_inventory = take_inventory  # type: ignore[method-assign]
    engine.up()
    assert aws.mutating_calls() == []
    assert len(aws.calls) == after_inventory[0], [c.operation for c in aws.calls[after_inventory[0]:]]
    for part in engine.parts:  # what status and plan do after the same inventory
        engine.check(part)
    assert len(aws.calls) == after_inventory[0]
    # Few reads in all: one per resource type and per thing found, not one per resource role
    # (issue 12 added 10: scaling policies, alarms, the dashboard, log groups, flow logs and their role,
    # the topic, the logs policies; all still read in the inventory's concurrent rounds). Issue 25 added
    # 2: each tier's second color's target group (its template and group are read with the first's).
    assert len(aws.calls) < 74
