"""One declared graph of the Parts' waits (steps/graph.py), enforced by `ctx.need`, used
by every edge it declares, drawn by `threetier graph`; and the Part hooks, refused when misspelt."""
from __future__ import annotations

import dataclasses
import re
import types
from pathlib import Path

import botocore.client
import pytest

from helpers import FakeClock, cli, make_engine, moto
from steps import PARTS, graph
from threetier.engine import DONE, EXISTS, GONE, Ctx, Edge, Part, Run
from threetier.errors import ThreetierError
from threetier.scheduler import Scheduler

DECLARED = {(edge.part, edge.needs, edge.milestone) for edge in graph.EDGES}


def part(number: int) -> Part:
    return next(p for p in PARTS if p.number == number)


# -- the graph and what the engine reads of it -------------------------------------------------
def test_needs_and_teardown_are_read_from_the_graph_as_they_were_written_by_hand() -> None:
    assert {p.number: p.needs for p in PARTS} == {1: (), 2: (), 3: (1, 2), 4: (1, 2, 3), 5: (1, 2, 4),
                                                  6: (1, 2, 5), 7: (1, 2, 3, 5, 6)}
    # The teardown: the build's holding edges transposed; the latest Part waited for first, as before.
    assert {p.number: p.gone_first for p in PARTS} == {1: (7, 6, 5, 4, 3), 2: (7, 6, 5, 4, 3), 3: (), 4: (),
                                                       5: (), 6: (), 7: ()}
    assert all(not hasattr(module, "NEEDS") for module in (graph.storage, graph.network, graph.web_tier))
    # A graph that would deadlock or lie is refused when steps is imported.
    assert graph.problems([Edge(3, 5, DONE, "later"), Edge(4, 0, DONE, "nowhere"), Edge(5, 2, GONE, "by hand"),
                           Edge(6, 1, DONE, "")], range(1, 8)) == [
        "Part 3 needs Part 5 done: a Part needs only Parts before it",
        "Part 4 needs Part 0 done: no such Part",
        "Part 5 needs Part 2 gone: GONE edges are derived (transposed), not declared",
        "Part 6 needs Part 1 done: no why"]
    assert graph.problems(graph.BUILD, (p.number for p in PARTS)) == []


def test_an_undeclared_edge_is_refused_even_once_its_milestone_is_reached(tmp_path: Path) -> None:
    ctx = make_engine(tmp_path).ctx
    everything = {number: {EXISTS, DONE} for number in range(1, 8)}
    run = Run(numbers=tuple(range(1, 8)), scheduler=Scheduler(FakeClock()), reached=everything)
    app_tier = dataclasses.replace(ctx, part=part(5), run=run)
    app_tier.need(4, DONE)  # declared, reached: at once
    undeclared = r"internal error: Part 5 \(app-tier\) needs Part 3 done, an undeclared edge .*steps/graph.py"
    with pytest.raises(ThreetierError, match=undeclared):
        app_tier.need(3, DONE)  # reached, but Part 5 does not say it needs Part 3
    with pytest.raises(ThreetierError, match=undeclared):
        dataclasses.replace(app_tier, run=None).need(3, DONE)  # outside a run too (a test calling a Part)
    gone = dataclasses.replace(run, reached={number: {GONE} for number in range(3, 8)})
    dataclasses.replace(ctx, part=part(2), run=gone).need_for_teardown()  # Parts 7-3 gone: at once
    with pytest.raises(ThreetierError, match=r"Part 3 \(database\) needs Part 7 gone, an undeclared edge"):
        dataclasses.replace(ctx, part=part(3), run=gone).need(7, GONE)


def test_every_declared_edge_is_used_by_up_and_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The declaration cannot rot: a default stack's up and down, and an up with monitoring.email
    (the alarms' wait for Part 1's topic), wait along every edge the graph declares, and no other."""
    used: set[tuple[int, int, str]] = set()
    need = Ctx.need

    def recorded(self: Ctx, number: int, milestone: str = DONE) -> None:
        assert self.part is not None
        used.add((self.part.number, number, milestone))
        need(self, number, milestone)

    monkeypatch.setattr(Ctx, "need", recorded)
    with moto():
        make_engine(tmp_path / "default").up()
        make_engine(tmp_path / "default").down()
    with moto():
        make_engine(tmp_path / "email", {"monitoring": {"email": "ops@example.com"}}).up()
    assert used == DECLARED, (sorted(DECLARED - used), sorted(used - DECLARED))


# -- the Part interface --------------------------------------------------------------------------
def fake_part(source: str) -> types.ModuleType:
    module = types.ModuleType("steps.fake")
    exec('NUMBER, NAME, TITLE = 8, "fake", "a fake part"\n'  # functions made here are the module's own
         "from threetier.aws import Look\n" + source, module.__dict__)
    return module


HOOKS = "def start(ctx): pass\ndef finish(ctx): pass\ndef destroy(ctx): pass\ndef check(ctx): pass\n"


@pytest.mark.parametrize(("source", "refused"), [
    (HOOKS + "def look(ctx): return []\n", r"steps.fake defines look\(\), which is not a hook: a misspelt looks\?"),
    (HOOKS.replace("destroy", "destory"), r"steps.fake lacks the hook\(s\) destroy"),
    (HOOKS + "def destory(ctx): pass\n", r"steps.fake defines destory\(\), which is not a hook: a misspelt destroy\?"),
    (HOOKS + "def befor_down(ctx): pass\n", r"steps.fake defines befor_down\(\), .* a misspelt before_down\?"),
    (HOOKS + "NEEDS = (1, 2)\n", r"steps.fake defines NEEDS; what a Part needs is declared in steps/graph.py"),
])
def test_a_part_module_with_a_misspelt_or_missing_hook_is_refused(source: str, refused: str) -> None:
    with pytest.raises(ThreetierError, match=rf"internal error: Part module {refused}"):
        Part.from_module(fake_part(source))


def test_a_part_module_with_its_hooks_right_is_taken() -> None:
    # An imported class (Look) and a private helper near a hook's name are no misspelt hooks.
    module = fake_part(HOOKS + "def _look(ctx): return []\ndef pause(ctx): pass\ndef summary(ctx): pass\n")
    made = Part.from_module(module, (*graph.EDGES, Edge(8, 2, DONE, "a fake wait")))
    assert (made.start, made.pause, made.looks, made.before_down) == (module.start, module.pause, None, None)
    assert made.edges == (Edge(8, 2, DONE, "a fake wait"),) and made.needs == (2,)


# -- threetier graph -----------------------------------------------------------------------------
@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials, no config.yaml here, and any AWS call fails the test."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)

    def called(*args: object) -> None:
        raise AssertionError(f"an AWS call: {args[1:2]}")
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", called)
    return tmp_path


def test_graph_text_says_every_edge_and_the_teardown_order_in_80_columns(no_aws: Path) -> None:
    result = cli("graph", cwd=no_aws)
    assert result.code == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    said = " ".join(result.stdout.split())  # the lines unwrapped
    for edge in graph.EDGES:
        assert f"Part {edge.needs} {part(edge.needs).name}: {edge.milestone} - {edge.why}" in said, edge
    for p in PARTS:
        assert f"Part {p.number} {p.name} ({p.title}) needs" in said
    assert "Part 2 network waits for Part 7 web-tier: gone" in said
    assert said.endswith("Order: first Parts 7, 6, 5, 4, 3 (together), then Parts 2, 1 (together).")


def test_graph_dot_and_mermaid_draw_every_edge(no_aws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dot = cli("graph", "--format", "dot", cwd=no_aws)
    assert dot.code == 0, dot.stderr
    assert dot.stdout.startswith("digraph threetier {") and dot.stdout.rstrip().endswith("}")
    lines = dot.stdout.splitlines()
    for p in PARTS:
        assert f'  p{p.number} [label="Part {p.number}\\n{p.name}"];' in lines
    for edge in graph.BUILD:
        assert f'  p{edge.needs} -> p{edge.part} [label="{edge.milestone}: {edge.why}"];' in lines, edge
    for edge in graph.TEARDOWN:
        assert (f'  p{edge.needs} -> p{edge.part} [label="gone: {edge.why}", style=dashed, color=firebrick, '
                f'constraint=false];') in lines, edge
    assert len([line for line in lines if line.startswith("  p") and " -> " in line]) == len(graph.EDGES)

    mermaid = cli("graph", "--format", "mermaid", cwd=no_aws)
    assert mermaid.code == 0, mermaid.stderr
    lines = mermaid.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    for edge in graph.EDGES:
        arrow = "-.->" if edge.milestone == GONE else "-->"
        assert f'  p{edge.needs} {arrow}|"{edge.milestone}: {edge.why}"| p{edge.part}' in lines, edge
    assert all(re.fullmatch(r'  p\d+(\["[^"]+"\]| -\.?->\|"[^"]+"\| p\d+)', line) for line in lines[1:])

    bad = cli("graph", "--format", "yaml", cwd=no_aws)
    assert bad.code == 2 and "'yaml' is not one of 'text', 'dot', 'mermaid'" in bad.stderr
    assert cli("graph", "--help").code == 0
    assert "Examples:" in capsys.readouterr().out  # click writes help to sys.stdout itself


def test_the_readme_shows_the_graph_as_threetier_graph_prints_it(no_aws: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    shown = readme.split("<!-- threetier graph -->\n", 1)[1].split("\n<!-- /threetier graph -->", 1)[0]
    printed = cli("graph", cwd=no_aws)
    assert printed.code == 0
    assert [line.removeprefix("    ") for line in shown.split("\n")] == printed.stdout.rstrip("\n").split("\n")
