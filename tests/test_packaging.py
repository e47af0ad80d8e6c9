"""What `pip install` builds: the application ships whole, and setuptools has nothing to warn about."""
from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def listed_packages() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {name.strip() for name in config["options"]["packages"].replace("\n", ",").split(",") if name.strip()}


def test_every_directory_of_shipped_files_that_could_be_a_package_is_listed() -> None:
    # setuptools (>= 69) prints a long "Package would be ignored" warning for each directory holding
    # package data whose dotted name is a valid import name but is absent from `packages`.
    packages = listed_packages()
    shipped = ROOT / "threetier" / "application"
    candidates = set()
    for path in shipped.rglob("*"):
        if path.is_file() and "node_modules" not in path.parts:
            parts = path.parent.relative_to(ROOT).parts
            if all(part.isidentifier() for part in parts):
                candidates.add(".".join(parts))
    assert candidates, "the application ships files"
    assert candidates <= packages, f"absent from setup.cfg's packages: {sorted(candidates - packages)}"


def test_listed_packages_exist() -> None:
    for name in listed_packages():
        assert (ROOT / Path(*name.split("."))).is_dir(), name


def test_the_cli_loads_no_aws_sdk_until_a_command_runs() -> None:
    """`threetier --help`, completion and usage errors answer in a fraction of a second: boto3 and botocore
    (a third of a second to import) load only when a command reaches AWS. A command module that imports
    them at its top undoes that for every command."""
    loaded = subprocess.run([sys.executable, "-c", "import sys, threetier.cli; "
                             "print(sorted(m for m in ('boto3', 'botocore', 'moto') if m in sys.modules))"],
                            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert loaded.stdout.strip() == "[]", loaded.stdout
