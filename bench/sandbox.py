"""Whole-process seconds of the CLI against a moto server (`threetier sandbox`), as a user runs it."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.moto_env import REGION


def _run(args: list[str], cwd: str, env: dict[str, str], timeout: float = 900) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "threetier", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started, done.returncode, done.stderr.strip()[-300:]


def time_sandbox() -> dict[str, Any]:
    """sandbox start, up --sandbox (from empty), up --sandbox again (no-op), status --sandbox,
    --help; then sandbox stop. Each a fresh process in a scratch directory (its own .threetier/)."""
    result: dict[str, Any] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": REGION, "NO_COLOR": "1"})
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as cwd:
        # Its own sandbox, not the user's; not the working directory itself, where its `threetier/`
        # would shadow the package for `python -m threetier`.
        env["XDG_STATE_HOME"] = os.path.join(cwd, "state")
        steps = (("sandbox_start", ["sandbox", "start"]),
                 ("sandbox_up", ["up", "--sandbox"]),
                 ("sandbox_noop_up", ["up", "--sandbox"]),
                 ("sandbox_status", ["status", "--sandbox"]),
                 ("sandbox_help", ["--help"]))
        try:
            for key, args in steps:
                seconds, code, err = _run(args, cwd, env)
                result[f"{key}_seconds"] = round(seconds, 2)
                if code not in (0,):
                    result[f"{key}_exit"] = code
                    result[f"{key}_stderr"] = err
                    if key == "sandbox_start":
                        break
        finally:
            _run(["sandbox", "stop"], cwd, env, timeout=60)
    return result
