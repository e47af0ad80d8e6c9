"""The web tier's built bundle is committed (threetier/application/web-tier/dist/) and
shipped in the package, because the web builder builds nothing. These tests fail when it
is stale or when the package would not carry it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from threetier.artifacts import BUNDLED_APPLICATION

from .servers import IN_CI, need

pytestmark = pytest.mark.slow  # runs Vite and setuptools

WEB_TIER = BUNDLED_APPLICATION / "web-tier"
REPO = BUNDLED_APPLICATION.parent.parent
REFRESH = "refresh it: cd threetier/application/web-tier && npm ci && npm run build, then commit dist/"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def vite() -> Path:
    """The project's own Vite, as web-tier/package-lock.json pins it (npm ci installs it)."""
    need("node")
    binary = WEB_TIER / "node_modules" / ".bin" / "vite"
    if not binary.exists():
        message = "web-tier/node_modules is missing (scripts/setup-app-deps.sh runs npm ci there)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    locked = json.loads((WEB_TIER / "package-lock.json").read_text())["packages"]["node_modules/vite"]["version"]
    installed = json.loads((WEB_TIER / "node_modules" / "vite" / "package.json").read_text())["version"]
    assert installed == locked, f"web-tier/node_modules has vite {installed}, the lockfile {locked}: run npm ci"
    return binary


def test_the_committed_bundle_is_the_build_of_the_sources(vite, tmp_path):
    out = tmp_path / "dist"
    env = {**os.environ, "NODE_ENV": "production"}  # what `npm run build` sets
    result = subprocess.run([str(vite), "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "warn"],
                            cwd=WEB_TIER, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    built, committed = tree(out), tree(WEB_TIER / "dist")
    assert "index.html" in built
    assert sorted(committed) == sorted(built), f"the committed dist/ has other files than a fresh build: {REFRESH}"
    stale = [name for name in built if committed[name] != built[name]]
    assert not stale, f"dist/ differs from a fresh build in {stale}: {REFRESH}"


def test_the_package_ships_the_bundle_and_no_node_modules(tmp_path):
    """setup.cfg's package data, as setuptools' build_py (what a wheel is made of) applies it:
    the web bundle goes in the package, installed dependencies don't."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in ("threetier", "steps"):
        shutil.copytree(REPO / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    for tier in ("app-tier", "web-tier"):  # installed dependencies, as a developer's checkout has them
        module = source / "threetier" / "application" / tier / "node_modules" / "some-module"
        module.mkdir(parents=True)
        (module / "index.js").write_text("module.exports = {};\n")
    built = tmp_path / "lib"
    result = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()",
                             "-q", "build_py", "--build-lib", str(built)],
                            cwd=source, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    names = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    bundle = {f"threetier/application/web-tier/dist/{name}" for name in tree(WEB_TIER / "dist")}
    assert bundle and bundle <= names
    assert "threetier/application/bootstrap/web-tier.sh" in names
    assert "threetier/application/app-tier/src/server.js" in names
    assert "threetier/application/app-tier/certs/rds-global-bundle.pem" in names, "the RDS CAs the app trusts"
    assert not [name for name in names if "/node_modules/" in name]
