"""What every command shares: global options, and building config, output, AWS and state."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from threetier import config as configlib
from threetier import sandbox as sandboxlib
from threetier import state as statelib
from threetier.errors import UsageError
from threetier.output import PROGRESS_MODES, Output

if TYPE_CHECKING:  # boto3 and the engine load only when a command talks to AWS (`--help` stays quick)
    from threetier.aws import Aws, Call, Look
    from threetier.changes import Change
    from threetier.engine import Engine

META = "threetier.options"


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        # Global options may stand before or after the command name: the later one wins.
        if value not in (None, False):
            ctx.find_root().meta.setdefault(META, {})[name] = value
    return callback


def global_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that talks to a stack."""
    options = [
        click.option("--config", "config_path", type=click.Path(dir_okay=False), expose_value=False,
                     callback=_remember("config"), help="config file (default: ./config.yaml)"),
        click.option("--state", "state_path", type=click.Path(dir_okay=False), expose_value=False,
                     callback=_remember("state"), help="state file (default: ./.threetier/<stack>.json)"),
        click.option("--sandbox", is_flag=True, expose_value=False, callback=_remember("sandbox"),
                     help="talk to the local sandbox (moto's server) instead of AWS"),
        click.option("--progress", type=click.Choice(PROGRESS_MODES), expose_value=False,
                     callback=_remember("progress"),
                     help="how the Parts in flight show on stderr: live (redrawn in place), plain (lines with the "
                          "elapsed time, for logs) or auto (live on a terminal that can move its cursor, else "
                          "plain; the default)"),
    ]
    command = output_options(command)  # listed after these in --help
    for option in reversed(options):
        command = option(command)
    return command


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command, `sandbox start|stop|status` included (which read no config or state)."""
    options = [
        click.option("--no-color", is_flag=True, expose_value=False, callback=_remember("no_color"),
                     help="no colours on stderr (NO_COLOR is honoured too)"),
        click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=_remember("verbose"),
                     help="show each AWS call"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def lock_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """For the commands that change the stack: they hold its lock in AWS (threetier.lock)."""
    return click.option("--take-over-lock", "take_over_lock", is_flag=True,
                        help="take the stack's lock from a run that is dead but not provably so (another "
                             "machine's, a container's); one dead on this machine is taken without it, one "
                             "alive here never")(command)


def changing_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--json, --take-over-lock and the global options, passing click's context: the options of a
    command that changes the stack and has nothing else to ask (`pause`, `resume`)."""
    command = global_options(click.pass_context(command))
    command = lock_option(command)
    return click.option("--json", "as_json", is_flag=True,
                        help="print the result as JSON on stdout (and nothing else)")(command)


def options(ctx: click.Context) -> dict[str, Any]:
    return ctx.find_root().meta.get(META, {})


@dataclass
class Runtime:
    config: configlib.Config
    out: Output
    state_file: statelib.StateFile
    options: dict[str, Any]

    @property
    def sandboxed(self) -> bool:
        return bool(self.options.get("sandbox"))

    def aws(self, start_sandbox: bool = False) -> Aws:
        from threetier.aws import Aws
        if self.sandboxed:  # wins over AWS_PROFILE, AWS_ENDPOINT_URL and credentials alike
            box = sandboxlib.running()
            if box is None and start_sandbox:
                box, _ = sandboxlib.start()
                self.out.info(f"sandbox started on {box.url} (pid {box.pid}); `threetier sandbox stop` ends it")
            if box is None:
                raise UsageError("--sandbox: the sandbox is not running; `threetier sandbox start` (or `up --sandbox`)")
            return Aws(self.config.region, endpoint_url=box.url, credentials=sandboxlib.CREDENTIALS,
                       on_call=self._show_call, emulator=True)
        return Aws(self.region(), endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None, on_call=self._show_call)

    def region(self) -> str:
        """The stack's region, with no AWS call: config.yaml's `region:` when given there (and always with
        --sandbox), else the environment's (AWS_REGION, the profile), else the default."""
        if self.sandboxed or self.config.region_is_explicit:
            return self.config.region
        from threetier.aws import session
        region = session().region_name or self.config.region
        if not configlib.REGION_NAME.fullmatch(region):  # AWS_REGION="us-east-1\n": refused as config's would be
            raise UsageError(f"region: {region!r} (from AWS_REGION, AWS_DEFAULT_REGION or the profile) is not an AWS "
                             f"region name like eu-west-1")
        return region

    def _show_call(self, call: Call) -> None:
        self.out.detail(f"  aws {call.service} {call.operation}")

    def engine(self, aws: Aws, state: statelib.State | None = None) -> Engine:
        from steps import PARTS  # the steps import the engine: import them late
        from threetier.engine import Ctx, Engine
        state = state or self.saved_state(aws) or statelib.State(stack=self.config.stack, region=aws.region)
        ctx = Ctx(config=self.config, aws=aws, out=self.out, state=state)
        return Engine(ctx, self.state_file, PARTS)


    def saved_state(self, aws: Aws) -> statelib.State | None:
        """The state file, if any, once it is known to be this stack's, in this region, in the
        caller's account: every command checks that before it reads or changes anything."""
        state = self.state_file.load()
        if state is None:
            return None
        if state.stack != self.config.stack or state.region != aws.region:
            raise configlib.ConfigError(
                f"stack/region: the state file {self.state_file.path} is for stack {state.stack} in "
                f"{state.region}, config says {self.config.stack} in {aws.region}; use --state")
        if state.account and state.account != aws.account:
            profile = f" (AWS_PROFILE={os.environ['AWS_PROFILE']})" if os.environ.get("AWS_PROFILE") else ""
            raise UsageError(
                f"account: the state file {self.state_file.path} is for stack {state.stack} in account "
                f"{state.account}, but these credentials{profile} are for account {aws.account}; nothing was "
                f"done. Use account {state.account}'s credentials to work on that stack, or --state with "
                f"another file for a stack in account {aws.account}")
        return state

    @contextlib.contextmanager
    def stack_lock(self, aws: Aws, command: str, take_over: bool) -> Iterator[None]:
        """The stack's lock in AWS for a command that changes it: taken after the account guard and
        before the first read of the stack, released however the command ends."""
        from threetier import lock
        with lock.held(aws, self.config.stack, command, take_over=take_over, out=self.out):
            yield

    def inspector(self, also: Iterable[Look] = ()) -> Engine:
        """An engine that only looks (status, plan): AWS is the truth, so it starts from an empty state,
        and its one inventory of the stack (concurrent reads) answers the parts' checks. `also`: the
        command's other reads, in the inventory's first round."""
        aws = self.aws()
        saved = self.saved_state(aws)  # another stack's, region's or account's state file is refused here too
        state = statelib.State(stack=self.config.stack, region=aws.region)
        for number, part in (saved.parts.items() if saved else ()):
            # What no tag can say (the Route 53 records the stack wrote): from the state file.
            kept = {key: value for key, value in part.resources.items() if key in statelib.REMEMBERED_RESOURCES}
            if kept:
                state.part(number, part.name).resources.update(kept)
        engine = self.engine(aws, state)
        from threetier.lock import lock_look
        engine.take_inventory(also=[lock_look(self.config.stack), *also])  # lock: who is changing the stack
        return engine


@contextlib.contextmanager
def changing(rt: Runtime, command: str, take_over: bool, *, start_sandbox: bool = False,
             preflight: bool = False) -> Iterator[Engine]:
    """A command that changes the stack: the state file's lock, its engine (the account guard), its
    first line, the preflight (when asked), then the stack's lock in AWS, taken before the first
    read of the stack."""
    aws = rt.aws(start_sandbox=start_sandbox)
    with rt.state_file.locked():
        engine = rt.engine(aws)
        header(rt, aws, command)
        if preflight:
            run_preflight(rt, engine, command)
        with rt.stack_lock(aws, command, take_over):
            yield engine


def header(rt: Runtime, aws: Aws, command: str) -> None:
    """The first line of a command that changes something: which stack, where, whose, from which file."""
    config = rt.config.source if rt.config.source != "defaults" else "none: the defaults"
    where = f"the sandbox ({aws.endpoint_url})" if rt.sandboxed else f"account {aws.account}"
    rt.out.info(f"threetier {command}: stack {rt.config.stack} in {aws.region}, {where} (config: {config})")


def run_preflight(rt: Runtime, engine: Engine, command: str) -> None:
    """Before the first change (and before the stack's lock): refuse what would fail minutes in."""
    from threetier import preflight
    preflight.refuse(preflight.check(engine, command), command, rt.out)


def need_config_file(rt: Runtime, command: str) -> None:
    """A command that deletes or stops needs the stack named in a file: run from the wrong directory,
    the defaults would name another directory's stack `threetier`. The sandbox bills nothing."""
    if rt.config.source == "defaults" and not rt.sandboxed:
        raise UsageError(f"{command}: no config file here (./config.yaml) and no --config: a command that deletes "
                         f"or stops a stack needs the file that names it; nothing was done")


def stack_changes(aws: Aws) -> int:
    """The mutating calls a command made to the stack: taking and releasing its lock are not."""
    from threetier.lock import is_lock_call
    return len([call for call in aws.mutating_calls() if not is_lock_call(call)])


def runtime(ctx: click.Context) -> Runtime:
    """Read and validate everything local; no AWS call happens here."""
    opts = options(ctx)
    out: Output = ctx.find_root().obj
    out.configure(no_color=bool(opts.get("no_color")), verbose=bool(opts.get("verbose")), progress=opts.get("progress"))
    config = configlib.load(opts.get("config"))
    if opts.get("state"):
        state_path = Path(opts["state"])
    elif opts.get("sandbox"):  # with the user's one sandbox, never mixed up with real AWS state
        state_path = sandboxlib.state_path(config.stack)
    else:
        state_path = statelib.default_path(config.stack)
    return Runtime(config=config, out=out, state_file=statelib.StateFile(state_path), options=opts)


# -- results -----------------------------------------------------------------------
OUTPUT_KEYS = ("url", "db_writer_endpoint", "db_reader_endpoint", "internal_alb_dns", "bucket", "vpc", "dashboard_url")


def outputs(resources_by_part: list[dict[str, Any]]) -> dict[str, Any]:
    """The stack's addresses in OUTPUT_KEYS's order (the URL first); the URL and endpoints come with Parts 3-7."""
    found = {key: resources[key] for resources in resources_by_part for key in OUTPUT_KEYS if key in resources}
    return {key: found[key] for key in OUTPUT_KEYS if key in found}


def paused_json(paused: statelib.Paused | None) -> dict[str, Any] | None:
    """The paused marker as `status`, `plan`, `pause` and `cost` print it with --json (None: running)."""
    return None if paused is None else paused.to_json()


def restart_said(paused: statelib.Paused) -> str:
    """When AWS starts the stopped Aurora cluster by itself (and it bills again)."""
    when = (f"on {paused.aurora_restarts_at} (7 days after the stop)" if paused.aurora_restarts_at
            else "7 days after it stopped")
    return (f"AWS starts the stopped Aurora cluster by itself {when}, and it bills again: `threetier resume` "
            f"before then, or `threetier pause` again after to stop it")


def change_entry(change: Change) -> dict[str, Any]:
    return {"action": change.action, "kind": change.kind, "name": change.name, "id": change.id}


def run_report(rt: Runtime, engine: Engine, command: str, totals: dict[str, int], **extra: Any) -> dict[str, Any]:
    """What `up`, `down` and `replay` print with --json: the stack, what the run did, its outputs."""
    aws = engine.ctx.aws
    return {"stack": rt.config.stack, "region": aws.region, "account": aws.account, "command": command,
            **totals, **extra,
            "outputs": outputs([engine.ctx.resources_of(part.number) for part in engine.parts])}
