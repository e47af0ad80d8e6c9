"""The CloudWatch agent's configuration of each tier (threetier.artifacts renders it from the
templates shipped with the application): valid JSON naming the right files and groups, no
retention of its own, and nothing but a valid log group name templated in."""
from __future__ import annotations

import json
import re

import pytest

from threetier import artifacts
from threetier.artifacts import (
    APP_LOG_FILE,
    render_app_log_agent_config,
    render_nginx_conf,
    render_web_log_agent_config,
)
from threetier.blocks import log_groups

STACK = "threetier"
APP_GROUP = log_groups.name_for(STACK, log_groups.APP)
ACCESS_GROUP = log_groups.name_for(STACK, log_groups.NGINX_ACCESS)
ERROR_GROUP = log_groups.name_for(STACK, log_groups.NGINX_ERROR)
# What the agent's schema allows in a logs.logs_collected.files.collect_list entry that this
# stack could want; retention_in_days is deliberately not among them.
ENTRY_KEYS = {"file_path", "log_group_name", "log_stream_name"}


def collected(text: str) -> list[dict]:
    config = json.loads(text)
    assert set(config) == {"logs"}, "logs only: no metrics section (it would need cloudwatch:PutMetricData)"
    assert set(config["logs"]) == {"logs_collected"} and set(config["logs"]["logs_collected"]) == {"files"}
    return config["logs"]["logs_collected"]["files"]["collect_list"]


def test_the_app_tier_ships_the_apps_log_file_to_its_group():
    assert collected(render_app_log_agent_config(log_group=APP_GROUP)) == [
        {"file_path": APP_LOG_FILE, "log_group_name": "/threetier/threetier/app", "log_stream_name": "{instance_id}"},
    ]


def test_the_web_tier_ships_nginxs_two_logs_each_to_its_group():
    entries = collected(render_web_log_agent_config(access_log_group=ACCESS_GROUP, error_log_group=ERROR_GROUP))
    assert entries == [
        {"file_path": "/var/log/nginx/access.log", "log_group_name": "/threetier/threetier/nginx-access",
         "log_stream_name": "{instance_id}"},
        {"file_path": "/var/log/nginx/error.log", "log_group_name": "/threetier/threetier/nginx-error",
         "log_stream_name": "{instance_id}"},
    ]
    # The very files the rendered nginx.conf (as `threetier up` renders it) writes.
    conf = render_nginx_conf("internal-threetier-app-alb-1.us-east-1.elb.amazonaws.com").decode()
    assert re.findall(r"^\s*access_log (\S+) main;", conf, re.M) == [entries[0]["file_path"]]
    assert re.findall(r"^error_log (\S+) \w+;", conf, re.M) == [entries[1]["file_path"]]


@pytest.mark.parametrize("tier", ["app", "web"])
def test_no_retention_and_nothing_the_agent_does_not_know(tier):
    """The stack owns retention (Part 1, config.yaml's); the tiers' roles may not set it."""
    text = (render_app_log_agent_config(log_group=APP_GROUP) if tier == "app" else
            render_web_log_agent_config(access_log_group=ACCESS_GROUP, error_log_group=ERROR_GROUP))
    assert "retention" not in text
    for entry in collected(text):
        assert set(entry) == ENTRY_KEYS
        assert entry["log_stream_name"] == "{instance_id}", "one stream per instance, builders included"
        assert entry["log_group_name"].startswith(log_groups.prefix_for(STACK))


def test_the_longest_stack_names_groups_are_accepted():
    stack = "a" + "-b" * 10  # 21 characters, config's longest
    groups = {what: log_groups.name_for(stack, what) for what in (log_groups.APP, log_groups.NGINX_ACCESS,
                                                                  log_groups.NGINX_ERROR)}
    assert collected(render_app_log_agent_config(log_group=groups[log_groups.APP]))[0]["log_group_name"] == \
        groups[log_groups.APP]
    web = render_web_log_agent_config(access_log_group=groups[log_groups.NGINX_ACCESS],
                                      error_log_group=groups[log_groups.NGINX_ERROR])
    assert [e["log_group_name"] for e in collected(web)] == [groups[log_groups.NGINX_ACCESS],
                                                             groups[log_groups.NGINX_ERROR]]


BAD_GROUPS = ["", "a b", 'grp", "retention_in_days": 1, "x": "', "grp\\", "grp\nAGENT_CONFIG",
              "/threetier/$(id)/app", "/threetier/`id`/app", "/threetier/../app", "/threetier/x;id", "g" * 513,
              None, 7]


@pytest.mark.parametrize("bad", BAD_GROUPS)
def test_a_bad_group_name_is_refused(bad):
    with pytest.raises(ValueError, match="invalid app log group"):
        render_app_log_agent_config(log_group=bad)
    with pytest.raises(ValueError, match="invalid nginx access log group"):
        render_web_log_agent_config(access_log_group=bad, error_log_group=ERROR_GROUP)
    with pytest.raises(ValueError, match="invalid nginx error log group"):
        render_web_log_agent_config(access_log_group=ACCESS_GROUP, error_log_group=bad)


def test_a_template_setting_retention_is_refused(tmp_path, monkeypatch):
    template = tmp_path / "agent.json.template"
    config = json.loads(artifacts.LOG_AGENT_TEMPLATE["app"].read_text())
    config["logs"]["logs_collected"]["files"]["collect_list"][0]["retention_in_days"] = 7
    template.write_text(json.dumps(config))
    monkeypatch.setitem(artifacts.LOG_AGENT_TEMPLATE, "app", template)
    with pytest.raises(ValueError, match="retention is the stack's"):
        render_app_log_agent_config(log_group=APP_GROUP)


def test_a_template_that_is_not_json_is_refused(tmp_path, monkeypatch):
    template = tmp_path / "agent.json.template"
    template.write_text(artifacts.LOG_AGENT_TEMPLATE["app"].read_text().replace('"{instance_id}"', "{instance_id}"))
    monkeypatch.setitem(artifacts.LOG_AGENT_TEMPLATE, "app", template)
    with pytest.raises(ValueError):
        render_app_log_agent_config(log_group=APP_GROUP)


def test_the_templates_ship_with_the_application():
    """They sit in threetier/application/ itself, which setup.cfg's package_data ships whole."""
    for tier, template in artifacts.LOG_AGENT_TEMPLATE.items():
        assert template.parent == artifacts.BUNDLED_APPLICATION and template.is_file(), tier
        assert re.findall(r"@@[A-Z_]+@@", template.read_text()), "templated, not fixed names"
