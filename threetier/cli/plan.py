"""`threetier plan`: what `up` would create, change or leave, part by part, with no mutating call."""
from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from threetier.cli.common import global_options, paused_json, runtime
from threetier.output import ExitStatus, escape


@click.command("plan", help="""Show what `up` would create, change or leave alone, part by part.
Only describe/list/get calls are made: nothing in AWS changes. The plan goes
to stdout. Exits 0 when `up` would change nothing, 3 when it would create or
change something (like `terraform plan -detailed-exitcode`), 2 when `up` would
be refused before its first change (a quota used up, a type not offered, a
hosted zone missing, a permission denied: listed under `blocked`). On a paused
stack it is what `threetier resume` would change.

\b
Examples:
  threetier plan
  threetier plan --json | jq '.parts[] | {part, create, change}'
""")
@click.option("--json", "as_json", is_flag=True, help="print JSON on stdout (and nothing else)")
@global_options
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> int:
    from threetier import preflight
    rt = runtime(ctx)
    engine = rt.inspector()
    findings = preflight.check(engine, "plan")
    preflight.say(findings, rt.out)
    aws, account = engine.ctx.aws, engine.ctx.aws.account
    saved = rt.saved_state(aws)
    paused = saved.paused if saved else None  # the checks do not expect it: they list what resume changes
    parts: list[dict[str, Any]] = []
    for part in engine.parts:
        seen = engine.check(part)
        parts.append({"part": part.number, "name": part.name, "create": seen.missing, "change": seen.drift,
                      "keep": seen.present, "notes": seen.notes})
    report = {"stack": rt.config.stack, "region": aws.region, "account": account, "paused": paused_json(paused),
              "parts": parts, "blocked": [shortfall.to_json() for shortfall in findings.shortfalls],
              "mutating_calls": len(aws.mutating_calls())}
    creates, changes = sum(len(p["create"]) for p in parts), sum(len(p["change"]) for p in parts)
    outcome = ExitStatus.CHANGES if creates or changes else ExitStatus.OK
    if findings.shortfalls:
        outcome = ExitStatus.USAGE
    if as_json:
        rt.out.data(report)
        return outcome
    if paused is not None:
        rt.out.result(f"stack {rt.config.stack} is paused (since {paused.since}): `threetier resume` (or `up`) "
                      f"would make these changes")
    table = Table(title=f"plan for stack {rt.config.stack} in {aws.region} ({account})")
    for column in ("part", "create", "change", "keep"):
        table.add_column(column, overflow="fold")
    for row in parts:
        table.add_row(f"{row['part']} {row['name']}",  # what AWS said, escaped: one line each
                      Text("\n".join(f"+ {escape(c)}" for c in row["create"]), style="green"),
                      Text("\n".join(f"~ {escape(c)}" for c in row["change"]), style="yellow"), str(len(row["keep"])))
    rt.out.result(table)
    for row in parts:
        for note in row["notes"]:
            rt.out.result(f"note (up leaves it alone): {note}")
    rt.out.result(f"up would create {creates} and change {changes}; "
                  f"{sum(len(p['keep']) for p in parts)} stay as they are")
    if findings.shortfalls:
        rt.out.result(Text("blocked (up would refuse before its first change):", style="bold red"))
        for shortfall in findings.shortfalls:
            rt.out.result(f"  {shortfall.line()}")
    return outcome
