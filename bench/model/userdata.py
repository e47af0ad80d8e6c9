"""What a builder's rendered user data does, action by action, and what each action costs
(docs/aws-latency.md, "Builder bootstrap, action by action"): only the lines that run are charged,
not the function definitions the spliced common.sh brings, heredocs or comments."""
from __future__ import annotations

import base64
import re

from bench.model import figures

_FUNCTION_START = re.compile(r"^\s*(?:function\s+)?[A-Za-z_][A-Za-z0-9_]*\s*\(\)\s*\{")
_HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?")
_ACTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("network", re.compile(r"\bwait_for_network\b")),  # waits for the way out: no time of its own
    ("dnf", re.compile(r"\b(?:install_packages|install_node)\b|\bdnf\b[^\n]*\binstall\b")),
    ("s3", re.compile(r"\bfetch_tier\b|\baws\s+s3\s+(?:cp|sync)\b")),
    ("npm ci", re.compile(r"npm\S*\"?\s+ci\b", re.IGNORECASE)),
    ("build", re.compile(r"npm\S*\"?\s+run\s+build\b|\bvite\s+build\b", re.IGNORECASE)),
    ("systemctl enable", re.compile(r"\bsystemctl\s+enable\b")),
    ("health", re.compile(r"\b(?:wait_healthy|app_healthy)\b")),
)


def script_body(user_data: str) -> list[str]:
    """The lines of a shell script that run, without function definitions (the spliced common.sh
    defines install_packages, fetch_tier ...: only their CALLS cost time), heredocs and comments."""
    lines, body = user_data.splitlines(), []
    depth, heredoc = 0, None
    for line in lines:
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        stripped = line.strip()
        if depth:
            depth += line.count("{") - line.count("}")
            depth = max(depth, 0)
            continue
        if _FUNCTION_START.match(line):
            depth = max(line.count("{") - line.count("}"), 0)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        match = _HEREDOC.search(line)
        if match:
            heredoc = match.group(1)
        body.append(line)
    return body


# A custom app's install step (config `app.install`, bootstrap/app-custom.sh: `bash -c "$APP_INSTALL"`, or a
# `run_install` call): one action for its line, charged by what it runs (figures.INSTALL_SECONDS, estimates).
# The line that sets APP_INSTALL runs nothing; an empty one means no install step.
_INSTALL = re.compile(r"\brun_install\b|\bbash\s+-c\s+\"?\$\{?APP_INSTALL\b")
_INSTALL_SETTING = re.compile(r"^\s*(?:export\s+)?APP_INSTALL=")
_INSTALLERS = (("pip", re.compile(r"\bpip[0-9.]*\b|\bpython[0-9.]*\s+-m\s+pip\b")),
               ("npm", re.compile(r"\b(?:npm|yarn|pnpm)\b")))


def install_seconds(*texts: str) -> float:
    """What an install costs: by the first of `texts` that names a tool (its line, what APP_INSTALL is
    set to, the rest of the script: the runtime's packages, python3.12-pip or nodejs24-npm)."""
    for text in texts:
        for kind, pattern in _INSTALLERS:
            if pattern.search(text):
                return figures.INSTALL_SECONDS[kind]
    return figures.INSTALL_SECONDS["other"]


def bootstrap_actions(user_data: str, tier: str) -> list[tuple[str, float]]:
    """What the rendered user data does, in order, each action with its modeled seconds."""
    actions: list[tuple[str, float]] = []
    body = script_body(user_data)
    settings = [line for line in body if _INSTALL_SETTING.match(line)]
    install = _INSTALL_SETTING.sub("", settings[-1]).strip() if settings else None
    for line in body:
        if _INSTALL_SETTING.match(line):
            continue
        if _INSTALL.search(line):  # the whole line is the install: `npm ci` on it is not charged again
            if install is None or install.strip("'\""):
                actions.append(("install", install_seconds(line, install or "", "\n".join(body))))
            continue
        for label, pattern in _ACTIONS:
            for _ in pattern.finditer(line):
                seconds = {"dnf": figures.DNF_SECONDS, "s3": figures.S3_COPY_SECONDS,
                           "npm ci": figures.NPM_CI_SECONDS.get(tier, 90.0), "build": figures.BUILD_SECONDS,
                           "systemctl enable": figures.SYSTEMD_ENABLE_SECONDS, "health": 0.0, "network": 0.0}[label]
                actions.append((label, seconds))
    return actions


def decode_user_data(value: str | bytes | None) -> str:
    if not value:
        return ""
    text = value.decode() if isinstance(value, bytes) else value
    try:
        decoded = base64.b64decode(text, validate=True).decode()
        if decoded.lstrip().startswith(("#!", "#cloud", "Content-Type")):
            return decoded
    except (ValueError, UnicodeDecodeError):
        pass
    return text
