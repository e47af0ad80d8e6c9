"""Shared test helpers: moto with the settings this stack needs, and a CLI runner."""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.moto_env import mocked_aws
from threetier import config as configlib
from threetier import state as statelib
from threetier.aws import Aws, Clock
from threetier.cli import run
from threetier.engine import Ctx, Engine
from threetier.output import Output

# moto in-process with the settings this stack needs (shared with the benchmark).
moto = mocked_aws


class FakeClock(Clock):
    """Virtual time: sleeping advances it at once."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        super().__init__(sleep=self._sleep, now=lambda: self.t)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def cli(*args: str, cwd: Path | None = None) -> Result:
    """Run the CLI in-process (inside the caller's moto context)."""
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    try:
        if cwd:
            os.chdir(cwd)
        code = run(list(args), stdout=out, stderr=err)
    finally:
        if cwd:
            os.chdir(old)
    return Result(code, out.getvalue(), err.getvalue())


def write_config(directory: Path, **overrides: Any) -> Path:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


def make_engine(tmp_path: Path, raw: dict[str, Any] | None = None, clock: Clock | None = None) -> Engine:
    from steps import PARTS
    config = configlib.parse(raw or {})
    aws = Aws(config.region, clock=clock or FakeClock(), emulator=True, read_threads=1)
    state_file = statelib.StateFile(tmp_path / "state.json")
    state = state_file.load() or statelib.State(stack=config.stack, region=config.region)
    ctx = Ctx(config=config, aws=aws, out=Output(stdout=io.StringIO(), stderr=io.StringIO()), state=state)
    return Engine(ctx, state_file, PARTS)


def mutating(engine: Engine) -> list[str]:
    return [c.operation for c in engine.ctx.aws.mutating_calls()]


def threetier_process(url: str, cwd: Path, *args: str) -> subprocess.Popen:
    """The installed console script, started in a process of its own against the emulator at `url`."""
    exe = shutil.which("threetier")
    assert exe, "the threetier console script is not installed (pip install -e .)"
    env = {**os.environ, "AWS_ENDPOINT_URL": url, "NO_COLOR": "1"}
    return subprocess.Popen([exe, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def threetier(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    process = threetier_process(url, cwd, *args)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@contextlib.contextmanager
def no_alarms_yet(engine: Engine, *then: str) -> Iterator[None]:
    """For Stubber tests of a Part alone (no emulator behind the other clients): CloudWatch answers
    that the stack has no alarm yet, then `then` (e.g. the two PutMetricAlarm of Part 3's finish)."""
    from botocore.stub import Stubber
    with Stubber(engine.ctx.aws.client("cloudwatch")) as cloudwatch:
        cloudwatch.add_response("describe_alarms", {"MetricAlarms": []})
        for operation in then:
            cloudwatch.add_response(operation, {})
        yield
        cloudwatch.assert_no_pending_responses()
