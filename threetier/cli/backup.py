"""`threetier backup`: a tagged Aurora cluster snapshot of the stack's database, now."""
from __future__ import annotations

import datetime as dt

import click

from threetier.cli.common import Runtime, global_options, header, runtime
from threetier.errors import UsageError
from threetier.names import backup_snapshot_prefix_for
from threetier.output import ExitStatus

# A manual cluster snapshot of a small database takes minutes; a large one longer (it copies changes since
# the last one): a generous bound, polled gently.
WAIT_TIMEOUT = 2 * 60 * 60
POLL_DELAY = 15
FAILED = ("failed", "incompatible-restore")


@click.command("backup", help="""Take a snapshot of the stack's Aurora cluster now, named
<stack>-backup-<UTC time yyyymmdd-hhmmss> and tagged with the stack, and wait
until it is available. It outlives the stack: `down` keeps it, `status` lists
it, `cost` prices its storage, and `database.restore_from: latest` (or its id)
makes `up` restore it into a new cluster after a `down`.

Besides this, AWS keeps the cluster's automated backups for
database.backup_retention_days and can restore it to any second up to its
latest restorable time (`status` shows it).

\b
Examples:
  threetier backup
  threetier backup --json | jq -r .snapshot
""")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout (and nothing else)")
@global_options
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> int:
    return take(runtime(ctx), as_json)


def take(rt: Runtime, as_json: bool) -> int:
    """The snapshot, taken and waited for; refused (exit 2) with no cluster to take it of."""
    # Here, not at the top: `threetier --help` and every other command load no boto3 for this one.
    from steps import database
    from threetier.aws import Poll, aws_cli, tags
    from threetier.blocks import snapshots
    aws = rt.aws()
    engine = rt.engine(aws)  # the account guard: a state file of another account, stack or region is refused
    header(rt, aws, "backup")
    probe = engine.ctx
    cluster_id = database.cluster_id(probe)
    if database.describe_cluster(probe, live=True) is None:
        raise UsageError(f"backup: stack {rt.config.stack} has no Aurora cluster ({cluster_id}) in {aws.region}; "
                         f"nothing to back up (`threetier status` lists the snapshots kept)")
    snapshot = f"{backup_snapshot_prefix_for(rt.config.stack)}{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%d-%H%M%S')}"
    resource = f"DB cluster snapshot {snapshot}"
    aws.call("rds", "create_db_cluster_snapshot", resource=resource, DBClusterIdentifier=cluster_id,
             DBClusterSnapshotIdentifier=snapshot, Tags=tags(rt.config.stack, database.NUMBER, snapshot),
             # A cluster busy with another snapshot or a change takes none for a moment: that passes.
             retry_codes=("InvalidDBClusterStateFault",), retry_timeout=20 * 60, retry_delay=POLL_DELAY)
    rt.out.info(f"  snapshot {snapshot} of DB cluster {cluster_id} started; waiting until it is available")

    def available() -> Poll:
        found = aws.look(snapshots.one_look(snapshot), resource=resource, live=True)
        status = found[0].get("Status", "creating") if found else "missing"
        if status in FAILED:
            return Poll(False, status, failed=f"the snapshot is {status}")
        return Poll(status == "available", status)

    aws.wait(resource, available, delay=POLL_DELAY, timeout=WAIT_TIMEOUT)
    if as_json:
        rt.out.data({"stack": rt.config.stack, "region": aws.region, "account": aws.account, "command": "backup",
                     "snapshot": snapshot, "cluster": cluster_id})
        return ExitStatus.OK
    rt.out.result(snapshot)
    rt.out.info(f"  to bring this data back into a new cluster: database.restore_from: {snapshot} (or latest), "
                f"after a `threetier down`; "
                + aws_cli(aws, f"rds delete-db-cluster-snapshot --db-cluster-snapshot-identifier {snapshot}")
                + " deletes it" + ("" if aws.emulator else " (it bills storage until then: `threetier cost`)"))
    return ExitStatus.OK
