"""`threetier graph`: which Part waits for which, and why (steps/graph.py), drawn; no AWS call, no config."""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from threetier.cli.common import options, output_options
from threetier.output import ExitStatus, Output

if TYPE_CHECKING:  # the steps load boto3: only once the command runs (`--help` stays quick)
    from threetier.engine import Edge, Part

FORMATS = ("text", "dot", "mermaid")
WIDTH = 80


@click.command("graph", help="""Show which Part waits for which milestone of which other, and why:
the graph declared in steps/graph.py, which the engine enforces. A Part waits
for another's `exists` (its start is over: the IDs are known), `done` (its
finish is over), a named milestone (Part 2's subnets and security groups,
route tables), or, in `down`, `gone`. The teardown is the build transposed:
a Part goes once every Part whose resources hold its own is gone.

No AWS call, no credentials or config.yaml needed.

\b
Examples:
  threetier graph
  threetier graph --format dot | dot -Tsvg > graph.svg
  threetier graph --format mermaid
""")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text (80 columns), dot (Graphviz) or mermaid (a flowchart)")
@output_options
@click.pass_context
def command(ctx: click.Context, fmt: str) -> int:
    out: Output = ctx.find_root().obj
    opts = options(ctx)
    out.configure(no_color=bool(opts.get("no_color")), verbose=bool(opts.get("verbose")))
    from steps import PARTS  # the steps import the engine: import them late
    from steps.graph import BUILD, TEARDOWN
    drawn = {"text": text, "dot": dot, "mermaid": mermaid}[fmt](PARTS, BUILD, TEARDOWN)
    out.stdout.write(drawn)
    out.stdout.flush()
    return ExitStatus.OK


def text(parts: Sequence[Part], build: Sequence[Edge], teardown: Sequence[Edge]) -> str:
    """For each Part what it needs (Part: milestone - why), then the teardown and its order."""
    names = {part.number: f"Part {part.number} {part.name}" for part in parts}
    lines = ["What each Part waits for, and why (steps/graph.py). A milestone: exists (its",
             "start is over: the IDs are known), done (its finish is over), a named one, gone.", ""]
    for part in parts:
        needs = [edge for edge in build if edge.part == part.number]
        lines.append(f"{names[part.number]} ({part.title}) needs" + (":" if needs else " no other Part"))
        lines += [wrap(f"  {names[edge.needs]}: {edge.milestone} - {edge.why}") for edge in needs]
    lines += ["", "Teardown: `down` starts every Part's destroy at once; a Part whose resources",
              "others hold waits for them to be gone:"]
    for part in parts:
        waits = [edge for edge in teardown if edge.part == part.number]
        if waits:
            lines.append(f"{names[part.number]} waits for")
            lines += [wrap(f"  {names[edge.needs]}: {edge.milestone} - {edge.why}") for edge in waits]
    stages = [f"Parts {', '.join(map(str, stage))} (together)" if len(stage) > 1 else f"Part {stage[0]}"
              for stage in teardown_stages(parts, teardown)]
    lines += ["", wrap("Order: first " + ", then ".join(stages) + ".")]
    return "\n".join(lines) + "\n"


def teardown_stages(parts: Sequence[Part], teardown: Sequence[Edge]) -> list[list[int]]:
    """The Parts in the order `down` finishes them: a Part one stage after the last it waits for,
    the latest Part first in each stage (the order `down` starts them)."""
    stage: dict[int, int] = {}
    for number in sorted((part.number for part in parts), reverse=True):  # a Part waits for later ones only
        stage[number] = 1 + max((stage[edge.needs] for edge in teardown if edge.part == number), default=-1)
    return [sorted((number for number, at in stage.items() if at == level), reverse=True)
            for level in sorted(set(stage.values()))]


def wrap(line: str) -> str:
    return textwrap.fill(line, width=WIDTH, subsequent_indent="      ", break_on_hyphens=False)


def dot(parts: Sequence[Part], build: Sequence[Edge], teardown: Sequence[Edge]) -> str:
    """A Graphviz digraph: an arrow from the milestone's Part to the Part that waits for it; the
    teardown's dashed (laid out by the build's alone)."""
    lines = ["digraph threetier {",
             "  // an arrow A -> B: B waits for A's milestone (its label); dashed: in `down`",
             "  node [shape=box];"]
    lines += [f'  p{part.number} [label="{quoted(f"Part {part.number}")}\\n{quoted(part.name)}"];' for part in parts]
    for edge in (*build, *teardown):
        label = quoted(f"{edge.milestone}: {edge.why}")
        style = ", style=dashed, color=firebrick, constraint=false" if edge in teardown else ""
        lines.append(f'  p{edge.needs} -> p{edge.part} [label="{label}"{style}];')
    return "\n".join([*lines, "}"]) + "\n"


def quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def mermaid(parts: Sequence[Part], build: Sequence[Edge], teardown: Sequence[Edge]) -> str:
    """A mermaid flowchart, as `dot` draws it (a dotted arrow: in `down`)."""
    lines = ["flowchart TD"]
    lines += [f'  p{part.number}["Part {part.number} {part.name}"]' for part in parts]
    for edge in (*build, *teardown):
        arrow = "-.->" if edge in teardown else "-->"
        label = f"{edge.milestone}: {edge.why}".replace('"', "#quot;")
        lines.append(f'  p{edge.needs} {arrow}|"{label}"| p{edge.part}')
    return "\n".join(lines) + "\n"

