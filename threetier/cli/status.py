"""`threetier status`: each part as the state file has it and as AWS has it now."""
from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from threetier import state as statelib
from threetier.cli.common import global_options, outputs, paused_json, restart_said, runtime
from threetier.cli.replay import complete_part
from threetier.output import ExitStatus, Output, escape

if TYPE_CHECKING:
    from threetier.engine import Part

ALARM = "ALARM"  # CloudWatch's state of an alarm whose condition holds


@click.command("status", help="""Show each part: its status in the state file against what is
live in AWS (missing resources and drift), the ID that names it, and the
stack's outputs (URL, endpoints), one per line. Drift lines, notes and alarms
follow the table, each naming its part. With PART (1..7 or a name, as for
`replay`): that part alone, every resource (key = value, ARNs included),
drift, notes, alarms and its state-file record.
Works without a state file: the stack is found by its tags.

The result goes to stdout (progress and warnings to stderr). Exits 0 when
every part (with PART: that part) is done and matches, 3 when something is
missing, drifted or failed, a CloudWatch alarm of the stack is in ALARM, or
the stack is not deployed at all. A stack paused by `threetier pause` says so
(and when AWS will start its Aurora cluster by itself); what the pause
stopped is not drift, so a paused stack as `pause` left it exits 0, while
anything it left running (it bills) is drift.

\b
Examples:
  threetier status
  threetier status app-tier
  threetier status 3 --json
  threetier status --json | jq '.parts[] | {part, status}'
""")
@click.argument("part", required=False, shell_complete=complete_part)
@click.option("--json", "as_json", is_flag=True,
              help="print JSON on stdout (and nothing else); with PART, that part's entry")
@global_options
@click.pass_context
def command(ctx: click.Context, part: str | None, as_json: bool) -> int:
    rt = runtime(ctx)
    chosen = part_named(part) if part is not None else None  # a bad PART: exit 2 before any AWS call
    from threetier import guards as guardslib
    guard_reads = guardslib.first_round() if chosen is None else {}  # the account's, for the whole stack only
    engine = rt.inspector(also=guard_reads.values())
    aws, account = engine.ctx.aws, engine.ctx.aws.account
    saved = rt.saved_state(aws)
    paused = saved.paused if saved else None
    live = engine.ctx
    live.paused = paused is not None  # what `pause` stopped is as it should be, not drift
    parts: list[dict[str, Any]] = []
    for each in engine.parts:
        seen = engine.check(each)
        record = saved.parts.get(each.number) if saved else None
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
        resources = dict(live.resources)
        if not seen.present:  # a tier with nothing: the color its check assumed (blue) is no resource found
            resources.pop("color", None)
        entry: dict[str, Any] = {"part": each.number, "name": each.name, "status": status,
                                 "resources": resources, "drift": drift, "notes": list(seen.notes),
                                 "alarms": dict(sorted(seen.alarms.items()))}
        if record is not None:
            entry["state_file"] = {"status": record.status, "finished_at": record.finished_at, "error": record.error}
        parts.append(entry)

    from threetier import lock
    holder = lock.current(aws, rt.config.stack)
    kept, restorable = backups(engine)
    deployed = any(p["resources"] or p["drift"] or p["status"] != statelib.PENDING for p in parts)
    report = {"stack": rt.config.stack, "region": aws.region, "account": account, "deployed": deployed,
              "parts": parts, "outputs": outputs([p["resources"] for p in parts]), "tiers": tiers(parts, saved),
              "state_file": str(rt.state_file.path) if saved is not None else None,
              "paused": paused_json(paused),
              "lock": None if holder is None else {k: v for k, v in asdict(holder).items() if k != "token"},
              "snapshots": kept, "latest_restorable_time": restorable}
    guards = guardslib.check(aws) if chosen is None else []
    if guards:
        report["account_guards"] = guardslib.to_json(guards)
    judged = parts if chosen is None else [p for p in parts if p["part"] == chosen.number]
    if as_json:
        rt.out.data(report if chosen is None else judged[0])
    elif chosen is not None:
        show_part(rt.out, report, judged[0])
    elif not deployed:
        # Seven "pending" rows would say less than this.
        rt.out.result(f"stack {rt.config.stack} is not deployed in {aws.region} ({account}): "
                      f"nothing tagged threetier:stack={rt.config.stack} found; `threetier up` builds it")
    else:
        show(rt.out, report)
    if not as_json and chosen is None:
        show_backups(rt.out, kept, restorable)
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
        if deployed:  # "not deployed" stays one line
            guardslib.say(guards, rt.out)
    firing = sorted(name for p in judged for name, state in p["alarms"].items() if state == ALARM)
    if firing and not as_json:
        rt.out.info(f"in ALARM: {', '.join(firing)}" + (" (their actions are off while paused)" if paused else ""))
    if paused is not None:  # with no instance behind the ALBs an alarm may well fire: that is the pause
        firing = []
    healthy = all(p["status"] == statelib.DONE for p in judged) and not firing
    return ExitStatus.OK if healthy else ExitStatus.DRIFT


def backups(engine: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The stack's manual cluster snapshots (`down`'s final ones, `backup`'s), newest first, and the
    cluster's latest restorable time (point-in-time recovery reaches up to it; None with no cluster)."""
    from steps import database
    from threetier.blocks import snapshots
    aws = engine.ctx.aws
    found = aws.look(snapshots.manual_look(), resource="DB cluster snapshots")
    clusters = aws.look(database.cluster_look(engine.ctx), resource=f"DB cluster {database.cluster_id(engine.ctx)}")
    latest = ((clusters or {}).get("DBClusters") or [{}])[0].get("LatestRestorableTime")
    return (snapshots.listing(snapshots.stack_snapshots(found, engine.ctx.stack), engine.ctx.stack),
            latest.isoformat() if hasattr(latest, "isoformat") else latest)


def show_backups(out: Output, kept: list[dict[str, Any]], restorable: str | None) -> None:
    """Below the rest, wrapped between words as the notes are."""
    said = [f"database: restorable to any second up to {restorable} (automated backups)"] if restorable else []
    if kept:
        said.append("snapshots kept: " + ", ".join(
            f"{escape(s['id'])} ({s['kind']}, {s['size_gib']} GiB, {s['age']} old"
            + ("" if s["status"] == "available" else f", {escape(str(s['status']))}") + ")" for s in kept))
    for text in said:
        for line in wrapped(text, out.res.width):
            out.result(line)


# The application tiers' Parts (blue/green, threetier.blocks.colors), and what `tiers` shows of each.
TIER_PARTS = {"app": 5, "web": 7}
TIER_KEYS = ("color", "image", "fingerprint", "deployed_at", "rollback_image")
DEPLOY_KEYS = ("to", "image", "phase", "canary", "started_at")  # watch_until is on the run's own clock


def tiers(parts: list[dict[str, Any]], saved: statelib.State | None) -> dict[str, dict[str, Any]]:
    """Each application tier: its live color, that color's image, the image's code fingerprint, when
    it went live, the rollback target (null for a Part not built); `deploy`, from the state file,
    while one runs."""
    found: dict[str, dict[str, Any]] = {}
    for tier, number in TIER_PARTS.items():
        part = next((p for p in parts if p["part"] == number), None)
        built = part is not None and part["status"] != statelib.PENDING
        resources = part["resources"] if part is not None and built else {}
        found[tier] = {key: resources.get(key) for key in TIER_KEYS}
        record = saved.parts.get(number) if saved else None
        running = record.resources.get("deploy") if record is not None else None
        if built and isinstance(running, dict):
            found[tier]["deploy"] = {key: running[key] for key in DEPLOY_KEYS if running.get(key)}
    return found


def tier_line(tier: str, seen: dict[str, Any]) -> str:
    """One line of the table's view per application tier."""
    line = f"{tier}: {seen['color'] or '-'}, {seen['image'] or 'no image'}"
    if seen.get("fingerprint"):
        line += f" (code {seen['fingerprint']})"
    if seen.get("deployed_at"):
        line += f", live since {seen['deployed_at']}"
    line += f"; rollback: {seen['rollback_image'] or 'none'}"
    running = seen.get("deploy")
    if running:
        line += f"; deploying {running.get('image', '?')} to {running.get('to', '?')} ({running.get('phase', '?')})"
    return line


def part_named(key: str) -> Part:
    """PART as `replay` takes it, read from the steps alone, so that a wrong one is refused before any
    AWS call."""
    from steps import PARTS
    from threetier.engine import part_named as named
    return named(PARTS, key)


# -- the views -----------------------------------------------------------------------
# The key that names each Part in the table: its first key present (a Part half built may lack the
# first). The tiers are named by their Auto Scaling group, shorter than their ALB's DNS name, which
# the outputs carry in full (`internal_alb_dns`, `url`).
NAMED_BY = {"storage": ("bucket", "role"), "network": ("vpc",), "database": ("cluster", "db_subnet_group"),
            "app-image": ("ami", "image_name"), "app-tier": ("auto_scaling_group", "load_balancer_dns"),
            "web-image": ("ami", "image_name"), "web-tier": ("auto_scaling_group", "load_balancer_dns")}

# The same resource under a second key: the old key -> the one that stays. The views show it once,
# under the key that stays; --json keeps the old key one release more (README, "Deprecated JSON
# keys"), then it goes. `role` and `instance_profile` (the app tier's) are the public contract's;
# `app_role`... repeat them. Part 5's `load_balancer_dns` repeats its `internal_alb_dns`.
DEPRECATED_KEYS = {"app_role": "role", "app_role_arn": "role_arn", "app_instance_profile": "instance_profile",
                   "app_instance_profile_arn": "instance_profile_arn", "load_balancer_dns": "internal_alb_dns"}

COLOURS = {"done": "green", "pending": "dim", "failed": "red", "drifted": "yellow"}
INDENT = "    "  # a wrapped line's continuation


def shown_resources(resources: dict[str, Any]) -> dict[str, Any]:
    """A Part's resources without the deprecated repeats (a deprecated key holding a value of its own is kept)."""
    return {key: value for key, value in resources.items()
            if not (key in DEPRECATED_KEYS and DEPRECATED_KEYS[key] in resources
                    and resources[DEPRECATED_KEYS[key]] == value)}


def naming_id(part: dict[str, Any]) -> str:
    """The one ID that names the Part in the table; a tier's target health after it."""
    resources = part["resources"]
    named = next((str(resources[key]) for key in NAMED_BY.get(part["name"], ()) if resources.get(key)), "")
    if not named:  # a Part this table does not know yet: its first plain value
        named = next((value for value in resources.values() if isinstance(value, str) and value), "-")
    healthy = resources.get("healthy_targets")
    return f"{named} ({healthy} healthy)" if healthy else named


def title(report: dict[str, Any]) -> Text:
    return Text(escape(f"stack {report['stack']} in {report['region']} ({report['account']})"), style="bold")


def show(out: Output, report: dict[str, Any]) -> None:
    """The default view: one row per Part, then what the rows cannot hold (drift, notes, alarms: each
    line naming its Part), then the outputs, one per line and whole.

    Nothing is folded mid-word: the table is plain columns whose last is the ID (a long one runs past
    the edge of the terminal, it is never cut); the prose lines wrap between words only; an output is
    never wrapped, so `status | grep url` finds it whole. Every value came from AWS or the state file:
    each is escaped (`escape`), so none can start a line of its own."""
    out.result(title(report))
    rows = [("part", "name", "status", "drift", "id")]
    rows += [(str(p["part"]), p["name"], p["status"], "-" if p["status"] == statelib.PENDING else str(len(p["drift"])),
              escape(naming_id(p))) for p in report["parts"]]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for number, row in enumerate(rows):
        cells = Text(style="dim" if number == 0 else "")
        cells.append(row[0].rjust(widths[0]) + "  " + row[1].ljust(widths[1]) + "  ")
        cells.append(row[2].ljust(widths[2]), style="" if number == 0 else COLOURS.get(row[2], ""))
        cells.append("  " + row[3].rjust(widths[3]) + "  " + row[4])
        out.result(cells)
    for tier, seen in report.get("tiers", {}).items():
        if seen["color"]:
            for line in wrapped(escape(tier_line(tier, seen)), out.res.width):
                out.result(line)
    below = [(p, text, style) for p in report["parts"] for text, style in findings(p)]
    if below:
        out.result("")
    for part, text, style in below:
        for line in wrapped(f"{part['part']} {part['name']}: {text}", out.res.width):
            out.result(Text(line, style=style))
    if report["outputs"]:
        out.result("")
    for key, value in report["outputs"].items():
        out.result(f"{key}: {value}")


def findings(part: dict[str, Any]) -> list[tuple[str, str]]:
    """A Part's drift lines, notes and alarms, escaped, each with its style."""
    found = [(f"drift: {escape(line)}", "yellow") for line in part["drift"]]
    found += [(f"note: {escape(line)}", "dim") for line in part["notes"]]
    if part["alarms"]:
        found.append((escape(alarm_summary(part["alarms"])), "red" if ALARM in part["alarms"].values() else ""))
    return found


def wrapped(text: str, width: int, indent: str = "") -> list[str]:
    """`text` in lines of at most `width` columns, broken between words only (never inside an ID, at a
    hyphen or not: a word longer than the line has a line of its own), its continuation indented."""
    return textwrap.wrap(text, width=max(width, 20), initial_indent=indent, subsequent_indent=indent + INDENT,
                         break_long_words=False, break_on_hyphens=False) or [indent]


def show_part(out: Output, report: dict[str, Any], part: dict[str, Any]) -> None:
    """`status PART`: everything about one Part, one `key = value` a line (values whole: never wrapped)."""
    out.result(title(report))
    out.result(Text.assemble(f"Part {part['part']} {part['name']}: ",
                             (part["status"], COLOURS.get(part["status"], ""))))
    sections: list[tuple[str, list[str], str]] = [
        ("resources", [f"{key} = {value}" for key, value in flat(shown_resources(part["resources"]))], ""),
        ("drift", part["drift"], "yellow"),
        ("notes", part["notes"], "dim"),
        ("alarms", [f"{name} = {state}" for name, state in part["alarms"].items()], ""),
        ("state file", [f"{key} = {value}" for key, value in flat(part.get("state_file") or {})], ""),
    ]
    for heading, lines, style in sections:
        out.result(f"{heading}:" if lines else f"{heading}: none")
        for line in lines:
            if heading in ("drift", "notes"):  # prose: wrapped between words
                for piece in wrapped(escape(line), out.res.width, INDENT):
                    out.result(Text(piece, style=style))
            else:  # key = value: whole on its line, whatever its length
                styled = "red" if heading == "alarms" and line.endswith(f"= {ALARM}") else style
                out.result(Text(INDENT + escape(line), style=styled))


def flat(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested resources as (key, value) lines: `subnets.public-web-subnet-az1`, `azs[0]`; JSON's
    spelling for what is not a string (`true`, `null`, numbers)."""
    lines: list[tuple[str, str]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            lines += flat(value, f"{name}.") if value else [(name, "{}")]
        elif isinstance(value, list):
            lines += flat({f"[{i}]": item for i, item in enumerate(value)}, name) if value else [(name, "[]")]
        else:
            lines.append((name, value if isinstance(value, str) else json.dumps(value, default=str)))
    return lines


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
