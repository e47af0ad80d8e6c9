"""Part 3 — database.

The guide: a DB subnet group over the two DB subnets; an Aurora MySQL cluster,
not publicly accessible, behind the database security group, with password
authentication; a writer and a reader (Aurora Replica) in the other AZ. Note
the writer endpoint: the app tier connects to it.

Beyond the guide (its "left as an extension"): the password is generated and
kept by RDS in Secrets Manager (ManageMasterUserPassword), never in config,
state, S3, user data or an AMI; the EC2 role may read exactly that secret.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from steps import network, storage
from threetier.aws import Look, Poll
from threetier.engine import DONE, Check, Ctx
from threetier.errors import ThreetierError, UsageError

NUMBER = 3
NAME = "database"
TITLE = "Aurora MySQL database"
NEEDS: tuple[int, ...] = (1, 2)

SECRET_POLICY_NAME = storage.SECRET_POLICY_NAME  # on the app tier's role only: the web tier never reads it
CREATE_TIMEOUT = 40 * 60   # writer and reader together: ~6 and ~12 min, sometimes much more
DELETE_TIMEOUT = 40 * 60
POLL_DELAY = 30
GONE = ("DBClusterNotFoundFault", "DBInstanceNotFound")


def cluster_id(ctx: Ctx) -> str:
    return ctx.name("aurora")


def subnet_group_name(ctx: Ctx) -> str:
    return ctx.name("db-subnet-group")


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


def looks(ctx: Ctx) -> Iterator[Look]:
    yield subnet_group_look(ctx)
    yield cluster_look(ctx)
    yield from (instance_look(identifier) for identifier in instance_ids(ctx).values())
    yield storage.iam_look("get_role_policy", RoleName=storage.role_name(ctx, "app"), PolicyName=SECRET_POLICY_NAME)


# -- apply -----------------------------------------------------------------------
def start(ctx: Ctx) -> None:
    """The cluster needs only the DB subnets and db-sg to exist, not the NAT gateways: it starts
    in the first minute. Its endpoint and secret are known at once, which is all Part 4 needs."""
    ctx.need(storage.NUMBER, DONE)
    ctx.need(network.NUMBER, network.SUBNETS_AND_GROUPS)
    net = ctx.resources_of(network.NUMBER)
    ensure_subnet_group(ctx, [net["subnets"][role] for role in network.subnet_roles("db")])
    cluster = ensure_cluster(ctx, net["security_groups"]["db-sg"])
    ensure_secret_readable(ctx, cluster)


def finish(ctx: Ctx) -> None:
    """The writer and the reader, once the cluster takes them: AWS refuses CreateDBInstance
    (InvalidDBClusterStateFault) while the cluster is still `creating`."""
    wait_cluster_available(ctx)
    ensure_instances(ctx, ctx.resources_of(network.NUMBER)["azs"])
    wait_available(ctx)


def ensure_subnet_group(ctx: Ctx, subnet_ids: list[str]) -> None:
    aws, name = ctx.aws, subnet_group_name(ctx)
    found = aws.look(subnet_group_look(ctx), resource=f"DB subnet group {name}")
    if found is None:
        aws.call("rds", "create_db_subnet_group", resource=f"DB subnet group {name}", DBSubnetGroupName=name,
                 DBSubnetGroupDescription=f"threetier {ctx.stack}: the two private DB subnets",
                 SubnetIds=subnet_ids, Tags=rds_tags(ctx, "db-subnet-group"))
        ctx.record("created", "DB subnet group", name)
    else:
        present = {s["SubnetIdentifier"] for s in found["DBSubnetGroups"][0]["Subnets"]}
        if present != set(subnet_ids):
            aws.call("rds", "modify_db_subnet_group", resource=f"DB subnet group {name}", DBSubnetGroupName=name,
                     SubnetIds=subnet_ids)
            ctx.record("changed", "DB subnet group subnets", name)
    ctx.resources["db_subnet_group"] = name


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
    if cluster is None:
        cluster = aws.call(
            "rds", "create_db_cluster", resource=f"DB cluster {cluster_id(ctx)}",
            DBClusterIdentifier=cluster_id(ctx), Engine="aurora-mysql", EngineVersion=db.engine_version,
            DatabaseName=db.name, MasterUsername=db.username, ManageMasterUserPassword=True,
            DBSubnetGroupName=subnet_group_name(ctx), VpcSecurityGroupIds=[db_security_group], Port=3306,
            StorageEncrypted=True, BackupRetentionPeriod=db.backup_retention_days,
            DeletionProtection=db.deletion_protection, CopyTagsToSnapshot=True,
            # Extended support bills extra once a version leaves standard support: opt out.
            EngineLifecycleSupport="open-source-rds-extended-support-disabled",
            Tags=rds_tags(ctx, "aurora"),
        )["DBCluster"]
        ctx.record("created", "Aurora cluster", cluster_id(ctx))
    else:
        changes: dict[str, Any] = {}
        if cluster.get("BackupRetentionPeriod") != db.backup_retention_days:
            changes["BackupRetentionPeriod"] = db.backup_retention_days
        if bool(cluster.get("DeletionProtection")) != db.deletion_protection:
            changes["DeletionProtection"] = db.deletion_protection
        if changes:
            aws.call("rds", "modify_db_cluster", resource=f"DB cluster {cluster_id(ctx)}",
                     DBClusterIdentifier=cluster_id(ctx), ApplyImmediately=True, **changes)
            ctx.record("changed", "Aurora cluster", cluster_id(ctx), ", ".join(changes))
    ctx.resources["cluster"] = cluster_id(ctx)
    ctx.resources["db_writer_endpoint"] = cluster["Endpoint"]
    ctx.resources["db_reader_endpoint"] = cluster.get("ReaderEndpoint", "")
    ctx.resources["db_name"] = db.name
    ctx.resources["db_secret_arn"] = cluster["MasterUserSecret"]["SecretArn"]
    return cluster


def ensure_instances(ctx: Ctx, azs: list[str]) -> None:
    """Writer first (the first instance of a cluster is its writer), then the reader in the other AZ."""
    aws, db = ctx.aws, ctx.config.database
    for (role, identifier), az in zip(instance_ids(ctx).items(), azs, strict=False):
        if describe_instance(ctx, identifier) is None:
            aws.call("rds", "create_db_instance", resource=f"DB instance {identifier}",
                     DBInstanceIdentifier=identifier, DBClusterIdentifier=cluster_id(ctx), Engine="aurora-mysql",
                     DBInstanceClass=db.instance_class, AvailabilityZone=az, PubliclyAccessible=False,
                     Tags=rds_tags(ctx, f"aurora-{role}"))
            ctx.record("created", f"Aurora {role} instance", identifier)
        ctx.resources.setdefault("instances", {})[role] = identifier


def ensure_secret_readable(ctx: Ctx, cluster: dict[str, Any]) -> None:
    """The app tier's role may read exactly the cluster's managed secret, nothing else (the web
    tier's may not: its instances sit in public subnets and have no use for it)."""
    role = storage.role_name(ctx, "app")
    storage.ensure_inline_policy(ctx, role, SECRET_POLICY_NAME, secret_read_policy(cluster["MasterUserSecret"]["SecretArn"]))


def secret_read_policy(secret_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ReadDatabaseSecret", "Effect": "Allow",
                       "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                       "Resource": secret_arn}],
    }


FAILED_STATES = ("failed", "incompatible-parameters", "incompatible-network", "storage-full",
                 "inaccessible-encryption-credentials", "missing")


def wait_cluster_available(ctx: Ctx) -> None:
    def probe() -> Poll:
        cluster = describe_cluster(ctx)
        status = cluster["Status"] if cluster else "missing"
        if status in FAILED_STATES:
            return Poll(False, status, failed=f"the cluster is {status}")
        return Poll(status == "available", status)

    ctx.aws.wait(f"Aurora cluster {cluster_id(ctx)}", probe, delay=POLL_DELAY, timeout=CREATE_TIMEOUT)


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
        if cluster["Status"] != "available":
            result.drift.append(f"DB cluster {cluster_id(ctx)}: {cluster['Status']}")
        if cluster.get("BackupRetentionPeriod") != ctx.config.database.backup_retention_days:
            result.drift.append(f"DB cluster {cluster_id(ctx)}: backup retention {cluster.get('BackupRetentionPeriod')} "
                                f"days, config says {ctx.config.database.backup_retention_days}")
    for role, identifier in instance_ids(ctx).items():
        found = describe_instance(ctx, identifier)
        result.found(f"DB {role} {identifier}", found is not None)
        if found is not None:
            ctx.resources.setdefault("instances", {})[role] = identifier
            status = found["DBInstanceStatus"]
            if status != "available":
                result.drift.append(f"DB {role} {identifier}: {status}")
    if cluster is not None:
        role_name = storage.role_name(ctx, "app")
        policy = aws.look(storage.iam_look("get_role_policy", RoleName=role_name, PolicyName=SECRET_POLICY_NAME),
                          resource=f"IAM role {role_name}")
        if policy is None or storage.policy_document(policy["PolicyDocument"]) != \
                secret_read_policy(cluster["MasterUserSecret"]["SecretArn"]):
            result.drift.append(f"IAM role {role_name}: policy {SECRET_POLICY_NAME} is missing or changed")
    return result


# -- destroy ---------------------------------------------------------------------
def before_down(ctx: Ctx) -> None:
    """Checked before `down` deletes anything: a protected database stops it at the start, not halfway."""
    cluster = describe_cluster(ctx)
    if cluster is not None and cluster.get("DeletionProtection"):
        raise UsageError(f"down: DB cluster {cluster_id(ctx)} has deletion protection on; set "
                         f"database.deletion_protection: false, run `threetier up`, then `down` again")


def destroy(ctx: Ctx) -> None:
    """Instances, then the cluster (a final snapshot unless skipped), then the subnet group."""
    aws = ctx.aws
    cluster = describe_cluster(ctx)
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
        params: dict[str, Any] = {"SkipFinalSnapshot": ctx.skip_final_snapshot}
        if not ctx.skip_final_snapshot:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
            params["FinalDBSnapshotIdentifier"] = f"{ctx.stack.rstrip('-')}-final-{stamp}"  # scan.is_final_snapshot
        current = describe_cluster(ctx, live=True)  # its state now, after the instances went
        if current is not None and current["Status"] != "deleting":
            # Not deletable while backing up or modifying (or with instances still leaving): that passes.
            aws.call("rds", "delete_db_cluster", resource=f"DB cluster {cluster_id(ctx)}",
                     DBClusterIdentifier=cluster_id(ctx), missing_ok=GONE,
                     retry_codes=("InvalidDBClusterStateFault",), retry_timeout=20 * 60, retry_delay=30, **params)
            ctx.record("deleted", "Aurora cluster", cluster_id(ctx), params.get("FinalDBSnapshotIdentifier"))
            if "FinalDBSnapshotIdentifier" in params:
                ctx.out.info(f"  kept a final snapshot of the database: {params['FinalDBSnapshotIdentifier']}")
        wait_gone(ctx, f"DB cluster {cluster_id(ctx)}", lambda: describe_cluster(ctx))

    group = subnet_group_name(ctx)
    if aws.call("rds", "describe_db_subnet_groups", resource=f"DB subnet group {group}", DBSubnetGroupName=group,
                missing_ok=("DBSubnetGroupNotFoundFault",)) is not None:
        aws.call("rds", "delete_db_subnet_group", resource=f"DB subnet group {group}", DBSubnetGroupName=group,
                 missing_ok=("DBSubnetGroupNotFoundFault",), retry_codes=("InvalidDBSubnetGroupStateFault",),
                 retry_timeout=10 * 60, retry_delay=15)
        ctx.record("deleted", "DB subnet group", group)

    role = storage.role_name(ctx, "app")
    resource = f"IAM role {role} policy {SECRET_POLICY_NAME}"
    if aws.call("iam", "get_role_policy", resource=resource, RoleName=role, PolicyName=SECRET_POLICY_NAME,
                missing_ok=("NoSuchEntity",)) is not None:
        aws.call("iam", "delete_role_policy", resource=resource, RoleName=role, PolicyName=SECRET_POLICY_NAME,
                 missing_ok=("NoSuchEntity",))
        ctx.record("deleted", "IAM inline policy", f"{role}/{SECRET_POLICY_NAME}")


def wait_gone(ctx: Ctx, what: str, describe: Any) -> None:
    def probe() -> Poll:
        found = describe()
        if not found:
            return Poll(True, "deleted")
        item = found.get("DBInstances", [found])[0] if isinstance(found, dict) else found
        return Poll(False, item.get("DBInstanceStatus") or item.get("Status") or "deleting")

    ctx.aws.wait(what, probe, delay=POLL_DELAY, timeout=DELETE_TIMEOUT)
