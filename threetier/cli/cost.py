"""`threetier cost`: what the configured stack costs an hour and a month, line by line, with no AWS call."""
from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from threetier.cli.common import Runtime, global_options, runtime
from threetier.estimate import Estimate, estimate
from threetier.output import ExitStatus, Output, escape
from threetier.state import StateError


@click.command("cost", help="""Estimate what the stack config.yaml describes costs in its region:
each line (NAT gateways, load balancers, Aurora, EC2, EBS, public IPv4
addresses, Secrets Manager, CloudWatch; with edge the WAF and CloudFront) with
its quantity and unit price, the total a month and an hour, and every
assumption the estimate makes.

It prices the config from the price table kept in threetier (its date is
shown): no AWS call, no credentials needed. A region not in the table is
priced as us-east-1, and says so.

With --paused: what it costs paused by `threetier pause` (the load
balancers, Aurora's storage, the images, the secret, CloudWatch). --json
has both monthly totals (running_monthly_usd, paused_monthly_usd).

\b
Examples:
  threetier cost
  threetier cost --paused
  threetier cost --config lab.yaml
  threetier cost --json | jq .monthly_usd
""")
@click.option("--paused", is_flag=True, help="what the stack costs paused (`threetier pause`): what still bills")
@click.option("--json", "as_json", is_flag=True, help="print JSON on stdout (and nothing else)")
@global_options
@click.pass_context
def command(ctx: click.Context, paused: bool, as_json: bool) -> int:
    rt = runtime(ctx)
    priced = estimate(rt.config, rt.region(), paused=paused)
    if as_json:
        rt.out.data(priced.as_json())
    else:
        show(rt.out, priced)
        said = paused_in_state_file(rt)
        if said and not paused:
            rt.out.info(said)
        running = deploying_in_state_file(rt)
        if running and not paused and priced.deploy_extra_hourly_usd is not None:
            rt.out.info(f"the state file says a deploy of {running} is under way: the second color costs up to "
                        f"${priced.deploy_extra_hourly_usd:,.2f} an hour more until it ends")
    return ExitStatus.OK


def paused_in_state_file(rt: Runtime) -> str | None:
    """A hint when the state file says the stack is paused (a local read, no AWS call; a file that
    cannot be read says nothing here: `cost` prices config.yaml, not the state)."""
    try:
        state = rt.state_file.load()
    except StateError:
        return None
    if state is None or state.paused is None:
        return None
    return (f"the state file says stack {rt.config.stack} is paused since {state.paused.since}: "
            f"`threetier cost --paused` is what it costs now")


def deploying_in_state_file(rt: Runtime) -> str | None:
    """The tiers the state file says a deploy runs on ("app and web"), or None (a local read)."""
    try:
        state = rt.state_file.load()
    except StateError:
        return None
    tiers = [tier for tier, number in (("app", 5), ("web", 7))
             if state is not None and number in state.parts and state.parts[number].resources.get("deploy")]
    return " and ".join(tiers) or None


def summary_line(priced: Estimate) -> str:
    """"about $282.33 a month ($0.39 an hour; prices of 2026-11)": `cost`'s bottom line, and what `up`
    says before it creates a stack. "at least" when the table lacks a price (said in the notes)."""
    said = [f"${priced.hourly_usd:,.2f} an hour", f"prices of {priced.prices_date}"
            + (f", {priced.prices_region}'s" if priced.prices_region != priced.region else "")]
    if priced.unpriced:
        said.append(f"{len(priced.unpriced)} item(s) without a price not counted")
    return f"{'at least' if priced.unpriced else 'about'} ${priced.monthly_usd:,.2f} a month ({'; '.join(said)})"


def show(out: Output, priced: Estimate) -> None:
    paused = ", paused" if priced.paused else ""
    # Text, not markup: the region may be the environment's (AWS_REGION), which config.yaml never checked.
    table = Table(title=Text(escape(f"estimated cost of stack {priced.stack} in {priced.region}{paused}")),
                  caption=f"on-demand list prices in USD of {priced.prices_date}, {priced.prices_region}")
    table.add_column("item", overflow="fold")
    table.add_column("quantity", justify="right")
    table.add_column("unit")
    table.add_column("unit price", justify="right")
    table.add_column("a month", justify="right")
    for line in priced.lines:
        monthly = line.monthly_usd
        table.add_row(line.item, quantity(line.quantity), line.unit,
                      "-" if line.unit_usd is None else unit_price(line.unit_usd),
                      Text("no price", style="red") if monthly is None else f"${monthly:,.2f}")
    table.add_section()
    table.add_row(Text("total", style="bold"), "", "", "", Text(f"${priced.monthly_usd:,.2f}", style="bold"))
    out.result(table)
    out.result(f"{priced.stack} in {priced.region}: {summary_line(priced)}")
    for note in priced.notes:
        out.result(f"note: {note}")
    out.result("assumptions:")
    for assumption in priced.assumptions:
        out.result(f"  - {assumption}")


def quantity(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def unit_price(value: float) -> str:
    """At least cents, and every digit of the list price ($0.0104, $0.045, $3.00)."""
    digits = max(2, len(f"{value:.6f}".rstrip("0").split(".")[1]))
    return f"${value:,.{digits}f}"
