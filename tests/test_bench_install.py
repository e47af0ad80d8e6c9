"""`python -m bench` after the README's install (no matplotlib): the chart is skipped in one line naming
the install that adds it, and the rest of the benchmark runs (issue 24, item 5)."""
from __future__ import annotations

import configparser
import json
import sys
from pathlib import Path

import pytest

import bench.__main__ as bench_main
import bench.gantt
from bench.runs import Modeled

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--json", "--skip-sequential", "--skip-edge", "--skip-cdn", "--skip-pause"]


@pytest.fixture
def modeled(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The modeled runs replaced by one finished run: what is tested is the chart's part only."""
    runs: list[bool] = []

    def one_run(sequential: bool, **_: object) -> Modeled:
        runs.append(sequential)
        return Modeled(sequential=sequential, up_seconds=600.0, down_seconds=300.0)
    monkeypatch.setattr(bench_main, "modeled_run", one_run)
    return runs


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    paths: list[Path] = []

    def draw(panels: object, path: Path) -> Path:
        paths.append(path)
        return path
    monkeypatch.setattr(bench.gantt, "draw", draw)
    return paths


def test_without_matplotlib_the_chart_is_skipped_in_one_line_naming_the_install(
        modeled: list[bool], drawn: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ModuleNotFoundError
    assert bench_main.main([*QUICK, "--gantt", str(tmp_path / "up.png")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["gantt"] is None and json.loads(out)["up_minutes"] == 10.0
    assert err.splitlines() == ["no Gantt chart: matplotlib is not installed (pip install -e '.[bench]' adds it; "
                                "--no-gantt skips the chart)"]
    assert modeled == [False] and drawn == []
    # --no-gantt asked for no chart: nothing to say.
    assert bench_main.main([*QUICK, "--no-gantt"]) == 0
    assert capsys.readouterr().err == ""


def test_with_matplotlib_the_chart_is_drawn(modeled: list[bool], drawn: list[Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    assert bench.gantt.unavailable() is None
    assert bench_main.main([*QUICK, "--gantt", str(tmp_path / "up.png")]) == 0
    assert json.loads(capsys.readouterr().out)["gantt"] == str(tmp_path / "up.png")
    assert drawn == [tmp_path / "up.png"]


def test_the_install_named_adds_matplotlib_and_the_readme_says_it() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    bench_extra = setup["options.extras_require"]["bench"].split()
    assert any(requirement.startswith("matplotlib") for requirement in bench_extra)
    assert "pip install -e '.[bench]'" in (ROOT / "README.md").read_text()


def test_the_images_the_stack_launches_are_read_from_moto_whatever_its_loader() -> None:
    """moto's files read directly (its loader's arguments changed within 5.2, which the `sandbox` and
    `bench` extras allow): the AL2023 images its SSM parameters name, as moto's EC2 lists them."""
    from bench.moto_env import _al2023_images, _moto_resource
    images = _al2023_images("us-east-1")
    assert images and all(image["ami_id"].startswith("ami-") for image in images)
    named = {p["Value"] for p in _moto_resource("ssm/resources/ami-amazon-linux-latest/us-east-1.json")
             if p["Name"].startswith("/aws/service/ami-amazon-linux-latest/al2023-")}
    assert {image["ami_id"] for image in images} <= named
    assert _al2023_images("xx-nowhere-1") == ()
    with pytest.raises(FileNotFoundError):
        _moto_resource("ec2/resources/latest_amis/xx-nowhere-1.json")
