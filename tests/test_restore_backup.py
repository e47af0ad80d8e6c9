"""Data that outlives the stack (issue 26): `database.restore_from` makes a new cluster from the stack's
snapshot, `backup` takes one now, `status` lists them, `down` and `cost` say what was kept.

moto 5.2.1 cannot restore a snapshot of a cluster with an RDS-managed password (its
RestoreDBClusterFromSnapshot copies the old cluster's settings and fails on the password it never had:
KeyError, a 500), and where it can, it copies the old cluster's managed-password setting, so the
restored cluster has a secret at once. Real AWS gives a restored cluster no managed secret (hence
ModifyDBCluster ManageMasterUserPassword). `aws_restore` makes moto's restore do what AWS does."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from helpers import cli, make_engine
from steps import database
from test_iam_policy import not_granted, recording
from threetier import config as configlib
from threetier.blocks import snapshots
from threetier.names import role_name_for
from threetier.permissions import actions_called
from threetier.preflight import Judge

STACK = "threetier"
CLUSTER = f"{STACK}-aurora"
VERSION = configlib.AURORA_MYSQL_VERSION


@pytest.fixture
def aws_restore(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.rds.models import DBCluster
    original = DBCluster.get_cfg

    def get_cfg(self: Any) -> dict[str, Any]:
        self.__dict__.setdefault("_master_user_password", "the-old-password-nobody-knows")
        cfg = original(self)
        cfg["manage_master_user_password"] = False  # AWS: the restored cluster has the snapshot's password
        cfg.pop("master_user_secret", None)
        return cfg

    monkeypatch.setattr(DBCluster, "get_cfg", get_cfg)


def set_database(directory: Path, **database: Any) -> None:
    path = directory / "config.yaml"
    raw = yaml.safe_load(path.read_text()) or {}
    raw.setdefault("database", {}).update(database)
    path.write_text(yaml.safe_dump(raw))


def stack_snapshot(identifier: str, *, stack: str = STACK, status: str = "available", engine: str = "aurora-mysql",
                   version: str = VERSION, created: str = "2026-12-01T10:00:00+00:00") -> dict[str, Any]:
    import datetime as dt
    return {"DBClusterSnapshotIdentifier": identifier, "Status": status, "Engine": engine, "EngineVersion": version,
            "SnapshotCreateTime": dt.datetime.fromisoformat(created), "AllocatedStorage": 1,
            "TagList": [{"Key": "threetier:stack", "Value": stack}]}


# -- up -> down -> up with restore_from: latest --------------------------------------------------
def test_up_down_then_up_restoring_latest_makes_a_new_cluster_from_the_final_snapshot_with_a_new_secret(
        built: Path, aws_restore: None) -> None:
    rds = boto3.client("rds")
    old_secret = rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]["MasterUserSecret"]["SecretArn"]
    down = cli("down", "--yes", cwd=built)
    assert down.code == 0, down.stderr
    [final] = [s["DBClusterSnapshotIdentifier"] for s in
               rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]]
    said = " ".join((down.stdout + down.stderr).split())
    assert f"database.restore_from: {final} (or latest" in said
    # what it costs kept (moto's snapshot: 1 GiB; us-east-1's Aurora backup storage, $0.021 per GB-month)
    assert "on AWS: 1 GiB, about $0.02 a month (prices of " in said

    set_database(built, restore_from="latest")
    # plan names the snapshot before anything is made
    before = json.loads(cli("plan", "--json", cwd=built).stdout)
    [database_before] = [p for p in before["parts"] if p["part"] == database.NUMBER]
    assert any(note.startswith(f"database.restore_from: latest: `up` restores DB cluster {CLUSTER} from snapshot "
                               f"{final} (final, 1 GiB, ") for note in database_before["notes"]), database_before
    with recording() as seen:
        up = cli("up", "--yes", cwd=built)
    assert up.code == 0, up.stderr
    assert not_granted({"up": actions_called(seen)}, {"database": {"restore_from": "latest"}}) == {}
    assert {"rds:RestoreDBClusterFromSnapshot", "rds:ModifyDBCluster"} <= actions_called(seen)
    [cluster] = rds.describe_db_clusters()["DBClusters"]
    assert cluster["DBClusterIdentifier"] == CLUSTER
    assert f'"restored_from": "{final}"' in (built / ".threetier" / f"{STACK}.json").read_text()
    assert cluster["MasterUserSecret"]["SecretArn"] != old_secret  # a new managed secret
    assert cluster["DBClusterParameterGroup"] == f"{STACK}-aurora-params"
    assert cluster["DBSubnetGroup"] == f"{STACK}-db-subnet-group"
    assert {"Key": "threetier:stack", "Value": STACK} in cluster["TagList"]
    assert sorted(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]) == \
        [f"{CLUSTER}-reader", f"{CLUSTER}-writer"]
    state = (built / ".threetier" / f"{STACK}.json").read_text()
    assert cluster["MasterUserSecret"]["SecretArn"] in state and old_secret not in state
    role_policy = boto3.client("iam").get_role_policy(RoleName=role_name_for(STACK, "us-east-1", "app"), PolicyName=database.SECRET_POLICY_NAME)
    assert role_policy["PolicyDocument"]["Statement"][0]["Resource"] == cluster["MasterUserSecret"]["SecretArn"]

    # Again: the cluster is there, restore_from is only a note, nothing is made or changed.
    again = cli("up", "--yes", cwd=built)
    assert again.code == 0, again.stderr
    assert len(rds.describe_db_clusters()["DBClusters"]) == 1
    status = " ".join(cli("status", cwd=built).stdout.split())
    assert "note: database.restore_from: latest is not used: DB cluster threetier-aurora exists" in status
    plan = json.loads(cli("plan", "--json", cwd=built).stdout)
    [database_plan] = [p for p in plan["parts"] if p["part"] == database.NUMBER]
    assert any(note.startswith("database.restore_from: latest is not used") for note in database_plan["notes"])
    assert database_plan["create"] == [] and plan["blocked"] == []


# -- the preflight's judgement, on answers written by hand --------------------------------------
def judged(answers: dict[str, Any], restore_from: str, engine_version: str = VERSION) -> list[str]:
    config = configlib.parse({"database": {"restore_from": restore_from, "engine_version": engine_version}})
    judge = Judge(config, "us-east-1", ["us-east-1a", "us-east-1b"], answers)
    judge.judge(None)
    return [s.line() for s in judge.findings.shortfalls if s.key == "database.restore_from"]


def test_preflight_blocks_a_restore_with_no_snapshot_of_the_stack_another_engine_or_a_newer_version() -> None:
    other_stack = stack_snapshot("other-final-1", stack="other")
    assert judged({"db_cluster": None, "restore_snapshots": [other_stack]}, "latest") == [
        "database.restore_from: no available cluster snapshot tagged with stack threetier in this region; "
        "`threetier status` lists the stack's snapshots: name one, or null for an empty database"]
    assert judged({"db_cluster": None, "restore_snapshots": None}, "mine-1")[0].startswith(
        "database.restore_from: no cluster snapshot mine-1 in this region")
    postgres = stack_snapshot("pg-1", engine="aurora-postgresql", version="16.4")
    assert "is of aurora-postgresql 16.4, not Aurora MySQL 3" in \
        judged({"db_cluster": None, "restore_snapshots": [postgres]}, "pg-1")[0]
    newer = stack_snapshot("new-1", version="8.0.mysql_aurora.3.11.0")
    assert "set database.engine_version: 8.0.mysql_aurora.3.11.0" in \
        judged({"db_cluster": None, "restore_snapshots": [newer]}, "new-1")[0]
    # The newest available one of the stack's is chosen: an older one passes, a creating one is skipped.
    fine = [stack_snapshot("threetier-final-1", created="2026-11-01T00:00:00+00:00"),
            stack_snapshot("threetier-backup-2", status="creating", created="2026-12-02T00:00:00+00:00")]
    assert judged({"db_cluster": None, "restore_snapshots": fine}, "latest") == []
    assert snapshots.chosen(fine, "latest", STACK)["DBClusterSnapshotIdentifier"] == "threetier-final-1"
    # A cluster there: never replaced, so nothing to check.
    assert judged({"db_cluster": {"DBClusters": [{"DBClusterIdentifier": CLUSTER}]}, "restore_snapshots": []},
                  "latest") == []


def test_up_with_no_snapshot_to_restore_exits_2_before_any_change(tmp_path: Path) -> None:
    from helpers import moto, write_config
    with moto():
        write_config(tmp_path, database={"restore_from": "latest"})
        result = cli("up", "--yes", cwd=tmp_path)
        assert result.code == 2, result.stderr
        assert "blocked: database.restore_from: no available cluster snapshot tagged with stack threetier" \
            in result.stderr
        assert boto3.client("ec2").describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": [STACK]}])["Vpcs"] == []


# -- a crash after RestoreDBClusterFromSnapshot ----------------------------------------------------
def test_a_restore_that_crashed_after_the_call_ends_with_one_cluster_and_its_secret(tmp_path: Path) -> None:
    """AWS states moto does not make: the restored cluster found `creating` with no secret (the run that
    restored it crashed); the next `up` restores nothing, waits for it, and has RDS manage its password."""
    engine = make_engine(tmp_path, {"database": {"restore_from": "latest"}})
    engine.ctx.part = next(p for p in engine.parts if p.number == database.NUMBER)
    restored = {"DBClusterIdentifier": CLUSTER, "Status": "creating", "Endpoint": "e", "ReaderEndpoint": "r"}
    secret = {"SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-new"}
    with Stubber(engine.ctx.aws.client("rds")) as rds:
        rds.add_response("describe_db_clusters", {"DBClusters": [restored]})
        rds.add_response("describe_db_clusters", {"DBClusters": [{**restored, "Status": "available"}]})
        rds.add_response("modify_db_cluster", {"DBCluster": {**restored, "Status": "available",
                                                             "MasterUserSecret": secret}},
                         {"DBClusterIdentifier": CLUSTER, "ManageMasterUserPassword": True, "ApplyImmediately": True})
        cluster = database.ensure_cluster(engine.ctx, "sg-1")
        rds.assert_no_pending_responses()
    assert cluster["MasterUserSecret"] == secret
    assert engine.ctx.resources["db_secret_arn"] == secret["SecretArn"]
    assert [c.operation for c in engine.ctx.aws.mutating_calls()] == ["ModifyDBCluster"]


# -- backup and status ------------------------------------------------------------------------------
def test_backup_takes_a_tagged_snapshot_that_status_lists_with_the_latest_restorable_time(built: Path) -> None:
    with recording() as seen:
        result = cli("backup", "--json", cwd=built)
    assert result.code == 0, result.stderr
    assert not_granted({"backup": actions_called(seen)}, {}) == {}
    taken = json.loads(result.stdout)
    snapshot = taken["snapshot"]
    assert re.fullmatch(rf"{STACK}-backup-\d{{8}}-\d{{6}}", snapshot) and taken["cluster"] == CLUSTER
    [found] = boto3.client("rds").describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)["DBClusterSnapshots"]
    assert found["Status"] == "available" and found["DBClusterIdentifier"] == CLUSTER
    assert {"Key": "threetier:stack", "Value": STACK} in found["TagList"]

    with recording() as seen:
        status = cli("status", "--json", cwd=built)
    assert not_granted({"status": actions_called(seen)}, {}) == {}
    report = json.loads(status.stdout)
    assert [(s["id"], s["kind"], s["status"]) for s in report["snapshots"]] == [(snapshot, "backup", "available")]
    assert report["latest_restorable_time"]  # an ISO 8601 time, from the cluster
    text = " ".join(cli("status", cwd=built).stdout.split())
    assert f"snapshots kept: {snapshot} (backup, " in text
    assert "database: restorable to any second up to " in text

    # down keeps it and takes its final one; with no stack, status still lists both, newest first.
    assert cli("down", "--yes", cwd=built).code == 0
    after = json.loads(cli("status", "--json", cwd=built).stdout)
    cost = json.loads(cli("cost", "--json", cwd=built).stdout)
    assert any("after `threetier down` only the database's snapshots bill" in note and "$0.021 per GB-month" in note
               for note in cost["notes"])
    assert after["deployed"] is False and after["latest_restorable_time"] is None
    assert [s["kind"] for s in after["snapshots"]] == ["final", "backup"]


def test_backup_with_no_stack_exits_2_and_takes_nothing(tmp_path: Path) -> None:
    from helpers import moto, write_config
    with moto():
        write_config(tmp_path)
        result = cli("backup", cwd=tmp_path)
        assert result.code == 2, result.stderr
        assert "has no Aurora cluster (threetier-aurora)" in result.stderr
        assert boto3.client("rds").describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"] == []


def test_a_snapshot_named_by_arn_is_found_by_its_arn_among_the_shared_ones() -> None:
    arn = "arn:aws:rds:us-east-1:210987654321:cluster-snapshot:theirs-final-1"
    shared = {**stack_snapshot("theirs-final-1", stack="other"), "DBClusterSnapshotArn": arn}
    assert snapshots.one_look(arn).params == {"DBClusterSnapshotIdentifier": arn, "IncludeShared": True}
    assert snapshots.chosen([shared], arn, STACK) is shared
    assert judged({"db_cluster": None, "restore_snapshots": [shared]}, arn) == []
