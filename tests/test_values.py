"""Issue 23, item 5: values checked whole. A config value is refused in one line naming its key, before
any AWS call, however it is written (a trailing newline, other scripts' digits, not UTF-8, nested or
numbered past every bound); and whatever AWS, the state file or the lock hold reaches the terminal
escaped, so that no value can clear the screen or print a line of its own."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import boto3
import pytest
from rich.text import Text

from helpers import cli
from threetier import config as configlib
from threetier import lock
from threetier.aws import AwsError
from threetier.output import Output, escape

COMMANDS = (["up", "--yes"], ["status"], ["down", "--yes"], ["cost"])


@pytest.fixture
def aws_clients(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The AWS clients the run builds (none may be, for a bad config)."""
    made: list[str] = []
    real_client = boto3.Session.client
    monkeypatch.setattr(boto3.Session, "client",
                        lambda self, name, *a, **k: made.append(name) or real_client(self, name, *a, **k))
    return made


def refused(tmp_path: Path, text: str | bytes, aws_clients: list[str]) -> str:
    """The one line every command answers config.yaml holding `text` with (exit 2, no AWS client); no
    moto here either: an AWS call would fail on the fake credentials, not exit 2."""
    path = tmp_path / "config.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    said = set()
    for command in COMMANDS:
        result = cli(*command, cwd=tmp_path)
        assert result.code == 2, (command, result)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (command, result.stderr)
        assert "internal error" not in lines[0] and result.stdout == "", (command, result)
        said.add(lines[0])
    assert aws_clients == []
    assert len(said) == 1, said  # every command says the same
    return said.pop()


NINES = "9" * 5000  # past Python's 4,300-digit limit on converting text to an integer

BAD_VALUES = [
    # A `$` accepts a trailing newline: each of these passed before, and failed after the lock.
    ('stack: "abc\\n"\n', "stack: 'abc\\n'"),
    ('region: "us-east-1\\n"\n', "region: 'us-east-1\\n'"),
    ('region: "us-east-\u0661"\n', "region: "),  # ARABIC-INDIC DIGIT ONE is a \d too
    ('network: {azs: ["us-east-1a\\n", "us-east-1b"]}\n', "network.azs[0]: "),
    ('database: {name: "webappdb\\n"}\n', "database.name: "),
    ('database: {username: "admin\\n"}\n', "database.username: "),
    ('database: {instance_class: "db.t4g.medium\\n"}\n', "database.instance_class: "),
    ('database: {engine_version: "8.0.mysql_aurora.3.10.3\\n"}\n', "database.engine_version: "),
    ('app: {instance_type: "t3.micro\\n"}\n', "app.instance_type: "),
    ('monitoring: {email: "ops@example.com\\n"}\n', "monitoring.email: "),
    ('monitoring: {email: "o\\e@example.com"}\n', "monitoring.email: 'o\\x1b@example.com'"),
    ('edge: {domain: "shop.example.com\\n", hosted_zone: example.com}\n', "edge.domain: "),
    ('edge: {domain: shop.example.com, hosted_zone: "Z0123456789ABCDEFGHIJ\\n"}\n', "edge.hosted_zone: "),
    ('edge: {domain: shop.example.com, hosted_zone: "Z0123456789\u212a"}\n', "edge.hosted_zone: "),  # KELVIN SIGN
    ('access: {client_cidrs: ["10.0.0.0/8\\n"]}\n', "access.client_cidrs[0]: "),
    # A CIDR reaches AWS as written: only as AWS writes it.
    ('access: {client_cidrs: ["203.0.113.7"]}\n', "access.client_cidrs[0]: write '203.0.113.7' as 203.0.113.7/32"),
    ('access: {admin_cidr: "203.0.113.0/255.255.255.0"}\n', "access.admin_cidr: write "),
    ('network: {vpc_cidr: "10.0.0.0/016"}\n', "network.vpc_cidr: write "),
    ('access: {client_cidrs: ["10.0.0.0/8", "10.0.0.0/8"]}\n', "access.client_cidrs[1]: 10.0.0.0/8 is given twice"),
    # Counts and sizes within what AWS takes.
    ("web: {asg: {max: 100000000000000000000000000}}\n", "web.asg.max: a number of instances, 0 to 1,000"),
    ("app: {asg: {min: 1001, desired: 1001, max: 1001}, scaling: null}\n", "app.asg.min: "),
    ("web: {asg: {max: 1" + "0" * 309 + "}}\n", "web.asg.max: a number 310 characters long"),
    (f"web: {{asg: {{max: {NINES}}}}}\n", "web.asg.max: a number 5000 characters long"),
    (f"app: {{port: {NINES}}}\n", "app.port: a number 5000 characters long"),
    ("9" * 40 + ": 1\n", "<a number 40 characters long>: unknown key"),
    ("network: {subnets: {web: [" + ":".join(["1"] * 40) + "]}}\n", "network.subnets.web[0]: expected a string, got a number"),
    ("web: {asg: {max: 1e26}}\n", "web.asg.max: expected an integer, got a string"),  # YAML 1.1: no float without a dot
    ("web: {asg: {max: 1.0e+26}}\n", "web.asg.max: expected an integer, got a number"),
    ("web: {scaling: {cpu_target: .inf}}\n", "web.scaling.cpu_target: "),
    ("web: {scaling: {cpu_target: .nan}}\n", "web.scaling.cpu_target: "),
    ("web: {scaling: {cpu_target: 1.0e+400}}\n", "web.scaling.cpu_target: "),
    ("web: {scaling: {requests_per_target: 1000001}}\n", "web.scaling.requests_per_target: "),
    ("access: {client_cidrs: [" + ", ".join(f"10.0.{n}.0/24" for n in range(61)) + "]}\n",
     "access.client_cidrs: at most 60 CIDRs"),
    ("database: {backup_retention_days: 36}\n", "database.backup_retention_days: "),
    ("monitoring: {log_retention_days: 4000}\n", "monitoring.log_retention_days: "),
    ("edge: {waf_rate_limit: 2000000001}\n", "edge.waf_rate_limit: "),
    ("app: {port: 65536}\n", "app.port: "),
    # The file itself.
    (b'stack: "caf\xe9"\n', "config.yaml: not UTF-8 text (byte 0xe9 on line 1)"),
    ("[" * 100_000 + "\n", "config.yaml: nested more than 16 levels deep"),
    ("a:\n" + "".join(" " * depth + "- \n" for depth in range(1, 40)), "config.yaml: nested more than 16 levels deep"),
    ("# " + "x" * 300_000 + "\n", "config.yaml: larger than 256 KiB"),
    ("stack: &a [*a]\n", "stack: expected a string, got a list"),
]


@pytest.mark.parametrize("text,said", BAD_VALUES, ids=[str(i) for i in range(len(BAD_VALUES))])
def test_a_bad_value_is_one_line_naming_its_key_before_any_aws_call(
        text: str | bytes, said: str, tmp_path: Path, aws_clients: list[str]) -> None:
    line = refused(tmp_path, text, aws_clients)
    assert line.startswith(f"error: {said}"), line
    assert len(line) < 400, line  # a value is quoted short, whatever its length


def test_values_at_aws_bounds_are_taken() -> None:
    cfg = configlib.parse({
        "web": {"asg": {"min": 0, "desired": 1000, "max": 1000},
                "scaling": {"cpu_target": 100, "requests_per_target": 1_000_000}},
        "access": {"client_cidrs": [f"10.0.{n}.0/24" for n in range(60)]},
        "monitoring": {"email": "o'neil+ops@example.co.uk"},
    })
    assert cfg.web.asg.max == 1000 and cfg.web.scaling.requests_per_target == 1_000_000
    assert len(cfg.access.client_cidrs) == 60
    # With HTTPS each client CIDR is two rules (80 and 443): half as many fit.
    with pytest.raises(configlib.ConfigError, match=r"^access\.client_cidrs: at most 30 CIDRs with HTTPS"):
        configlib.parse({"access": {"client_cidrs": [f"10.0.{n}.0/24" for n in range(31)]},
                         "edge": {"domain": "shop.example.com", "hosted_zone": "example.com"}})


def test_cost_of_a_region_with_a_trailing_newline_is_refused_not_priced_as_us_east_1(
        tmp_path: Path, aws_clients: list[str]) -> None:
    (tmp_path / "config.yaml").write_text('region: "eu-west-1\\n"\n')
    result = cli("cost", "--json", cwd=tmp_path)
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: region: 'eu-west-1\\n' is not an AWS region name"), result.stderr


def test_a_region_from_the_environment_is_checked_as_configs_is(tmp_path: Path, monkeypatch,
                                                                 aws_clients: list[str]) -> None:
    (tmp_path / "config.yaml").write_text("{}\n")  # no region: the environment's
    monkeypatch.setenv("AWS_REGION", "eu-west-1\n")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1\n")
    result = cli("cost", "--json", cwd=tmp_path)
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: region: 'eu-west-1\\n' (from AWS_REGION"), result.stderr
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert json.loads(cli("cost", "--json", cwd=tmp_path).stdout)["region"] == "eu-west-1"


def test_plan_shows_what_aws_said_escaped(built: Path, monkeypatch) -> None:
    # AWS refuses control characters in tags (and moto's XML cannot carry them): a check's line
    # with one stands for any value AWS or the state file hands a check.
    from threetier.engine import Engine
    real = Engine.check

    def check(self, part):
        seen = real(self, part)
        seen.drift.append("route 0.0.0.0/0: points at nat-1\x1b[2J\nerror: forged")
        return seen
    monkeypatch.setattr(Engine, "check", check)
    result = cli("plan", "--detailed-exitcode", cwd=built)
    assert result.code == 2
    assert "\x1b" not in result.stdout and "nat-1\\x1b[2J\\nerror: forged" in result.stdout, result.stdout


# -- what reaches the terminal -------------------------------------------------------------------

HOSTILE = "x\x1b[2J\x1b]0;owned\x07\r\nerror: forged\x9b31m\u202eevil\tend"


def test_escape_shows_every_control_character_and_keeps_the_rest() -> None:
    shown = escape(HOSTILE)
    assert shown == "x\\x1b[2J\\x1b]0;owned\\x07\\r\\nerror: forged\\x9b31m\\u202eevil\\tend"
    assert escape(shown) == shown  # nothing left to escape
    assert escape("café ✓ vpc-0abc/ü") == "café ✓ vpc-0abc/ü"


def test_every_message_output_prints_is_one_escaped_line() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(stdout=stdout, stderr=stderr, verbose=True)
    out.info(HOSTILE)
    out.detail(HOSTILE)
    out.result(HOSTILE)
    out.error(str(AwsError("Part 1 network", "CreateVpc", "vpc threetier-vpc", "Boom", HOSTILE)))
    out.info(Text.assemble(("✓ ", "green"), HOSTILE, (" done", "bold")))
    for written in (stdout.getvalue(), stderr.getvalue()):
        assert "\x1b" not in written and "\r" not in written and "\x9b" not in written
        assert not any(line.startswith("error: forged") for line in written.splitlines())
    assert len(stdout.getvalue().splitlines()) == 1
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 4, lines
    assert lines[2] == f"error: Part 1 network: CreateVpc vpc threetier-vpc failed: Boom: {escape(HOSTILE)}"
    # rich drops BEL, CR and a few others from a Text as it is made; what is left is escaped
    assert lines[3] == f"✓ {escape(Text(HOSTILE).plain)} done"


def test_an_aws_error_message_cannot_forge_a_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from threetier.cli.common import Runtime

    def failing(self: Runtime, **_: object) -> None:
        raise AwsError("", "GetCallerIdentity", "", "ExpiredToken", "expired\n\x1b[1Aerror: forged")
    monkeypatch.setattr(Runtime, "inspector", failing)
    result = cli("status", cwd=tmp_path)
    assert result.code == 1
    assert result.stderr == "error: GetCallerIdentity failed: ExpiredToken: expired\\n\\x1b[1Aerror: forged\n"


def test_status_prints_state_file_and_lock_values_escaped(built: Path) -> None:
    state_path = built / ".threetier" / "threetier.json"
    state = json.loads(state_path.read_text())
    state["paused"] = {"since": "2026-12-01\x1b[2J\nerror: forged", "aurora_restarts_at": "soon\x1b]0;t\x07"}
    state["parts"]["2"]["resources"]["vpc"] = "vpc-0\x1b[31m\nerror: forged vpc"  # not AWS's: a drift line says so
    state_path.write_text(json.dumps(state))
    holder = lock.Holder(user="mallory\x1b[2J", host="h\x1bc", pid=4242, command="up\x1b[1A",
                         since="2026-12-01T00:00:00Z", caller="arn:aws:iam::123456789012:user/m\x1b[8m",
                         token="tok")
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=lock.parameter_name("threetier"), Value=holder.to_json(), Type="String")

    result = cli("status", cwd=built)
    assert result.code == 3, result  # the forged VPC ID is drift
    for written in (result.stdout, result.stderr):
        assert "\x1b" not in written and "\x07" not in written
        assert not any(line.lstrip("│ ").startswith("error:") for line in written.splitlines()), written
    assert "paused since 2026-12-01\\x1b[2J\\nerror: forged (`threetier pause`)" in result.stdout
    table = re.sub(r"[\s│]", "", result.stdout)  # the cell may fold the drift line across lines
    assert "statefilesaysvpc=vpc-0\\x1b[31m\\nerror:forgedvpc,AWShasvpc-" in table, result.stdout
    assert "held by mallory\\x1b[2J@h\\x1bc (pid 4242, threetier up\\x1b[1A)" in result.stderr

    # --json is JSON: the values as they are, escaped by JSON itself.
    report = json.loads(cli("status", "--json", cwd=built).stdout)
    assert report["paused"]["since"] == "2026-12-01\x1b[2J\nerror: forged"


def test_a_lock_refusal_names_a_hostile_holder_on_one_escaped_line(built: Path) -> None:
    holder = lock.Holder(user="eve\x1b[2J", host="far\naway", pid=4242, command="up\r\nerror: forged",
                         since="2026-12-01T00:00:00Z", caller="arn:aws:iam::123456789012:user/eve\x1b]0;t\x07",
                         token="tok", machine="another machine", boot_id="another boot")
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=lock.parameter_name("threetier"), Value=holder.to_json(), Type="String")
    result = cli("up", "--yes", cwd=built)
    assert result.code == 2, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: lock: stack threetier in us-east-1 is being changed by "
                                                     "eve\\x1b[2J@far away (pid 4242, threetier up error: forged)"), errors
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_a_wait_line_shows_what_aws_said_escaped() -> None:
    from rich.console import Console

    from helpers import FakeClock
    from threetier.aws import Poll
    from threetier.display import Display

    class Layer:  # what Display needs of the AWS layer
        part, on_poll = "Part 3", None
    shown = Display(Output(stdout=io.StringIO(), stderr=io.StringIO()), Layer(), FakeClock())  # type: ignore[arg-type]
    shown.begin("Part 3", "database")
    shown.on_poll("cluster threetier-aurora", Poll(done=False, status="creat\x1b[2Jing\nerror: forged"))
    screen = io.StringIO()
    Console(file=screen, width=200).print(shown.render())
    assert "\x1b" not in screen.getvalue() and len(screen.getvalue().splitlines()) == 1
    assert "cluster threetier-aurora: creat\\x1b[2Jing\\nerror: forged" in screen.getvalue()
