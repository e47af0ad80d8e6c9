"""The measurements: a modeled `up` (+ `pause` and `resume`, + `deploy app` and `deploy web` under a steady
request load) + `down`, and the commands that only look."""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.model import LatencyModel, Span, VirtualClock, load
from bench.moto_env import counting_calls, moto

# The `edge` variant: a public zone the account already has (threetier never creates one), and a
# name in it for the stack (config.yaml `edge`).
EDGE_ZONE = "example.com"
EDGE_DOMAIN = "shop.example.com"


def edge_config(*, waf: bool = False, cdn: bool = False) -> dict[str, Any]:
    """The front door of Part 7: HTTPS with a requested certificate, the WAF, and CloudFront in front
    (the `edge_cdn` variant: `cdn` and `waf`)."""
    return {"edge": {"domain": EDGE_DOMAIN, "hosted_zone": EDGE_ZONE, "waf": waf, **({"cdn": True} if cdn else {})}}


def create_edge_zone() -> str:
    """The public hosted zone, made in moto as the user made it (not through the model: no time, no call
    of the engine's)."""
    import boto3
    route53 = boto3.client("route53")
    return route53.create_hosted_zone(Name=EDGE_ZONE, CallerReference="bench-edge-zone")["HostedZone"]["Id"]


# The `edge_cdn` variant (`modeled_run(sequential=False, **EDGE_CDN)`): the front door, the WAF and
# CloudFront in front (edge.cdn).
EDGE_CDN: dict[str, bool] = {"edge": True, "waf": True, "cdn": True}


@dataclass
class Modeled:
    """One modeled `up`, with `pause` then `resume` (`pause=True`), then `down --skip-final-snapshot`,
    from an empty account. `down` always takes down a running stack: right after `up`, or after `resume`."""
    sequential: bool
    edge: bool = False                    # with the front door (HTTPS, DNS): config `edge`
    cdn: bool = False                     # ... and CloudFront in front (edge.cdn): the `edge_cdn` variant
    pause: bool = False                   # pause and resume were modeled between up and down
    up_seconds: float | None = None
    down_seconds: float | None = None
    pause_seconds: float | None = None
    resume_seconds: float | None = None
    up_calls: int = 0
    down_calls: int = 0
    pause_calls: int = 0
    resume_calls: int = 0
    pause_violations: list[str] = field(default_factory=list)   # of `violations`, those during pause
    resume_violations: list[str] = field(default_factory=list)  # ... and during resume
    up_call_seconds: float = 0.0          # of up_seconds, spent in API round trips
    violations: list[str] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)   # code -> count (all, retried ones too)
    relaxed: list[str] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)           # of `up` only
    pause_spans: list[Span] = field(default_factory=list)     # what pause and resume stopped, drained, made
    down_spans: list[Span] = field(default_factory=list)
    error: str | None = None
    wall_seconds: float = 0.0
    looks: dict[str, Any] = field(default_factory=dict)      # no-op up / status, measured on the full stack
    deploy: bool = False                  # `deploy app` then `deploy web` were asked for between up and down
    deploys: dict[str, Deployed] = field(default_factory=dict)  # tier -> its modeled deploy


def engine_for(directory: Path, clock: Any, *, sequential: bool, relax: Iterable[str] = (),
               raw_config: dict[str, Any] | None = None) -> tuple[Any, LatencyModel]:
    """The real engine on a fresh Aws object (the default config, or `raw_config` as config.yaml would
    give it), with the latency model on its clients."""
    from steps import PARTS
    from threetier import config as configlib
    from threetier import state as statelib
    from threetier.aws import Aws
    from threetier.engine import Ctx, Engine
    from threetier.output import Output

    config = configlib.parse(raw_config or {})
    aws = Aws(config.region, clock=clock, emulator=True)
    aws.listener_changes_at_once = False  # the model applies one LISTENER_CHANGE_SECONDS after its call
    model = LatencyModel(aws, clock, relax=relax)
    state_file = statelib.StateFile(directory / "state.json")
    state = state_file.load() or statelib.State(stack=config.stack, region=config.region)
    ctx = Ctx(config=config, aws=aws, out=Output(stdout=io.StringIO(), stderr=io.StringIO()), state=state)
    return Engine(ctx, state_file, PARTS, sequential=sequential), model


def modeled_run(*, sequential: bool, relax: Iterable[str] = (), looks: bool = False,
                delay: float = 0.08, edge: bool = False, waf: bool = False, cdn: bool = False, pause: bool = False,
                deploy: bool = False) -> Modeled:
    """`edge`: with the front door (edge.domain in a hosted zone made first), the WAF with `waf`, and
    CloudFront in front with `cdn` (`edge_cdn`: bench/model/cloudfront.py times its distribution).
    `looks` measures the defaults' no-op up and status: not with `edge`. `pause`: `threetier pause`
    then `threetier resume` between up (and looks) and down (`pause_and_resume`). `deploy`: then
    `deploy app` and `deploy web` under a steady load (`modeled_deploys`), before down."""
    result = Modeled(sequential=sequential, edge=edge, cdn=cdn, pause=pause, deploy=deploy)
    started = time.monotonic()
    with moto(), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        directory = Path(tmp)
        clock = VirtualClock()
        if edge:
            create_edge_zone()
        engine, model = engine_for(directory, clock, sequential=sequential, relax=relax,
                                   raw_config=edge_config(waf=waf, cdn=cdn) if edge else None)
        aws = engine.ctx.aws
        try:
            t0 = clock.now()
            engine.up()
            result.up_seconds = clock.now() - t0
            result.up_calls = len(aws.calls)
            result.up_call_seconds = model.call_seconds
            result.spans = model.spans
            if looks and not edge:  # measure_looks runs the CLI with the default config
                result.looks = measure_looks(directory, delay=delay)
            if pause:
                pause_and_resume(engine, model, clock, result)
            if deploy:
                modeled_deploys(engine, model, clock, result, directory)
            calls_before = len(aws.calls)
            t1 = clock.now()
            engine.ctx.skip_final_snapshot = True
            engine.down()
            result.down_seconds = clock.now() - t1
            result.down_calls = len(aws.calls) - calls_before
            result.down_spans = [s for s in model.spans if s.action == "delete" and s.start >= t1]
        except Exception as exc:  # reported, not raised: a benchmark of a failing engine
            result.error = f"{type(exc).__name__}: {exc}"
            if os.environ.get("BENCH_TRACEBACK"):
                traceback.print_exc()
            if not result.spans:
                result.spans = model.spans
        result.violations = model.violations
        for refusal in model.refusals:
            result.refusals[refusal.code] = result.refusals.get(refusal.code, 0) + 1
        result.relaxed = list(model.relaxed)
    result.wall_seconds = time.monotonic() - started
    return result


def pause_and_resume(engine: Any, model: LatencyModel, clock: Any, result: Modeled) -> None:
    """`threetier pause` then `threetier resume` on the stack `up` made, in-process on the same engine,
    moto and virtual clock, calling what the commands call (cli/pause.py: refuse_unless_up, then
    Engine.pause; cli/resume.py: is_new_stack, then Engine.up) but without their locks (the state
    file's and the stack's lock in SSM: two calls each, not modeled) and their reports. Each is timed
    on the virtual clock, start to end; their violations are also in `result.violations`."""
    from threetier.cli.common import Runtime
    from threetier.cli.pause import refuse_unless_up
    from threetier.cli.up import is_new_stack

    ctx, aws = engine.ctx, engine.ctx.aws
    rt = Runtime(config=ctx.config, out=ctx.out, state_file=engine.state_file, options={})

    def pause() -> None:
        if ctx.state.paused is None:  # as cli/pause.py: a stack not fully up is refused
            refuse_unless_up(rt, engine)
        engine.pause()

    def resume() -> None:
        if is_new_stack(rt, engine):
            raise RuntimeError("resume: the stack does not exist")
        engine.up()
    phases = (("pause", pause), ("resume", resume))
    began = clock.now()
    for label, run in phases:
        calls, violations, started = len(aws.calls), len(model.violations), clock.now()
        try:
            run()
            setattr(result, f"{label}_seconds", clock.now() - started)  # None when it failed
        finally:
            setattr(result, f"{label}_calls", len(aws.calls) - calls)
            setattr(result, f"{label}_violations", model.violations[violations:])
    result.pause_spans = [s for s in model.spans if s.start >= began]


# -- a deploy under a steady request load (issue 25) ------------------------------------------
DEPLOY_TIERS = ("app", "web")


@dataclass
class Deployed:
    """One modeled `threetier deploy TIER`, timed on the virtual clock, with the load served meanwhile."""
    tier: str
    floor: int                            # the tier's asg.min: its healthy count must not go below it
    seconds: float | None = None          # None: it failed
    failed_requests: int = 0              # of every tier's requests while it ran
    min_healthy: int | None = None        # the deployed tier's lowest count of targets serving
    requests: float = 0.0
    violations: list[str] = field(default_factory=list)
    error: str | None = None


# The stand-ins for your code (a Node app on its standard library, a static site): a deploy gets a copy with
# one byte changed (a new code fingerprint: a new image, a blue/green switch).
FIXTURES = Path(__file__).parent / "fixtures"
CHANGED_FILE = {"app": "server.js", "web": "index.html"}


def changed_source(tier: str, directory: Path) -> Path:
    """A copy of the tier's stand-in under `directory` whose last line says a version never used before."""
    copies = sorted(directory.glob(f"{tier}-source-*"))
    copy = directory / f"{tier}-source-{len(copies) + 1}"
    shutil.copytree(FIXTURES / tier, copy)
    changed = copy / CHANGED_FILE[tier]
    text = changed.read_text()
    changed.write_text(text.replace("version 0", f"version {len(copies) + 1}"))
    return copy


def source_config(tier: str, source: Path) -> dict[str, Any]:
    """config.yaml's keys that deploy `source` as the tier's code (design25.md §2.1)."""
    if tier == "app":
        return {"app": {"source": str(source), "runtime": "nodejs24", "install": "npm ci --omit=dev",
                        "start": "node server.js", "health_path": "/health"}}
    return {"web": {"source": str(source)}}


def deploy_in_process(engine: Any, tier: str, directory: Path) -> None:
    """`threetier deploy TIER` in-process on `engine` (its moto, clock and state) for a changed source:
    the one place the benchmark meets the blue/green switch. What the command runs once it holds the
    lock (threetier.cli.deploy.deploy_tiers), without the lock, the account check and the report, as
    `pause_and_resume` runs pause and resume; it returns once the old color is retired."""
    from threetier import config as configlib
    from threetier.cli.deploy import deploy_tiers

    raw: dict[str, Any] = {}
    for each in DEPLOY_TIERS:  # the other tier keeps the code deployed before
        source = getattr(engine.ctx.config, each).source
        if source:
            raw.update(source_config(each, Path(source)))
    raw.update(source_config(tier, changed_source(tier, directory)))
    engine.ctx.config = configlib.parse(raw)
    [outcome] = deploy_tiers(engine, (tier,)).values()
    if not outcome.switched or outcome.rolled_back:
        raise RuntimeError(f"deploy {tier}: {outcome}")


def serving_tiers(engine: Any) -> list[load.Tier]:
    """The steady load: the web tier's requests at the external ALB, and its `/api/` share at the internal one."""
    found = engine.ctx.aws.client("elbv2").describe_load_balancers(
        Names=[engine.ctx.name(role) for role in ("ext-alb", "int-alb")])["LoadBalancers"]
    arns = {lb["LoadBalancerName"]: lb["LoadBalancerArn"] for lb in found}
    return [load.Tier("web", arns[engine.ctx.name("ext-alb")], rate=load.WEB_REQUESTS_PER_SECOND),
            load.Tier("app", arns[engine.ctx.name("int-alb")], fed_by=("web", load.API_SHARE))]


def modeled_deploy(engine: Any, model: LatencyModel, clock: Any, tier: str, directory: Path) -> Deployed:
    """`deploy TIER` while the stack serves a steady load: its minutes, the requests that failed meanwhile
    (goal 0) and the lowest number of the tier's targets serving (goal: never below its `min`)."""
    result = Deployed(tier, floor=getattr(engine.ctx.config, tier).asg.min)
    violations = len(model.violations)
    load.start(model, serving_tiers(engine))
    started = clock.now()
    try:
        deploy_in_process(engine, tier, directory)
        result.seconds = clock.now() - started
    except Exception as exc:  # reported, not raised: a benchmark of a failing deploy
        result.error = f"{type(exc).__name__}: {exc}"
        if os.environ.get("BENCH_TRACEBACK"):
            traceback.print_exc()
    served = load.finish(model)
    assert served is not None
    result.failed_requests = sum(t.failed_requests for t in served.tiers.values())
    result.requests = sum(t.requests for t in served.tiers.values() if t.fed_by is None)
    result.min_healthy = served.tiers[tier].min_healthy
    result.violations = model.violations[violations:]
    return result


def modeled_deploys(engine: Any, model: LatencyModel, clock: Any, result: Modeled, directory: Path) -> None:
    """`deploy app`, then `deploy web`, each under the load (`modeled_deploy`)."""
    for tier in DEPLOY_TIERS:
        result.deploys[tier] = modeled_deploy(engine, model, clock, tier, directory)


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def cli(args: list[str]) -> tuple[int, str, str]:
    from threetier.cli import run
    out, err = io.StringIO(), io.StringIO()
    code = run(args, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def measure_looks(directory: Path, *, delay: float) -> dict[str, Any]:
    """On the complete stack: a no-op `up` and a `status`, through the CLI in-process (as a user runs
    them), counted; then again with every AWS call delayed by a real `delay` seconds."""
    state = str(directory / "state.json")
    looks: dict[str, Any] = {}
    with _cwd(directory):  # no config.yaml here: the defaults, as the modeled run used
        for label, args in (("noop_up", ["up", "--state", state]), ("status", ["status", "--json", "--state", state])):
            with counting_calls() as count:
                started = time.perf_counter()
                code, _, err = cli(args)
                looks[f"{label}_seconds"] = time.perf_counter() - started
            looks[f"{label}_calls"] = count.total
            looks[f"{label}_mutating_calls"] = len(count.mutating)
            looks[f"{label}_mutating"] = sorted(set(count.mutating))
            looks[f"{label}_exit"] = code
            if code not in (0,):
                looks[f"{label}_stderr"] = err.strip()[-400:]
            with counting_calls(delay=delay) as slow, _timing_preflight() as preflights:
                started = time.perf_counter()
                cli(args)
                looks[f"{label}_seconds_{int(delay * 1000)}ms"] = time.perf_counter() - started
            looks[f"{label}_calls_delayed_run"] = slow.total
            if label == "noop_up" and preflights:  # the part of the no-op up that is the preflight
                calls, seconds = preflights[0]
                looks["preflight_calls"] = calls
                looks[f"preflight_seconds_{int(delay * 1000)}ms"] = seconds
    return looks


@contextlib.contextmanager
def _timing_preflight() -> Iterator[list[tuple[int, float]]]:
    """Each preflight the CLI runs meanwhile: its AWS calls and wall seconds, asked as on AWS. The
    bench's moto is an emulator to the CLI, which would skip what emulators cannot answer truly
    (Service Quotas, RDS quotas and offerings, the permissions): here the preflight asks them all,
    and what moto cannot answer is skipped as a refusal on AWS would be."""
    from threetier import preflight
    timed: list[tuple[int, float]] = []
    real = preflight.check

    def check(engine: Any, command: str) -> preflight.Findings:
        aws = engine.ctx.aws
        emulator, aws.emulator = aws.emulator, False
        started = time.perf_counter()
        try:
            findings = real(engine, command)
        finally:
            aws.emulator = emulator
        timed.append((findings.calls, time.perf_counter() - started))
        return findings
    preflight.check = check
    try:
        yield timed
    finally:
        preflight.check = real
