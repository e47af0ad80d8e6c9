"""The published IAM policies (threetier.permissions: docs/iam-policy.json, the core, and
docs/iam-policy-edge.json, the edge's) cover every call the commands make: each AWS call of a whole
life cycle in moto, from nothing to nothing, is among its command's actions for that config, and in
the policies; the policy files are the generated ones, each fits in a managed policy."""
from __future__ import annotations

import ast
import contextlib
import fnmatch
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import botocore.client
import botocore.session
import pytest
import yaml
from botocore import xform_name

from helpers import cli, moto
from reference_stacks import BEFORE_UP
from threetier import config as configlib
from threetier import permissions
from threetier.permissions import EMULATOR_ONLY, NEEDS_NO_PERMISSION, actions_called, actions_for, iam_action

ROOT = Path(__file__).resolve().parent.parent
# Everything on that config.yaml can turn on: HTTPS with a certificate and a record in the user's zone,
# the WAF, CloudFront (edge.cdn), the alarms' e-mail (the alarms, the dashboard and the flow logs are on by default).
EVERYTHING = {"edge": {"domain": "shop.example.com", "hosted_zone": "example.com", "waf": True, "cdn": True},
              "monitoring": {"email": "ops@example.com"}}
CONFIGS = {"default": {}, "everything": EVERYTHING}
# A whole life cycle: built from nothing, looked at, paused and resumed, torn down to nothing.
LIFE_CYCLE = (("up", "--yes"), ("status",), ("plan",), ("pause",), ("status",), ("resume",), ("down", "--yes"))
# Actions not named after an API operation of their service (no botocore operation maps to them).
PERMISSION_ONLY = {"iam:PassRole", "elasticloadbalancing:SetWebAcl", "s3:DeleteObjectVersion", "s3:TagResource"}


def documents() -> list[dict[str, Any]]:
    return [permissions.policy_document(name) for name in permissions.POLICIES]


def allowed(action: str) -> bool:
    """Whether one of the two policies (both attached) grants the action."""
    return any(permissions.allows(document, action) for document in documents())


def not_allowed(actions: Iterable[str]) -> list[str]:
    return sorted(action for action in actions if not allowed(action))


def granted() -> set[str]:
    """Every action GRANTS names."""
    return {action for grant in permissions.GRANTS for action in grant.actions}


@contextlib.contextmanager
def recording() -> Iterator[list[SimpleNamespace]]:
    """Every AWS call made in this process meanwhile (waiters' and paginators' too), as (service, operation)."""
    seen: list[SimpleNamespace] = []
    real = botocore.client.BaseClient._make_api_call

    def record(self: Any, operation: str, params: dict[str, Any]) -> Any:
        seen.append(SimpleNamespace(service=self.meta.service_model.service_name, operation=operation))
        return real(self, operation, params)
    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", record):
        yield seen


def run(seen: list[SimpleNamespace], directory: Path, *args: str) -> set[str]:
    """One command in-process; the actions its calls needed."""
    seen.clear()
    result = cli(*args, cwd=directory)
    assert result.code == 0, f"{' '.join(args)}: {result.stderr}"
    assert seen, f"{' '.join(args)} made no AWS call"
    return actions_called(seen)


@pytest.fixture(scope="module")
def life_cycles() -> dict[str, dict[str, set[str]]]:
    return {}


@pytest.fixture
def life_cycle(life_cycles: dict[str, dict[str, set[str]]], reference_stacks,
               tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, set[str]]]:
    """`life_cycle(name)`: command -> the actions it needed, in LIFE_CYCLE with CONFIGS[name]. Each is run
    once for the module (a build from nothing costs seconds), inside the first test that asks for it
    (then conftest's fake credentials and emulator flag hold). The default config's `up` from nothing is
    its reference stack's build, which recorded its calls: the rest of the life cycle starts from that
    stack, restored."""
    def get(name: str) -> dict[str, set[str]]:
        if name not in life_cycles:
            directory = tmp_path_factory.mktemp(name)
            needed: dict[str, set[str]] = {}
            with contextlib.ExitStack() as inside:
                cycle = LIFE_CYCLE
                if name == "default":
                    up_calls = reference_stacks.build("default").up_calls
                    needed["up"] = actions_called([SimpleNamespace(service=s, operation=o) for s, o in up_calls])
                    inside.enter_context(reference_stacks.restored("default", directory))
                    cycle = LIFE_CYCLE[1:]
                else:
                    (directory / "config.yaml").write_text(yaml.safe_dump(CONFIGS[name]))
                    inside.enter_context(moto())
                    if CONFIGS[name].get("edge"):
                        BEFORE_UP["edge"](directory)  # the user's hosted zone
                seen = inside.enter_context(recording())
                for args in cycle:
                    needed.setdefault(args[0], set()).update(run(seen, directory, *args))
            life_cycles[name] = needed
        return life_cycles[name]
    return get


def not_granted(needed: dict[str, set[str]], config: dict[str, Any]) -> dict[str, list[str]]:
    parsed = configlib.parse(config)
    return {command: sorted(actions - EMULATOR_ONLY - set(actions_for(command, parsed)))
            for command, actions in needed.items() if actions - EMULATOR_ONLY - set(actions_for(command, parsed))}


# -- (1) every call of a life cycle, in its command's list and in the policy --------------------------
# One test per config: under xdist each test may run on another worker, where the module's cache is
# empty and the life cycle (a build from nothing, and all of it) would run again.
# (With edge.cdn the web ACL is CloudFront's, on the distribution: no AssociateWebACL.)
FEATURES_CALLED = {"wafv2:CreateWebACL", "acm:RequestCertificate", "elasticloadbalancing:CreateRule",
                   "route53:ChangeResourceRecordSets", "sns:Subscribe", "elasticloadbalancing:ModifyListenerAttributes"}


@pytest.mark.parametrize("name", CONFIGS)
def test_every_call_of_a_life_cycle_is_in_its_commands_actions_and_in_the_policy(name: str, life_cycle) -> None:
    needed = life_cycle(name)
    assert set(needed) == {"up", "status", "plan", "pause", "resume", "down"}
    assert not_granted(needed, CONFIGS[name]) == {}
    assert not_allowed(set().union(*needed.values()) - EMULATOR_ONLY) == []
    # What the whole config turns on was called (the life cycle exercised it); the default config's
    # calls and lists leave it out.
    if CONFIGS[name] == EVERYTHING:
        assert needed["up"] >= FEATURES_CALLED
        assert {"wafv2:DeleteWebACL", "acm:DeleteCertificate", "sns:DeleteTopic"} <= needed["down"]
    else:
        assert not FEATURES_CALLED & needed["up"]
        assert not FEATURES_CALLED & set(actions_for("up", configlib.parse(CONFIGS[name])))


# -- (2) the commands that look at, pause and resume a built stack -------------------------------------
def test_status_plan_pause_and_resume_of_a_built_stack(built: Path) -> None:
    with recording() as seen:
        needed = {command: run(seen, built, command) for command in ("status", "plan", "pause", "resume")}
    assert not_granted(needed, {}) == {}
    assert "rds:StopDBCluster" in needed["pause"] and "rds:StartDBCluster" in needed["resume"]


def test_deploy_finish_and_rollback_of_a_built_stack(built: Path) -> None:
    """`deploy` and `rollback` are granted up's actions (permissions.SAME_AS): a deploy left to
    --finish (the watch's reads and the finish tag), then a rollback, need no other."""
    source = built / "your-app"
    source.mkdir()
    (source / "server.py").write_text("print('new code')\n")
    app = {"source": "your-app", "runtime": "python3.12", "start": "python3 server.py"}
    (built / "config.yaml").write_text(yaml.safe_dump({"app": app, "deploy": {"watch_minutes": 5}}))
    with recording() as seen:
        needed = {"deploy": run(seen, built, "deploy", "app", "--no-wait")}
        needed["deploy"] |= run(seen, built, "deploy", "app", "--finish")
        (built / "config.yaml").write_text(yaml.safe_dump({"app": app, "deploy": {"watch_minutes": 0}}))
        needed["rollback"] = run(seen, built, "rollback", "app")
    assert not_granted(needed, {}) == {}
    assert {"elasticloadbalancing:ModifyListener", "autoscaling:CreateOrUpdateTags",
            "cloudwatch:GetMetricData"} <= needed["deploy"]
    assert "ec2:CreateTags" in needed["rollback"]  # the rejected tag


def test_cost_makes_no_aws_call(tmp_path: Path) -> None:
    with moto(), recording() as seen:
        result = cli("cost", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert seen == []
    assert actions_for("cost", configlib.parse({})) == []


# -- calls the moto life cycle cannot make: real AWS only, repairs, another config --------------------
def operation_names(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"[a-z][a-z0-9_]+", node.value):
            yield node.value


def test_every_operation_the_code_names_is_in_the_policy() -> None:
    """Each boto3 operation named in threetier/ and steps/ (`"create_vpc"`) is an action of the
    policy, for one of the services that has an operation of that name; this finds the calls no moto
    run makes (the TLS bucket policy, an instance refresh, a repair)."""
    session = botocore.session.get_session()
    operations: dict[str, list[tuple[str, str]]] = {}
    for service in permissions.IAM_PREFIX:
        for operation in session.get_service_model(service).operation_names:
            operations.setdefault(xform_name(operation), []).append((service, operation))
    named = {name for path in [*sorted((ROOT / "threetier").rglob("*.py")), *sorted((ROOT / "steps").rglob("*.py"))]
             if "application" not in path.parts for name in operation_names(path) if name in operations}
    known = EMULATOR_ONLY | NEEDS_NO_PERMISSION
    assert len(named) > 150  # the scan found the code's calls
    assert sorted(name for name in named if not any(
        iam_action(service, operation) in known or allowed(iam_action(service, operation))
        for service, operation in operations[name])) == []


def test_every_action_granted_is_an_operation_or_a_known_permission() -> None:
    """A misspelt action (ec2:DescribeVpc) would grant nothing: each is an API operation's action, or a
    permission AWS checks beyond the call; each wildcard of the policy stands for reads only."""
    session = botocore.session.get_session()
    known = {iam_action(service, operation) for service in permissions.IAM_PREFIX
             for operation in session.get_service_model(service).operation_names}
    assert sorted(granted() - known - PERMISSION_ONLY) == []
    assert granted() >= PERMISSION_ONLY
    for wildcard in permissions.READ_WILDCARDS:
        verb = wildcard.split(":")[1]
        assert verb in ("Describe*", "Get*", "List*")
        assert [a for a in granted() if fnmatch.fnmatchcase(a, wildcard)], f"{wildcard} stands for no action"


# -- (3) the published files, (4) the documents -------------------------------------------------
def test_the_published_policies_are_the_generated_ones() -> None:
    assert list(permissions.POLICIES.values()) == ["docs/iam-policy.json", "docs/iam-policy-edge.json"]
    for name, path in permissions.POLICIES.items():
        assert (ROOT / path).read_text() == permissions.render(name), f"{path}: python -m threetier.permissions --write"


def python_m_permissions(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "threetier.permissions", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_python_m_threetier_permissions_prints_and_writes_them(tmp_path: Path) -> None:
    assert python_m_permissions().stdout == permissions.render("core")
    printed = python_m_permissions("edge").stdout
    assert json.loads(printed) == permissions.policy_document("edge") and printed == permissions.render("edge")
    (tmp_path / "docs").mkdir()
    written = python_m_permissions("--write", cwd=tmp_path)
    assert written.returncode == 0 and written.stdout.split() == list(permissions.POLICIES.values())
    for name, path in permissions.POLICIES.items():
        assert (tmp_path / path).read_text() == permissions.render(name)
    refused = python_m_permissions("everything")
    assert refused.returncode == 2 and "usage: python -m threetier.permissions [core|edge|--write]" in refused.stderr


@pytest.mark.parametrize("name", permissions.POLICIES)
def test_each_policy_is_an_iam_policy_document(name: str) -> None:
    document = permissions.policy_document(name)
    assert set(document) == {"Version", "Statement"} and document["Version"] == "2012-10-17"
    statements = document["Statement"]
    assert statements and len({s["Sid"] for s in statements}) == len(statements)
    for statement in statements:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert re.fullmatch(r"[A-Za-z0-9]+", statement["Sid"])
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        assert actions and actions == sorted(set(actions))
        assert all(re.fullmatch(r"[a-z0-9-]+:[A-Z][A-Za-z0-9]+", action) or action in permissions.READ_WILDCARDS
                   for action in actions), actions
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        assert resources and all(r == "*" or r.startswith("arn:*:") for r in resources)
        for operator, keys in statement.get("Condition", {}).items():
            assert operator in ("StringEquals", "ArnLike") and keys
    assert not any(action == "*" or action.endswith(":*") for action in policy_actions(document))
    assert not [action for action in EMULATOR_ONLY if permissions.allows(document, action)]


def policy_actions(document: dict[str, Any]) -> list[str]:
    """The document's Action entries (names, and the READ_WILDCARDS), as often as they are named."""
    return [action for statement in document["Statement"] for action in statement["Action"]]


def test_each_action_is_in_one_policy_for_what_it_acts_on() -> None:
    """An action is named once for each statement (what it may act on), in one of the two policies."""
    named = [(statement["Sid"], action) for document in documents() for statement in document["Statement"]
             for action in statement["Action"]]
    assert len(named) == len(set(named)), sorted({a for a in named if named.count(a) > 1})
    assert {action for _, action in named} == {permissions._shortened(action) for action in granted()}


def test_the_core_policy_alone_serves_a_stack_without_a_domain_and_the_edge_policy_only_the_edge() -> None:
    core, edge = permissions.policy_document("core"), permissions.policy_document("edge")
    default = configlib.parse({"monitoring": {"email": "ops@example.com"}, "database": {"restore_from": "latest"}})
    for command in permissions.COMMANDS:
        assert [a for a in actions_for(command, default) if not permissions.allows(core, a)] == [], command
    edge_only = {permissions._shortened(action) for grant in permissions.GRANTS if grant.feature in permissions.EDGE_FEATURES
                 for action in grant.actions}
    assert set(policy_actions(edge)) <= edge_only
    assert {"wafv2:CreateWebACL", "acm:RequestCertificate", "route53:ChangeResourceRecordSets"} <= set(policy_actions(edge))
    assert not {"wafv2:CreateWebACL", "acm:RequestCertificate"} & set(policy_actions(core))
    assert permissions.policy_files(["ec2:CreateVpc"]) == ["docs/iam-policy.json"]
    assert permissions.policy_files(["wafv2:CreateWebACL", "rds:CreateDBCluster"]) == list(permissions.POLICIES.values())
    with pytest.raises(ValueError, match="unknown policy 'all'"):
        permissions.policy_document("all")


@pytest.mark.parametrize("name", permissions.POLICIES)
def test_each_policy_fits_in_a_managed_policy(name: str) -> None:
    """IAM refuses a managed policy of more than 6,144 characters, whitespace aside (create-policy)."""
    document = json.dumps(permissions.policy_document(name), separators=(",", ":"))
    assert len(document) <= permissions.POLICY_SIZE_LIMIT


# -- actions_for and iam_action ------------------------------------------------------------------
@pytest.mark.parametrize("raw", [{}, EVERYTHING, {"monitoring": {"alarms": False, "dashboard": False,
                                                                 "flow_logs": False}}], ids=["default", "everything", "quiet"])
def test_each_commands_actions_are_sorted_and_in_the_policy(raw: dict[str, Any]) -> None:
    config = configlib.parse(raw)
    for command in permissions.COMMANDS:
        actions = actions_for(command, config)
        assert actions == sorted(set(actions))
        assert not_allowed(actions) == []
    assert actions_for("resume", config) == actions_for("replay", config) == actions_for("up", config)
    # status reads what up reads, and the account's own guards besides (which up never touches)
    assert set(actions_for("status", config)) - set(permissions.ACCOUNT_GUARDS) <= set(actions_for("up", config))
    assert not any(action.startswith(("ec2:Create", "ec2:Delete", "rds:Create", "rds:Delete"))
                   for action in actions_for("status", config) + actions_for("plan", config))
    # database.restore_from too (not in EVERYTHING: a life cycle from nothing has no snapshot to restore),
    # and edge.cdn.
    every_key = {**EVERYTHING, "edge": {**EVERYTHING["edge"], "cdn": True}, "database": {"restore_from": "latest"}}
    everything = set().union(*(actions_for(command, configlib.parse(every_key)) for command in permissions.COMMANDS))
    assert everything == granted()  # the whole config needs all the policy has


def test_turning_a_feature_off_takes_its_actions_away() -> None:
    everything = set(actions_for("up", configlib.parse(EVERYTHING)))
    quiet = set(actions_for("up", configlib.parse({"monitoring": {"alarms": False, "dashboard": False,
                                                                  "flow_logs": False}})))
    assert {"ec2:CreateFlowLogs", "cloudwatch:PutMetricAlarm", "cloudwatch:PutDashboard", "sns:CreateTopic",
            "wafv2:CreateWebACL", "acm:RequestCertificate"} <= everything - quiet
    assert "cloudwatch:PutMetricAlarm" not in actions_for("pause", configlib.parse({"monitoring": {"alarms": False}}))
    # `down` lists every certificate and web ACL of the region, whatever the config says.
    assert {"acm:ListCertificates", "wafv2:ListWebACLs"} <= set(actions_for("down", configlib.parse({})))


def test_an_unknown_command_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown command 'deplyo'"):
        actions_for("deplyo", configlib.parse({}))


@pytest.mark.parametrize(("service", "operation", "action"), [
    ("ec2", "CreateVpc", "ec2:CreateVpc"),
    ("elbv2", "CreateListener", "elasticloadbalancing:CreateListener"),
    ("cloudwatch", "PutMetricAlarm", "cloudwatch:PutMetricAlarm"),
    ("logs", "DescribeLogGroups", "logs:DescribeLogGroups"),
    ("s3", "HeadBucket", "s3:ListBucket"),
    ("s3", "ListObjectsV2", "s3:ListBucket"),
    ("s3", "HeadObject", "s3:GetObject"),
    ("s3", "DeleteObjects", "s3:DeleteObject"),
    ("s3", "ListObjectVersions", "s3:ListBucketVersions"),
    ("s3", "PutBucketEncryption", "s3:PutEncryptionConfiguration"),
    ("s3", "GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    ("s3", "PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    ("s3", "GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    ("s3", "UploadPart", "s3:PutObject"),
    ("s3", "PutBucketVersioning", "s3:PutBucketVersioning"),
])
def test_iam_action(service: str, operation: str, action: str) -> None:
    assert iam_action(service, operation) == action


def test_iam_action_of_an_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="no IAM prefix known for AWS service 'lambda'"):
        iam_action("lambda", "Invoke")
    assert actions_called([SimpleNamespace(service="sts", operation="GetCallerIdentity")]) == set()
