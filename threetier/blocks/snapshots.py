"""The stack's Aurora cluster snapshots: `down`'s final ones and `backup`'s, the data that outlives the
stack. Which one `database.restore_from` means, and whether the stack's engine can take it (pure
functions of DescribeDBClusterSnapshots' answers, shared by the preflight and Part 3), and the
listing `status`, `down` and `cost` show.

Each snapshot is known by the stack's tag (the cluster copies its tags to its snapshots, and
`backup` tags its own), not by name: a snapshot renamed or copied stays the stack's while tagged."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from threetier.aws import STACK_TAG, Look
from threetier.names import backup_snapshot_prefix_for, final_snapshot_prefix_for

ENGINE = "aurora-mysql"
LATEST = "latest"
NOT_FOUND = ("DBClusterSnapshotNotFoundFault",)
# Aurora MySQL 3 versions: 8.0.mysql_aurora.3.<minor>.<patch> (the only major config.py accepts).
VERSION = re.compile(r"8\.0\.mysql_aurora\.3\.(\d+)\.(\d+)", re.ASCII)


def manual_look() -> Look:
    """The account's manual cluster snapshots of this region (`down`'s final and `backup`'s are manual;
    automated ones go with their cluster). Tag filters are not offered by every endpoint: filtered here."""
    return Look("rds", "describe_db_cluster_snapshots", {"SnapshotType": "manual"}, key="DBClusterSnapshots")


def one_look(identifier: str) -> Look:
    """One snapshot by id, or by ARN (another account's, shared with this one)."""
    shared = {"IncludeShared": True} if identifier.startswith("arn:") else {}
    return Look("rds", "describe_db_cluster_snapshots", {"DBClusterSnapshotIdentifier": identifier, **shared},
                missing_ok=NOT_FOUND, key="DBClusterSnapshots")


def restore_look(restore_from: str) -> Look:
    """What `database.restore_from` needs read: every manual snapshot for `latest`, else that one."""
    return manual_look() if restore_from == LATEST else one_look(restore_from)


def stack_snapshots(snapshots: list[dict[str, Any]] | None, stack: str) -> list[dict[str, Any]]:
    """The stack's (by its tag), newest first."""
    own = [s for s in snapshots or [] if {"Key": STACK_TAG, "Value": stack} in (s.get("TagList") or [])]
    return sorted(own, key=lambda s: str(s.get("SnapshotCreateTime", "")), reverse=True)


def chosen(snapshots: list[dict[str, Any]] | None, restore_from: str, stack: str) -> dict[str, Any] | None:
    """The snapshot `restore_from` names among the answer to restore_look: for `latest`, the newest
    available one tagged with the stack; else the one of that id (whoever's: the user named it)."""
    if restore_from != LATEST:
        return next((s for s in snapshots or [] if restore_from in (s.get("DBClusterSnapshotIdentifier"),
                                                                     s.get("DBClusterSnapshotArn"))), None)
    return next((s for s in stack_snapshots(snapshots, stack) if s.get("Status") == "available"), None)


def refusal(snapshot: dict[str, Any] | None, restore_from: str, stack: str, engine_version: str) -> str | None:
    """Why this snapshot cannot make the stack's new cluster (None: it can). A snapshot of a newer
    version than the stack's cannot be restored to an older one; an older Aurora MySQL 3 one can."""
    if snapshot is None:
        if restore_from == LATEST:
            return f"no available cluster snapshot tagged with stack {stack} in this region"
        return f"no cluster snapshot {restore_from} in this region"
    name = snapshot.get("DBClusterSnapshotIdentifier", restore_from)
    if snapshot.get("Status") != "available":
        return f"cluster snapshot {name} is {snapshot.get('Status')}, not available"
    engine, version = snapshot.get("Engine"), str(snapshot.get("EngineVersion", ""))
    if engine != ENGINE or not VERSION.fullmatch(version):
        return f"cluster snapshot {name} is of {engine} {version}, not Aurora MySQL 3 ({ENGINE} 8.0.mysql_aurora.3.*)"
    wanted = VERSION.fullmatch(engine_version)
    if wanted and _numbers(version) > _numbers(engine_version):
        return (f"cluster snapshot {name} is of {version}, newer than database.engine_version {engine_version} "
                f"(a restore cannot go back a version): set database.engine_version: {version}")
    return None


def _numbers(version: str) -> tuple[int, ...]:
    found = VERSION.fullmatch(version)
    return tuple(int(n) for n in found.groups()) if found else ()


def size_gib(snapshot: dict[str, Any]) -> int:
    return int(snapshot.get("AllocatedStorage") or 0)


def age(snapshot: dict[str, Any], now: dt.datetime | None = None) -> str:
    """How old, in words: `3 d`, `5 h`, `12 min`."""
    created = snapshot.get("SnapshotCreateTime")
    if not isinstance(created, dt.datetime):
        return "?"
    seconds = ((now or dt.datetime.now(dt.timezone.utc)) - created).total_seconds()
    if seconds >= 86400:
        return f"{int(seconds // 86400)} d"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h"
    return f"{max(0, int(seconds // 60))} min"


def listing(snapshots: list[dict[str, Any]], stack: str, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """What `status --json` says of each: id, kind (final or backup, by name; else manual), size, age, when."""
    return [{"id": s["DBClusterSnapshotIdentifier"], "kind": kind(s, stack), "status": s.get("Status"),
             "size_gib": size_gib(s), "age": age(s, now),
             "created": s["SnapshotCreateTime"].isoformat() if isinstance(s.get("SnapshotCreateTime"), dt.datetime)
             else None}
            for s in snapshots]


def kind(snapshot: dict[str, Any], stack: str) -> str:
    name = str(snapshot.get("DBClusterSnapshotIdentifier", ""))
    return "final" if name.startswith(final_snapshot_prefix_for(stack)) else \
        "backup" if name.startswith(backup_snapshot_prefix_for(stack)) else "manual"
