"""The package's layering (README, Design): the Parts (`steps`) use the blocks (`threetier.blocks`),
never the other way round, and a block neither reads another Part's resources nor waits for one."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "threetier"
BLOCKS = sorted((PACKAGE / "blocks").glob("*.py"))


def imported(path: Path) -> set[str]:
    """The modules a file imports, anywhere in it (late imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", [p for p in sorted(PACKAGE.rglob("*.py"))
                                  if "cli" not in p.relative_to(PACKAGE).parts[:1]
                                  and "application" not in p.relative_to(PACKAGE).parts[:1]],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_commands_import_the_parts(path: Path) -> None:
    """threetier/cli/ hands the engine the Parts; nothing else of the package depends on them."""
    assert not {name for name in imported(path) if name == "steps" or name.startswith("steps.")}


@pytest.mark.parametrize("path", BLOCKS, ids=lambda p: p.name)
def test_a_block_takes_what_it_needs_of_other_parts_as_arguments(path: Path) -> None:
    """Waits between Parts are the Parts' own (declared in steps/graph.py); what a block needs of
    another Part, the Part gives it."""
    calls = {node.func.attr for node in ast.walk(ast.parse(path.read_text(), str(path)))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Name) and node.func.value.id == "ctx"}
    assert not calls & {"resources_of", "has", "need", "need_for_teardown", "reach"}
