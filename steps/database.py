"""Part 3 — database.

The guide: a DB subnet group over the two DB subnets; an Aurora MySQL cluster,
not publicly accessible, behind the database security group, with password
authentication; a writer and a reader (Aurora Replica) in the other AZ. Note
the writer endpoint: the app tier connects to it.

Beyond the guide (its "left as an extension"): the password is generated and
kept by RDS in Secrets Manager (ManageMasterUserPassword), never in config,
state, S3, user data or an AMI; the EC2 role may read exactly that secret. The
cluster's own parameter group requires TLS of every client
(require_secure_transport), as the app already connects with verified TLS. A
cluster stopped to save money is started again by `up` and by `down`.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from typing import Any

from steps import network, storage
from threetier.aws import AwsError, Look, Poll, aws_cli
from threetier.blocks import alarms, iam, snapshots
from threetier.engine import DONE, EXISTS, Check, Ctx
from threetier.errors import ThreetierError, UsageError
from threetier.names import db_parameter_group_name_for, db_subnet_group_name_for, final_snapshot_prefix_for

NUMBER = 3
NAME = "database"
TITLE = "Aurora MySQL database"

SECRET_POLICY_NAME = iam.SECRET_POLICY_NAME  # on the app tier's role only: the web tier never reads it
CREATE_TIMEOUT = 40 * 60   # writer and reader together: ~6 and ~12 min, sometimes much more
DELETE_TIMEOUT = 40 * 60
POLL_DELAY = 30
GONE = ("DBClusterNotFoundFault", "DBInstanceNotFound")
PARAMETER_GROUP_GONE = ("DBParameterGroupNotFound",)  # botocore: DBParameterGroupNotFoundFault's code
# Cluster-level settings of the stack's own parameter group. require_secure_transport is dynamic in
# Aurora MySQL (no reboot), so it applies at once.
CLUSTER_PARAMETERS = {"require_secure_transport": "ON"}
# The writer is the failover target of choice (tier 0), the reader next (tier 1): roles stay as named.
PROMOTION_TIERS = {"writer": 0, "reader": 1}
# A stopped cluster (how a lab saves money) takes no create, change or delete until it is started again;
# AWS starts it by itself after 7 days. Starting takes about as long as an instance coming up (an estimate).
ASLEEP = ("stopped", "stopping")
START_MINUTES = 10

# CloudWatch alarms on the writer, whichever instance it is: AWS/RDS publishes Aurora metrics by
# DBClusterIdentifier and Role too, and Role=WRITER follows a failover (AWS's advice for Aurora).
CPU_ALARM, MEMORY_ALARM = "aurora-writer-cpu", "aurora-writer-memory"
ALARMS = (CPU_ALARM, MEMORY_ALARM)  # this Part's alarms (config.yaml monitoring.alarms)
WRITER_CPU_PERCENT = 80
# Low freeable memory: under 10 % of the instance class's memory for 15 minutes. Aurora MySQL sizes its
# buffer pool to about 3/4 of memory, so free memory sits well above that in normal work; under it, too
# many connections or large sorts and temporary tables, and next the instance restarts out of memory.
FREEABLE_MEMORY_SHARE = 0.10
# GiB of memory of the classes Aurora MySQL 3 offers (the r classes: 8 GiB per vCPU, any generation).
BURSTABLE_MEMORY_GIB = {"db.t3.medium": 4, "db.t4g.medium": 4, "db.t3.large": 8, "db.t4g.large": 8}
MEMORY_OPTIMIZED_FAMILIES = ("db.r5.", "db.r6g.", "db.r6i.", "db.r7g.", "db.r7i.", "db.r8g.")
MEMORY_OPTIMIZED_GIB = {"large": 16, "xlarge": 32, "2xlarge": 64, "4xlarge": 128, "8xlarge": 256, "12xlarge": 384,
                        "16xlarge": 512, "24xlarge": 768, "32xlarge": 1024, "48xlarge": 1536}
# A class not in the table: a fixed floor, 1/8 of the smallest class (4 GiB). On a larger class that
# alarm comes late rather than never stopping; the table is what to extend.
FREEABLE_MEMORY_FALLBACK_BYTES = 512 * 1024**2


def cluster_id(ctx: Ctx) -> str:
    return ctx.name("aurora")


def subnet_group_name(ctx: Ctx) -> str:
    return db_subnet_group_name_for(ctx.stack)


def parameter_group_name(ctx: Ctx) -> str:
    return db_parameter_group_name_for(ctx.stack)


def parameter_group_family(engine_version: str) -> str:
    """8.0.mysql_aurora.3.10.3 (Aurora MySQL 3, the only major version config.py accepts) -> aurora-mysql8.0."""
    return "aurora-mysql" + engine_version.split(".mysql_aurora.")[0]


def instance_ids(ctx: Ctx) -> dict[str, str]:
    """The writer in the first AZ, the reader (Aurora Replica) in the other."""
    return {"writer": ctx.name("aurora-writer"), "reader": ctx.name("aurora-reader")}


def rds_tags(ctx: Ctx, role: str) -> list[dict[str, str]]:
    return ctx.tags(role)


# -- what the finders read (the inventory) ---------------------------------------
def subnet_group_look(ctx: Ctx) -> Look:
    return Look("rds", "describe_db_subnet_groups", {"DBSubnetGroupName": subnet_group_name(ctx)},
                missing_ok=("DBSubnetGroupNotFoundFault",))


def cluster_look(ctx: Ctx) -> Look:
    return Look("rds", "describe_db_clusters", {"DBClusterIdentifier": cluster_id(ctx)}, missing_ok=GONE)


def instance_look(identifier: str) -> Look:
    return Look("rds", "describe_db_instances", {"DBInstanceIdentifier": identifier}, missing_ok=GONE)


def parameters_look(ctx: Ctx) -> Look:
    """The parameters the stack set in its cluster parameter group (None: there is no such group). One
    read answers both questions, so a no-op `up` pays one call for the group, not two."""
    return Look("rds", "describe_db_cluster_parameters",
                {"DBClusterParameterGroupName": parameter_group_name(ctx), "Source": "user"},
                missing_ok=PARAMETER_GROUP_GONE, key="Parameters")


def looks(ctx: Ctx) -> Iterator[Look]:
    yield subnet_group_look(ctx)
    yield parameters_look(ctx)
    yield cluster_look(ctx)
    yield from (instance_look(identifier) for identifier in instance_ids(ctx).values())
    yield iam.iam_look("get_role_policy", RoleName=iam.role_name(ctx, "app"), PolicyName=SECRET_POLICY_NAME)
    yield alarms.alarms_look(ctx)


# -- apply -----------------------------------------------------------------------
def start(ctx: Ctx) -> None:
    """The cluster needs only the DB subnets and db-sg to exist, not the NAT gateways: it starts
    in the first minute. Its endpoint and secret are known at once, which is all Part 4 needs."""
    ctx.need(storage.NUMBER, DONE)
    ctx.need(network.NUMBER, network.SUBNETS_AND_GROUPS)
    net = ctx.resources_of(network.NUMBER)
    ensure_subnet_group(ctx, [net["subnets"][role] for role in network.subnet_roles("db")])
    ensure_parameter_group(ctx)
    cluster = ensure_cluster(ctx, net["security_groups"]["db-sg"])
    ensure_secret_readable(ctx, cluster)


def finish(ctx: Ctx) -> None:
    """The writer and the reader, once the cluster takes them: AWS refuses CreateDBInstance
    (InvalidDBClusterStateFault) while the cluster is still `creating`, and ModifyDBCluster too. A
    stopped cluster is started first: it would never become available by itself within the wait."""
    if wake_cluster(ctx, describe_cluster(ctx), "`up` can use it"):
        ctx.record("changed", "Aurora cluster", cluster_id(ctx), "started")
    wait_cluster(ctx, "available")
    converge_cluster(ctx)
    ensure_instances(ctx, ctx.resources_of(network.NUMBER)["azs"])
    wanted = writer_alarms(ctx)  # put while the instances come up
    if alarms.notify(ctx, wanted):
        ctx.need(storage.NUMBER, EXISTS)  # the SNS topic their actions name: made by Part 1's start
    alarms.ensure_alarms(ctx, wanted, ALARMS)
    wait_available(ctx)


def memory_bytes(instance_class: str) -> int | None:
    """The class's memory, from the table above; None for a class not in it."""
    if instance_class in BURSTABLE_MEMORY_GIB:
        return BURSTABLE_MEMORY_GIB[instance_class] * 1024**3
    family, _, size = instance_class.rpartition(".")
    if f"{family}." in MEMORY_OPTIMIZED_FAMILIES and size in MEMORY_OPTIMIZED_GIB:
        return MEMORY_OPTIMIZED_GIB[size] * 1024**3
    return None


def freeable_memory_threshold(instance_class: str) -> int:
    memory = memory_bytes(instance_class)
    return FREEABLE_MEMORY_FALLBACK_BYTES if memory is None else int(memory * FREEABLE_MEMORY_SHARE)


def writer_alarms(ctx: Ctx) -> list[alarms.Alarm]:
    """The writer's CPU and freeable memory, each averaged over 5 minutes, 3 periods in a row: a backup or
    one heavy query is a burst, not a database that needs a larger class."""
    writer = alarms.dimensions(DBClusterIdentifier=cluster_id(ctx), Role="WRITER")
    instance_class = ctx.config.database.instance_class
    threshold, memory = freeable_memory_threshold(instance_class), memory_bytes(instance_class)
    how = (f"10 % of a {instance_class}'s {memory // 1024**3} GiB" if memory is not None
           else f"a fixed floor: {instance_class} is not in threetier's table")
    return [
        alarms.Alarm(CPU_ALARM, (
            f"The writer of Aurora cluster {cluster_id(ctx)} (whichever instance it is) has used more than "
            f"{WRITER_CPU_PERCENT} % CPU for 15 minutes: queries slow down, then time out (the app answers 500). "
            f"Look at Performance Insights or the slow query log for what runs; if it is steady load, a larger "
            f"database.instance_class."),
            alarms.watching("AWS/RDS", "CPUUtilization", writer, statistic="Average", period=300, periods=3,
                            threshold=WRITER_CPU_PERCENT, comparison="GreaterThanThreshold",
                            missing_data=alarms.MISSING)),
        alarms.Alarm(MEMORY_ALARM, (
            f"The writer of Aurora cluster {cluster_id(ctx)} has had less than {threshold // 1024**2} MiB of "
            f"freeable memory ({how}) for 15 minutes: next it may restart out of memory. Look at the number of "
            f"connections (DatabaseConnections) and memory-hungry queries (large sorts, temporary tables); if it "
            f"is steady load, a larger database.instance_class."),
            alarms.watching("AWS/RDS", "FreeableMemory", writer, statistic="Average", period=300, periods=3,
                            threshold=threshold, comparison="LessThanThreshold", missing_data=alarms.MISSING)),
    ]


def ensure_subnet_group(ctx: Ctx, subnet_ids: list[str]) -> None:
    aws, name = ctx.aws, subnet_group_name(ctx)
    found = aws.look(subnet_group_look(ctx), resource=f"DB subnet group {name}")
    if found is None:
        aws.call("rds", "create_db_subnet_group", resource=f"DB subnet group {name}", DBSubnetGroupName=name,
                 DBSubnetGroupDescription=f"threetier {ctx.stack}: the two private DB subnets",
                 SubnetIds=subnet_ids, Tags=rds_tags(ctx, "db-subnet-group"), exists=("DBSubnetGroupAlreadyExists",),
                 found=lambda: aws.look(subnet_group_look(ctx), resource=f"DB subnet group {name}", live=True))
        ctx.record("created", "DB subnet group", name)
    else:
        present = {s["SubnetIdentifier"] for s in found["DBSubnetGroups"][0]["Subnets"]}
        if present != set(subnet_ids):
            aws.call("rds", "modify_db_subnet_group", resource=f"DB subnet group {name}", DBSubnetGroupName=name,
                     SubnetIds=subnet_ids)
            ctx.record("changed", "DB subnet group subnets", name)
    ctx.resources["db_subnet_group"] = name


def ensure_parameter_group(ctx: Ctx) -> None:
    """The cluster's own parameter group, made before the cluster so that it is created on it."""
    aws, name = ctx.aws, parameter_group_name(ctx)
    resource = f"DB cluster parameter group {name}"
    found = aws.look(parameters_look(ctx), resource=resource)
    if found is None:
        aws.call("rds", "create_db_cluster_parameter_group", resource=resource, DBClusterParameterGroupName=name,
                 DBParameterGroupFamily=parameter_group_family(ctx.config.database.engine_version),
                 Description=f"threetier {ctx.stack}: Aurora cluster settings (TLS required)",
                 Tags=rds_tags(ctx, "aurora-params"), exists=("DBParameterGroupAlreadyExists",),
                 found=lambda: aws.look(parameters_look(ctx), resource=resource, live=True))
        ctx.record("created", "DB cluster parameter group", name)
    wrong = parameters_not_set(found or [])
    if wrong:
        aws.call("rds", "modify_db_cluster_parameter_group", resource=resource, DBClusterParameterGroupName=name,
                 Parameters=[{"ParameterName": key, "ParameterValue": CLUSTER_PARAMETERS[key], "ApplyMethod": "immediate"}
                             for key in wrong],
                 retry_codes=PARAMETER_GROUP_GONE, retry_timeout=60, retry_delay=5)  # just created: not yet known
        if found is not None:
            ctx.record("changed", "DB cluster parameter group", name, ", ".join(wrong))
    ctx.resources["db_cluster_parameter_group"] = name


def parameters_not_set(parameters: list[dict[str, Any]]) -> list[str]:
    """The names of CLUSTER_PARAMETERS that these (a DescribeDBClusterParameters answer) lack or contradict."""
    present = {p.get("ParameterName"): str(p.get("ParameterValue", "")) for p in parameters}
    return [key for key, value in CLUSTER_PARAMETERS.items() if not same_value(present.get(key), value)]


def same_value(present: str | None, wanted: str) -> bool:
    """MySQL takes a boolean ON as 1 too: either spelling is the setting, not drift."""
    def normal(value: str) -> str:
        return {"on": "1", "off": "0"}.get(value.lower(), value.lower())
    return present is not None and normal(present) == normal(wanted)


def describe_cluster(ctx: Ctx, *, live: bool = False) -> dict[str, Any] | None:
    look, what = cluster_look(ctx), f"DB cluster {cluster_id(ctx)}"
    found = ctx.aws.call("rds", look.operation, resource=what, missing_ok=look.missing_ok, **look.params) if live \
        else ctx.aws.look(look, resource=what)
    return found["DBClusters"][0] if found else None


def describe_instance(ctx: Ctx, identifier: str) -> dict[str, Any] | None:
    found = ctx.aws.look(instance_look(identifier), resource=f"DB instance {identifier}")
    return found["DBInstances"][0] if found else None


def ensure_cluster(ctx: Ctx, db_security_group: str) -> dict[str, Any]:
    aws, db = ctx.aws, ctx.config.database
    cluster = describe_cluster(ctx)
    if cluster is not None and cluster["Status"] == "deleting":
        assert ctx.part is not None  # `up` runs this inside a part (as Ctx.part_number asserts)
        raise ThreetierError(f"{ctx.part.label}: DB cluster {cluster_id(ctx)} is being deleted; "
                             f"wait for `threetier down` to finish, then run `up`")
    if cluster is None and db.restore_from:
        cluster = restore_cluster(ctx, db_security_group)
    elif cluster is None:
        cluster = aws.call(
            "rds", "create_db_cluster", DatabaseName=db.name, MasterUsername=db.username,
            ManageMasterUserPassword=True, StorageEncrypted=True, BackupRetentionPeriod=db.backup_retention_days,
            **cluster_settings(ctx, db_security_group))["DBCluster"]
        ctx.record("created", "Aurora cluster", cluster_id(ctx))
    if "MasterUserSecret" not in cluster:  # restored (now, or by a run that crashed): no managed secret yet
        cluster = manage_password(ctx)
    ctx.resources["cluster"] = cluster_id(ctx)
    ctx.resources["db_writer_endpoint"] = cluster["Endpoint"]
    ctx.resources["db_reader_endpoint"] = cluster.get("ReaderEndpoint", "")
    ctx.resources["db_name"] = db.name
    ctx.resources["db_secret_arn"] = cluster["MasterUserSecret"]["SecretArn"]
    return cluster


def cluster_settings(ctx: Ctx, db_security_group: str) -> dict[str, Any]:
    """What a new cluster gets, created empty or restored: the stack's names, groups, version and tags."""
    db = ctx.config.database
    return dict(
        resource=f"DB cluster {cluster_id(ctx)}", DBClusterIdentifier=cluster_id(ctx), Engine=snapshots.ENGINE,
        EngineVersion=db.engine_version, DBSubnetGroupName=subnet_group_name(ctx),
        VpcSecurityGroupIds=[db_security_group], Port=3306, DeletionProtection=db.deletion_protection,
        CopyTagsToSnapshot=True, DBClusterParameterGroupName=parameter_group_name(ctx),
        # Extended support bills extra once a version leaves standard support: opt out.
        EngineLifecycleSupport="open-source-rds-extended-support-disabled",
        Tags=rds_tags(ctx, "aurora"), exists=("DBClusterAlreadyExistsFault",),
        found=lambda: (lambda c: {"DBCluster": c} if c else None)(describe_cluster(ctx, live=True)))


def restore_cluster(ctx: Ctx, db_security_group: str) -> dict[str, Any]:
    """A new cluster made from the snapshot database.restore_from names, on the stack's subnet group,
    security group and parameter group (TLS required), at the stack's engine version, tagged at
    creation. The preflight refused a missing or unfit snapshot already; checked again here for a run
    without one (and for a snapshot deleted in between)."""
    aws, db = ctx.aws, ctx.config.database
    assert db.restore_from is not None
    found = aws.look(snapshots.restore_look(db.restore_from), resource="DB cluster snapshots", live=True)
    snapshot = snapshots.chosen(found, db.restore_from, ctx.stack)
    refused = snapshots.refusal(snapshot, db.restore_from, ctx.stack, db.engine_version)
    if refused or snapshot is None:
        raise UsageError(f"database.restore_from: {refused}")
    name = snapshot["DBClusterSnapshotIdentifier"]
    # The snapshot's database, user, encryption (its key) and data; backup retention follows in finish.
    cluster = aws.call("rds", "restore_db_cluster_from_snapshot",
                       SnapshotIdentifier=db.restore_from if db.restore_from.startswith("arn:") else name,
                       **cluster_settings(ctx, db_security_group))["DBCluster"]
    ctx.record("created", "Aurora cluster", cluster_id(ctx), f"restored from snapshot {name}")
    ctx.resources["restored_from"] = name
    return cluster


def manage_password(ctx: Ctx) -> dict[str, Any]:
    """A restored cluster has the snapshot's master password, which nobody knows any more (its secret
    went with the old cluster): RDS makes and keeps a new one. ModifyDBCluster needs the cluster
    available, so this waits for the restore (minutes on AWS)."""
    wait_cluster(ctx, "available")
    cluster = ctx.aws.call("rds", "modify_db_cluster", resource=f"DB cluster {cluster_id(ctx)}",
                           DBClusterIdentifier=cluster_id(ctx), ManageMasterUserPassword=True, ApplyImmediately=True,
                           retry_codes=("InvalidDBClusterStateFault",), retry_timeout=10 * 60,
                           retry_delay=POLL_DELAY)["DBCluster"]
    ctx.record("changed", "Aurora cluster", cluster_id(ctx), "master password managed by RDS (a new secret)")
    if "MasterUserSecret" not in cluster:
        cluster = describe_cluster(ctx, live=True) or cluster
    if "MasterUserSecret" not in cluster:
        raise ThreetierError(f"DB cluster {cluster_id(ctx)}: ModifyDBCluster ManageMasterUserPassword made no secret")
    return cluster


def converge_cluster(ctx: Ctx) -> None:
    """What config (and the stack's parameter group) say of a cluster found in place. ModifyDBCluster
    needs the cluster available: it runs after the wait, not when the cluster is found."""
    db, cluster = ctx.config.database, describe_cluster(ctx)
    if cluster is None:
        return
    changes: dict[str, Any] = {}
    if cluster.get("BackupRetentionPeriod") != db.backup_retention_days:
        changes["BackupRetentionPeriod"] = db.backup_retention_days
    if bool(cluster.get("DeletionProtection")) != db.deletion_protection:
        changes["DeletionProtection"] = db.deletion_protection
    if not on_parameter_group(ctx, cluster):  # made before the stack had its own group: on the default one
        changes["DBClusterParameterGroupName"] = parameter_group_name(ctx)
    if changes:
        ctx.aws.call("rds", "modify_db_cluster", resource=f"DB cluster {cluster_id(ctx)}",
                     DBClusterIdentifier=cluster_id(ctx), ApplyImmediately=True, **changes)
        ctx.record("changed", "Aurora cluster", cluster_id(ctx), ", ".join(changes))
    if "DBClusterParameterGroupName" in changes:
        ctx.out.info(f"  DB cluster {cluster_id(ctx)} is now on parameter group {parameter_group_name(ctx)}; its "
                     f"instances take it at their next reboot (`threetier status` lists those still pending)")


def on_parameter_group(ctx: Ctx, cluster: dict[str, Any]) -> bool:
    return str(cluster.get("DBClusterParameterGroup", "")).lower() == parameter_group_name(ctx).lower()


def ensure_instances(ctx: Ctx, azs: list[str]) -> None:
    """Writer first (the first instance of a cluster is its writer), then the reader in the other AZ,
    each with its promotion tier, so that a failover prefers the writer and the roles stay as named."""
    aws, db = ctx.aws, ctx.config.database
    for (role, identifier), az in zip(instance_ids(ctx).items(), azs, strict=False):
        if describe_instance(ctx, identifier) is None:
            # A cluster just reported available may still refuse an instance for a moment: that passes.
            aws.call("rds", "create_db_instance", resource=f"DB instance {identifier}",
                     DBInstanceIdentifier=identifier, DBClusterIdentifier=cluster_id(ctx), Engine="aurora-mysql",
                     DBInstanceClass=db.instance_class, AvailabilityZone=az, PubliclyAccessible=False,
                     PromotionTier=PROMOTION_TIERS[role], Tags=rds_tags(ctx, f"aurora-{role}"),
                     retry_codes=("InvalidDBClusterStateFault",), retry_timeout=10 * 60, retry_delay=30,
                     exists=("DBInstanceAlreadyExists",),
                     found=functools.partial(aws.look, instance_look(identifier), live=True,
                                             resource=f"DB instance {identifier}"))
            ctx.record("created", f"Aurora {role} instance", identifier)
        ctx.resources.setdefault("instances", {})[role] = identifier


def ensure_secret_readable(ctx: Ctx, cluster: dict[str, Any]) -> None:
    """The app tier's role may read exactly the cluster's managed secret, nothing else (the web
    tier's may not: its instances sit in public subnets and have no use for it)."""
    role = iam.role_name(ctx, "app")
    iam.ensure_inline_policy(ctx, role, SECRET_POLICY_NAME, secret_read_policy(cluster["MasterUserSecret"]["SecretArn"]))


def secret_read_policy(secret_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ReadDatabaseSecret", "Effect": "Allow",
                       "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                       "Resource": secret_arn}],
    }


FAILED_STATES = ("failed", "incompatible-parameters", "incompatible-network", "storage-full",
                 "inaccessible-encryption-credentials", "missing")


def wait_cluster(ctx: Ctx, wanted: str) -> None:
    """Until the cluster is `wanted` (available; stopped, for a cluster still stopping). Its
    instances are not looked at: those of a stopped cluster are `stopped` too, and that is no failure."""
    def probe() -> Poll:
        cluster = describe_cluster(ctx)
        status = cluster["Status"] if cluster else "missing"
        if status in FAILED_STATES:
            return Poll(False, status, failed=f"the cluster is {status}")
        return Poll(status == wanted, status)

    ctx.aws.wait(f"Aurora cluster {cluster_id(ctx)}" + ("" if wanted == "available" else f" to be {wanted}"),
                 probe, delay=POLL_DELAY, timeout=CREATE_TIMEOUT)


def wake_cluster(ctx: Ctx, cluster: dict[str, Any] | None, so_that: str) -> bool:
    """Start a stopped cluster, after waiting out a stopping one (StartDBCluster refuses it); the
    caller then waits for it to be available. Whether it was started."""
    if cluster is None or cluster["Status"] not in ASLEEP:
        return False
    if cluster["Status"] == "stopping":
        wait_cluster(ctx, "stopped")
    start_cluster(ctx, so_that)
    return True


def start_cluster(ctx: Ctx, so_that: str) -> None:
    # AWS's ~10 minutes, not an emulator's: the sandbox starts it at once.
    takes = "" if ctx.aws.emulator else f" (takes ~{START_MINUTES} minutes)"
    ctx.out.info(f"  DB cluster {cluster_id(ctx)} is stopped: starting it so that {so_that}{takes}")
    try:
        ctx.aws.call("rds", "start_db_cluster", resource=f"DB cluster {cluster_id(ctx)}",
                     DBClusterIdentifier=cluster_id(ctx))
    except AwsError as exc:
        # Refused because it is starting or available already (AWS starts a cluster stopped for 7 days
        # by itself): that is what was wanted. Any other state is a real refusal.
        now = describe_cluster(ctx, live=True) if exc.code == "InvalidDBClusterStateFault" else None
        if now is None or now["Status"] not in ("starting", "available"):
            raise


def wait_available(ctx: Ctx) -> None:
    aws = ctx.aws

    def probe() -> Poll:
        cluster = describe_cluster(ctx)
        states = {"cluster": cluster["Status"] if cluster else "missing"}
        for role, identifier in instance_ids(ctx).items():
            found = describe_instance(ctx, identifier)
            states[role] = found["DBInstanceStatus"] if found else "missing"
        bad = {k: v for k, v in states.items() if v in FAILED_STATES}
        summary = ", ".join(f"{k} {v}" for k, v in states.items())
        if bad:
            return Poll(False, summary, failed=summary)
        return Poll(all(v == "available" for v in states.values()), summary)

    aws.wait(f"Aurora writer and reader of {cluster_id(ctx)}", probe, delay=POLL_DELAY, timeout=CREATE_TIMEOUT)


# -- check -----------------------------------------------------------------------
def check(ctx: Ctx) -> Check:
    result = Check()
    aws = ctx.aws
    group = aws.look(subnet_group_look(ctx), resource=f"DB subnet group {subnet_group_name(ctx)}")
    if result.found(f"DB subnet group {subnet_group_name(ctx)}", group is not None):
        ctx.resources["db_subnet_group"] = subnet_group_name(ctx)
    cluster = describe_cluster(ctx)
    result.found(f"DB cluster {cluster_id(ctx)}", cluster is not None)
    if cluster is not None:
        ctx.resources["cluster"] = cluster_id(ctx)
        ctx.resources["db_writer_endpoint"] = cluster["Endpoint"]
        ctx.resources["db_reader_endpoint"] = cluster.get("ReaderEndpoint", "")
        ctx.resources["db_name"] = ctx.config.database.name
        ctx.resources["db_secret_arn"] = cluster["MasterUserSecret"]["SecretArn"]
        ctx.resources["db_status"] = cluster["Status"]
        if ctx.paused:
            check_paused_cluster(ctx, cluster, result)
        elif cluster["Status"] != "available":
            result.drift.append(f"DB cluster {cluster_id(ctx)}: {STATUS_NOTES.get(cluster['Status'], cluster['Status'])}")
        if cluster.get("BackupRetentionPeriod") != ctx.config.database.backup_retention_days:
            result.drift.append(f"DB cluster {cluster_id(ctx)}: backup retention {cluster.get('BackupRetentionPeriod')} "
                                f"days, config says {ctx.config.database.backup_retention_days}")
        if not on_parameter_group(ctx, cluster):
            result.drift.append(f"DB cluster {cluster_id(ctx)}: on parameter group {cluster.get('DBClusterParameterGroup')}, "
                                f"not {parameter_group_name(ctx)}, so TLS is not required (`up` moves it)")
        result.notes.extend(member_notes(ctx, cluster))
        if ctx.config.database.restore_from:
            result.notes.append(f"database.restore_from: {ctx.config.database.restore_from} is not used: DB cluster "
                                f"{cluster_id(ctx)} exists, and an existing cluster is never replaced (it applies "
                                f"when `up` makes the cluster, after a `down`)")
    elif ctx.config.database.restore_from:
        result.notes.append(restore_note(ctx))
    check_parameter_group(ctx, result)
    for role, identifier in instance_ids(ctx).items():
        found = describe_instance(ctx, identifier)
        result.found(f"DB {role} {identifier}", found is not None)
        if found is not None:
            ctx.resources.setdefault("instances", {})[role] = identifier
            status = found["DBInstanceStatus"]
            if status != "available" and not (ctx.paused and status in (*ASLEEP, "starting")):
                note = "stopped with its cluster (up or down will start it)" if status == "stopped" else status
                result.drift.append(f"DB {role} {identifier}: {note}")
    role_name = iam.role_name(ctx, "app")
    if cluster is None and ctx.has(storage.NUMBER, "app_role"):  # a role of Part 1's made before: a change
        result.drift.append(f"IAM role {role_name}: policy {SECRET_POLICY_NAME} is not for the secret of a cluster "
                            f"`up` makes (it puts it once the cluster is there)")
    if cluster is not None:
        policy = aws.look(iam.iam_look("get_role_policy", RoleName=role_name, PolicyName=SECRET_POLICY_NAME),
                          resource=f"IAM role {role_name}")
        if policy is None or iam.policy_document(policy["PolicyDocument"]) != \
                secret_read_policy(cluster["MasterUserSecret"]["SecretArn"]):
            result.drift.append(f"IAM role {role_name}: policy {SECRET_POLICY_NAME} is missing or changed")
    alarms.check_alarms(ctx, writer_alarms(ctx), ALARMS, result)
    return result


def restore_note(ctx: Ctx) -> str:
    """Which snapshot the cluster `up` makes comes from (plan and status name it before anything is made)."""
    restore_from = ctx.config.database.restore_from
    assert restore_from is not None
    found = ctx.aws.look(snapshots.restore_look(restore_from), resource="DB cluster snapshots")
    snapshot = snapshots.chosen(found, restore_from, ctx.stack)
    refused = snapshots.refusal(snapshot, restore_from, ctx.stack, ctx.config.database.engine_version)
    if refused or snapshot is None:
        return f"database.restore_from: {restore_from}: {refused} (`up` refuses it before any change)"
    return (f"database.restore_from: {restore_from}: `up` restores DB cluster {cluster_id(ctx)} from snapshot "
            f"{snapshot['DBClusterSnapshotIdentifier']} ({snapshots.kind(snapshot, ctx.stack)}, "
            f"{snapshots.size_gib(snapshot)} GiB, {snapshots.age(snapshot)} old)")


def check_paused_cluster(ctx: Ctx, cluster: dict[str, Any], result: Check) -> None:
    """Paused: stopped (or stopping) is as it should be; running bills, and AWS itself starts a
    cluster stopped for 7 days."""
    status = cluster["Status"]
    if status in ASLEEP:
        result.notes.append(f"DB cluster {cluster_id(ctx)}: {status} while paused (storage kept; "
                            f"`threetier resume` starts it)")
    elif status in ("available", "starting"):
        result.drift.append(f"DB cluster {cluster_id(ctx)}: {status} while the stack is paused: it bills by the "
                            f"hour (AWS starts a cluster stopped for 7 days by itself; or a pause or resume did "
                            f"not finish): `threetier pause` stops it again, `threetier resume` resumes the stack")
    else:
        result.drift.append(f"DB cluster {cluster_id(ctx)}: {status}")


# -- pause -----------------------------------------------------------------------
STOPPED_DAYS = 7  # AWS starts a stopped Aurora cluster by itself after this many days


def pause(ctx: Ctx) -> None:
    """The cluster stopped: its instances bill no more, its storage (the data), endpoints, secret and
    parameter group stay. AWS stops a cluster only when it and its instances are available (it answers
    InvalidDBClusterStateFault otherwise): a cluster starting, backing up or modifying is waited for
    first. AWS starts it again by itself after 7 days: when is kept with the paused marker."""
    alarms.silence(ctx, writer_alarms(ctx))
    cluster = describe_cluster(ctx)
    if cluster is None:
        return
    paused = ctx.state.paused
    if cluster["Status"] not in ASLEEP:
        wait_available(ctx)
        if paused is not None:  # said before the call: a crash after it would leave no date at all
            paused.aurora_restarts_at = restarts_at()
        ctx.aws.call("rds", "stop_db_cluster", resource=f"DB cluster {cluster_id(ctx)}",
                     DBClusterIdentifier=cluster_id(ctx),
                     # An instance may start a backup or maintenance between the wait and the call.
                     retry_codes=("InvalidDBClusterStateFault", "InvalidDBInstanceState"),
                     retry_timeout=20 * 60, retry_delay=POLL_DELAY,
                     # The same refusal answers a request botocore resent after the first one's answer
                     # was lost: that one stopped the cluster, and the refusals would go on for 20 minutes.
                     retry_done=lambda: (describe_cluster(ctx, live=True) or {}).get("Status") in ASLEEP)
        ctx.record("changed", "Aurora cluster", cluster_id(ctx), "stopped")
    elif paused is not None and paused.aurora_restarts_at is None:  # stopped before, by a pause that crashed
        paused.aurora_restarts_at = restarts_at()
    wait_cluster(ctx, "stopped")


def restarts_at() -> str:
    """When AWS will start a cluster stopped now: 7 days on (UTC, ISO 8601, to the second)."""
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=STOPPED_DAYS)).isoformat(timespec="seconds")


STATUS_NOTES = {
    "stopped": "stopped (up or down will start it)",
    "stopping": "stopping (up or down will start it once it has stopped)",
    "starting": "starting (it was stopped)",
}


def member_notes(ctx: Ctx, cluster: dict[str, Any]) -> list[str]:
    """The instance named writer is not the cluster's writer (a failover: AWS promoted the reader), and
    instances that wait for a reboot to take the cluster's parameter group. Notes, not drift: `up`
    changes neither (a failback or a reboot interrupts the database; the operator chooses when)."""
    members = {m["DBInstanceIdentifier"]: m for m in cluster.get("DBClusterMembers", [])}
    writer, notes = instance_ids(ctx)["writer"], []
    if writer in members and not members[writer].get("IsClusterWriter"):
        acting = next((name for name, m in members.items() if m.get("IsClusterWriter")), "another instance")
        notes.append(f"DB cluster {cluster_id(ctx)}: {acting} is the writer, not {writer} (a failover happened; harmless, "
                     f"the app connects to the cluster endpoint, which follows the writer; to fail back: "
                     + aws_cli(ctx.aws, f"rds failover-db-cluster --db-cluster-identifier {cluster_id(ctx)} "
                                        f"--target-db-instance-identifier {writer}") + ")")
    for name, member in sorted(members.items()):
        if member.get("DBClusterParameterGroupStatus") == "pending-reboot":
            notes.append(f"DB instance {name}: its cluster parameter group (TLS required) applies after a "
                         f"reboot ({aws_cli(ctx.aws, f'rds reboot-db-instance --db-instance-identifier {name}')})")
    return notes


def check_parameter_group(ctx: Ctx, result: Check) -> None:
    name = parameter_group_name(ctx)
    found = ctx.aws.look(parameters_look(ctx), resource=f"DB cluster parameter group {name}")
    if result.found(f"DB cluster parameter group {name}", found is not None):
        ctx.resources["db_cluster_parameter_group"] = name
        for key in parameters_not_set(found):
            present = next((p.get("ParameterValue") for p in found if p.get("ParameterName") == key), None)
            result.drift.append(f"DB cluster parameter group {name}: {key} is {present or 'the default'}, "
                                f"not {CLUSTER_PARAMETERS[key]} (`up` sets it)")


# -- destroy ---------------------------------------------------------------------
def before_down(ctx: Ctx) -> None:
    """Checked before `down` deletes anything: a protected database stops it at the start, not halfway.
    A stopped cluster is started now, while Parts 7-4 go: AWS deletes neither it nor its instances while
    it is stopped, and finding that out at Part 3 would leave the NAT gateways billing."""
    cluster = describe_cluster(ctx)
    if cluster is not None and cluster.get("DeletionProtection"):
        raise UsageError(f"down: DB cluster {cluster_id(ctx)} has deletion protection on; set "
                         f"database.deletion_protection: false, run `threetier up`, then `down` again")
    if cluster is not None and cluster["Status"] == "stopped":
        start_cluster(ctx, "`down` can delete it")
        # Said now: a `down` that fails or is interrupted before Part 3 leaves it started, and billing.
        ctx.out.info(f"  if `down` stops before the database goes, the cluster stays started: "
                     f"{aws_cli(ctx.aws, f'rds stop-db-cluster --db-cluster-identifier {cluster_id(ctx)}')} stops it again")


def destroy(ctx: Ctx) -> None:
    """Instances, then the cluster (a final snapshot unless skipped), then its parameter group and the
    subnet group. A stopped cluster is started first: AWS deletes nothing of it while it is stopped."""
    aws = ctx.aws
    alarms.delete_alarms(ctx, ALARMS)
    cluster = describe_cluster(ctx)
    if cluster is not None and cluster["Status"] in (*ASLEEP, "starting"):  # before_down started a stopped one
        wake_cluster(ctx, cluster, "`down` can delete it")
        wait_cluster(ctx, "available")
    members = {m["DBInstanceIdentifier"] for m in (cluster or {}).get("DBClusterMembers", [])}
    doomed = []
    for identifier in sorted(members | set(instance_ids(ctx).values())):
        found = aws.call("rds", "describe_db_instances", resource=f"DB instance {identifier}",
                         DBInstanceIdentifier=identifier, missing_ok=GONE)
        if found is None:
            continue
        doomed.append(identifier)
        if found["DBInstances"][0]["DBInstanceStatus"] != "deleting":
            # Not deletable while modifying, rebooting or backing up: that passes.
            aws.call("rds", "delete_db_instance", resource=f"DB instance {identifier}", DBInstanceIdentifier=identifier,
                     missing_ok=GONE, retry_codes=("InvalidDBInstanceState",), retry_timeout=20 * 60, retry_delay=30)
            ctx.record("deleted", "Aurora instance", identifier)
    for identifier in doomed:  # deleted together, waited for together (5-12 min each)
        wait_gone(ctx, f"DB instance {identifier}",
                  lambda identifier=identifier: aws.call("rds", "describe_db_instances", resource=identifier,
                                                         DBInstanceIdentifier=identifier, missing_ok=GONE))

    if cluster is not None:
        # Automated backups go with the cluster (AWS's default, said here so nothing is retained silently).
        params: dict[str, Any] = {"SkipFinalSnapshot": ctx.skip_final_snapshot, "DeleteAutomatedBackups": True}
        if not ctx.skip_final_snapshot:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
            params["FinalDBSnapshotIdentifier"] = f"{final_snapshot_prefix_for(ctx.stack)}{stamp}"
        current = describe_cluster(ctx, live=True)  # its state now, after the instances went
        if current is not None and current["Status"] != "deleting":
            # Not deletable while backing up or modifying (or with instances still leaving): that passes.
            aws.call("rds", "delete_db_cluster", resource=f"DB cluster {cluster_id(ctx)}",
                     DBClusterIdentifier=cluster_id(ctx), missing_ok=GONE,
                     retry_codes=("InvalidDBClusterStateFault",), retry_timeout=20 * 60, retry_delay=30, **params)
            ctx.record("deleted", "Aurora cluster", cluster_id(ctx), params.get("FinalDBSnapshotIdentifier"))
            if "FinalDBSnapshotIdentifier" in params:
                snapshot = params["FinalDBSnapshotIdentifier"]
                bills = "" if aws.emulator else " it bills storage until deleted:"  # an emulator bills nothing
                ctx.out.info(f"  kept a final snapshot of the database: {snapshot};{bills} "
                             + aws_cli(aws, f"rds delete-db-cluster-snapshot --db-cluster-snapshot-identifier {snapshot}")
                             + (" deletes it" if aws.emulator else ""))
                ctx.out.info(f"  to bring the data back: database.restore_from: {snapshot} (or latest, the "
                             f"stack's newest snapshot) in the config, then `threetier up`")
        wait_gone(ctx, f"DB cluster {cluster_id(ctx)}", lambda: describe_cluster(ctx))
    delete_emulator_backups(ctx)

    name = parameter_group_name(ctx)
    # Looked at first, so that a second `down` changes nothing (and says so).
    if aws.call("rds", "describe_db_cluster_parameter_groups", resource=f"DB cluster parameter group {name}",
                DBClusterParameterGroupName=name, missing_ok=PARAMETER_GROUP_GONE) is not None and \
            aws.call("rds", "delete_db_cluster_parameter_group", resource=f"DB cluster parameter group {name}",
                     DBClusterParameterGroupName=name, missing_ok=PARAMETER_GROUP_GONE,
                     retry_codes=("InvalidDBParameterGroupState",), retry_timeout=10 * 60, retry_delay=15) is not None:
        ctx.record("deleted", "DB cluster parameter group", name)

    group = subnet_group_name(ctx)
    if aws.call("rds", "describe_db_subnet_groups", resource=f"DB subnet group {group}", DBSubnetGroupName=group,
                missing_ok=("DBSubnetGroupNotFoundFault",)) is not None:
        aws.call("rds", "delete_db_subnet_group", resource=f"DB subnet group {group}", DBSubnetGroupName=group,
                 missing_ok=("DBSubnetGroupNotFoundFault",), retry_codes=("InvalidDBSubnetGroupStateFault",),
                 retry_timeout=10 * 60, retry_delay=15)
        ctx.record("deleted", "DB subnet group", group)

    role = iam.role_name(ctx, "app")
    resource = f"IAM role {role} policy {SECRET_POLICY_NAME}"
    if aws.call("iam", "get_role_policy", resource=resource, RoleName=role, PolicyName=SECRET_POLICY_NAME,
                missing_ok=("NoSuchEntity",)) is not None:
        aws.call("iam", "delete_role_policy", resource=resource, RoleName=role, PolicyName=SECRET_POLICY_NAME,
                 missing_ok=("NoSuchEntity",))
        ctx.record("deleted", "IAM inline policy", f"{role}/{SECRET_POLICY_NAME}")


def delete_emulator_backups(ctx: Ctx) -> None:
    """moto keeps a cluster's automated snapshots (rds:<cluster>-<yyyy-mm-dd-hh-mm>) after the cluster
    is gone, and then refuses to create the same cluster in the same minute
    (DBClusterSnapshotAlreadyExistsFault). On real AWS DeleteAutomatedBackups removes them with the
    cluster, and an automated snapshot cannot be deleted by hand: only an emulator gets this."""
    if not ctx.aws.emulator:
        return
    aws, cluster = ctx.aws, cluster_id(ctx)
    for snapshot in list(aws.items("rds", "describe_db_cluster_snapshots", "DBClusterSnapshots",
                                   resource=f"automated snapshots of DB cluster {cluster}",
                                   DBClusterIdentifier=cluster, SnapshotType="automated")):
        identifier = snapshot["DBClusterSnapshotIdentifier"]
        if re.fullmatch(rf"rds:{re.escape(cluster)}-\d{{4}}(-\d{{2}}){{4}}", identifier):  # not rds:<cluster>-x-...
            aws.call("rds", "delete_db_cluster_snapshot", resource=f"DB cluster snapshot {identifier}",
                     DBClusterSnapshotIdentifier=identifier, missing_ok=("DBClusterSnapshotNotFoundFault",))
            ctx.record("deleted", "automated DB cluster snapshot", identifier)


def wait_gone(ctx: Ctx, what: str, describe: Any) -> None:
    def probe() -> Poll:
        found = describe()
        if not found:
            return Poll(True, "deleted")
        item = found.get("DBInstances", [found])[0] if isinstance(found, dict) else found
        return Poll(False, item.get("DBInstanceStatus") or item.get("Status") or "deleting")

    ctx.aws.wait(what, probe, delay=POLL_DELAY, timeout=DELETE_TIMEOUT)
