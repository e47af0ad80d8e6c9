"""What real AWS does to the database and moto does not.

States moto cannot produce (stopping, starting, creating, a refused CreateDBInstance) are played
with botocore's Stubber and a fake clock; the rest runs against moto."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, cli, make_engine, moto, no_alarms_yet
from steps import database
from threetier import scan
from threetier.aws import AwsError
from threetier.engine import Engine

STACK = "threetier"
CLUSTER = f"{STACK}-aurora"
WRITER, READER = f"{STACK}-aurora-writer", f"{STACK}-aurora-reader"
PARAMETER_GROUP = f"{STACK}-aurora-params"
AZS = ["us-east-1a", "us-east-1b"]


@pytest.fixture
def mocked():
    with moto():
        yield


def part_3(engine: Engine) -> Engine:
    """The engine's context as Part 3 sees it in a run, with Part 2's AZs known."""
    engine.ctx.part = next(p for p in engine.parts if p.number == database.NUMBER)
    engine.ctx.state.part(2, "network").resources["azs"] = AZS
    return engine


def cluster(status: str, **extra: Any) -> dict[str, Any]:
    """A DescribeDBClusters entry as it is once `up` converged it, in `status`."""
    return {"DBClusterIdentifier": CLUSTER, "Status": status, "DBClusterMembers": [], "BackupRetentionPeriod": 7,
            "DeletionProtection": False, "DBClusterParameterGroup": PARAMETER_GROUP,
            "Endpoint": f"{CLUSTER}.cluster-abc.us-east-1.rds.amazonaws.com",
            "MasterUserSecret": {"SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-1"},
            **extra}


def instance(identifier: str, status: str) -> dict[str, Any]:
    return {"DBInstances": [{"DBInstanceIdentifier": identifier, "DBInstanceStatus": status}]}


def drift(tmp_path: Path) -> list[str]:
    """What `status` and `plan` report of Part 3 now as drift (what `up` would change)."""
    engine = make_engine(tmp_path)
    return engine.check(next(p for p in engine.parts if p.number == database.NUMBER)).drift


def notes(tmp_path: Path) -> list[str]:
    """What `status` and `plan` say of Part 3 that `up` leaves alone."""
    engine = make_engine(tmp_path)
    return engine.check(next(p for p in engine.parts if p.number == database.NUMBER)).notes


def said(engine: Engine) -> str:
    return engine.ctx.out.stderr.getvalue()  # a StringIO in make_engine


def operations(engine: Engine) -> list[str]:
    return [c.operation for c in engine.ctx.aws.calls]


# -- item 1: a stopped cluster ---------------------------------------------------------
def test_status_up_and_down_handle_a_cluster_stopped_to_save_money(built: Path) -> None:
    """moto: stopped stays stopped until StartDBCluster. Before, `up` waited 40 minutes for it and
    `down` deleted Parts 7-4 and then failed on it (real AWS refuses to delete a stopped cluster)."""
    rds = boto3.client("rds")
    rds.stop_db_cluster(DBClusterIdentifier=CLUSTER)

    assert f"DB cluster {CLUSTER}: stopped (up or down will start it)" in drift(built)

    again = make_engine(built, clock=FakeClock())
    again.up()  # not a 40-minute wait on "stopped" ending in a timeout
    assert "StartDBCluster" in operations(again)
    # moto starts it at once: AWS's "(takes ~10 minutes)" is not said of an emulator.
    assert f"DB cluster {CLUSTER} is stopped: starting it so that `up` can use it\n" in said(again)
    assert rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]["Status"] == "available"

    rds.stop_db_cluster(DBClusterIdentifier=CLUSTER)
    down = make_engine(built)
    down.ctx.skip_final_snapshot = True
    down.down()
    mutating = [c.operation for c in down.ctx.aws.mutating_calls()]
    # Started before anything at all is deleted (before_down), so a refusal cannot strand Parts 2-3.
    assert mutating[0] == "StartDBCluster"
    assert mutating.count("StartDBCluster") == 1
    assert f"DB cluster {CLUSTER} is stopped: starting it so that `down` can delete it" in said(down)
    assert (f"stays started: aws rds stop-db-cluster --db-cluster-identifier {CLUSTER} --region us-east-1 stops it "
            f"again") in said(down)
    assert rds.describe_db_clusters()["DBClusters"] == []


def test_down_waits_out_a_stopping_cluster_starts_it_then_deletes_it(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = part_3(make_engine(tmp_path, clock=clock))
    engine.ctx.skip_final_snapshot = True
    with Stubber(engine.ctx.aws.client("rds")) as stub:
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("stopping")]})
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("stopped")]})
        stub.add_response("start_db_cluster", {"DBCluster": cluster("starting")})
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("starting")]})
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("available")]})
        for _identifier in (READER, WRITER):
            stub.add_client_error("describe_db_instances", service_error_code="DBInstanceNotFound")
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("available")]})
        stub.add_response("delete_db_cluster", {"DBCluster": cluster("deleting")})
        stub.add_client_error("describe_db_clusters", service_error_code="DBClusterNotFoundFault")
        stub.add_response("describe_db_cluster_snapshots", {"DBClusterSnapshots": []})
        stub.add_response("describe_db_cluster_parameter_groups", {"DBClusterParameterGroups": [
            {"DBClusterParameterGroupName": "threetier-aurora-params"}]})
        stub.add_response("delete_db_cluster_parameter_group", {})
        stub.add_client_error("describe_db_subnet_groups", service_error_code="DBSubnetGroupNotFoundFault")
        with Stubber(engine.ctx.aws.client("iam")) as iam:
            iam.add_client_error("get_role_policy", service_error_code="NoSuchEntity")
            with no_alarms_yet(engine):
                database.destroy(engine.ctx)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [database.POLL_DELAY, database.POLL_DELAY]  # stopping once, starting once
    delete = next(c.params for c in engine.ctx.aws.calls if c.operation == "DeleteDBCluster")
    assert delete["DeleteAutomatedBackups"] is True and delete["SkipFinalSnapshot"] is True
    assert f"DB cluster {CLUSTER} is stopped: starting it so that `down` can delete it" in said(engine)


def test_up_waits_out_a_stopping_cluster_and_takes_stopped_instances_for_starting_ones(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = part_3(make_engine(tmp_path, clock=clock))
    with Stubber(engine.ctx.aws.client("rds")) as stub:
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("stopping")]})
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("stopped")]})
        stub.add_response("start_db_cluster", {"DBCluster": cluster("starting")})
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("starting")]})
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("available")]})
        stub.add_response("describe_db_instances", instance(WRITER, "stopped"))  # they exist: nothing to create
        stub.add_response("describe_db_instances", instance(READER, "stopped"))
        for status in ("starting", "available"):  # the instances follow their cluster, a poll later
            stub.add_response("describe_db_clusters", {"DBClusters": [cluster("available")]})
            stub.add_response("describe_db_instances", instance(WRITER, status))
            stub.add_response("describe_db_instances", instance(READER, status))
        with no_alarms_yet(engine, "put_metric_alarm", "put_metric_alarm"):  # the writer's CPU and memory
            database.finish(engine.ctx)
        stub.assert_no_pending_responses()
    # Stopping, starting, then the instances starting (the alarms' puts between emptied the inventory,
    # so the first poll of the instances is live: no poll of their `stopped` seen before).
    assert clock.sleeps == [database.POLL_DELAY] * 3
    assert "StartDBCluster" in operations(engine) and "CreateDBInstance" not in operations(engine)


def test_a_cluster_already_starting_is_not_an_error_but_another_refusal_is(tmp_path: Path) -> None:
    """StartDBCluster refuses a cluster that is not stopped: fine when it is starting already (AWS
    starts one stopped for 7 days by itself), not when it is in some other state."""
    engine = part_3(make_engine(tmp_path))
    with Stubber(engine.ctx.aws.client("rds")) as stub:
        stub.add_client_error("start_db_cluster", service_error_code="InvalidDBClusterStateFault")
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("starting")]})
        database.start_cluster(engine.ctx, "`up` can use it")
        stub.add_client_error("start_db_cluster", service_error_code="InvalidDBClusterStateFault")
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("inaccessible-encryption-credentials")]})
        with pytest.raises(AwsError, match="InvalidDBClusterStateFault"):
            database.start_cluster(engine.ctx, "`up` can use it")
        stub.assert_no_pending_responses()


# -- item 3: instances after the cluster; deterministic roles -------------------------------
def test_instances_are_created_once_the_cluster_is_available_writer_first_and_a_refusal_is_retried(
        tmp_path: Path) -> None:
    clock = FakeClock()
    engine = part_3(make_engine(tmp_path, clock=clock))
    with Stubber(engine.ctx.aws.client("rds")) as stub:
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("creating")]})
        # Stubber answers in order: a CreateDBInstance before this answer would not match it.
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("available")]})
        stub.add_client_error("describe_db_instances", service_error_code="DBInstanceNotFound")
        stub.add_client_error("create_db_instance", service_error_code="InvalidDBClusterStateFault",
                              service_message="DB cluster is not in the available state")
        stub.add_response("create_db_instance", {"DBInstance": {"DBInstanceIdentifier": WRITER}})
        stub.add_client_error("describe_db_instances", service_error_code="DBInstanceNotFound")
        stub.add_response("create_db_instance", {"DBInstance": {"DBInstanceIdentifier": READER}})
        stub.add_response("describe_db_clusters", {"DBClusters": [cluster("available")]})
        stub.add_response("describe_db_instances", instance(WRITER, "available"))
        stub.add_response("describe_db_instances", instance(READER, "available"))
        with no_alarms_yet(engine, "put_metric_alarm", "put_metric_alarm"):  # the writer's CPU and memory
            database.finish(engine.ctx)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [database.POLL_DELAY, 30]  # the cluster creating, then the refused create
    creates = [c.params for c in engine.ctx.aws.calls if c.operation == "CreateDBInstance"]
    assert [(p["DBInstanceIdentifier"], p["PromotionTier"], p["AvailabilityZone"]) for p in creates] == [
        (WRITER, 0, AZS[0]), (WRITER, 0, AZS[0]), (READER, 1, AZS[1])]


def test_a_failover_is_reported_with_how_to_fail_back(built: Path) -> None:
    rds = boto3.client("rds")
    tiers = {i["DBInstanceIdentifier"]: i["PromotionTier"] for i in rds.describe_db_instances()["DBInstances"]}
    assert tiers == {WRITER: 0, READER: 1}
    assert not [d for d in drift(built) + notes(built) if "writer" in d]

    rds.failover_db_cluster(DBClusterIdentifier=CLUSTER, TargetDBInstanceIdentifier=READER)
    assert not [d for d in drift(built) if "writer" in d]  # up would not change it: not drift
    failover = [d for d in notes(built) if "failover" in d]
    assert len(failover) == 1
    assert cli("status", cwd=built).code == 0 and cli("plan", "--detailed-exitcode", cwd=built).code == 0  # nothing for up to do
    assert failover[0].startswith(f"DB cluster {CLUSTER}: {READER} is the writer, not {WRITER}")
    assert "harmless" in failover[0]
    assert failover[0].endswith(f"aws rds failover-db-cluster --db-cluster-identifier {CLUSTER} "
                                f"--target-db-instance-identifier {WRITER} --region us-east-1)")


@pytest.mark.parametrize("emulator", [False, True])
def test_starting_a_stopped_cluster_says_how_long_it_takes_on_aws_only(tmp_path: Path, emulator: bool) -> None:
    engine = part_3(make_engine(tmp_path))
    engine.ctx.aws.emulator = emulator
    with Stubber(engine.ctx.aws.client("rds")) as stub:
        stub.add_response("start_db_cluster", {"DBCluster": cluster("starting")})
        database.start_cluster(engine.ctx, "`up` can use it")
    line = f"DB cluster {CLUSTER} is stopped: starting it so that `up` can use it"
    expected = line if emulator else f"{line} (takes ~{database.START_MINUTES} minutes)"
    assert said(engine).strip() == expected


def test_instances_waiting_for_a_reboot_to_take_the_parameter_group_are_named(tmp_path: Path) -> None:
    engine = part_3(make_engine(tmp_path))
    members = [{"DBInstanceIdentifier": WRITER, "IsClusterWriter": True, "DBClusterParameterGroupStatus": "in-sync"},
               {"DBInstanceIdentifier": READER, "IsClusterWriter": False,
                "DBClusterParameterGroupStatus": "pending-reboot"}]
    assert database.member_notes(engine.ctx, cluster("available", DBClusterMembers=members)) == [
        f"DB instance {READER}: its cluster parameter group (TLS required) applies after a reboot "
        f"(aws rds reboot-db-instance --db-instance-identifier {READER} --region us-east-1)"]


# -- item 9: automated backups and snapshots -------------------------------------------------
def test_up_down_up_down_within_a_minute_leaves_no_automated_snapshot(built: Path, monkeypatch) -> None:
    """moto names a cluster's automated snapshot by the minute and keeps it after the cluster: the
    minute the first `up` made the cluster in is held still here, so the second `up` meets the first
    one's snapshot for sure."""
    rds = boto3.client("rds")

    def automated() -> list[str]:
        return [s["DBClusterSnapshotIdentifier"] for s in
                rds.describe_db_cluster_snapshots(SnapshotType="automated")["DBClusterSnapshots"]
                if s["DBClusterSnapshotIdentifier"].startswith(f"rds:{CLUSTER}-")]

    [leftover] = automated()  # the leftover in question, named by the minute the stack was built in
    minute = dt.datetime.strptime(leftover.removeprefix(f"rds:{CLUSTER}-"), "%Y-%m-%d-%H-%M")
    monkeypatch.setattr("moto.rds.models.utcnow", lambda: minute)
    down = make_engine(built)
    down.down()  # keeps a final snapshot
    assert automated() == []
    delete = next(c.params for c in down.ctx.aws.calls if c.operation == "DeleteDBCluster")
    assert delete["DeleteAutomatedBackups"] is True
    final = delete["FinalDBSnapshotIdentifier"]
    # moto bills nothing: the command that deletes it, without AWS's "it bills storage until deleted".
    assert f"kept a final snapshot of the database: {final}; " \
           f"aws rds delete-db-cluster-snapshot --db-cluster-snapshot-identifier {final} --region us-east-1 " \
           f"deletes it" in said(down)

    # The CLI on the state file the engine's `down` left (its own is the restored stack's, stale now).
    state = ("--state", str(built / "state.json"))
    assert cli(*state, "up", "--yes", cwd=built).code == 0  # the same cluster, the same minute
    result = cli(*state, "down", "--yes", "--skip-final-snapshot", cwd=built)
    assert result.code == 0, result.stderr
    assert automated() == []
    manual = [s["DBClusterSnapshotIdentifier"] for s in
              rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]]
    assert manual == [final]  # the one kept on purpose, and only it


def test_only_an_emulator_deletes_automated_snapshots_by_hand(tmp_path: Path) -> None:
    """Real AWS refuses DeleteDBClusterSnapshot on an automated snapshot (DeleteAutomatedBackups does it)."""
    engine = part_3(make_engine(tmp_path))
    with Stubber(engine.ctx.aws.client("rds")) as stub:
        stub.add_response("describe_db_cluster_snapshots", {"DBClusterSnapshots": [
            {"DBClusterSnapshotIdentifier": f"rds:{CLUSTER}-2026-11-21-23-40"},
            {"DBClusterSnapshotIdentifier": f"rds:{CLUSTER}-other-2026-11-21-23-40"}]})
        stub.add_response("delete_db_cluster_snapshot", {}, {"DBClusterSnapshotIdentifier": f"rds:{CLUSTER}-2026-11-21-23-40"})
        database.delete_emulator_backups(engine.ctx)
        stub.assert_no_pending_responses()
        engine.ctx.aws.emulator = False
        database.delete_emulator_backups(engine.ctx)  # asks nothing: the Stubber has no answer left
    # rds:threetier-aurora-other-... belongs to a cluster named threetier-aurora-other: left alone.


# -- item 11: TLS required on the cluster side -----------------------------------------------
def parameters(rds: Any) -> dict[str, str]:
    return {p["ParameterName"]: p["ParameterValue"] for p in rds.describe_db_cluster_parameters(
        DBClusterParameterGroupName=PARAMETER_GROUP, Source="user")["Parameters"]}


def test_the_cluster_requires_tls_through_its_own_parameter_group_and_up_restores_it(
        reference_stacks, built: Path) -> None:
    # What the build called is read from the default reference stack's (its `up --yes`); the rest
    # starts from the stack it made.
    tmp_path = built
    build = reference_stacks.build("default")
    calls = [SimpleNamespace(operation=operation, params=params)
             for (_, operation), params in zip(build.up_calls, build.up_params, strict=True)]
    rds = boto3.client("rds")
    group = rds.describe_db_cluster_parameter_groups(DBClusterParameterGroupName=PARAMETER_GROUP)[
        "DBClusterParameterGroups"][0]
    assert group["DBParameterGroupFamily"] == "aurora-mysql8.0"
    tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(
        ResourceName=group["DBClusterParameterGroupArn"])["TagList"]}
    assert tags["threetier:stack"] == STACK and tags["Name"] == PARAMETER_GROUP
    assert parameters(rds) == {"require_secure_transport": "ON"}
    modify = next(c.params for c in calls if c.operation == "ModifyDBClusterParameterGroup")
    assert modify["Parameters"][0]["ApplyMethod"] == "immediate"
    ops = [c.operation for c in calls]
    assert ops.index("CreateDBClusterParameterGroup") < ops.index("CreateDBCluster")
    create = next(c.params for c in calls if c.operation == "CreateDBCluster")
    assert create["DBClusterParameterGroupName"] == PARAMETER_GROUP
    assert rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]["DBClusterParameterGroup"] == PARAMETER_GROUP

    # A cluster made before the stack had its group, and the parameter turned off by hand.
    rds.modify_db_cluster(DBClusterIdentifier=CLUSTER, DBClusterParameterGroupName="default.aurora-mysql8.0",
                          ApplyImmediately=True)
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=PARAMETER_GROUP, Parameters=[
        {"ParameterName": "require_secure_transport", "ParameterValue": "OFF", "ApplyMethod": "immediate"}])
    seen = drift(tmp_path)
    assert f"DB cluster {CLUSTER}: on parameter group default.aurora-mysql8.0, not {PARAMETER_GROUP}, so TLS is " \
           f"not required (`up` moves it)" in seen
    assert f"DB cluster parameter group {PARAMETER_GROUP}: require_secure_transport is OFF, not ON (`up` sets it)" in seen

    repaired = make_engine(tmp_path)
    repaired.up()
    changed = {c.operation: c.params for c in repaired.ctx.aws.mutating_calls()}
    assert changed["ModifyDBCluster"]["DBClusterParameterGroupName"] == PARAMETER_GROUP
    assert f"DB cluster {CLUSTER} is now on parameter group {PARAMETER_GROUP}; its instances take it at their " \
           f"next reboot" in said(repaired)
    assert "CreateDBClusterParameterGroup" not in changed  # found, not made again
    assert parameters(rds) == {"require_secure_transport": "ON"}
    assert not [d for d in drift(tmp_path) if "parameter group" in d]


def test_down_deletes_the_parameter_group_and_the_scan_would_name_a_leftover_one(built: Path) -> None:
    result = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert result.code == 0, result.stderr
    rds = boto3.client("rds")
    with pytest.raises(rds.exceptions.DBParameterGroupNotFoundFault):
        rds.describe_db_cluster_parameter_groups(DBClusterParameterGroupName=PARAMETER_GROUP)
    # One left behind (a crash between its create and the cluster's, then no `up`): the scan names it.
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=PARAMETER_GROUP,
                                          DBParameterGroupFamily="aurora-mysql8.0", Description="left over")
    found = [(f.kind, f.id) for f in scan.tagged(make_engine(built).ctx.aws, STACK)]
    assert found == [("DB cluster parameter group", PARAMETER_GROUP)]
    # and `down` deletes it even with no cluster left.
    assert cli("down", "--yes", cwd=built).code == 0
    assert scan.tagged(make_engine(built).ctx.aws, STACK) == []
