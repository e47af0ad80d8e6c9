"""The sandbox: moto's own server on 127.0.0.1, so the whole stack can be built with no AWS account.

`start` runs `python -m moto.server` in the background with the settings this
stack needs (AWS managed IAM policies loaded, ACM certificates valid at once)
and records its address and pid in the user's state directory
($XDG_STATE_HOME/threetier, or ~/.local/state/threetier), so there is one
sandbox per user, found from any directory; `--sandbox` points every command
at it with dummy credentials.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from threetier.errors import ThreetierError, UsageError

DEFAULT_PORT = 4599
READY_TIMEOUT = 30.0
CREDENTIALS = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
SERVER_SETTINGS = {
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",  # AmazonSSMManagedInstanceCore must exist
    "MOTO_ACM_VALIDATION_WAIT": "0",
}


def home() -> Path:
    """The user's own directory for the sandbox's record, log and stack state files."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "threetier"


def record_path() -> Path:
    return home() / "sandbox.json"


def log_path() -> Path:
    return home() / "sandbox.log"


def state_path(stack: str) -> Path:
    """A sandbox stack's state file: with the sandbox (one per user), apart from real AWS state."""
    return home() / "sandbox-stacks" / f"{stack}.json"


@dataclass
class Sandbox:
    pid: int
    port: int
    started_at: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def load() -> Sandbox | None:
    try:
        return parse(record_path().read_text())
    except FileNotFoundError:
        return None


def parse(text: str) -> Sandbox | None:
    """A sandbox record (None: not one)."""
    try:
        data = json.loads(text)
        return Sandbox(pid=int(data["pid"]), port=int(data["port"]), started_at=str(data["started_at"]))
    except (ValueError, KeyError, TypeError):
        return None


def legacy() -> Sandbox | None:
    """A sandbox started by an earlier threetier, which kept its record in ./.threetier/ and is not
    found by this one: still running, it would hold its port and memory unnoticed."""
    try:
        found = parse((Path(".threetier") / "sandbox.json").read_text())
    except OSError:
        return None
    return found if found is not None and alive(found.pid) and answers(found.url) else None


def answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=timeout) as response:  # loopback only
            return response.status == 200
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running() -> Sandbox | None:
    """The recorded sandbox if its process is alive and answering; a stale record is removed."""
    sandbox = load()
    if sandbox is None:
        return None
    if alive(sandbox.pid) and answers(sandbox.url):
        return sandbox
    with contextlib.suppress(FileNotFoundError):
        record_path().unlink()
    return None


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise ThreetierError("sandbox: no free port on 127.0.0.1")


def server_environment() -> dict[str, str]:
    """The user's AWS settings (a profile, an endpoint, real keys) have no business in the emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **SERVER_SETTINGS, "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_DEFAULT_REGION": "us-east-1"}


def start(port: int | None = None) -> tuple[Sandbox, bool]:
    """Start the sandbox unless it runs already. Returns (sandbox, started_now)."""
    current = running()
    if current is not None:
        return current, False
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise UsageError("sandbox: it needs moto's server; install it with: python3 -m pip install 'threetier[sandbox]'")
    chosen = free_port(port or DEFAULT_PORT)
    home().mkdir(parents=True, exist_ok=True)
    with open(log_path(), "ab") as log:  # the server has its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(chosen)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=server_environment(), start_new_session=True,  # outlives this command, not Ctrl-C'd with it
        )
    sandbox = Sandbox(pid=process.pid, port=chosen,
                      started_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    deadline = time.monotonic() + READY_TIMEOUT
    while not answers(sandbox.url, timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise ThreetierError(f"sandbox: moto's server did not start on {sandbox.url}; see {log_path()}")
        time.sleep(0.1)
    record_path().write_text(json.dumps(asdict(sandbox)) + "\n")
    return sandbox, True


STOP_GRACE_SECONDS = 1.0


def stop() -> Sandbox | None:
    """Stop the recorded sandbox (its state is lost with it). Returns what was stopped."""
    sandbox = load()
    if sandbox is None:
        return None
    if alive(sandbox.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(sandbox.pid, signal.SIGTERM)
        # Its contents are lost either way, and moto's interpreter takes seconds to tear itself down:
        # a moment to exit cleanly, then killed.
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while alive(sandbox.pid) and time.monotonic() < deadline:
            _reap(sandbox.pid)
            time.sleep(0.05)
        if alive(sandbox.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(sandbox.pid, signal.SIGKILL)
            _reap(sandbox.pid)
    with contextlib.suppress(FileNotFoundError):
        record_path().unlink()
    return sandbox


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (it is after `start` in-process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
