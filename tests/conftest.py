"""Tests never touch real AWS: fake credentials and region are forced for every test,
and the real credential and config files are hidden."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.client
import pytest

import speedups
from threetier.aws import Clock

AWS_ENV_PREFIXES = ("AWS_",)
REGION = "us-east-1"


speedups.share_what_never_changes()  # before any test makes a client


def _acm_issues_at_once() -> None:
    """MOTO_ACM_VALIDATION_WAIT=0 (below) is read into moto.settings when moto is first imported,
    which may be before any fixture runs: the setting itself, for every test and reference stack."""
    import moto.settings
    moto.settings.ACM_VALIDATION_WAIT = 0


_acm_issues_at_once()


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for key in list(os.environ):
        if key.startswith(AWS_ENV_PREFIXES) or key in ("NO_COLOR",):
            monkeypatch.delenv(key, raising=False)
    hidden = tmp_path_factory.mktemp("no-aws-home")
    monkeypatch.setenv("HOME", str(hidden))
    # The user's sandbox (its record, log and stack state files) lives here: one per test.
    monkeypatch.setenv("XDG_STATE_HOME", str(hidden / "state"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(hidden / "credentials-that-do-not-exist"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(hidden / "config-that-does-not-exist"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    # No instance metadata lookups for credentials either.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MOTO_ACM_VALIDATION_WAIT", "0")


class SkippingClock(Clock):
    """Real time, except that a sleep returns at once and moves this clock on by what it slept. The
    commands a test runs in-process wait as they would (a deploy's 10 s for a listener shift to
    settle, a retry's back-off, a poll's delay) and see that time pass, in no real time. One for the
    process: the times a command saves (a deploy's watch_until) stay in order for the next command."""

    def __init__(self) -> None:
        self.skipped = 0.0
        self._lock = threading.Lock()
        super().__init__(sleep=self._skip, now=lambda: time.monotonic() + self.skipped)

    def _skip(self, seconds: float) -> None:
        with self._lock:
            self.skipped += max(seconds, 0.0)


SKIPPING_CLOCK = SkippingClock()


@pytest.fixture(autouse=True)
def in_process_moto_is_an_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto has no endpoint URL to tell it apart from AWS: say so, so that
    `up` does not try an HTTP round trip through a load balancer nobody serves. Its waits pass on
    SKIPPING_CLOCK: in-process commands sleep no real time."""
    from threetier.aws import Aws
    from threetier.cli.common import Runtime
    real = Runtime.aws

    def aws(self: Runtime, **kwargs) -> Aws:
        made = real(self, **kwargs)
        made.emulator = True
        made.read_threads = 1  # in-process moto is CPU-bound: threads only slow it down
        made.clock = SKIPPING_CLOCK
        return made
    monkeypatch.setattr(Runtime, "aws", aws)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MOTO_SERVER_PIDS: dict[str, int] = {}  # the session's moto server: its url -> its pid


@pytest.fixture(scope="session")
def moto_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's own server in a process of its own, one per session (per xdist worker): starting one
    imports all of moto, and it takes seconds to exit. Tests get it through `moto_server`, emptied."""
    port = free_port()
    # Set up before any test's fake environment: the server gets no AWS setting of the caller's.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(AWS_ENV_PREFIXES)},
           "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "MOTO_ACM_VALIDATION_WAIT": "0"}
    log_path = tmp_path_factory.mktemp("moto-server") / "moto.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finally, after the server
    # tests/speedups.py's serve: moto's server with the caches and the trimmed backends in-process tests have.
    serve = f"import speedups; speedups.serve(['-H', '127.0.0.1', '-p', '{port}'])"
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parent.parent),
                                         *filter(None, [env.get("PYTHONPATH")])])
    server = subprocess.Popen([sys.executable, "-c", serve], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    MOTO_SERVER_PIDS[url] = server.pid
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"moto server did not start: {log_path.read_text()}") from None
                time.sleep(0.1)
        yield url
    finally:
        server.kill()  # it keeps nothing worth an orderly exit, which takes seconds
        server.wait(10)
        log.close()


@pytest.fixture
def moto_server(moto_server_process: str) -> str:
    """moto's own server in a process of its own, empty: what separate `threetier` processes talk to.
    The session's server, reset (every backend emptied) for this test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server_process}/moto-api/reset", method="POST"), timeout=30)
    return moto_server_process


@pytest.fixture
def moto_server_as_sandbox(moto_server: str) -> dict[str, Any]:
    """The session's moto server (emptied) as a sandbox record describes one (threetier/sandbox.py's
    pid, port, started_at): a sandbox that runs and answers, for tests of what is said of one, without
    starting one (each start costs seconds of moto's import, each stop seconds of its exit). Not to
    be stopped: the record's pid is the session's server."""
    return {"pid": MOTO_SERVER_PIDS[moto_server], "port": int(moto_server.rsplit(":", 1)[1]),
            "started_at": "2026-01-01T00:00:00+00:00"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS operation made in this process, whoever makes it (the CLI's own clients too)."""
    seen: list[str] = []
    real = botocore.client.BaseClient._make_api_call

    def record(self, operation, params):
        seen.append(operation)
        return real(self, operation, params)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return seen


@dataclass(frozen=True)
class ModeledUp:
    """The benchmark's modeled `up` of the default stack from an empty account (bench.runs.engine_for:
    the latency model on a virtual clock, Parts side by side)."""
    stderr: str  # its progress, as a log gets it (not a terminal)
    ended: dict[int, float]  # when each Part ended, on the virtual clock (the engine's timeline)
    model: Any  # the bench.model.LatencyModel that ran it: its instances, NAT gateways, violations


@pytest.fixture(scope="session")
def modeled_up() -> ModeledUp:
    """One modeled `up` per session (per xdist worker), for the tests that read what it did."""
    import io
    import tempfile

    from bench.model import VirtualClock
    from bench.moto_env import moto
    from bench.runs import engine_for
    from threetier.output import Output
    with moto(), tempfile.TemporaryDirectory(prefix="modeled-up-") as tmp:
        engine, model = engine_for(Path(tmp), VirtualClock(), sequential=False)
        err = io.StringIO()
        engine.ctx.out = Output(stdout=io.StringIO(), stderr=err)  # not a terminal: plain, as in a CI log
        engine.up()
        return ModeledUp(stderr=err.getvalue(), ended={number: span.end for number, span in engine.timeline.items()},
                         model=model)


@pytest.fixture(scope="session")
def reference_stacks(tmp_path_factory: pytest.TempPathFactory):
    """The session's reference stacks (tests/reference_stacks.py): each built once, on first use."""
    from reference_stacks import ReferenceStacks
    stacks = ReferenceStacks(tmp_path_factory.mktemp("reference-stacks"))
    yield stacks
    stacks.close()


@pytest.fixture
def stack_from(reference_stacks, tmp_path: Path):
    """`stack_from(name)`: the reference stack `name` (reference_stacks.CONFIGS) restored into a fresh
    moto for the rest of the test; returns the directory holding its config.yaml and state file
    (tmp_path unless another is given). Replaces `with moto(): ...up()` where the build is set-up."""
    with contextlib.ExitStack() as contexts:
        def restore(name: str, directory: Path = tmp_path) -> Path:
            return contexts.enter_context(reference_stacks.restored(name, directory))
        yield restore


@pytest.fixture
def built(stack_from) -> Path:
    """The default stack as `up` leaves it, restored into a fresh moto; config.yaml and the state file
    in tmp_path (the CLI's .threetier/threetier.json, and state.json for helpers.make_engine)."""
    return stack_from("default")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked slow (servers, processes: the longest of the suite) first, the others in
    their order after them: a worker that starts one of them near the end would leave the other
    idle for its whole length."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
