"""`threetier sandbox start|stop|status`: the local AWS emulator (moto's own server)."""
from __future__ import annotations

import click

from threetier import sandbox as sandboxlib
from threetier.cli.common import options, output_options
from threetier.output import ExitStatus, Output


@click.group("sandbox", help="""A local AWS emulator (moto's server on 127.0.0.1) that `--sandbox`
points every command at, with dummy credentials: the whole stack with no AWS
account. Its contents live in memory and are gone when it stops.

\b
Examples:
  threetier sandbox start
  threetier up --sandbox
  threetier status --sandbox --json
  threetier sandbox stop
""")
def command() -> None:
    pass


def _out(ctx: click.Context) -> Output:
    out: Output = ctx.find_root().obj
    opts = options(ctx)
    out.configure(no_color=bool(opts.get("no_color")), verbose=bool(opts.get("verbose")))
    return out


@command.command("start", help="""Start the sandbox in the background (no-op if it runs already).
There is one per user, found from any directory: its address and pid go to
$XDG_STATE_HOME/threetier/sandbox.json (~/.local/state/threetier/).

\b
Examples:
  threetier sandbox start
  threetier sandbox start --port 4600
""")
@click.option("--port", type=click.IntRange(1024, 65535), default=None, help=f"port (default {sandboxlib.DEFAULT_PORT} or any free one)")
@output_options
@click.pass_context
def start(ctx: click.Context, port: int | None) -> int:
    out = _out(ctx)
    old = sandboxlib.legacy()
    if old is not None:
        out.info(f"warning: a sandbox started by an earlier threetier still runs on {old.url} (pid {old.pid}), "
                 f"recorded in ./.threetier/sandbox.json; `kill {old.pid}` stops it")
    box, started = sandboxlib.start(port)
    out.info(f"sandbox {'started' if started else 'already running'} on {box.url} (pid {box.pid})")
    return ExitStatus.OK


@command.command("stop", help="""Stop the sandbox; everything in it is gone.

\b
Examples:
  threetier sandbox stop
""")
@output_options
@click.pass_context
def stop(ctx: click.Context) -> int:
    box = sandboxlib.stop()
    _out(ctx).info(f"sandbox stopped (pid {box.pid})" if box else "no sandbox was running")
    return ExitStatus.OK


@command.command("status", help="""Is the sandbox running, and where. Exit 0 if it is, 3 if not
(as `systemctl status` says of a service not running, so a script can test it:
`threetier sandbox status || threetier sandbox start`).

\b
Examples:
  threetier sandbox status
  threetier sandbox status --json
""")
@click.option("--json", "as_json", is_flag=True, help="print JSON on stdout")
@output_options
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> int:
    out = _out(ctx)
    box = sandboxlib.running()
    if as_json:
        out.data({"running": box is not None, **({"url": box.url, "pid": box.pid, "started_at": box.started_at}
                                                  if box else {})})
    elif box:
        out.result(f"sandbox running on {box.url} (pid {box.pid}, since {box.started_at})")
    else:
        out.result("sandbox not running")
    return ExitStatus.OK if box else ExitStatus.DRIFT
