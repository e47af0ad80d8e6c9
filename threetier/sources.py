"""Your own code: the directories of app.source and web.source, and the runtimes an app can ask for.

`check(config)` is what `up`, `plan` and `replay` (and later `deploy`/`rollback`) call before any AWS
call: a source directory that is missing, unreadable, too large or holding what the upload cannot
carry is refused with exit 2, naming the key. It is not part of config.parse: `down`, `status`,
`cost` and `pause` work on when a source directory has gone.

`tree(directory, key)` reads one directory as the bucket will hold it; nothing is ever skipped
silently (artifacts.SKIPPED_DIRS is for the bundled demo only).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from threetier.config import Config, ConfigError

# Each file is one PutObject (about 0.1 s) and the image's fingerprint reads every byte: a source
# directory is code and static files, never data. Stated in README "Your application".
FILES_MAX = 5_000
BYTES_MAX = 50 * 1024 * 1024
# S3's longest key, in UTF-8 bytes; the key is the tier's prefix and the file's relative path.
KEY_BYTES_MAX = 1024
# threetier adds its own files under this folder of app-tier/ (the RDS CA bundle).
RESERVED_DIR = ".threetier"
VCS_DIRS = frozenset({".git", ".hg", ".svn"})
WEB_INDEX = "index.html"


@dataclass(frozen=True)
class Runtime:
    """What the app builder installs from Amazon Linux 2023's own repository, and the programs it puts
    first on the PATH of app.install and app.start (each name runs the given command line)."""
    packages: tuple[str, ...]
    commands: tuple[tuple[str, str], ...]
    version: str  # what the bootstrap logs, run with the commands on PATH


def _node(major: int) -> Runtime:
    # AL2023's Node.js packages are namespaced: nodejsNN and nodejsNN-npm install node-NN and npm-NN.
    return Runtime(packages=(f"nodejs{major}", f"nodejs{major}-npm"),
                   commands=(("node", f"/usr/bin/node-{major}"), ("npm", f"/usr/bin/npm-{major}")),
                   version="node --version")


def _python(minor: int) -> Runtime:
    # AL2023 keeps /usr/bin/python3 at 3.9 (its system Python); python3.X installs /usr/bin/python3.X,
    # python3.X-pip its pip module (run through the interpreter: no guess at the pip script's name).
    python = f"/usr/bin/python3.{minor}"
    return Runtime(packages=(f"python3.{minor}", f"python3.{minor}-pip"),
                   commands=(("python", python), ("python3", python), ("pip", f"{python} -m pip"),
                             ("pip3", f"{python} -m pip")),
                   version="python --version")


# The runtimes an app can name, each checked against AL2023's package list (the AL2023 user guide's
# "Node.js in AL2023": 20, 22 and 24, namespaced; "Python in AL2023": 3.11, 3.12, 3.13, and the
# python3.X-pip packages of an AL2023 image's package pins). Java (java-21-amazon-corretto-headless)
# is left out until a test runs an app with it.
RUNTIMES: dict[str, Runtime] = {
    "nodejs20": _node(20),
    "nodejs22": _node(22),
    "nodejs24": _node(24),
    "python3.11": _python(11),
    "python3.12": _python(12),
    "python3.13": _python(13),
}


def check(config: Config) -> None:
    """Refuse, before any AWS call, a source directory the upload could not carry whole."""
    if config.app.source is not None:
        tree(Path(config.app.source), "app.source")
    if config.web.source is not None:
        files = tree(Path(config.web.source), "web.source", prefix="web-tier/")
        if WEB_INDEX not in files:
            raise ConfigError(f"web.source: {config.web.source} has no {WEB_INDEX} at its top (the page nginx serves "
                              f"for / and for every path that is no file: a single-page app's entry point)")


def tree(directory: Path, key: str, prefix: str = "app-tier/") -> dict[str, bytes]:
    """Relative path -> content of every regular file under `directory`, refused with a ConfigError
    naming `key` for what the upload cannot carry. `prefix` is the bucket folder the keys go under."""
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "no such directory"
        raise ConfigError(f"{key}: {directory}: {what}")
    files: dict[str, bytes] = {}
    total = 0

    def refuse(path: str, why: str) -> ConfigError:
        return ConfigError(f"{key}: {directory}: {path}: {why}")

    def walk(folder: Path, relative: str) -> None:
        nonlocal total
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            raise refuse(relative or ".", f"cannot read: {exc.strerror}") from None
        for entry in entries:
            name = f"{relative}{entry.name}"
            try:
                encoded = name.encode("utf-8")
            except UnicodeEncodeError:
                raise refuse(os.fsencode(name).decode("utf-8", "replace"),
                             "a name that is not UTF-8 (an S3 key is UTF-8)") from None
            if len(prefix.encode()) + len(encoded) > KEY_BYTES_MAX:
                raise refuse(name, f"a path longer than S3's keys ({KEY_BYTES_MAX} bytes with {prefix})")
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                if entry.name in VCS_DIRS:
                    raise refuse(name, "a version control folder: give a clean export of the code "
                                       "(e.g. git archive), not the repository")
                if not relative and entry.name == RESERVED_DIR and key == "app.source":
                    raise refuse(name, "reserved: threetier puts its own files there (the database's CA bundle)")
                walk(Path(entry.path), f"{name}/")
            elif stat.S_ISREG(mode):
                try:
                    content = Path(entry.path).read_bytes()
                except OSError as exc:
                    raise refuse(name, f"cannot read: {exc.strerror}") from None
                files[name] = content
                total += len(content)
                if len(files) > FILES_MAX:
                    raise ConfigError(f"{key}: {directory}: more than {FILES_MAX:,} files; leave out installed "
                                      f"dependencies (node_modules/, vendor/: app.install makes them on the builder)")
                if total > BYTES_MAX:
                    raise ConfigError(f"{key}: {directory}: more than {BYTES_MAX // 1024 // 1024} MiB; leave out "
                                      f"installed dependencies and data (app.install makes them on the builder)")
            else:
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file (a FIFO, socket or device)"
                raise refuse(name, f"{kind}: only regular files are uploaded, and nothing is skipped")

    walk(directory, "")
    return files
