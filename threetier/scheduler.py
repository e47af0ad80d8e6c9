"""Cooperative tasks: the Parts run side by side, one at a time, switching only where they wait.

Each task is a thread, but only one of them runs at any moment: a task gives
up its turn when it sleeps (every wait and retry of the AWS layer sleeps
through the task's clock) or waits for a milestone of another task, and the
scheduler then hands the turn to the next task that can go on. So

- the Parts keep reading as plain sequential code (no callbacks, no `yield`);
- AWS waits overlap: while Part 3 waits for Aurora, Part 6 bakes its image;
- there is never more than one writer of the context or the state file;
- with a virtual clock (tests, the benchmark) a run is deterministic: turns go
  by wake-up time, then by the order the tasks were given in.

When every task is asleep the scheduler sleeps until the earliest wake-up
(time.sleep on the real clock, a jump on a virtual one).
"""
from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from threetier.errors import ThreetierError


class Cancelled(BaseException):
    """Raised inside a task the scheduler stops (another task failed, or Ctrl-C)."""


class Deadlock(ThreetierError):
    pass


@dataclass
class Task:
    name: str
    run: Callable[[], None]
    error: BaseException | None = None
    done: bool = False
    # what the task asked for when it gave up its turn
    wake_at: float | None = None
    until: Callable[[], bool] | None = None
    waiting_for: str = ""
    cancelled: bool = False
    _go: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)


class Scheduler:
    """Runs tasks in turns on `clock` (an object with now() and sleep(seconds))."""

    def __init__(self, clock: object):
        self.clock = clock
        self._turn_over = threading.Event()
        self._running: Task | None = None  # the task that has the turn
        self._local = threading.local()
        self._order = itertools.count()

    # -- called from inside a task ------------------------------------------------------
    def current(self) -> Task | None:
        return getattr(self._local, "task", None)

    def sleep(self, seconds: float) -> None:
        task = self.current()
        if task is None:  # not a task (the main thread): a plain sleep
            self.clock.sleep(seconds)  # type: ignore[attr-defined]
            return
        task.wake_at = self.clock.now() + max(seconds, 0.0)  # type: ignore[attr-defined]
        self._give_turn(task)

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Block the calling task until `condition()` holds (checked whenever a turn ends)."""
        if condition():
            return
        task = self.current()
        if task is None:
            raise Deadlock(f"internal error: waiting for {what} outside the scheduler")
        task.until, task.waiting_for = condition, what
        self._give_turn(task)

    def _give_turn(self, task: Task) -> None:
        task._go.clear()
        self._turn_over.set()
        task._go.wait()
        if task.cancelled:
            raise Cancelled(task.name)

    # -- the main thread -----------------------------------------------------------------
    def run(self, tasks: list[Task]) -> None:
        """Run every task to its end. The first failure stops the others (they are
        cancelled at their next wait) and is raised here once all have stopped."""
        for task in tasks:
            task._thread = threading.Thread(target=self._body, args=(task,), name=f"threetier {task.name}",
                                            daemon=True)
            task.wake_at = self.clock.now()  # type: ignore[attr-defined]
        sleeping: list[tuple[float, int, Task]] = []
        ready: list[Task] = list(tasks)
        waiting: list[Task] = []
        failed: Task | None = None
        try:
            while ready or sleeping or waiting:
                # A task whose milestone was just reached goes first: it has waited longest.
                satisfied = [t for t in waiting if t.until is not None and t.until()]
                if satisfied:
                    waiting = [t for t in waiting if t not in satisfied]
                    ready = satisfied + ready
                if not ready and sleeping:
                    wake_at = sleeping[0][0]
                    delay = wake_at - self.clock.now()  # type: ignore[attr-defined]
                    if delay > 0:
                        self.clock.sleep(delay)  # type: ignore[attr-defined]
                    while sleeping and sleeping[0][0] <= self.clock.now():  # type: ignore[attr-defined]
                        ready.append(heapq.heappop(sleeping)[2])
                    continue
                if not ready:
                    names = ", ".join(f"{t.name} (waiting for {t.waiting_for})" for t in waiting)
                    raise Deadlock(f"internal error: every task waits for another: {names}")
                task = ready.pop(0)
                self._turn(task)
                if task.done:
                    if task.error is not None and failed is None:
                        failed = task
                        self._cancel(ready + [t for _, _, t in sleeping] + waiting)
                        ready, sleeping, waiting = ready + [t for _, _, t in sleeping] + waiting, [], []
                    continue
                if task.until is not None:
                    waiting.append(task)
                else:
                    heapq.heappush(sleeping, (task.wake_at or 0.0, next(self._order), task))
        except BaseException:  # Ctrl-C (or a bug) in the main thread: stop every task, then re-raise
            self._stop_all(tasks)
            raise
        if failed is not None and failed.error is not None:
            raise failed.error

    def _turn(self, task: Task) -> None:
        """Let `task` run until it gives up its turn or ends."""
        task.until, task.waiting_for = None, ""
        self._turn_over.clear()
        assert task._thread is not None
        if not task._thread.is_alive() and not task.done:
            task._thread.start()
        self._running = task
        task._go.set()
        self._turn_over.wait()
        self._running = None

    def _body(self, task: Task) -> None:
        self._local.task = task
        task._go.wait()
        try:
            if task.cancelled:
                raise Cancelled(task.name)
            task.run()
        except BaseException as exc:  # handed to the main thread
            task.error = exc
        finally:
            task.done = True
            self._turn_over.set()

    def _cancel(self, tasks: list[Task]) -> None:
        for task in tasks:
            task.cancelled = True

    def _stop_all(self, tasks: list[Task]) -> None:
        """Cancel every task and let each unwind, one at a time: first the one that had the turn
        (it ends its AWS call, then meets its next wait), then the others. A second Ctrl-C leaves
        them behind (daemon threads: they end with the process)."""
        self._cancel(tasks)
        running = self._running
        for task in sorted(tasks, key=lambda t: t is not running):
            while task._thread is not None and task._thread.is_alive() and not task.done:
                self._turn_over.clear()
                if task.done:
                    break
                task._go.set()
                self._turn_over.wait(0.2)  # polled: a task may end between the check and the wait


class TaskClock:
    """The clock the AWS layer sees while tasks run: `sleep` gives up the turn."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler

    def now(self) -> float:
        return self.scheduler.clock.now()  # type: ignore[attr-defined]

    def sleep(self, seconds: float) -> None:
        self.scheduler.sleep(seconds)
