"""`threetier down`: tear down, last part first, then prove nothing is left."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from threetier.cli.common import (
    change_entry,
    global_options,
    header,
    lock_option,
    need_config_file,
    run_report,
    runtime,
)
from threetier.errors import ThreetierError, UsageError
from threetier.output import ExitStatus

if TYPE_CHECKING:
    from threetier.aws import Aws
    from threetier.cli.common import Runtime
    from threetier.engine import Engine
    from threetier.scan import Found


@click.command("down", help="""Delete everything the stack created, last part first, then
scan every service for anything still tagged with the stack.

It asks for confirmation on a terminal; without a terminal it refuses unless
--yes is given.

\b
Examples:
  threetier down            asks first
  threetier down --yes      for scripts
  threetier down --yes --json
""")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@click.option("--skip-final-snapshot", is_flag=True, help="delete the database without a final snapshot")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout (and nothing else)")
@lock_option
@global_options
@click.pass_context
def command(ctx: click.Context, yes: bool, skip_final_snapshot: bool, take_over_lock: bool, as_json: bool) -> int:
    from threetier.changes import counts
    rt = runtime(ctx)
    need_config_file(rt, "down")
    if not yes and not sys.stdin.isatty():
        raise UsageError("down: refusing to delete without a terminal to confirm on; pass --yes")
    aws = rt.aws()
    with rt.state_file.locked():
        engine = rt.engine(aws)
        engine.ctx.skip_final_snapshot = skip_final_snapshot
        header(rt, aws, "down")
        with rt.stack_lock(aws, "down", take_over_lock):  # released (deleted) at the end: nothing is left
            kept = _down(rt, aws, engine, yes)
    deleted = counts(engine.ctx.changes)["deleted"]
    if as_json:
        report = run_report(rt, engine, "down", {"deleted": deleted}, kept_snapshots=kept,
                            changes=[change_entry(change) for change in engine.ctx.changes])
        rt.out.data({**report, "outputs": {}})  # nothing is left to address
        return ExitStatus.OK
    rt.out.result(f"stack {rt.config.stack} is gone: deleted {deleted}; a scan finds nothing tagged "
                  f"threetier:stack={rt.config.stack}")
    if kept:
        rt.out.result(f"kept on purpose (your data; delete it when you no longer need it): DB cluster snapshot "
                    f"{', '.join(kept)}")
        rt.out.result(kept_said(rt, aws, kept))
    return ExitStatus.OK


def kept_said(rt: Runtime, aws: Aws, kept: list[str]) -> str:
    """What the kept snapshots cost a month (their sizes, Aurora backup storage: with no cluster all of it
    bills), and how to bring the newest back."""
    from threetier.blocks import snapshots
    from threetier.estimate import snapshots_monthly
    from threetier.pricing import PRICES_DATE, prices_for
    found = [s for s in snapshots.stack_snapshots(aws.look(snapshots.manual_look(), resource="DB cluster snapshots",
                                                           live=True), rt.config.stack)
             if s["DBClusterSnapshotIdentifier"] in kept]
    newest = found[0]["DBClusterSnapshotIdentifier"] if found else kept[-1]
    gib = sum(snapshots.size_gib(s) for s in found)
    bills = ("on AWS: " if aws.emulator else "") + \
        f"{gib} GiB, about ${snapshots_monthly(prices_for(aws.region)[1], gib):,.2f} a month (prices of {PRICES_DATE}); "
    return (f"{bills}to bring the data back: database.restore_from: {newest} (or latest, the newest) in "
            f"{rt.config.source if rt.config.source != 'defaults' else 'config.yaml'}, then `threetier up`")


def _down(rt: Runtime, aws: Aws, engine: Engine, yes: bool) -> list[str]:
    """Confirm, delete every part at once, prove nothing is left. Returns the snapshots kept (final, backups)."""
    from threetier import scan
    for obstacle in scan.obstacles(aws, rt.config.stack):  # said first, not after minutes of AWS refusing
        rt.out.info(f"warning: down will not be able to delete {obstacle.reason}")
        engine.ctx.left_alone[obstacle.id] = obstacle.reason
    if not yes:
        found = scan.tagged(aws, rt.config.stack)
        rt.out.info(f"stack {rt.config.stack} in {aws.region} ({aws.account}): {len(found)} tagged resources will "
                    f"be deleted, with what they hold (routes, rules, listeners, policies)")
        show_what_goes(rt, engine, found)
        if not click.confirm(f"Delete stack {rt.config.stack}?", default=False, err=True):
            raise UsageError("down: not confirmed; nothing was deleted")
    engine.down()
    left = scan.tagged(aws, rt.config.stack)
    if left:
        for item in left:
            rt.out.error(f"still there: {item.kind} {item.name} {item.id}")
        raise ThreetierError(f"down: {len(left)} resources tagged threetier:stack={rt.config.stack} remain")
    rt.state_file.delete()
    return scan.kept_snapshots(aws, rt.config.stack)


def show_what_goes(rt: Runtime, engine: Engine, found: list[Found]) -> None:
    """Everything the user confirms, Part by Part in the order it goes, what bills ($) first in each."""
    labels = {part.number: part.label for part in engine.parts}
    by_part: dict[int | None, list[Found]] = {}
    for item in found:
        by_part.setdefault(item.part if item.part in labels else None, []).append(item)
    order = [number for number in sorted(labels, reverse=True) if number in by_part]
    for number in [*order, None] if None in by_part else order:
        items = sorted(by_part[number], key=lambda item: (not item.billable, item.kind, item.name, item.id))
        rt.out.info(f"  {labels[number] if number is not None else 'not of a part'}:")
        for item in items:
            rt.out.info(f"    {'$' if item.billable else ' '} {item.describe()}")
    if any(item.billable for item in found):
        rt.out.info("  ($: bills while it exists)")
