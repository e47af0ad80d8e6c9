"""`threetier status`: each part as the state file has it and as AWS has it now."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from threetier import state as statelib
from threetier.cli.common import global_options, outputs, paused_json, restart_said, runtime
from threetier.output import ExitStatus, escape

ALARM = "ALARM"  # CloudWatch's state of an alarm whose condition holds


@click.command("status", help="""Show each part: its status in the state file against what is
live in AWS (missing resources and drift), key resource IDs and the stack's URL.
Works without a state file: the stack is found by its tags.

The result goes to stdout (progress and warnings to stderr). Exits 0 when
every part is done and matches, 3 when something is missing, drifted or
failed, a CloudWatch alarm of the stack is in ALARM, or the stack is not
deployed at all. A stack paused by `threetier pause` says so (and when AWS
will start its Aurora cluster by itself); what the pause stopped is not
drift, so a paused stack as `pause` left it exits 0, while anything it left
running (it bills) is drift.

\b
Examples:
  threetier status
  threetier status --json | jq '.parts[] | {part, status}'
""")
@click.option("--json", "as_json", is_flag=True, help="print JSON on stdout (and nothing else)")
@global_options
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> int:
    rt = runtime(ctx)
    engine = rt.inspector()
    aws, account = engine.ctx.aws, engine.ctx.aws.account
    saved = rt.saved_state(aws)
    paused = saved.paused if saved else None
    live = engine.ctx
    live.paused = paused is not None  # what `pause` stopped is as it should be, not drift
    parts: list[dict[str, Any]] = []
    for part in engine.parts:
        seen = engine.check(part)
        record = saved.parts.get(part.number) if saved else None
        drift = list(seen.drift) + [f"missing: {what}" for what in seen.missing if seen.present]
        if record is not None:
            drift += [f"state file says {key}={value}, AWS has {live.resources.get(key)}"
                      for key, value in record.resources.items()
                      if isinstance(value, str) and key in live.resources and live.resources[key] != value]
        if record is not None and record.status == statelib.FAILED:
            status = statelib.FAILED
        elif not seen.present:
            status = statelib.DRIFTED if record is not None and record.status == statelib.DONE else statelib.PENDING
            if status == statelib.DRIFTED:
                drift.append("every resource of this part is gone")
        elif drift or seen.missing:
            status = statelib.DRIFTED
        else:
            status = statelib.DONE
        entry: dict[str, Any] = {"part": part.number, "name": part.name, "status": status,
                                 "resources": dict(live.resources), "drift": drift, "notes": list(seen.notes),
                                 "alarms": dict(sorted(seen.alarms.items()))}
        if record is not None:
            entry["state_file"] = {"status": record.status, "finished_at": record.finished_at, "error": record.error}
        parts.append(entry)

    from threetier import lock
    holder = lock.current(aws, rt.config.stack)
    deployed = any(p["resources"] or p["drift"] or p["status"] != statelib.PENDING for p in parts)
    report = {"stack": rt.config.stack, "region": aws.region, "account": account, "deployed": deployed,
              "parts": parts, "outputs": outputs([p["resources"] for p in parts]),
              "state_file": str(rt.state_file.path) if saved is not None else None,
              "paused": paused_json(paused),
              "lock": None if holder is None else {k: v for k, v in asdict(holder).items() if k != "token"}}
    if as_json:
        rt.out.data(report)
    elif not deployed:
        # Seven "pending" rows would say less than this.
        rt.out.result(f"stack {rt.config.stack} is not deployed in {aws.region} ({account}): "
                      f"nothing tagged threetier:stack={rt.config.stack} found; `threetier up` builds it")
    else:
        show(rt.out, report)
    if not as_json:
        if paused is not None and deployed:
            rt.out.result(f"paused since {paused.since} (`threetier pause`): no instance, Aurora stopped, no NAT "
                          f"gateway; the URL answers 503 until `threetier resume`")
            if not rt.sandboxed:  # the sandbox starts no stopped cluster by itself
                rt.out.result(restart_said(paused))
        if holder is not None:
            rt.out.info(f"being changed now: the stack's lock is held by {holder.describe()}")
        if saved is None and deployed:
            rt.out.info(f"no state file at {rt.state_file.path}: what is shown was found in AWS by the stack's "
                        f"tags (`up` writes a new one)")
    firing = sorted(name for p in parts for name, state in p["alarms"].items() if state == ALARM)
    if firing and not as_json:
        rt.out.info(f"in ALARM: {', '.join(firing)}" + (" (their actions are off while paused)" if paused else ""))
    if paused is not None:  # with no instance behind the ALBs an alarm may well fire: that is the pause
        firing = []
    healthy = all(p["status"] == statelib.DONE for p in parts) and not firing
    return ExitStatus.OK if healthy else ExitStatus.DRIFT


def show(out: Any, report: dict[str, Any]) -> None:
    """The report as a table. Every value in it came from AWS or the state file: each is escaped, and a
    cell's own line breaks are the only ones (a drift line holding a newline cannot start a line)."""
    table = Table(title=Text(escape(f"stack {report['stack']} in {report['region']} ({report['account']})")),
                  show_lines=False)
    table.add_column("part", justify="right")
    table.add_column("name")
    table.add_column("status")
    table.add_column("key resources / drift", overflow="fold")
    colours = {"done": "green", "pending": "dim", "failed": "red", "drifted": "yellow"}
    for part in report["parts"]:
        keys = ", ".join(f"{k}={v}" for k, v in part["resources"].items()
                         if isinstance(v, str) and not k.endswith("_arn"))  # IDs and names; ARNs are in --json
        cell = Text(escape(keys))
        for line in part["drift"]:
            cell.append(f"\n! {escape(line)}", style="yellow")
        for line in part["notes"]:
            cell.append(f"\nnote: {escape(line)}", style="dim")
        if part["alarms"]:
            cell.append(f"\n{escape(alarm_summary(part['alarms']))}",
                        style="red" if ALARM in part["alarms"].values() else "")
        status = part["status"]
        table.add_row(str(part["part"]), Text(part["name"]), Text(status, style=colours[status]), cell)
    out.result(table)
    for key, value in report["outputs"].items():
        out.result(f"{key}: {value}")


def alarm_summary(alarms: dict[str, str]) -> str:
    """"alarms: 1 ALARM (threetier-web-unhealthy-hosts), 3 OK": the ones in ALARM by name."""
    by_state: dict[str, list[str]] = {}
    for name, state in sorted(alarms.items()):
        by_state.setdefault(state, []).append(name)
    shown = []
    for state in (ALARM, "INSUFFICIENT_DATA", "OK", *sorted(set(by_state) - {ALARM, "INSUFFICIENT_DATA", "OK"})):
        if state in by_state:
            names = f" ({', '.join(by_state[state])})" if state == ALARM else ""
            shown.append(f"{len(by_state[state])} {state}{names}")
    return "alarms: " + ", ".join(shown)
