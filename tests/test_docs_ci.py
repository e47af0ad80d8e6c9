"""docs/github-actions.md: its workflow is YAML that does what the page says, and every threetier
command line in its code blocks is one the CLI parses (issue 24, item 6)."""
from __future__ import annotations

import io
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from threetier.cli import cli
from threetier.cli import plan as plan_command
from threetier.output import Output

DOC = Path(__file__).resolve().parents[1] / "docs" / "github-actions.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
OPERATORS = {"|", "||", "&&", ";", "&", "(", ")"}
REDIRECTIONS = {">", ">>", "<", "2>", "2>>", "&>"}
KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "exec", "time"}


def code_blocks() -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2)) for match in FENCE.finditer(DOC.read_text())]


def workflow() -> dict[Any, Any]:
    [text] = [body for lang, body in code_blocks() if lang == "yaml"]
    return yaml.safe_load(text)


def steps(job: str) -> list[dict[str, Any]]:
    return workflow()["jobs"][job]["steps"]


def shell_scripts() -> list[str]:
    """Every script of the page: the sh blocks, and each `run:` of the workflow."""
    scripts = [body for lang, body in code_blocks() if lang in ("sh", "bash", "shell")]
    scripts += [step["run"] for job in workflow()["jobs"].values() for step in job["steps"] if "run" in step]
    return scripts


def threetier_command_lines(script: str) -> list[list[str]]:
    """The arguments of each `threetier ...` command in a shell script: the words after `threetier`
    up to an operator (`|`, `||`, `&&`, `;`), redirections and their targets left out."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        tokens = iter([*lexer, ";"])
        for token in tokens:
            if token in REDIRECTIONS:
                next(tokens, None)  # the file
            elif token in OPERATORS:
                while words and (words[0] in KEYWORDS or re.fullmatch(r"\w+=\S*", words[0])):
                    words.pop(0)
                if words and words[0] == "threetier":
                    found.append(words[1:])
                words = []
            else:
                words.append(token)
    return found


def all_command_lines() -> list[list[str]]:
    return [args for script in shell_scripts() for args in threetier_command_lines(script)]


def parse(args: list[str]) -> tuple[click.Command, dict[str, Any]]:
    """Resolve the command as click does and parse its arguments (callbacks of the options run,
    as they do: they only note global options); the command itself does not run."""
    ctx = cli.make_context("threetier", list(args), obj=Output(stdout=io.StringIO(), stderr=io.StringIO()))
    command: click.Command = cli
    while isinstance(command, click.Group):
        # What the group left for its command: the command's name first (click 8.2+ keeps it
        # apart from the rest; 8.1 names it `protected_args`).
        rest = [*(ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args), *ctx.args]
        name, found, rest = command.resolve_command(ctx, rest)
        assert found is not None and name is not None, args
        command = found
        ctx = command.make_context(name, rest, parent=ctx)
    assert not ctx.resilient_parsing
    return command, ctx.params


def test_the_page_has_the_command_lines_it_describes() -> None:
    lines = [" ".join(args) for args in all_command_lines()]
    for expected in ("plan --detailed-exitcode", "up --yes --json", "up --yes --json --config preview.yaml",
                     "down --yes --skip-final-snapshot --config preview.yaml", "cost --config preview.yaml"):
        assert expected in lines, (expected, lines)
    assert all(args and not args[0].startswith("$") for args in all_command_lines())


@pytest.mark.parametrize("args", all_command_lines(), ids=lambda args: " ".join(args))
def test_every_threetier_command_line_of_the_page_parses(args: list[str]) -> None:
    args = list(args)
    command, params = parse(args)
    assert command.name == args[0]
    if command.name in ("up", "down"):
        assert params["yes"] is True
    if "--json" in args:
        assert params["as_json"] is True


def test_plan_has_the_detailed_exitcode_option() -> None:
    command, params = parse(["plan", "--detailed-exitcode"])
    assert command is plan_command.command and params["detailed"] is True


def test_a_line_that_does_not_parse_is_refused() -> None:
    # The check above can fail: an unknown option or command is click's usage error.
    with pytest.raises(click.UsageError):
        parse(["up", "--yes", "--no-such-option"])
    with pytest.raises(click.UsageError):
        parse(["stauts"])
    assert threetier_command_lines("code=0\nthreetier plan > plan.txt || code=$?\nexec threetier up --yes") == [
        ["plan"], ["up", "--yes"]]


def test_the_workflow_is_yaml_with_the_steps_the_page_names() -> None:
    flow = workflow()
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"pull_request", "push"} and triggers["push"]["branches"] == ["main"]
    assert "closed" in triggers["pull_request"]["types"]
    assert flow["permissions"]["id-token"] == "write"
    assert set(flow["jobs"]) == {"plan", "deploy", "preview"}
    for job in flow["jobs"]:
        [credentials] = [s for s in steps(job) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
        assert credentials["with"]["role-to-assume"] == "${{ env.ROLE_ARN }}"
        assert "aws-access-key-id" not in credentials["with"]  # OIDC: no stored key
        uses = [s.get("uses", "") for s in steps(job)]
        assert uses.index(credentials["uses"]) < next(i for i, s in enumerate(steps(job)) if "threetier " in s.get("run", ""))
        assert "pip install ." in [s.get("run") for s in steps(job)]

    [plan] = [s for s in steps("plan") if "threetier plan" in s.get("run", "")]
    assert "--detailed-exitcode" in plan["run"] and '2) echo "changes=true"' in plan["run"]
    assert '*) exit "$code"' in plan["run"]  # 1 (or anything but 0 and 2) fails the step
    assert flow["jobs"]["plan"]["if"].startswith("github.event_name == 'pull_request'")

    deploy = flow["jobs"]["deploy"]
    assert deploy["if"] == "github.event_name == 'push'" and deploy["concurrency"]["cancel-in-progress"] is False
    [up] = [s for s in steps("deploy") if "threetier up" in s.get("run", "")]
    assert up["run"].strip() == "exec threetier up --yes --json > up.json"
    [kept] = [s for s in steps("deploy") if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert kept["with"]["path"] == "up.json" and kept["if"] == "always()"

    preview = steps("preview")
    [config] = [s for s in preview if "preview.yaml" in s.get("run", "") and "yaml.safe_dump" in s["run"]]
    assert 'config["stack"] = "pr-" + os.environ["PR"]' in config["run"]
    [down] = [s for s in preview if "threetier down" in s.get("run", "")]
    assert down["if"] == "github.event.action == 'closed'" and "--config preview.yaml" in down["run"]


def test_the_preview_config_step_makes_a_config_threetier_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step's Python, run on the shipped config.yaml: a valid config naming the stack pr-<number>."""
    from threetier import config as configlib
    [step] = [s for s in steps("preview") if "yaml.safe_dump" in s.get("run", "")]
    program = step["run"].split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    (tmp_path / "config.yaml").write_text((DOC.parents[1] / "config.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR", "1234")
    exec(compile(program, "preview-config-step", "exec"), {})
    made = configlib.load(tmp_path / "preview.yaml")
    assert made.stack == "pr-1234" and made.network.nat_gateways == "single"
    assert configlib.load(tmp_path / "config.yaml").stack == "threetier"  # the main stack's own file untouched
