"""Aurora in time.

- cluster creating 60 s; CreateDBInstance refused until the cluster is available
  (`db-instance-before-cluster`); instances creating 480 s each (in parallel), deleting 480 s; the
  cluster cannot be deleted while it has instances (`delete-cluster-with-instances`); deleting 60 s
  (+120 s with a final snapshot); DeleteDBSubnetGroup refused while a cluster uses it
  (`delete-subnet-group-in-use`);
- stop and start (`pause`, `resume`; estimates, see figures.CLUSTER_STOP_SECONDS): StopDBCluster only of
  an available cluster whose instances are available (`stop-cluster-not-available` otherwise), then
  cluster and instances `stopping` 300 s, then `stopped`; StartDBCluster of a stopped cluster, then
  `starting` 480 s, then `available` (a cluster still stopping: `start-cluster-stopping`; one starting or
  available: a plain refusal); while stopping, stopped or starting, ModifyDBCluster, ModifyDBInstance,
  CreateDBInstance, DeleteDBInstance and DeleteDBCluster are refused with InvalidDBClusterStateFault
  (`change-stopped-cluster`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.model import figures
from bench.model.core import Span, after, answer, before, override

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


@dataclass
class AuroraCluster:
    id: str
    part: int | None
    created: float
    endpoint: str = ""
    subnet_group: str = ""
    security_groups: tuple[str, ...] = ()
    deleted: float | None = None
    delete_seconds: float = figures.CLUSTER_DELETE_SECONDS
    gone: bool = False
    stop_requested: float | None = None    # the last StopDBCluster
    start_requested: float | None = None   # the last StartDBCluster after it

    @property
    def available_at(self) -> float:
        return self.created + figures.CLUSTER_CREATE_SECONDS

    def power(self, t: float) -> str | None:
        """stopping, stopped or starting at `t` (None: running, as far as stop and start go)."""
        if self.stop_requested is None:
            return None
        if self.start_requested is None:
            return "stopping" if t < self.stop_requested + figures.CLUSTER_STOP_SECONDS else "stopped"
        return "starting" if t < self.start_requested + figures.CLUSTER_START_SECONDS else None


@dataclass
class AuroraInstance:
    id: str
    cluster: str
    part: int | None
    requested: float
    ready: float
    deleted: float | None = None
    gone: bool = False


def cluster_status(model: LatencyModel, cluster_id: str) -> str | None:
    cluster = model.clusters.get(cluster_id)
    if cluster is None:
        return None
    if cluster.deleted is not None:
        return "deleting"
    if model.now < cluster.available_at:
        return "creating"
    return cluster.power(model.now) or "available"


def db_instance_status(model: LatencyModel, identifier: str) -> str | None:
    instance = model.db_instances.get(identifier)
    if instance is None:
        return None
    if instance.deleted is not None:
        return "deleting"
    cluster = model.clusters.get(instance.cluster)
    power = cluster.power(model.now) if cluster is not None else None
    if power is not None:  # stopped and started with its cluster
        return power
    return "creating" if model.now < instance.ready else "available"


def _cluster_record(model: LatencyModel, cluster_id: str) -> AuroraCluster | None:
    """The model's record of a cluster, learnt from moto when it was made before the model was installed."""
    if cluster_id in model.clusters:
        return model.clusters[cluster_id]
    found = model.raw("rds").describe_db_clusters()["DBClusters"]
    cluster = next((c for c in found if c["DBClusterIdentifier"] == cluster_id), None)
    if cluster is None:
        return None
    record = model.clusters[cluster_id] = AuroraCluster(cluster_id, None, -1e9, cluster.get("Endpoint", ""),
                                                        cluster.get("DBSubnetGroup", ""))
    return record


def _refuse_asleep(model: LatencyModel, cluster_id: str, operation: str) -> Any:
    """AWS changes nothing of a cluster stopping, stopped or starting (InvalidDBClusterStateFault)."""
    status = cluster_status(model, cluster_id)
    if status in ("stopping", "stopped", "starting"):
        return model.refuse("InvalidDBClusterStateFault", f"DB cluster {cluster_id} is {status}: no {operation} "
                            f"until it is available", operation=operation, service="rds",
                            rule="change-stopped-cluster")
    return None


# -- clusters -----------------------------------------------------------------------------------
@after("rds", "CreateDBCluster")
def cluster_created(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    cluster = parsed.get("DBCluster")
    if not cluster:
        return
    model.clusters[cluster["DBClusterIdentifier"]] = AuroraCluster(
        cluster["DBClusterIdentifier"], model.part(params), model.now, cluster.get("Endpoint", ""),
        params.get("DBSubnetGroupName", ""), tuple(params.get("VpcSecurityGroupIds") or []))
    cluster["Status"] = "creating"


@after("rds", "DescribeDBClusters")
def describe_clusters(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    override(parsed.get("DBClusters", []), "DBClusterIdentifier", "Status",
             lambda cluster_id: cluster_status(model, cluster_id))


@before("rds", "DeleteDBCluster")
def delete_db_cluster(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    """Refused while it has instances; otherwise answered here and carried out 60 s (+120 s) later."""
    cluster_id = params.get("DBClusterIdentifier", "")
    found = model.raw("rds").describe_db_clusters()["DBClusters"]
    cluster = next((c for c in found if c["DBClusterIdentifier"] == cluster_id), None)
    if cluster is None:
        return None
    asleep = _refuse_asleep(model, cluster_id, operation)
    if asleep is not None:
        return asleep
    members = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])]
    if members:
        return model.refuse("InvalidDBClusterStateFault", f"Cluster {cluster_id} still has instances "
                            f"({', '.join(members)})", operation=operation, service="rds",
                            rule="delete-cluster-with-instances")
    record = _cluster_record(model, cluster_id)
    assert record is not None
    if record.deleted is not None:
        return model.refuse("InvalidDBClusterStateFault", f"Cluster {cluster_id} is already being deleted",
                            operation=operation, service="rds")
    snapshot = not params.get("SkipFinalSnapshot") and params.get("FinalDBSnapshotIdentifier")
    record.deleted = model.now
    record.delete_seconds = figures.CLUSTER_DELETE_SECONDS + (figures.CLUSTER_FINAL_SNAPSHOT_SECONDS if snapshot else 0)
    real = {k: v for k, v in params.items()
            if k in ("DBClusterIdentifier", "SkipFinalSnapshot", "FinalDBSnapshotIdentifier")}

    def delete() -> None:
        model.raw("rds").delete_db_cluster(**real)
        record.gone = True
    model.defer(model.now + record.delete_seconds, f"delete DB cluster {cluster_id}", delete)
    return answer({"DBCluster": {**cluster, "Status": "deleting"}})


@before("rds", "ModifyDBCluster")
def change_db_cluster(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    return _refuse_asleep(model, params.get("DBClusterIdentifier", ""), operation)


@before("rds", "DeleteDBSubnetGroup")
def delete_db_subnet_group(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    name = params.get("DBSubnetGroupName", "")
    using = [c["DBClusterIdentifier"] for c in model.raw("rds").describe_db_clusters()["DBClusters"]
             if c.get("DBSubnetGroup") == name]
    if using:
        return model.refuse("InvalidDBSubnetGroupStateFault", f"DB subnet group {name} is in use by "
                            f"{', '.join(using)}", operation=operation, service="rds",
                            rule="delete-subnet-group-in-use")
    return None


# -- instances ----------------------------------------------------------------------------------
@before("rds", "CreateDBInstance")
def create_db_instance(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    cluster_id = params.get("DBClusterIdentifier", "")
    asleep = _refuse_asleep(model, cluster_id, operation)
    if asleep is not None:
        return asleep
    status = cluster_status(model, cluster_id)
    if status is not None and status not in ("available", "stopping", "stopped", "starting"):
        return model.refuse("InvalidDBClusterStateFault", f"DB cluster {cluster_id} is not in the available "
                            f"state (it is {status})", operation=operation, service="rds",
                            rule="db-instance-before-cluster")
    return None


@after("rds", "CreateDBInstance")
def db_instance_created(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    db = parsed.get("DBInstance")
    if not db:
        return
    cluster = model.clusters.get(params.get("DBClusterIdentifier", ""))
    start = max(model.now, cluster.available_at) if cluster else model.now  # only later than now when relaxed
    model.db_instances[db["DBInstanceIdentifier"]] = AuroraInstance(
        db["DBInstanceIdentifier"], params.get("DBClusterIdentifier", ""), model.part(params), model.now,
        start + figures.DB_INSTANCE_CREATE_SECONDS)
    db["DBInstanceStatus"] = "creating"


@after("rds", "DescribeDBInstances")
def describe_db_instances(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    override(parsed.get("DBInstances", []), "DBInstanceIdentifier", "DBInstanceStatus",
             lambda identifier: db_instance_status(model, identifier))


@before("rds", "DeleteDBInstance")
def delete_db_instance(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    """Answered here: moto would delete at once; the real delete is deferred 480 s."""
    identifier = params.get("DBInstanceIdentifier", "")
    found = model.raw("rds").describe_db_instances()["DBInstances"]
    db = next((d for d in found if d["DBInstanceIdentifier"] == identifier), None)
    if db is None:
        return None  # moto answers DBInstanceNotFound
    asleep = _refuse_asleep(model, db.get("DBClusterIdentifier", ""), operation)
    if asleep is not None:
        return asleep
    record = model.db_instances.get(identifier)
    if record is None:  # made before the model was installed
        record = model.db_instances[identifier] = AuroraInstance(identifier, db.get("DBClusterIdentifier", ""),
                                                                 None, -1e9, -1e9)
    if record.deleted is not None:
        return model.refuse("InvalidDBInstanceState", f"Instance {identifier} is already being deleted.",
                            operation=operation, service="rds")
    record.deleted = model.now

    def delete() -> None:
        model.raw("rds").delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
        record.gone = True
    model.defer(model.now + figures.DB_INSTANCE_DELETE_SECONDS, f"delete DB instance {identifier}", delete)
    return answer({"DBInstance": {**db, "DBInstanceStatus": "deleting"}})


@before("rds", "ModifyDBInstance")
def change_db_instance(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    record = model.db_instances.get(params.get("DBInstanceIdentifier", ""))
    return _refuse_asleep(model, record.cluster, operation) if record is not None else None


# -- stop and start ------------------------------------------------------------------------------
@before("rds", "StopDBCluster")
def stop_db_cluster(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    """Only an available cluster with every instance available stops."""
    cluster_id = params.get("DBClusterIdentifier", "")
    record = _cluster_record(model, cluster_id)
    if record is None:
        return None  # moto answers DBClusterNotFoundFault
    status = cluster_status(model, cluster_id)
    busy = [f"{i.id} {db_instance_status(model, i.id)}" for i in model.db_instances.values()
            if i.cluster == cluster_id and not i.gone and db_instance_status(model, i.id) != "available"]
    if status != "available" or busy:
        why = f"it is {status}" if status != "available" else f"its instances are not available ({', '.join(busy)})"
        return model.refuse("InvalidDBClusterStateFault", f"DB cluster {cluster_id} cannot be stopped: {why}",
                            operation=operation, service="rds", rule="stop-cluster-not-available")
    return None


@after("rds", "StopDBCluster")
def cluster_stopped(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    record = _cluster_record(model, params.get("DBClusterIdentifier", ""))
    if record is not None:
        record.stop_requested, record.start_requested = model.now, None
    if parsed.get("DBCluster"):
        parsed["DBCluster"]["Status"] = "stopping"


@before("rds", "StartDBCluster")
def start_db_cluster(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    """Only a stopped cluster starts: one still stopping is a caller that did not wait (a violation);
    one starting or available is refused as AWS does (the caller may take that as done)."""
    cluster_id = params.get("DBClusterIdentifier", "")
    record = _cluster_record(model, cluster_id)
    if record is None:
        return None
    status = cluster_status(model, cluster_id)
    if status == "stopped":
        return None
    message = f"DbCluster {cluster_id} is in {status} state but expected it to be one of stopped"
    return model.refuse("InvalidDBClusterStateFault", message, operation=operation, service="rds",
                        rule="start-cluster-stopping" if status == "stopping" else None)


@after("rds", "StartDBCluster")
def cluster_started(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    record = _cluster_record(model, params.get("DBClusterIdentifier", ""))
    if record is not None and record.stop_requested is not None:
        record.start_requested = model.now
    if parsed.get("DBCluster"):
        parsed["DBCluster"]["Status"] = "starting"


def spans(model: LatencyModel) -> list[Span]:
    """The clusters (created, stopped, started, deleted), then their instances (the first one requested
    in a cluster is its writer)."""
    spans: list[Span] = []
    for cluster in model.clusters.values():
        if cluster.created > -1e8:
            spans.append(Span(cluster.part, "Aurora cluster", cluster.id, cluster.created, cluster.available_at))
        if cluster.stop_requested is not None:
            spans.append(Span(cluster.part, "Aurora cluster", cluster.id, cluster.stop_requested,
                              cluster.stop_requested + figures.CLUSTER_STOP_SECONDS, action="stop"))
        if cluster.start_requested is not None:
            spans.append(Span(cluster.part, "Aurora cluster", cluster.id, cluster.start_requested,
                              cluster.start_requested + figures.CLUSTER_START_SECONDS, action="start"))
        if cluster.deleted is not None:
            spans.append(Span(cluster.part, "Aurora cluster", cluster.id, cluster.deleted,
                              cluster.deleted + cluster.delete_seconds, action="delete"))
    writers: set[str] = set()
    for cluster_id in model.clusters:
        members = sorted((i for i in model.db_instances.values() if i.cluster == cluster_id and i.requested > -1e8),
                         key=lambda i: i.requested)
        if members:
            writers.add(members[0].id)
    for db in model.db_instances.values():
        kind = "Aurora writer" if db.id in writers else "Aurora instance"
        if db.requested > -1e8:
            spans.append(Span(db.part, kind, db.id, db.requested, db.ready))
        if db.deleted is not None:
            spans.append(Span(db.part, "Aurora instance", db.id, db.deleted,
                              db.deleted + figures.DB_INSTANCE_DELETE_SECONDS, action="delete"))
    return spans
