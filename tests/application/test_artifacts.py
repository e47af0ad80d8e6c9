"""What the tests run is what `threetier up` uploads: application_files()."""
from __future__ import annotations

import json

from threetier.artifacts import BUNDLED_APPLICATION, application_files


def test_both_tiers_with_their_lockfiles():
    files = application_files()
    assert {key.split("/")[0] for key in files} == {"app-tier", "web-tier"}
    for tier in ("app-tier", "web-tier"):
        assert f"{tier}/package.json" in files and f"{tier}/package-lock.json" in files
        manifest = json.loads(files[f"{tier}/package.json"])
        lock = json.loads(files[f"{tier}/package-lock.json"])
        assert manifest["engines"]["node"]
        assert lock["packages"][""]["dependencies"] == manifest["dependencies"], "lockfile matches package.json"
    assert "app-tier/src/server.js" in files and "web-tier/index.html" in files
    assert not [key for key in files if "/node_modules/" in key or "/dist/" in key]
    assert list(files) == sorted(files)


def test_bytes_are_the_files_on_disk():
    for key, content in application_files().items():
        assert (BUNDLED_APPLICATION / key).read_bytes() == content


def test_application_tree_is_built_from_those_bytes(application_tree):
    """The app tier and the web build the other tests run come from this tree."""
    for key, content in application_files().items():
        assert (application_tree / key).read_bytes() == content
    on_disk = {p.relative_to(application_tree).as_posix() for p in application_tree.rglob("*")
               if p.is_file() and "node_modules" not in p.parts and "dist" not in p.parts}
    assert on_disk == set(application_files())


def test_a_users_own_application_folder(tmp_path):
    (tmp_path / "app-tier" / "src").mkdir(parents=True)
    (tmp_path / "app-tier" / "src" / "server.js").write_text("// mine")
    (tmp_path / "app-tier" / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "app-tier" / "node_modules" / "x" / "index.js").write_text("")
    (tmp_path / "elsewhere.txt").write_text("not uploaded")
    assert application_files(tmp_path) == {"app-tier/src/server.js": b"// mine"}
