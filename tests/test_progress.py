"""Progress as people read it (issue 24, item 1): plain lines in a log, in the order things happen,
on the run's clock; the live display on a terminal, with columns that stay where they are."""
from __future__ import annotations

import contextlib
import io
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import IO

import pytest
from rich.console import Console

from helpers import FakeClock
from steps import PARTS
from threetier.aws import Poll
from threetier.cli import run
from threetier.display import REPEAT, Display, working
from threetier.output import Output

LINE = re.compile(r"\[ *(\d+):(\d\d)\] (.*)")
WAIT = re.compile(r"(Part \d \([a-z-]+\)): (still )?waiting for (.*)")
TICK = re.compile(r"✓ (Part \d \([a-z-]+\)) .*  ([\d.]+)s")
STARTED = re.compile(r"(Part \d \([a-z-]+\)) .*: started")
# What a redrawn display writes and a plain line never does: the cursor hidden or shown, moved, a line erased.
CURSOR = re.compile(r"\x1b\[(\?25[lh]|\d*[ABCDEFGHJK])|\r(?!\n)")


def stamped(text: str) -> list[tuple[int, str]]:
    """Each line as (elapsed seconds, what it says); every line must carry its time."""
    lines = []
    for line in text.splitlines():
        match = LINE.fullmatch(line)
        assert match, f"a line without its elapsed time: {line!r}"
        lines.append((int(match[1]) * 60 + int(match[2]), match[3]))
    return lines


@pytest.fixture(scope="module")
def modeled_up(modeled_up) -> tuple[list[tuple[int, str]], dict[int, float]]:
    """conftest's modeled `up` from an empty account (virtual clock), plain progress captured: the
    stamped stderr lines, and when each Part ended (the engine's timeline)."""
    text = modeled_up.stderr
    assert "\x1b" not in text and not CURSOR.search(text)  # no frame of a live display, no colour
    return stamped(text), modeled_up.ended


def test_plain_lines_go_forward_in_time(modeled_up: tuple[list[tuple[int, str]], dict[int, float]]) -> None:
    lines, _ = modeled_up
    times = [when for when, _ in lines]
    assert times == sorted(times)
    assert times[-1] >= 8 * 60  # the modeled up lasts minutes: the stamps are its clock's, not the wall's


def test_a_wait_says_when_it_starts_then_at_most_every_30_seconds(
        modeled_up: tuple[list[tuple[int, str]], dict[int, float]]) -> None:
    lines, _ = modeled_up
    waits: dict[str, list[tuple[int, str]]] = {}  # part -> its current wait's lines
    spacings = []
    for when, said in lines:
        match = WAIT.fullmatch(said)
        if not match:
            continue
        part, still, what = match.groups()
        if not still:  # a wait starts: the Part waited for one thing at a time, the last one is over
            waits[part] = [(when, what)]
            continue
        assert part in waits, f"still waiting, but no line said the wait began: {said}"
        previous = waits[part][-1][0]
        spacings.append(when - previous)
        assert when - previous >= REPEAT, f"{part}: lines {previous}s and {when}s apart: {said}"
        waits[part].append((when, what))
    assert spacings, "no wait went on long enough to be reported again"
    assert any(said.startswith("Part 3 (database): still waiting for Aurora") for _, said in lines)  # minutes
    # A wait for another Part says so too: Part 7 is not silent for the minutes Part 6 bakes its image.
    assert "Part 7 (web-tier): waiting for Part 6 done" in [said for _, said in lines]
    # The still-waiting line says how long it has lasted: 30 s after the start, "30s" or more.
    assert any(re.search(r", \d+m\d\ds$", said) for _, said in lines if "still waiting" in said)


def test_each_part_ticks_after_its_start_in_the_order_parts_end(
        modeled_up: tuple[list[tuple[int, str]], dict[int, float]]) -> None:
    lines, ended = modeled_up
    started = {m[1]: when for when, said in lines if (m := STARTED.fullmatch(said))}
    ticks = [(when, m[1], float(m[2])) for when, said in lines if (m := TICK.fullmatch(said))]
    assert sorted(part for _, part, _ in ticks) == sorted(part.label for part in PARTS)  # one ✓ each
    for when, part, took in ticks:
        assert when >= started[part] and when >= int(took), (part, started[part], when, took)
    by_label = {part.label: part.number for part in PARTS}
    order = [by_label[part] for _, part, _ in ticks]
    assert order == sorted(order, key=lambda number: ended[number])  # as they ended, not Part 1 to 7


# -- the option, on a pseudo-terminal -------------------------------------------------------------
@contextlib.contextmanager
def pseudo_terminal() -> Iterator[tuple[IO[str], list[bytes]]]:
    """A pseudo-terminal to write to (isatty() is true) and what its other end read, drained meanwhile so
    that no write blocks."""
    master, slave = os.openpty()
    read: list[bytes] = []

    def drain() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 65536):
                read.append(chunk)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    terminal = os.fdopen(slave, "w", encoding="utf-8")
    try:
        yield terminal, read
    finally:
        terminal.close()  # the reader sees the end
        reader.join(timeout=10)
        os.close(master)


def replay_on_a_terminal(built: Path, monkeypatch: pytest.MonkeyPatch, term: str, *options: str) -> str:
    monkeypatch.setenv("TERM", term)
    monkeypatch.chdir(built)
    with pseudo_terminal() as (terminal, read):
        assert terminal.isatty()
        code = run(["replay", "storage", *options], stdout=io.StringIO(), stderr=terminal)
        terminal.flush()
    assert code == 0, b"".join(read)
    return b"".join(read).decode("utf-8", "replace").replace("\r\n", "\n")


def test_progress_plain_on_a_terminal_writes_plain_lines(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = replay_on_a_terminal(built, monkeypatch, "xterm-256color", "--progress", "plain")
    assert not CURSOR.search(written), repr(written)
    plain = re.sub(r"\x1b\[[\d;]*m", "", written)  # a terminal still gets its colours
    assert re.search(r"^\[ *0:\d\d\] ✓ Part 1 \(storage\) ", plain, re.M), plain
    assert re.search(r"^\[ *0:\d\d\] Part 1 \(storage\) storage and identity: started$", plain, re.M), plain


def test_auto_on_a_dumb_terminal_writes_plain_lines(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = replay_on_a_terminal(built, monkeypatch, "dumb")
    assert not CURSOR.search(written), repr(written)
    assert re.search(r"^\[ *0:\d\d\] ✓ Part 1 \(storage\) ", written, re.M), written


def test_progress_auto_on_a_capable_terminal_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    with pseudo_terminal() as (terminal, _):
        assert Output(stdout=terminal, stderr=terminal).animated
        assert not Output(stdout=terminal, stderr=terminal, progress="plain").animated
    # Not a terminal, though rich is told to colour it (FORCE_COLOR, common in CI): still plain.
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not Output(stdout=io.StringIO(), stderr=io.StringIO()).animated
    assert Output(stdout=io.StringIO(), stderr=io.StringIO(), progress="live").animated


def test_an_unknown_progress_mode_is_refused() -> None:
    err = io.StringIO()
    assert run(["--progress", "fancy", "cost"], stdout=io.StringIO(), stderr=err) == 2
    assert "--progress" in err.getvalue()


# -- the live display -----------------------------------------------------------------------------
def live_rows(display: Display, width: int = 200) -> dict[str, str]:
    """The live display's rows as a terminal `width` wide shows them, by Part, without the spinner."""
    screen = io.StringIO()
    Console(file=screen, width=width, no_color=True).print(display.render())
    return {row[2:].split(" ", 2)[1]: row[2:] for row in screen.getvalue().splitlines()}


def test_live_columns_stay_put_whether_one_part_or_seven_are_in_flight() -> None:
    clock = FakeClock()
    aws = SimpleNamespace(on_poll=None, part="Part 1 (storage)")
    display = Display(Output(stdout=io.StringIO(), stderr=io.StringIO()), aws,  # type: ignore[arg-type]
                      clock, titles=[f"{part.label} {part.title}" for part in PARTS])
    display.begin(PARTS[0].label, PARTS[0].title)
    display.on_poll("bucket threetier-code", Poll(done=False, status="creating"))
    alone = live_rows(display)["1"]
    for part in PARTS[1:]:
        display.begin(part.label, part.title)
    all_seven = live_rows(display)
    assert all_seven["1"] == alone  # the longest title came, nothing moved sideways
    assert len({row.index("0:00") for row in all_seven.values()}) == 1  # one elapsed column for all
    for part in PARTS[1:]:
        display.end(part.label)
    assert live_rows(display)["1"] == alone


def test_a_live_row_stays_one_line_on_a_narrow_terminal() -> None:
    aws = SimpleNamespace(on_poll=None, part="Part 5 (app-tier)")
    display = Display(Output(stdout=io.StringIO(), stderr=io.StringIO()), aws, FakeClock(),  # type: ignore[arg-type]
                      titles=[f"{part.label} {part.title}" for part in PARTS])
    display.begin("Part 5 (app-tier)", "internal load balancer and app auto scaling")
    display.on_poll("healthy targets in threetier-app-tg",
                    Poll(done=False, status="0/2 healthy; " + "i-0123456789abcdef0 initial, " * 4))
    screen = io.StringIO()
    Console(file=screen, width=80, no_color=True).print(display.render())
    assert len(screen.getvalue().splitlines()) == 1, screen.getvalue()


def test_the_summary_is_announced_on_a_live_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    live = io.StringIO()
    with working(Output(stdout=io.StringIO(), stderr=live, progress="live"), "preparing the summary…"):
        pass
    assert "preparing the summary…" in live.getvalue()
    plain = io.StringIO()
    with working(Output(stdout=io.StringIO(), stderr=plain), "preparing the summary…"):
        pass
    assert plain.getvalue() == ""
