"""`python -m bench`: how long `threetier up` and `down --skip-final-snapshot` take on real AWS, modeled.

The real engine runs in-process against moto with a virtual clock, and bench.model makes moto
behave like AWS in time (docs/aws-latency.md). Reported:
1. modeled minutes of `up` then `down` from an empty account, concurrent engine and the
   sequential baseline (Engine(sequential=True)), each in a fresh moto, and every violation;
   and the concurrent engine again with the front door (config `edge`: shop.example.com in a
   hosted zone made first; HTTPS with a requested certificate, DNS validation modeled; the WAF),
   and once more with CloudFront in front (the `edge_cdn` variant: edge.cdn, the WAF CloudFront's;
   a distribution deploys for 300 s after each create and update);
   in the concurrent run, between up and down, `pause` then `resume` (lab mode), each modeled
   (Aurora stopped and started, NAT gateways deleted and made again, the groups drained to 0 and
   back); then `deploy app` and `deploy web` (a changed source) while the stack serves a steady
   request load (bench/model/load.py: failed requests, the lowest healthy count); `down` then
   takes down the stack, running as after `up`;
2. AWS calls of the modeled `up`, of a no-op `up` and of `status` on the complete stack;
3. wall seconds of that no-op `up` and `status` with every AWS call delayed by a real 80 ms;
4. with --sandbox: whole-process seconds of the CLI against a moto server.
It prints a table (or, with --json, exactly one JSON object) and writes a Gantt chart of the up
(matplotlib: `pip install -e '.[bench]'`; without it the chart is skipped, in one line on stderr).
Exit status: 0, or 1 when a modeled run failed or broke a rule of the model.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.model import RULES
from bench.runs import EDGE_CDN, Modeled, modeled_run

DEFAULT_GANTT = Path(__file__).parent / "gantt-up.png"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="rules (for --relax): " + "; ".join(f"{k}: {v}" for k, v in RULES.items()))
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    parser.add_argument("--gantt", type=Path, default=DEFAULT_GANTT, help=f"PNG to write (default {DEFAULT_GANTT})")
    parser.add_argument("--no-gantt", action="store_true", help="write no chart (no matplotlib needed)")
    parser.add_argument("--relax", action="append", default=[], choices=sorted(RULES), metavar="RULE",
                        help="let one rule of the model pass (recorded, not refused); repeatable")
    parser.add_argument("--delay", type=float, default=0.08, help="real seconds added to each AWS call for the "
                        "wall-time measurement of no-op up and status (default 0.08)")
    parser.add_argument("--skip-sequential", action="store_true", help="model the concurrent engine only")
    parser.add_argument("--skip-pause", action="store_true",
                        help="do not model pause and resume between the concurrent run's up and down")
    parser.add_argument("--skip-deploy", action="store_true",
                        help="do not model `deploy app` and `deploy web` under load before the concurrent run's down")
    parser.add_argument("--skip-edge", action="store_true",
                        help="do not model the run with the front door (edge.domain: certificate, DNS)")
    parser.add_argument("--skip-cdn", action="store_true",
                        help="do not model the run with CloudFront in front (edge.cdn, the edge_cdn variant)")
    parser.add_argument("--sandbox", action="store_true",
                        help="also time the CLI as processes against a moto server (threetier sandbox)")
    return parser.parse_args(argv)


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def report(concurrent: Modeled, sequential: Modeled | None, sandbox: dict[str, Any], gantt: str | None,
           delay: float, edge: Modeled | None = None, cdn: Modeled | None = None) -> dict[str, Any]:
    looks = concurrent.looks
    ms = int(delay * 1000)
    result: dict[str, Any] = {
        "up_minutes": minutes(concurrent.up_seconds),
        "down_minutes": minutes(concurrent.down_seconds),
        "sequential_up_minutes": minutes(sequential.up_seconds) if sequential else None,
        "sequential_down_minutes": minutes(sequential.down_seconds) if sequential else None,
        "pause_minutes": minutes(concurrent.pause_seconds),
        "resume_minutes": minutes(concurrent.resume_seconds),
        "pause_calls": concurrent.pause_calls if concurrent.pause else None,
        "resume_calls": concurrent.resume_calls if concurrent.pause else None,
        "pause_violations": concurrent.pause_violations,
        "resume_violations": concurrent.resume_violations,
        **deploy_keys(concurrent),
        "edge_up_minutes": minutes(edge.up_seconds) if edge else None,
        "edge_down_minutes": minutes(edge.down_seconds) if edge else None,
        "up_calls": concurrent.up_calls,
        "down_calls": concurrent.down_calls,
        "sequential_up_calls": sequential.up_calls if sequential else None,
        "sequential_down_calls": sequential.down_calls if sequential else None,
        "edge_up_calls": edge.up_calls if edge else None,
        "edge_down_calls": edge.down_calls if edge else None,
        "up_call_minutes": minutes(concurrent.up_call_seconds),
        "noop_up_calls": looks.get("noop_up_calls"),
        "noop_up_mutating_calls": looks.get("noop_up_mutating_calls"),
        "status_calls": looks.get("status_calls"),
        "status_mutating_calls": looks.get("status_mutating_calls"),
        f"noop_up_seconds_{ms}ms": _round(looks.get(f"noop_up_seconds_{ms}ms")),
        f"status_seconds_{ms}ms": _round(looks.get(f"status_seconds_{ms}ms")),
        "noop_up_seconds": _round(looks.get("noop_up_seconds")),
        "status_seconds": _round(looks.get("status_seconds")),
        "noop_up_exit": looks.get("noop_up_exit"),
        "preflight_calls": looks.get("preflight_calls"),
        f"preflight_seconds_{ms}ms": _round(looks.get(f"preflight_seconds_{ms}ms")),
        "status_exit": looks.get("status_exit"),
        "violations": concurrent.violations,
        "sequential_violations": sequential.violations if sequential else [],
        "edge_violations": edge.violations if edge else [],
        "relaxed": concurrent.relaxed,
        "sequential_relaxed": sequential.relaxed if sequential else [],
        "edge_relaxed": edge.relaxed if edge else [],
        "refusals": concurrent.refusals,
        "sequential_refusals": sequential.refusals if sequential else {},
        "edge_refusals": edge.refusals if edge else {},
        "error": concurrent.error,
        "sequential_error": sequential.error if sequential else None,
        "edge_error": edge.error if edge else None,
        **cdn_keys(cdn),
        "bench_wall_seconds": _round(sum(r.wall_seconds for r in (concurrent, sequential, edge, cdn)
                                         if r is not None)),
        "gantt": gantt,
    }
    for key in ("noop_up_mutating", "noop_up_stderr", "status_stderr"):
        if looks.get(key):
            result[key] = looks[key]
    result.update(sandbox)
    return result


def cdn_keys(cdn: Modeled | None) -> dict[str, Any]:
    """The `edge_cdn` variant (CloudFront in front): null, and no violation, when it was not modeled."""
    return {
        "cdn_up_minutes": minutes(cdn.up_seconds) if cdn else None,
        "cdn_down_minutes": minutes(cdn.down_seconds) if cdn else None,
        "cdn_up_calls": cdn.up_calls if cdn else None,
        "cdn_down_calls": cdn.down_calls if cdn else None,
        "cdn_violations": cdn.violations if cdn else [],
        "cdn_relaxed": cdn.relaxed if cdn else [],
        "cdn_refusals": cdn.refusals if cdn else {},
        "cdn_error": cdn.error if cdn else None,
    }


def deploy_keys(run: Modeled) -> dict[str, Any]:
    """The modeled deploys under load: null when none was modeled (`deploy_skipped`: `--skip-deploy`) or
    one failed (`deploy_error`), never made up."""
    app, web = run.deploys.get("app"), run.deploys.get("web")
    done = [d for d in (app, web) if d is not None]
    errors = [f"deploy {d.tier}: {d.error}" for d in done if d.error]
    healthy = [d.min_healthy for d in done if d.min_healthy is not None]
    return {
        "deploy_app_minutes": minutes(app.seconds) if app else None,
        "deploy_web_minutes": minutes(web.seconds) if web else None,
        "deploy_failed_requests": sum(d.failed_requests for d in done) if done else None,
        "deploy_min_healthy": min(healthy) if healthy else None,
        "deploy_min_healthy_floor": min(d.floor for d in done) if done else None,
        "deploy_violations": [v for d in done for v in d.violations],
        "deploy_skipped": None if run.deploy else "--skip-deploy",
        "deploy_error": "; ".join(errors) or None,
    }


def deploy_failed(run: Modeled) -> bool:
    """A modeled deploy that failed, lost requests or let a tier's healthy count fall below its min."""
    return any(d.error or d.failed_requests or d.min_healthy is None or d.min_healthy < d.floor
               for d in run.deploys.values())


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def print_table(result: dict[str, Any], concurrent: Modeled, sequential: Modeled | None, delay: float,
                edge: Modeled | None = None, cdn: Modeled | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="threetier on real AWS, modeled (docs/aws-latency.md)", title_justify="left")
    table.add_column("measure")
    table.add_column("concurrent engine", justify="right")
    table.add_column("sequential baseline", justify="right")

    def fmt(value: Any, unit: str = "") -> str:
        return "—" if value is None else f"{value}{unit}"
    table.add_row("up", fmt(result["up_minutes"], " min"), fmt(result["sequential_up_minutes"], " min"))
    table.add_row("down, skip final snapshot", fmt(result["down_minutes"], " min"),
                  fmt(result["sequential_down_minutes"], " min"))
    table.add_row("AWS calls: up / down", f"{result['up_calls']} / {result['down_calls']}",
                  fmt(sequential and f"{sequential.up_calls} / {sequential.down_calls}"))
    table.add_row("violations", str(len(concurrent.violations)), fmt(sequential and str(len(sequential.violations))))
    if concurrent.pause:
        table.add_row("pause / resume (lab mode)", f"{fmt(result['pause_minutes'], ' min')} / "
                      f"{fmt(result['resume_minutes'], ' min')}", "—")
        table.add_row("AWS calls: pause / resume", f"{result['pause_calls']} / {result['resume_calls']}", "—")
        table.add_row("violations: pause / resume",
                      f"{len(concurrent.pause_violations)} / {len(concurrent.resume_violations)}", "—")
    if concurrent.deploy:
        table.add_row("deploy app / web, under load", f"{fmt(result['deploy_app_minutes'], ' min')} / "
                      f"{fmt(result['deploy_web_minutes'], ' min')}", "—")
        table.add_row("  failed requests / lowest healthy (min)",
                      f"{fmt(result['deploy_failed_requests'])} / {fmt(result['deploy_min_healthy'])} "
                      f"({fmt(result['deploy_min_healthy_floor'])})", "—")
    table.add_row("refusals (retried)", _codes(concurrent.refusals), fmt(sequential and _codes(sequential.refusals)))
    if edge is not None:
        table.add_row("up, edge (HTTPS, DNS)", fmt(result["edge_up_minutes"], " min"), "—")
        table.add_row("down, edge", fmt(result["edge_down_minutes"], " min"), "—")
        table.add_row("AWS calls, edge", f"{edge.up_calls} / {edge.down_calls}", "—")
        table.add_row("violations, edge", str(len(edge.violations)), "—")
        table.add_row("refusals, edge", _codes(edge.refusals), "—")
    if cdn is not None:
        table.add_row("up / down, edge with CloudFront (cdn)", f"{fmt(result['cdn_up_minutes'], ' min')} / "
                      f"{fmt(result['cdn_down_minutes'], ' min')}", "—")
        table.add_row("AWS calls, cdn", f"{cdn.up_calls} / {cdn.down_calls}", "—")
        table.add_row("violations, cdn", str(len(cdn.violations)), "—")
        table.add_row("refusals, cdn", _codes(cdn.refusals), "—")
    console.print(table)

    ms = int(delay * 1000)
    looks = Table(title="on the complete stack (CLI in-process, concurrent engine)", title_justify="left")
    for column in ("command", "AWS calls", "mutating calls", "seconds", f"seconds, {ms} ms a call"):
        looks.add_column(column, justify="right" if column != "command" else "left")
    looks.add_row("up (no-op)", fmt(result["noop_up_calls"]), fmt(result["noop_up_mutating_calls"]),
                  fmt(result["noop_up_seconds"]), fmt(result[f"noop_up_seconds_{ms}ms"]))
    looks.add_row("status --json", fmt(result["status_calls"]), fmt(result["status_mutating_calls"]),
                  fmt(result["status_seconds"]), fmt(result[f"status_seconds_{ms}ms"]))
    looks.add_row("  of which the preflight", fmt(result.get("preflight_calls")), "0", "—",
                  fmt(result.get(f"preflight_seconds_{ms}ms")))
    console.print(looks)

    sandbox = {k: v for k, v in result.items() if k.startswith("sandbox_")}
    if sandbox:
        box = Table(title="processes against a moto server (threetier sandbox)", title_justify="left")
        box.add_column("command")
        box.add_column("seconds", justify="right")
        for key, value in sandbox.items():
            box.add_row(key.removeprefix("sandbox_").removesuffix("_seconds").replace("_", " "), fmt(value))
        console.print(box)

    for label, run in (("concurrent", concurrent), ("sequential", sequential), ("edge", edge)):
        if run is None:
            continue
        if run.error:
            console.print(f"[red]{label}: the modeled run failed:[/red] {run.error}", markup=True, highlight=False)
        for tier, deployed in run.deploys.items():
            if deployed.error:
                console.print(f"[red]{label}: deploy {tier} failed:[/red] {deployed.error}", markup=True,
                              highlight=False)
        for violation in run.violations:
            console.print(f"[red]{label}: violation:[/red] {violation}", markup=True, highlight=False)
        for relaxed in run.relaxed:
            console.print(f"[yellow]{label}: relaxed:[/yellow] {relaxed}", markup=True, highlight=False)
    if result.get("noop_up_mutating"):
        console.print(f"[red]the no-op up made mutating calls:[/red] {', '.join(result['noop_up_mutating'])}")
    if result.get("gantt"):
        console.print(f"Gantt chart of the modeled up: {result['gantt']}")


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{code} ×{n}" for code, n in sorted(counts.items())) or "none"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = (lambda message: None) if args.json else (lambda message: print(message, file=sys.stderr))
    from bench.gantt import unavailable
    no_chart = None if args.no_gantt else unavailable()
    if no_chart:  # said first, before minutes of modeling, and on stderr even with --json
        print(no_chart, file=sys.stderr)
    between = [what for what, skip in (("pause and resume", args.skip_pause), ("deploy under load", args.skip_deploy))
               if not skip]
    progress("modeling up + down, concurrent engine" + (f", {' and '.join(between)} between" if between else "")
             + " ...")
    concurrent = modeled_run(sequential=False, relax=args.relax, looks=True, delay=args.delay,
                             pause=not args.skip_pause, deploy=not args.skip_deploy)
    sequential = None
    if not args.skip_sequential:
        progress("modeling up + down, sequential baseline ...")
        sequential = modeled_run(sequential=True, relax=args.relax)
    edge = None
    if not args.skip_edge:
        progress("modeling up + down with the front door (edge.domain), concurrent engine ...")
        edge = modeled_run(sequential=False, relax=args.relax, edge=True, waf=True)
    cdn = None
    if not args.skip_cdn:
        progress("modeling up + down with CloudFront in front (edge.cdn), concurrent engine ...")
        cdn = modeled_run(sequential=False, relax=args.relax, **EDGE_CDN)
    sandbox: dict[str, Any] = {}
    if args.sandbox:
        progress("timing the CLI against a moto server ...")
        from bench.sandbox import time_sandbox
        sandbox = time_sandbox()
    gantt = None
    if not args.no_gantt and no_chart is None:
        from bench.gantt import draw
        panels = [(f"concurrent engine: up {_m(concurrent.up_seconds)}", concurrent.spans, concurrent.up_seconds)]
        if sequential is not None:
            panels.append((f"sequential baseline: up {_m(sequential.up_seconds)}", sequential.spans,
                           sequential.up_seconds))
        if edge is not None:
            panels.append((f"concurrent engine with edge (HTTPS, DNS): up {_m(edge.up_seconds)}", edge.spans,
                           edge.up_seconds))
        if cdn is not None:
            panels.append((f"concurrent engine with CloudFront (edge.cdn): up {_m(cdn.up_seconds)}", cdn.spans,
                           cdn.up_seconds))
        gantt = str(draw(panels, args.gantt))
    result = report(concurrent, sequential, sandbox, gantt, args.delay, edge, cdn)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_table(result, concurrent, sequential, args.delay, edge, cdn)
    runs = [r for r in (concurrent, sequential, edge, cdn) if r is not None]
    return 1 if any(r.error or r.violations for r in runs) or deploy_failed(concurrent) else 0


def _m(seconds: float | None) -> str:
    return "failed" if seconds is None else f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    sys.exit(main())
