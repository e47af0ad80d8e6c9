"""Run a command on a pseudo-terminal, as a person at a terminal would, and answer its prompts."""
from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import time


class Terminal:
    def __init__(self, argv: list[str], cwd: str, env: dict[str, str], columns: int = 120):
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        import fcntl
        import struct
        import termios
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        self.process = subprocess.Popen(argv, cwd=cwd, env={**env, "TERM": "xterm-256color", "COLUMNS": str(columns)},
                                        stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.output = b""

    def read(self, timeout: float = 0.2) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):
                self.output += os.read(self.master, 65536)

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not seen; output so far:\n{self.text}")
            if self.process.poll() is not None:
                self.read(0.5)
                if text.encode() not in self.output:
                    raise AssertionError(f"exited {self.process.returncode} before {text!r}:\n{self.text}")
                return
            self.read()

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read()
        self.read(0.3)
        if self.process.poll() is None:
            self.process.kill()
            raise AssertionError(f"still running after {timeout}s:\n{self.text}")
        os.close(self.master)
        return self.process.returncode

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")
