"""`threetier pause` and `resume` (lab mode), against moto; the pending
states moto cannot produce (a cluster starting, stopping; instances draining) with botocore's Stubber."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, cli, make_engine, moto, write_config
from steps import app_tier, database
from test_crash_recovery import census
from threetier import lock
from threetier import state as statelib
from threetier.blocks import balancing
from threetier.engine import Engine

STATE = Path(".threetier") / "threetier.json"
CLUSTER = "threetier-aurora"
LOCK_CALLS = {"PutParameter", "DeleteParameter"}


@pytest.fixture
def mocked():
    with moto():
        yield


def topology() -> dict[str, Any]:
    """test_crash_recovery's census, and what pause changes: group sizes, the cluster's status, the routes to
    NAT gateways, whether the alarms notify."""
    ec2, rds = boto3.client("ec2"), boto3.client("rds")
    groups = boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    routes = [route for table in ec2.describe_route_tables()["RouteTables"] for route in table["Routes"]
              if route.get("DestinationCidrBlock") == "0.0.0.0/0"]
    return {**census(),
            "sizes": sorted((g["AutoScalingGroupName"], g["MinSize"], g["DesiredCapacity"], g["MaxSize"],
                             len(g["Instances"])) for g in groups),
            "cluster": rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]["Status"],
            "routes_to_nat": len([r for r in routes if r.get("NatGatewayId")]),
            "routes_to_igw": len([r for r in routes if r.get("GatewayId", "").startswith("igw-")]),
            "alarm_actions": sorted({a["ActionsEnabled"] for a in boto3.client("cloudwatch").describe_alarms()[
                "MetricAlarms"]})}


def paused_topology(running: dict[str, Any]) -> dict[str, Any]:
    """What a fresh `up`'s topology is once paused: no NAT gateway, Elastic IP or route to one, both
    groups at 0/0/0 with no instance, the cluster stopped, the alarms silent; all else as it was."""
    return {**running, "nats": 0, "eips": 0, "routes_to_nat": 0, "cluster": "stopped", "alarm_actions": [False],
            "sizes": [(name, 0, 0, 0, 0) for name, *_ in running["sizes"]]}


def mutating(calls: list[str]) -> list[str]:
    """The mutating operations in `calls`, less taking and releasing the stack's lock."""
    from threetier.aws import is_mutating
    return [op for op in calls if is_mutating(op) and op not in LOCK_CALLS]


def saved(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / STATE).read_text())


# -- the whole cycle -----------------------------------------------------------------
def test_pause_status_resume_status_ends_with_the_topology_of_a_fresh_up(built: Path) -> None:
    running = topology()  # a fresh `up`'s: the reference stack
    assert running["nats"] == 2 and running["routes_to_nat"] == 2 and running["alarm_actions"] == [True]

    paused = cli("pause", "--json", cwd=built)
    assert paused.code == 0, paused.stderr
    report = json.loads(paused.stdout)  # one object, nothing else
    assert report["command"] == "pause" and report["paused"]["since"]
    assert report["paused"]["aurora_restarts_at"] > report["paused"]["since"]
    assert report["paused_monthly_usd"] < report["running_monthly_usd"]
    assert topology() == paused_topology(running)
    # Kept: the load balancers and listeners, images, bucket, database, secret, alarms, dashboard.
    assert saved(built)["paused"] == report["paused"]
    assert saved(built)["parts"]["2"]["resources"]["nat_gateways"] == {}

    status = cli("status", "--json", cwd=built)
    assert status.code == 0, status.stdout  # a stack paused as pause leaves it is healthy
    seen = json.loads(status.stdout)
    assert seen["paused"] == report["paused"]
    assert [p["status"] for p in seen["parts"]] == ["done"] * 7
    assert all(p["drift"] == [] for p in seen["parts"]), [p["drift"] for p in seen["parts"]]
    notes = [note for p in seen["parts"] for note in p["notes"]]
    assert any("no NAT gateway while paused" in note for note in notes)
    assert any(f"DB cluster {CLUSTER}: stopped while paused" in note for note in notes)
    assert any("threetier-web-asg: 0 instances while paused" in note for note in notes)
    text = cli("status", cwd=built)
    assert text.code == 0
    assert f"paused since {report['paused']['since']}" in text.stdout
    assert f"AWS starts the stopped Aurora cluster by itself on {report['paused']['aurora_restarts_at']}" \
        in " ".join(text.stdout.split())

    plan = cli("plan", "--json", "--detailed-exitcode", cwd=built)
    assert plan.code == 2  # resume has work to do
    planned = json.loads(plan.stdout)
    assert planned["paused"] == report["paused"]
    network = planned["parts"][1]
    assert "NAT gateway threetier-nat-az1" in network["create"] and "Elastic IP threetier-nat-eip-az2" in network["create"]
    changes = [change for p in planned["parts"] for change in p["change"]]
    assert any(f"DB cluster {CLUSTER}: stopped" in change for change in changes)
    assert any("threetier-app-asg: min/max (0, 0)" in change for change in changes)
    assert "`threetier resume` (or `up`) would make these changes" in cli("plan", cwd=built).stdout

    resumed = cli("resume", "--json", cwd=built)
    assert resumed.code == 0, resumed.stderr
    done = json.loads(resumed.stdout)
    assert done["command"] == "resume" and done["was_paused"] == report["paused"]
    assert topology() == running
    assert "paused" not in saved(built)
    after = cli("status", "--json", cwd=built)
    assert after.code == 0 and json.loads(after.stdout)["paused"] is None
    assert all(p["drift"] == [] for p in json.loads(after.stdout)["parts"])


def test_pause_twice_and_resume_on_a_running_stack_change_nothing(built: Path, calls: list[str]) -> None:
    assert cli("pause", cwd=built).code == 0
    first = saved(built)["paused"]

    calls.clear()
    again = cli("pause", cwd=built)
    assert again.code == 0, again.stderr
    assert mutating(calls) == []
    assert "it was paused already, nothing changed; 0 mutating AWS calls" in again.stdout
    assert saved(built)["paused"] == first  # still paused since the first pause

    assert cli("resume", cwd=built).code == 0
    calls.clear()
    no_op = cli("resume", cwd=built)
    assert no_op.code == 0, no_op.stderr
    assert mutating(calls) == []
    assert "not paused: verifying it as `up` does" in no_op.stderr and "0 mutating AWS calls" in no_op.stdout


def test_up_on_a_paused_stack_resumes_it_and_replay_refuses(built: Path, calls: list[str]) -> None:
    running = topology()
    assert cli("pause", cwd=built).code == 0

    calls.clear()
    replay = cli("replay", "network", cwd=built)
    assert replay.code == 2 and "stack threetier is paused" in replay.stderr and "`threetier resume`" in replay.stderr
    assert mutating(calls) == []

    up = cli("up", "--yes", cwd=built)
    assert up.code == 0, up.stderr
    assert "is paused (since" in up.stderr and "as `threetier resume` does" in up.stderr
    assert topology() == running and "paused" not in saved(built)


def test_a_stack_paused_after_a_replay_is_paused_not_drifted(built: Path) -> None:
    """`replay 5` checks the parts Part 5 needs, Part 3's cluster among them: what those checks saw
    (db_status=available) is no index and stays out of the state file, so once the stack is paused
    its stopped cluster is what pause means, not a change since the file was written."""
    for command in (["up"], ["replay", "5"], ["up"], ["pause"]):
        done = cli(*command, cwd=built)
        assert done.code == 0, (command, done.stderr)
    parts = saved(built)["parts"]
    assert all(not set(part["resources"]) & statelib.OBSERVED_RESOURCES for part in parts.values()), parts
    status = cli("status", cwd=built)
    assert status.code == 0, status.stdout
    assert "state file says" not in status.stdout and "paused since" in status.stdout


# -- refusals ------------------------------------------------------------------------------
def test_pause_and_resume_refuse_a_stack_that_does_not_exist(mocked, tmp_path: Path, calls: list[str]) -> None:
    write_config(tmp_path)  # down and pause need a config file
    nothing = cli("pause", cwd=tmp_path)
    assert nothing.code == 2 and "is not deployed in us-east-1; nothing to pause" in nothing.stderr
    assert len(nothing.stderr.strip().splitlines()) == 2  # the command's first line, then the refusal
    assert cli("resume", cwd=tmp_path).code == 2
    assert "does not exist in us-east-1; `threetier up` builds it" in cli("resume", cwd=tmp_path).stderr
    assert mutating(calls) == []


def test_pause_refuses_a_stack_not_fully_up(built: Path, calls: list[str]) -> None:
    boto3.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="threetier-app-asg", ForceDelete=True)
    calls.clear()
    half = cli("pause", cwd=built)
    assert half.code == 2
    assert ("is not fully up (Part 5 (app-tier): Auto Scaling group threetier-app-asg is missing); nothing was "
            "changed: `threetier up` first") in half.stderr
    assert mutating(calls) == [] and "paused" not in saved(built)


@pytest.mark.parametrize("command", ["pause", "resume"])
def test_pause_and_resume_hold_the_stack_lock(built: Path, calls: list[str], command: str) -> None:
    other = lock.Holder(user="bob", host="elsewhere", pid=4242, command="up", since="2026-11-21T18:03:12Z",
                        caller="arn:aws:iam::123456789012:user/bob", token="theirs")
    boto3.client("ssm").put_parameter(Name=lock.parameter_name("threetier"), Value=other.to_json(), Type="String")
    calls.clear()
    refused = cli(command, cwd=built)
    assert refused.code == 2
    assert "is being changed by bob@elsewhere (pid 4242, threetier up)" in refused.stderr
    assert [op for op in calls if op != "GetParameter" and op.startswith(("Put", "Delete", "Update", "Stop", "Start"))] \
        == ["PutParameter"]  # the attempt to take it, nothing else
    # Taken while the command runs: a run holding it is named by `status`.
    boto3.client("ssm").delete_parameter(Name=lock.parameter_name("threetier"))
    calls.clear()
    assert cli(command, cwd=built).code == 0
    from threetier.aws import is_mutating
    changed = [op for op in calls if is_mutating(op)]
    assert changed[0] == "PutParameter" and changed[-1] == "DeleteParameter"  # taken first, released last
    assert len(changed) > 2 or command == "resume"  # pause changed the stack in between
    with pytest.raises(boto3.client("ssm").exceptions.ParameterNotFound):
        boto3.client("ssm").get_parameter(Name=lock.parameter_name("threetier"))


def test_a_tier_with_min_0_comes_back_to_its_desired_size(mocked, tmp_path: Path) -> None:
    """A lab tier allowed to scale to nothing (min 0) is paused at max 0: resume gives it its desired
    size again, not min's 0 (with scaling on, desired is otherwise the policies')."""
    # Built here: no reference stack has this config.
    (tmp_path / "config.yaml").write_text("app:\n  asg: {min: 0, desired: 1, max: 2}\n")
    assert cli("up", "--yes", cwd=tmp_path).code == 0
    assert cli("pause", cwd=tmp_path).code == 0
    assert cli("resume", cwd=tmp_path).code == 0
    group = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["threetier-app-asg"])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (0, 1, 2)


# -- the order of a pause -------------------------------------------------------------------
def test_pause_removes_the_routes_then_the_nat_gateways_then_their_elastic_ips(built: Path) -> None:
    """moto releases an Elastic IP still on a NAT gateway and leaves no blackhole: the order is
    asserted on the calls made, per NAT gateway."""
    engine = make_engine(built)
    engine.pause()
    calls = engine.ctx.aws.calls
    order = [(c.operation, c.params.get("NatGatewayId") or c.params.get("AllocationId") or c.params.get("RouteTableId"))
             for c in calls if c.operation in ("DeleteRoute", "DeleteNatGateway", "ReleaseAddress",
                                              "DescribeNatGateways")]
    index = {op: [i for i, (name, _) in enumerate(order) if name == op] for op in ("DeleteRoute", "DeleteNatGateway",
                                                                                   "ReleaseAddress")}
    assert len(index["DeleteRoute"]) == 2 and len(index["DeleteNatGateway"]) == 2 and len(index["ReleaseAddress"]) == 2
    assert max(index["DeleteRoute"]) < min(index["DeleteNatGateway"])
    assert max(index["DeleteNatGateway"]) < min(index["ReleaseAddress"])
    # Between the deletes and the releases, the gateways were looked at: waited for until deleted.
    assert any(name == "DescribeNatGateways" for name, _ in order[max(index["DeleteNatGateway"]):
                                                                  min(index["ReleaseAddress"])])
    # The alarms were silenced before the groups went to 0 (a tier with no instance answers 503).
    operations = [c.operation for c in calls]
    assert operations.index("PutMetricAlarm") < operations.index("UpdateAutoScalingGroup")
    sizes = [c.params for c in calls if c.operation == "UpdateAutoScalingGroup"]
    assert all((p["MinSize"], p["DesiredCapacity"], p["MaxSize"]) == (0, 0, 0) for p in sizes) and len(sizes) == 2


# -- crashes ---------------------------------------------------------------------------------
class Crash(KeyboardInterrupt):
    """The process dies right after AWS did the work, before threetier saw the answer."""


def crash_after(engine: Engine, operation: str, run: str) -> None:
    def crash(model, **_):
        if model.name == operation:
            raise Crash(operation)
    engine.ctx.aws.session.events.register("after-call", crash)
    with pytest.raises(Crash):
        getattr(engine, run)()


@pytest.mark.parametrize("operation", ["PutMetricAlarm", "UpdateAutoScalingGroup", "StopDBCluster", "DeleteRoute",
                                       "DeleteNatGateway", "ReleaseAddress"])
def test_a_crash_during_pause_then_pause_again_converges(built: Path, operation: str) -> None:
    running = topology()
    crash_after(make_engine(built), operation, "pause")
    state = json.loads((built / "state.json").read_text())
    assert state["paused"]["since"]  # written before the first change: status says paused

    again = make_engine(built)
    again.pause()
    assert topology() == paused_topology(running)
    assert again.ctx.state.paused is not None and again.ctx.state.paused.aurora_restarts_at
    final = make_engine(built)
    final.pause()
    assert [c.operation for c in final.ctx.aws.mutating_calls()] == []


@pytest.mark.parametrize("operation", ["StartDBCluster", "AllocateAddress", "CreateNatGateway", "CreateRoute",
                                       "UpdateAutoScalingGroup", "PutMetricAlarm"])
def test_a_crash_during_resume_then_resume_again_converges(built: Path, operation: str) -> None:
    running = topology()
    make_engine(built).pause()
    crash_after(make_engine(built), operation, "up")  # resume is `up`
    assert json.loads((built / "state.json").read_text())["paused"]  # not resumed until it is

    again = make_engine(built)
    again.up()
    assert topology() == running and again.ctx.state.paused is None
    final = make_engine(built)
    final.up()
    assert [c.operation for c in final.ctx.aws.mutating_calls()] == []


# -- down of a paused stack -------------------------------------------------------------------
def test_down_of_a_paused_stack_starts_the_cluster_first_and_leaves_nothing(built: Path, calls: list[str]) -> None:
    """Real AWS deletes neither a stopped cluster nor its instances (test_database plays it with
    Stubber): `down` starts it before it deletes anything."""
    assert cli("pause", cwd=built).code == 0
    calls.clear()
    gone = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert gone.code == 0, gone.stderr
    changes = mutating(calls)
    assert changes[0] == "StartDBCluster" and changes.index("StartDBCluster") < changes.index("DeleteDBInstance")
    assert "DeleteNatGateway" not in changes and "ReleaseAddress" not in changes  # none left to delete
    assert "a scan finds nothing tagged threetier:stack=threetier" in gone.stdout
    assert not (built / STATE).exists()


# -- pending states (Stubber) ---------------------------------------------------------------------
def cluster(status: str) -> dict[str, Any]:
    return {"DBClusterIdentifier": CLUSTER, "Status": status, "DBClusterMembers": []}


def instance(identifier: str, status: str) -> dict[str, Any]:
    return {"DBInstances": [{"DBInstanceIdentifier": identifier, "DBInstanceStatus": status}]}


def test_pause_waits_out_a_starting_cluster_stops_it_and_waits_until_stopped(tmp_path: Path) -> None:
    """AWS stops only an available cluster (InvalidDBClusterStateFault otherwise): one AWS started by
    itself after 7 days, found starting, is waited for; then stopping -> stopped."""
    clock = FakeClock()
    engine = make_engine(tmp_path, {"monitoring": {"alarms": False}}, clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == database.NUMBER)
    engine.ctx.state.paused = statelib.Paused(since=statelib.now())
    writer, reader = database.instance_ids(engine.ctx).values()
    with Stubber(engine.ctx.aws.client("rds")) as stub:
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("starting")]})
        for status in ("starting", "available"):  # wait_available: the cluster (seen already once) and both instances
            if status == "available":
                stub.add_response("describe_db_clusters", {"DBClusters": [cluster(status)]})
            stub.add_response("describe_db_instances", instance(writer, status))
            stub.add_response("describe_db_instances", instance(reader, status))
        stub.add_response("stop_db_cluster", {"DBCluster": cluster("stopping")})
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("stopping")]})
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("stopped")]})
        database.pause(engine.ctx)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [database.POLL_DELAY, database.POLL_DELAY]  # starting once, stopping once
    assert engine.ctx.state.paused.aurora_restarts_at is not None
    assert [c.operation for c in engine.ctx.aws.mutating_calls()] == ["StopDBCluster"]


STOP = "StopDBCluster answered"


def pause_with_a_refused_stop(tmp_path: Path, clock: FakeClock, *then: str) -> Engine:
    """`pause` of an available cluster whose first StopDBCluster AWS refuses (InvalidDBClusterStateFault);
    then the cluster's status, look after look, or STOP: a StopDBCluster that AWS takes."""
    engine = make_engine(tmp_path, {"monitoring": {"alarms": False}}, clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == database.NUMBER)
    writer, reader = database.instance_ids(engine.ctx).values()
    with Stubber(engine.ctx.aws.client("rds")) as stub:
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("available")]})
        stub.add_response("describe_db_instances", instance(writer, "available"))
        stub.add_response("describe_db_instances", instance(reader, "available"))
        stub.add_client_error("stop_db_cluster", service_error_code="InvalidDBClusterStateFault")
        for answer in then:
            if answer == STOP:
                stub.add_response("stop_db_cluster", {"DBCluster": cluster("stopping")})
            else:
                stub.add_response("describe_db_clusters", {"DBClusters": [cluster(answer)]})
        database.pause(engine.ctx)
        stub.assert_no_pending_responses()
    return engine


def test_pause_retries_a_stop_refused_while_the_cluster_backs_up_and_skips_a_stopped_one(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = pause_with_a_refused_stop(tmp_path, clock, "backing-up", STOP, "stopped")  # not stopping: again
    assert clock.sleeps == [database.POLL_DELAY]  # the one retry
    again = make_engine(tmp_path, {"monitoring": {"alarms": False}}, clock=clock)
    again.ctx.part = engine.ctx.part
    with Stubber(again.ctx.aws.client("rds")) as stub:
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("stopped")]})
        database.pause(again.ctx)  # stopped already: one look, no call
        stub.assert_no_pending_responses()
    assert again.ctx.aws.mutating_calls() == []


@pytest.mark.parametrize("seen", ["stopping", "stopped"])
def test_a_stop_refused_because_a_resent_request_stopped_the_cluster_is_not_retried(tmp_path: Path, seen: str) -> None:
    """botocore resends a StopDBCluster whose answer was lost; AWS refuses the copy (the first one
    stopped the cluster): the cluster's status, looked at after the refusal, ends the retries at once,
    not after 20 minutes of refusals."""
    clock = FakeClock()
    # The look after the refusal; then, stopping, it is waited for until stopped.
    after = [seen, "stopping", "stopped"] if seen == "stopping" else [seen, "stopped"]
    engine = pause_with_a_refused_stop(tmp_path, clock, *after)
    assert [c.operation for c in engine.ctx.aws.mutating_calls()] == ["StopDBCluster"]  # not sent again
    assert clock.sleeps == ([database.POLL_DELAY] if seen == "stopping" else [])  # only the wait for stopped


def test_pause_waits_until_the_last_instance_of_a_group_is_gone(tmp_path: Path) -> None:
    """moto terminates at once; AWS drains (the deregistration delay) and terminates for a minute or two."""
    clock = FakeClock()
    engine = make_engine(tmp_path, {"monitoring": {"alarms": False}}, clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == app_tier.NUMBER)
    tier = app_tier.tier(engine.ctx)
    name = "threetier-app-asg"

    def group(size: int, instances: int) -> dict[str, Any]:
        return {"AutoScalingGroups": [{
            "AutoScalingGroupName": name, "MinSize": size, "MaxSize": size * 2, "DesiredCapacity": size,
            "DefaultCooldown": 300, "AvailabilityZones": ["us-east-1a"], "HealthCheckType": "ELB",
            "CreatedTime": "2026-11-21T00:00:00Z",
            "Instances": [{"InstanceId": f"i-{n}", "AvailabilityZone": "us-east-1a", "LifecycleState": "Terminating",
                           "HealthStatus": "Healthy", "ProtectedFromScaleIn": False} for n in range(instances)]}]}

    with Stubber(engine.ctx.aws.client("elbv2")) as elb, Stubber(engine.ctx.aws.client("autoscaling")) as stub:
        elb.add_client_error("describe_target_groups", service_error_code="TargetGroupNotFound")
        elb.add_client_error("describe_load_balancers", service_error_code="LoadBalancerNotFound")
        stub.add_response("describe_auto_scaling_groups", group(2, 2))
        stub.add_response("update_auto_scaling_group", {})
        stub.add_response("describe_auto_scaling_groups", group(0, 2))
        stub.add_response("describe_auto_scaling_groups", group(0, 1))
        stub.add_response("describe_auto_scaling_groups", group(0, 0))
        balancing.pause(engine.ctx, tier, lambda ctx: [])
        stub.assert_no_pending_responses()
    assert clock.sleeps == [15, 15]


# -- the state file and cost --------------------------------------------------------------------
def test_the_paused_marker_round_trips_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    state_file = statelib.StateFile(tmp_path / "state.json")
    state = statelib.State(stack="threetier", region="us-east-1",
                           paused=statelib.Paused(since="2026-11-22T10:00:00+00:00",
                                                  aurora_restarts_at="2026-11-29T10:00:00+00:00"))
    state_file.save(state)
    assert json.loads(state_file.path.read_text())["paused"] == {
        "since": "2026-11-22T10:00:00+00:00", "aurora_restarts_at": "2026-11-29T10:00:00+00:00"}
    assert state_file.load().paused == state.paused
    state.paused = None
    state_file.save(state)
    assert "paused" not in json.loads(state_file.path.read_text())  # a running stack's file, as before pause
    data = json.loads(state_file.path.read_text())
    state_file.path.write_text(json.dumps({**data, "paused": {"since": 3}}))
    with pytest.raises(statelib.StateUnusable, match=r"paused\.since is a number, not a string"):
        state_file.load()


def test_cost_paused_prices_what_still_bills(tmp_path: Path) -> None:
    from threetier.pricing import PRICES
    prices = PRICES["us-east-1"]
    report = json.loads(cli("cost", "--paused", "--json", cwd=tmp_path).stdout)
    assert report["paused"] is True and report["monthly_usd"] == report["paused_monthly_usd"]
    items = " ".join(line["item"] for line in report["lines"])
    assert "NAT" not in items and "EC2" not in items and "Aurora db." not in items and "I/O" not in items
    # By hand: 2 ALBs and their 2 addresses, 10 GB of Aurora, 2 x 8 GB of snapshots, the secret,
    # 9 + 6 alarm metrics, the dashboard, 3 GB of logs kept 14 days.
    hours = 730
    expected = (2 * hours * prices.alb_hour + 2 * hours * prices.public_ipv4_hour + 10 * prices.aurora_storage_gb_month
                + 16 * prices.ebs_snapshot_gb_month + prices.secret_month + 15 * prices.alarm_metric_month
                + prices.dashboard_month + 3 * 14 * 24 / hours * prices.logs_stored_gb_month)
    assert report["monthly_usd"] == round(expected, 2)
    running = json.loads(cli("cost", "--json", cwd=tmp_path).stdout)
    assert running["paused"] is False and running["paused_monthly_usd"] == report["monthly_usd"]
    assert running["running_monthly_usd"] == running["monthly_usd"] == report["running_monthly_usd"]
    text = cli("cost", "--paused", cwd=tmp_path)
    assert "paused" in text.stdout and f"saves ${running['monthly_usd'] - report['monthly_usd']:,.2f}" in \
        " ".join(text.stdout.split())
