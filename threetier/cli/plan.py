"""`threetier plan`: what `up` would create, change, delete or leave, part by part, with no mutating call."""
from __future__ import annotations

from typing import IO, Any

import click
from rich.table import Table
from rich.text import Text

from threetier import sources
from threetier.cli.common import global_options, paused_json, runtime
from threetier.errors import ThreetierError, UsageError
from threetier.output import DetailedExitStatus, ExitStatus, escape

DETAILED = "--detailed-exitcode"


class RefusedUsage(click.ClickException):
    """A usage error of `plan --detailed-exitcode`: shown as click shows it, exit 1 (Terraform's
    "error"), never 2, which a CI job reads as "changes"."""
    exit_code = DetailedExitStatus.ERROR

    def __init__(self, refused: click.UsageError) -> None:
        super().__init__(refused.message)
        self.refused = refused

    def show(self, file: IO[Any] | None = None) -> None:
        self.refused.show(file)


class PlanCommand(click.Command):
    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        detailed = DETAILED in args  # before parsing: the error may be in another option
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            if detailed:
                raise RefusedUsage(exc) from exc
            raise


@click.command("plan", cls=PlanCommand, help="""Show what `up` would create, change, delete or leave alone, part by part.
Only describe/list/get calls are made: nothing in AWS changes. The plan goes
to stdout. Exits 0 when it planned, whether `up` has something to do or not;
2 when `up` would be refused before its first change (a quota used up, a type
not offered, a hosted zone missing, a permission denied: listed under
`blocked`), as for bad usage or config. With --detailed-exitcode the exit
status means what `terraform plan -detailed-exitcode`'s does: 0 no changes,
2 changes, 1 any error or refusal (`blocked`, bad usage or config included).
The counts are those the next `up` says it created, changed and deleted; what
cannot be known before it runs (the certificate's validation record: ACM
names it once the certificate is requested) is listed apart, under `unknown`.
On a paused stack it is what `threetier resume` would change.

\b
Examples:
  threetier plan
  threetier plan --detailed-exitcode >/dev/null; echo $?   # 0, 1 or 2
  threetier plan --json | jq '.parts[] | {part, create, change, delete}'
""")
@click.option("--json", "as_json", is_flag=True, help="print JSON on stdout (and nothing else)")
@click.option(DETAILED, "detailed", is_flag=True,
              help="exit 0 no changes, 2 changes, 1 any error or refusal (Terraform's meaning)")
@global_options
@click.pass_context
def command(ctx: click.Context, as_json: bool, detailed: bool) -> int:
    try:
        changes, blocked = planned(ctx, as_json)
    except UsageError as exc:
        if detailed:  # bad config, credentials, another account's state file: Terraform's "error", 1
            raise ThreetierError(str(exc)) from exc
        raise
    if not detailed:
        return ExitStatus.USAGE if blocked else ExitStatus.OK
    if blocked:
        return DetailedExitStatus.ERROR
    return DetailedExitStatus.CHANGES if changes else DetailedExitStatus.NO_CHANGES


def planned(ctx: click.Context, as_json: bool) -> tuple[bool, bool]:
    """Print the plan; return whether `up` has something to create or change, and whether the
    preflight would refuse it (`blocked`)."""
    from threetier import preflight
    rt = runtime(ctx)
    sources.check(rt.config)  # your code's directories, before any AWS call
    engine = rt.inspector()
    findings = preflight.check(engine, "plan")
    preflight.say(findings, rt.out)
    aws, account = engine.ctx.aws, engine.ctx.aws.account
    saved = rt.saved_state(aws)
    paused = saved.paused if saved else None  # the checks do not expect it: they list what resume changes
    parts: list[dict[str, Any]] = []
    for part in engine.parts:
        seen = engine.check(part)
        parts.append({"part": part.number, "name": part.name, "create": seen.missing,
                      "change": [line for line in seen.drift if line not in (*seen.deletes, *seen.waits)],
                      "keep": seen.present, "notes": [*seen.notes, *seen.waits], "delete": seen.deletes,
                      "unknown": seen.unknown})
    report = {"stack": rt.config.stack, "region": aws.region, "account": account, "paused": paused_json(paused),
              "parts": parts, "blocked": [shortfall.to_json() for shortfall in findings.shortfalls],
              "mutating_calls": len(aws.mutating_calls())}
    creates, changes, deletes = (sum(len(p[key]) for p in parts) for key in ("create", "change", "delete"))
    unknown = [line for p in parts for line in p["unknown"]]
    outcome = (bool(creates or changes or deletes or unknown), bool(findings.shortfalls))
    if as_json:
        rt.out.data(report)
        return outcome
    if paused is not None:
        rt.out.result(f"stack {rt.config.stack} is paused (since {paused.since}): `threetier resume` (or `up`) "
                      f"would make these changes")
    table = Table(title=f"plan for stack {rt.config.stack} in {aws.region} ({account})")
    for column in ("part", "create", "change", "delete", "keep"):
        table.add_column(column, overflow="fold")
    for row in parts:
        table.add_row(f"{row['part']} {row['name']}",  # what AWS said, escaped: one line each
                      Text("\n".join(f"+ {escape(c)}" for c in row["create"]), style="green"),
                      Text("\n".join(f"~ {escape(c)}" for c in row["change"]), style="yellow"),
                      Text("\n".join(f"- {escape(c)}" for c in row["delete"]), style="red"), str(len(row["keep"])))
    rt.out.result(table)
    for row in parts:
        for note in row["notes"]:
            rt.out.result(f"note (up leaves it alone): {note}")
    rt.out.result(f"up would create {creates}, change {changes} and delete {deletes}; "
                  f"{sum(len(p['keep']) for p in parts)} stay as they are")
    if unknown:  # not in the counts above: `up` may make them too, which only it can tell
        rt.out.result("and what cannot be known before up runs:")
        for line in unknown:
            rt.out.result(f"  ? {line}")
    if findings.shortfalls:
        rt.out.result(Text("blocked (up would refuse before its first change):", style="bold red"))
        for shortfall in findings.shortfalls:
            rt.out.result(f"  {shortfall.line()}")
    return outcome
