"""The command line: `threetier [global options] COMMAND`, one module per command."""
from __future__ import annotations

import contextlib
import difflib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import IO, Any, cast

import click

from threetier import __version__
from threetier.cli import (
    backup,
    completion,
    cost,
    deploy,
    down,
    graph,
    pause,
    plan,
    replay,
    resume,
    rollback,
    sandbox,
    status,
    up,
)
from threetier.cli.common import global_options, options
from threetier.errors import ThreetierError, UsageError
from threetier.output import ExitStatus, Output

HELP = """Stand up, inspect and tear down the AWS three-tier web architecture
(external ALB -> nginx/React web tier -> internal ALB -> Node.js app tier ->
Aurora MySQL, over a multi-AZ VPC) as the ordered, idempotent Parts of the
deployment guide.

\b
Examples:
  threetier up --sandbox            the whole stack in a local emulator, no AWS account
  threetier up                      build (or verify and repair) the stack in AWS
  threetier plan                    what up would create or change (changes nothing)
  threetier status --json           what is live, as JSON on stdout
  threetier replay network          run Part 2 alone
  threetier deploy app              new code to the app tier, blue/green
  threetier rollback app            back to the app tier's previous image
  threetier backup                  a tagged snapshot of the database, now
  threetier down --yes              delete everything the stack created
  threetier cost                    what the configured stack costs a month (no AWS call)
  threetier pause                   lab mode: stop what bills by the hour, keep the data
  threetier resume                  bring a paused stack back, as config.yaml says
  threetier graph --format dot      which Part waits for which, and why (no AWS call)

AWS settings follow boto3: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL.

\b
Shell completion (`threetier completion --help` for zsh and fish):
  source <(threetier completion bash)

Exit status: 0 ok, 1 an AWS call or a part failed, 2 refused before any
change (bad usage or config, no AWS credentials, another account's state
file, the stack's lock held by another run), 3 status found drift or
something missing, 130 interrupted. plan exits 0 when it planned; plan
--detailed-exitcode as Terraform's: 0 no changes, 2 changes, 1 any error or
refusal. Results go to stdout; progress, prompts and errors to stderr.
"""


INTERRUPTED = "interrupted; the state file is consistent: run the command again to resume"


class Commands(click.Group):
    """The commands, and for a mistyped one (`stauts`) the command meant: click says it itself from
    8.4 on, in these words; setup.cfg allows click 8.1, which only says "No such command"."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean {close[0]!r}?")
        return super().resolve_command(ctx, args)


@click.group(cls=Commands, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="threetier")
@global_options
def cli() -> None:
    pass


for module in (up, plan, down, status, replay, deploy, rollback, backup, cost, pause, resume, graph, sandbox,
               completion):
    cli.add_command(module.command)


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM (a CI job cancelled, `kill`): stop as cleanly as on Ctrl-C


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ReaderMayGo:
    """stdout or stderr, whose reader may go away (`threetier status | head -1`, a log viewer closed):
    the first write or flush that meets the closed pipe points the descriptor at /dev/null (so that
    Python's last flush, at exit, is quiet too) and the rest is dropped. The command is not cut short
    by it: a read-only one ends as it would have, with its own exit status (`status | head -1` of a
    healthy stack exits 0), and `up`, `down` or `pause` finish their work and save their state rather
    than stop half-way because nobody reads their progress or summary; their exit status is the
    work's."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self.drop()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.drop()

    def drop(self) -> None:
        self.reader_gone = True
        to_devnull(self.stream)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the stream's own
        return getattr(self.stream, name)


def to_devnull(stream: IO[str]) -> None:
    """Point the stream's descriptor at /dev/null: what is still buffered in it goes nowhere, quietly."""
    with contextlib.suppress(OSError, ValueError):  # no descriptor (a StringIO), or closed
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


def run(argv: Sequence[str] | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run the CLI and return its exit status; errors become one line on stderr."""
    streams = ReaderMayGo(stdout or sys.stdout), ReaderMayGo(stderr or sys.stderr)
    with sigterm_as_interrupt():
        try:
            return _run(argv, Output(stdout=cast(IO[str], streams[0]), stderr=cast(IO[str], streams[1])))
        finally:
            for stream in streams:  # what is still buffered, while a closed pipe is still caught
                stream.flush()


def _run(argv: Sequence[str] | None, out: Output) -> int:
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="threetier",
                          standalone_mode=False, obj=out)
        return int(result or ExitStatus.OK)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            out.error(INTERRUPTED)
            return ExitStatus.INTERRUPTED
        out.error("aborted")
        return ExitStatus.USAGE
    except click.ClickException as exc:
        exc.show(file=out.stderr)
        return ExitStatus.USAGE if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except UsageError as exc:
        out.error(str(exc))
        return ExitStatus.USAGE
    except ThreetierError as exc:
        out.error(str(exc))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        out.error(INTERRUPTED)
        return ExitStatus.INTERRUPTED
    except SystemExit as exc:
        if isinstance(exc.__context__, BrokenPipeError):
            # click's own output (--help, --version) met a closed pipe: click gave up with exit 1;
            # as for a command's result (ReaderMayGo), the reader going away is no failure.
            to_devnull(sys.stdout)
            return ExitStatus.OK
        raise
    except Exception as exc:  # a bug of ours: one line, the traceback only with -v
        if out.verbose:
            import traceback
            traceback.print_exc(file=out.stderr)
        if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
            # A file the machine refused (permissions, a full disk, a file where a directory should
            # be) is not a bug: say which and why. Exit 1: where it happened, AWS may have changed.
            out.error(f"{exc.filename}: {exc.strerror}")
            return ExitStatus.ERROR
        out.error(f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)")
        return ExitStatus.ERROR


def main() -> None:
    sys.exit(run())


__all__ = ["cli", "main", "options", "run"]
