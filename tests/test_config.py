"""config.yaml validation: defaults reproduce the guide, and every bad value is refused
with exit 2 and one line naming the key, before any AWS call."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import boto3
import pytest
import yaml

from helpers import cli
from threetier import config as configlib

REPO = Path(__file__).resolve().parents[1]


def test_defaults_reproduce_the_guide() -> None:
    cfg = configlib.parse({})
    assert cfg.stack == "threetier" and cfg.region == "us-east-1"
    assert cfg.network.vpc_cidr == "10.0.0.0/16"
    assert cfg.network.web_subnets == ("10.0.0.0/24", "10.0.1.0/24")
    assert cfg.network.app_subnets == ("10.0.2.0/24", "10.0.3.0/24")
    assert cfg.network.db_subnets == ("10.0.4.0/24", "10.0.5.0/24")
    assert cfg.network.nat_gateways == "per_az" and cfg.network.azs == ()
    assert cfg.access.client_cidrs == ("0.0.0.0/0",) and cfg.access.admin_cidr is None
    assert cfg.app.port == 4000
    # The guide's groups are a fixed 2/2/2; the requirements ask them to scale (docs/interface.md, config.yaml).
    assert (cfg.app.asg.min, cfg.app.asg.desired, cfg.app.asg.max) == (2, 2, 4)
    assert (cfg.web.asg.min, cfg.web.asg.desired, cfg.web.asg.max) == (2, 2, 4)
    assert cfg.app.scaling == configlib.Scaling(cpu_target=60, requests_per_target=None)
    assert cfg.web.scaling == configlib.Scaling(cpu_target=60, requests_per_target=1000)
    assert cfg.database.engine_version.startswith("8.0.mysql_aurora.3.")
    assert cfg.load_balancers.deletion_protection is False
    assert not cfg.region_is_explicit


def test_shipped_config_yaml_is_exactly_the_defaults() -> None:
    shipped = configlib.load(REPO / "config.yaml")
    defaults = configlib.parse({})
    assert dataclasses.replace(shipped, source="", region_is_explicit=False) == dataclasses.replace(defaults, source="")
    # and it spells out every key
    raw = yaml.safe_load((REPO / "config.yaml").read_text())

    def keys(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, prefix + k + ".")
        return out
    assert keys(raw) == keys(configlib.DEFAULTS)


def test_partial_config_keeps_other_defaults() -> None:
    cfg = configlib.parse({"network": {"nat_gateways": "single"}, "access": {"admin_cidr": "203.0.113.7/32"}})
    assert cfg.network.nat_gateways == "single"
    assert cfg.network.vpc_cidr == "10.0.0.0/16"
    assert cfg.access.admin_cidr == "203.0.113.7/32"


BAD_CONFIGS = [
    ({"stak": "x"}, "stak"),
    ({"network": {"vpc": "10.0.0.0/16"}}, "network.vpc"),
    ({"app": {"asg": {"minimum": 1}}}, "app.asg.minimum"),
    ({"stack": "Bad_Name"}, "stack"),
    ({"stack": 7}, "stack"),
    ({"stack": "abc-"}, "stack"),
    ({"stack": "a--b"}, "stack"),
    ({"stack": "internal-app"}, "stack"),
    ({"stack": "sg-demo"}, "stack"),
    ({"region": "mars-1"}, "region"),
    ({"network": "10.0.0.0/16"}, "network"),
    ({"network": {"vpc_cidr": "10.0.0.0/33"}}, "network.vpc_cidr"),
    ({"network": {"vpc_cidr": "10.0.0.1/16"}}, "network.vpc_cidr"),
    ({"network": {"vpc_cidr": "10.0.0.0/8"}}, "network.vpc_cidr"),
    ({"network": {"subnets": {"web": ["10.1.0.0/24", "10.0.1.0/24"]}}}, "network.subnets.web[0]"),
    ({"network": {"subnets": {"app": ["10.0.0.0/24", "10.0.3.0/24"]}}}, "network.subnets.app[0]"),
    ({"network": {"subnets": {"db": ["10.0.4.0/24"]}}}, "network.subnets.db"),
    ({"network": {"subnets": {"db": ["10.0.4.0/24", "bogus"]}}}, "network.subnets.db[1]"),
    ({"network": {"subnets": {"db": ["10.0.4.0/24", 5]}}}, "network.subnets.db[1]"),
    ({"network": {"azs": ["us-east-1a"]}}, "network.azs"),
    ({"network": {"azs": ["us-east-1a", "us-east-1b", "us-east-1c"]}}, "network.azs"),
    ({"network": {"azs": ["us-east-1a", "us-east-1a"]}}, "network.azs"),
    ({"network": {"azs": ["eu-west-1a", "eu-west-1b"]}}, "network.azs[0]"),
    ({"network": {"nat_gateways": "none"}}, "network.nat_gateways"),
    ({"access": {"client_cidrs": []}}, "access.client_cidrs"),
    ({"access": {"client_cidrs": "0.0.0.0/0"}}, "access.client_cidrs"),
    ({"access": {"admin_cidr": "0.0.0.0/0"}}, "access.admin_cidr"),
    ({"access": {"admin_cidr": 12}}, "access.admin_cidr"),
    ({"access": {"admin_cidr": "0.0.0.0/1"}}, "access.admin_cidr"),
    ({"access": {"admin_cidr": "10.0.0.0/8"}}, "access.admin_cidr"),
    ({"database": {"engine_version": "5.7.mysql_aurora.2.11.2"}}, "database.engine_version"),
    ({"database": {"backup_retention_days": 0}}, "database.backup_retention_days"),
    ({"database": {"deletion_protection": "yes"}}, "database.deletion_protection"),
    ({"database": {"username": "root"}}, "database.username"),
    ({"database": {"instance_class": "t3.micro"}}, "database.instance_class"),
    ({"app": {"asg": {"min": 3, "desired": 2, "max": 4}}}, "app.asg"),
    ({"web": {"asg": {"min": 1, "desired": 5, "max": 4}}}, "web.asg"),
    ({"web": {"asg": {"min": -1}}}, "web.asg.min"),
    ({"app": {"asg": {"max": 2.5}}}, "app.asg.max"),
    ({"app": {"scaling": {"cpu": 50}}}, "app.scaling.cpu"),
    ({"app": {"scaling": 60}}, "app.scaling"),
    ({"app": {"scaling": {"cpu_target": "60"}}}, "app.scaling.cpu_target"),
    ({"app": {"scaling": {"cpu_target": True}}}, "app.scaling.cpu_target"),
    ({"app": {"scaling": {"cpu_target": 0}}}, "app.scaling.cpu_target"),
    ({"web": {"scaling": {"cpu_target": 100.5}}}, "web.scaling.cpu_target"),
    ({"web": {"scaling": {"cpu_target": -5}}}, "web.scaling.cpu_target"),
    ({"web": {"scaling": {"requests_per_target": 0}}}, "web.scaling.requests_per_target"),
    ({"web": {"scaling": {"requests_per_target": 2.5}}}, "web.scaling.requests_per_target"),
    ({"web": {"scaling": {"requests_per_target": True}}}, "web.scaling.requests_per_target"),
    ({"app": {"scaling": {"requests_per_target": True}}}, "app.scaling.requests_per_target"),
    ({"app": {"scaling": {"requests_per_target": "1000"}}}, "app.scaling.requests_per_target"),
    ({"app": {"scaling": {"requests_per_target": -1}}}, "app.scaling.requests_per_target"),
    ({"web": {"asg": {"min": 2, "desired": 2, "max": 2}}}, "web.scaling"),
    ({"app": {"port": True}}, "app.port"),
    ({"app": {"port": 80}}, "app.port"),
    ({"app": {"instance_type": "micro"}}, "app.instance_type"),
    ({"load_balancers": {"deletion_protection": "yes"}}, "load_balancers.deletion_protection"),
    ({"load_balancers": {"deletion_protection": 1}}, "load_balancers.deletion_protection"),
    ({"load_balancers": {"protection": True}}, "load_balancers.protection"),
    ({"load_balancers": True}, "load_balancers"),
    ({"monitoring": {"email": "not-an-address"}}, "monitoring.email"),
    ({"monitoring": {"email": 7}}, "monitoring.email"),
    ({"monitoring": {"email": "ops@example.com", "alarms": False}}, "monitoring.email"),
    ({"monitoring": {"log_retention_days": 10}}, "monitoring.log_retention_days"),
    ({"monitoring": {"flow_logs": "yes"}}, "monitoring.flow_logs"),
    ({"monitoring": {"dashbaord": True}}, "monitoring.dashbaord"),
    # Your own code (README "Your application"); the directories themselves: tests/test_sources.py.
    ({"app": {"source": 7}}, "app.source"),
    ({"app": {"source": ""}}, "app.source"),
    ({"app": {"runtime": "nodejs22"}}, "app.runtime"),
    ({"app": {"start": "node server.js"}}, "app.start"),
    ({"app": {"install": "npm ci"}}, "app.install"),
    ({"app": {"source": "app", "start": "node server.js"}}, "app.runtime"),
    ({"app": {"source": "app", "runtime": "nodejs23", "start": "node server.js"}}, "app.runtime"),
    ({"app": {"source": "app", "runtime": "java21", "start": "java -jar app.jar"}}, "app.runtime"),
    ({"app": {"source": "app", "runtime": "python3.12"}}, "app.start"),
    ({"app": {"source": "app", "runtime": "python3.12", "start": "python app.py\nrm -rf /"}}, "app.start"),
    ({"app": {"source": "app", "runtime": "python3.12", "start": "   "}}, "app.start"),
    ({"app": {"source": "app", "runtime": "python3.12", "start": "x" * 1001}}, "app.start"),
    ({"app": {"source": "app", "runtime": "python3.12", "start": "python app.py", "install": "a\0b"}},
     "app.install"),
    ({"app": {"health_path": "/healthz"}}, "app.health_path"),  # the demo answers /health
    ({"app": {"source": "app", "runtime": "python3.12", "start": "python app.py", "health_path": "health"}},
     "app.health_path"),
    ({"app": {"source": "app", "runtime": "python3.12", "start": "python app.py", "health_path": "/a b"}},
     "app.health_path"),
    ({"app": {"source": "app", "runtime": "python3.12", "start": "python app.py", "health_path": "/" + "a" * 1024}},
     "app.health_path"),
    ({"web": {"source": ""}}, "web.source"),
    ({"web": {"source": ["site"]}}, "web.source"),
    # CloudFront (issue 26): it serves edge.domain; its certificate is in us-east-1.
    ({"edge": {"cdn": True}}, "edge.cdn"),
    ({"edge": {"cdn": "yes", "domain": "shop.example.com", "hosted_zone": "example.com"}}, "edge.cdn"),
    ({"edge": {"domain": "shop.example.com", "hosted_zone": "example.com",
               "cdn_certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/" + "0" * 36}},
     "edge.cdn_certificate_arn"),
    ({"edge": {"cdn": True, "domain": "shop.example.com", "hosted_zone": "example.com",
               "cdn_certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/" + "0" * 36}},
     "edge.cdn_certificate_arn"),
    ({"edge": {"cdn": True, "domain": "shop.example.com", "hosted_zone": "example.com",
               "cdn_certificate_arn": "not-an-arn"}}, "edge.cdn_certificate_arn"),
    ({"edge": {"cdn": True, "domain": "shop.example.com", "hosted_zone": "example.com"},
      "access": {"client_cidrs": ["203.0.113.0/24"]}}, "access.client_cidrs"),
]


@pytest.mark.parametrize("raw,key", BAD_CONFIGS, ids=[key for _, key in BAD_CONFIGS])
def test_bad_config_exits_2_naming_the_key_before_any_aws_call(
        raw: dict, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real_client = boto3.Session.client
    monkeypatch.setattr(boto3.Session, "client", lambda self, name, *a, **k: made.append(name) or real_client(self, name, *a, **k))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    for command in (["up"], ["status"], ["down", "--yes"], ["replay", "2"]):
        result = cli(*command, cwd=tmp_path)
        assert result.code == 2, (command, result)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {key}:"), lines[0]
        assert "Traceback" not in result.stderr
    assert made == []  # no AWS client was even built


def test_admin_cidr_may_be_at_most_a_16() -> None:
    """The operator's own range: it reaches the web and app instances directly, past the load balancers."""
    assert configlib.parse({"access": {"admin_cidr": "172.16.0.0/16"}}).access.admin_cidr == "172.16.0.0/16"
    with pytest.raises(configlib.ConfigError) as refused:
        configlib.parse({"access": {"admin_cidr": "172.16.0.0/15"}})
    message = str(refused.value)
    assert message.startswith("access.admin_cidr: 172.16.0.0/15 is wider than a /16"), message
    assert "bypassing the load balancers" in message and "\n" not in message


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    result = cli("--config", str(tmp_path / "nope.yaml"), "status")
    assert result.code == 2
    assert "nope.yaml: no such config file" in result.stderr


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("stack: a\nnetwork: [\n")
    result = cli("up", "--yes", cwd=tmp_path)
    assert result.code == 2
    assert "not valid YAML (line" in result.stderr


def test_global_options_may_follow_the_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stack: 1\n")
    before = cli("--config", str(bad), "status")
    after = cli("status", "--config", str(bad))
    assert before.code == after.code == 2
    assert before.stderr == after.stderr


def test_load_balancers_deletion_protection_may_be_turned_on() -> None:
    cfg = configlib.parse({"load_balancers": {"deletion_protection": True}})
    assert cfg.load_balancers.deletion_protection is True
    assert cfg.database.deletion_protection is False  # each has its own key


def test_scaling_takes_any_number_as_cpu_target_and_null_turns_a_policy_off() -> None:
    cfg = configlib.parse({"app": {"scaling": {"cpu_target": 62.5, "requests_per_target": 500}},
                           "web": {"scaling": {"cpu_target": None}}})
    assert cfg.app.scaling == configlib.Scaling(cpu_target=62.5, requests_per_target=500)
    assert cfg.web.scaling == configlib.Scaling(cpu_target=None, requests_per_target=1000)
    assert configlib.parse({"web": {"scaling": {"cpu_target": 100}}}).web.scaling.cpu_target == 100
    # An omitted key keeps its default, as everywhere in config.yaml; {} keeps them all.
    assert configlib.parse({"web": {"scaling": {}}}).web.scaling == configlib.parse({}).web.scaling


def test_the_guides_fixed_groups_are_max_equal_min_with_scaling_null() -> None:
    fixed = {"asg": {"min": 2, "desired": 2, "max": 2}, "scaling": None}
    cfg = configlib.parse({"app": fixed, "web": fixed})
    assert cfg.app.scaling == cfg.web.scaling == configlib.NO_SCALING and not cfg.web.scaling.on
    assert (cfg.web.asg.min, cfg.web.asg.desired, cfg.web.asg.max) == (2, 2, 2)
    # Policies that could never act are refused, saying both ways out.
    with pytest.raises(configlib.ConfigError) as refused:
        configlib.parse({"app": {"asg": {"min": 3, "desired": 3, "max": 3}}})
    message = str(refused.value)
    assert message.startswith("app.scaling: app.asg has max == min (3)") and "\n" not in message
    assert "raise app.asg.max" in message and "app.scaling: null" in message
    # max == min is fine with both policies off one by one as well.
    off = {"cpu_target": None, "requests_per_target": None}
    assert not configlib.parse({"web": {"asg": {"min": 1, "desired": 1, "max": 1}, "scaling": off}}).web.scaling.on


def test_monitoring_defaults_and_a_valid_section() -> None:
    assert configlib.parse({}).monitoring == configlib.Monitoring(
        alarms=True, email=None, dashboard=True, flow_logs=True, log_retention_days=14)
    cfg = configlib.parse({"monitoring": {"email": "ops@example.com", "dashboard": False, "flow_logs": False,
                                          "log_retention_days": 90}})
    assert cfg.monitoring == configlib.Monitoring(alarms=True, email="ops@example.com", dashboard=False,
                                                  flow_logs=False, log_retention_days=90)


def test_your_code_keys_default_to_the_demo_and_resolve_against_the_config_files_directory(tmp_path: Path) -> None:
    defaults = configlib.parse({})
    assert (defaults.app.source, defaults.app.runtime, defaults.app.install, defaults.app.start) == (None,) * 4
    assert defaults.app.health_path == "/health" and defaults.web.source is None
    (tmp_path / "deploy").mkdir()
    path = tmp_path / "deploy" / "config.yaml"
    path.write_text(yaml.safe_dump({"app": {"source": "../api", "runtime": "python3.12", "install": "pip install .",
                                            "start": "python -m api", "health_path": "/healthz"},
                                    "web": {"source": str(tmp_path / "site")}}))
    cfg = configlib.load(path)
    assert cfg.app.source == str(tmp_path / "deploy" / ".." / "api")  # the file's directory, not the cwd
    assert (cfg.app.runtime, cfg.app.install, cfg.app.start, cfg.app.health_path) == \
        ("python3.12", "pip install .", "python -m api", "/healthz")
    assert cfg.web.source == str(tmp_path / "site")


def test_an_unknown_runtime_names_the_closest_and_every_known_one() -> None:
    with pytest.raises(configlib.ConfigError) as refused:
        configlib.parse({"app": {"source": "app", "runtime": "nodjs22", "start": "node app.js"}})
    message = str(refused.value)
    assert message.startswith("app.runtime: unknown runtime 'nodjs22', did you mean `nodejs22`?")
    assert "nodejs20, nodejs22, nodejs24, python3.11, python3.12, python3.13" in message


def test_cdn_is_off_by_default_and_names_its_origin_under_the_domain() -> None:
    assert configlib.parse({}).edge.cdn is False and configlib.parse({}).edge.origin_domain is None
    https_only = configlib.parse({"edge": {"domain": "shop.example.com", "hosted_zone": "example.com"}}).edge
    assert https_only.origin_domain is None  # without cdn the ALB serves the domain itself
    edge = configlib.parse({"edge": {"domain": "Shop.Example.com.", "hosted_zone": "example.com", "cdn": True,
                                     "cdn_certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/"
                                                            + "a" * 36}}).edge
    assert (edge.cdn, edge.origin_domain) == (True, "origin.shop.example.com")
    assert edge.cdn_certificate_arn is not None and ":us-east-1:" in edge.cdn_certificate_arn
