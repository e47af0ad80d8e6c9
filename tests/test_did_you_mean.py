"""A typo gets the name meant, first: a config key (`emial`), a command (`stauts`); exit 2 before any AWS call."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import cli
from test_values import aws_clients, refused

__all__ = ["aws_clients"]  # the fixture, imported to be used here

CONFIG_TYPOS = [
    ("monitoring:\n  emial: ops@example.com\n", "monitoring.emial", "email"),
    ("stak: demo\n", "stak", "stack"),
    ("network:\n  nat_gateway: single\n", "network.nat_gateway", "nat_gateways"),
    ("app:\n  asg:\n    desried: 2\n", "app.asg.desried", "desired"),
]


@pytest.mark.parametrize("text,key,meant", CONFIG_TYPOS, ids=[key for _, key, _ in CONFIG_TYPOS])
def test_a_config_key_typo_names_the_key_meant_before_the_known_keys(
        text: str, key: str, meant: str, tmp_path: Path, aws_clients: list[str]) -> None:
    line = refused(tmp_path, text, aws_clients)
    assert line.startswith(f"error: {key}: unknown key, did you mean `{meant}`? (known here: "), line
    assert f" {meant}," in line or f" {meant})" in line  # the known list still follows, whole


def test_a_key_like_no_known_one_gets_the_known_keys_only(tmp_path: Path, aws_clients: list[str]) -> None:
    # The top level's 7 (a number, not a name) is reported first: the known keys, no guess.
    assert refused(tmp_path, "monitoring:\n  pager: on\n7: 1\n", aws_clients) == (
        "error: 7: unknown key (known here: stack, region, network, access, database, app, web, load_balancers, "
        "monitoring, edge, deploy)")
    assert refused(tmp_path, "monitoring:\n  pager: on\n", aws_clients) == (
        "error: monitoring.pager: unknown key (known here: alarms, email, dashboard, flow_logs, log_retention_days)")


def test_a_command_typo_names_the_command_meant(tmp_path: Path, aws_clients: list[str]) -> None:
    (tmp_path / "config.yaml").write_text("stack: demo\n")
    result = cli("stauts", cwd=tmp_path)
    assert result.code == 2 and result.stdout == ""
    assert "Error: No such command 'stauts'. Did you mean 'status'?" in result.stderr
    assert "Did you mean 'status'?" in cli("--sandbox", "stauts", "--json", cwd=tmp_path).stderr  # options around it
    assert "Did you mean 'completion'?" in cli("compleiton", "bash", cwd=tmp_path).stderr
    nothing_close = cli("xyzzy", cwd=tmp_path)
    assert nothing_close.code == 2
    assert "No such command 'xyzzy'." in nothing_close.stderr and "Did you mean" not in nothing_close.stderr
    assert "Did you mean 'stop'?" in cli("sandbox", "sotp", cwd=tmp_path).stderr  # a group's own: click 8.4's message
    assert aws_clients == []
