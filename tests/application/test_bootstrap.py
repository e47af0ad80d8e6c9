"""The two builders' user data (Amazon Linux 2023): rendered, checked by bash -n and
shellcheck, and free of injected values and leftovers from the workshop."""
from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest

from threetier.artifacts import (
    APP_LOG_FILE,
    LOG_AGENT_CONFIG,
    WEB_ROOT,
    render_app_log_agent_config,
    render_app_user_data,
    render_custom_app_user_data,
    render_web_log_agent_config,
    render_web_user_data,
)

from .servers import need

APP = dict(
    bucket="threetier-code-123456789012-us-east-1",
    region="us-east-1",
    db_host="threetier-db.cluster-c1a2b3c4d5e6.us-east-1.rds.amazonaws.com",
    db_name="webappdb",
    db_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-0a1b2c3d-4e5f-AbCdEf",
    port=4000,
    log_group="/threetier/threetier/app",
)
WEB = dict(bucket=APP["bucket"], region=APP["region"], access_log_group="/threetier/threetier/nginx-access",
           error_log_group="/threetier/threetier/nginx-error")

# Your app (app.source): a Python app, its install and start as config.yaml gives them (quotes and all).
CUSTOM = dict(APP, db_reader_host="threetier-db.cluster-ro-c1a2b3c4d5e6.us-east-1.rds.amazonaws.com",
              runtime="python3.12", install="pip install -r requirements.txt --target vendor",
              start="PYTHONPATH=vendor exec python -c 'import app; app.main()' \"$PORT\"", health_path="/healthz")


@pytest.fixture(params=["app", "web", "custom"])
def user_data(request, tmp_path):
    text = {"app": lambda: render_app_user_data(**APP), "web": lambda: render_web_user_data(**WEB),
            "custom": lambda: render_custom_app_user_data(**CUSTOM)}[request.param]()
    path = tmp_path / f"{request.param}-tier.sh"
    path.write_text(text)
    return request.param, text, path


def test_bash_accepts_it(user_data):
    _, _, path = user_data
    result = subprocess.run([need("bash"), "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_shellcheck_accepts_it(user_data):
    _, _, path = user_data
    result = subprocess.run([need("shellcheck"), "--shell=bash", "--severity=info", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_common_shape(user_data):
    _tier, text, _ = user_data
    assert text.startswith("#!/bin/bash\n")
    assert "@@" not in text
    assert "set -Eeuo pipefail" in text
    assert "exec > >(tee -p -a /var/log/threetier-bootstrap.log | log_sink) 2>&1" in text
    assert "logger -t threetier -s 2>/dev/console" in text
    assert text.rstrip().endswith("finish")
    assert "/var/lib/threetier" in text and "bootstrap.done" in text
    assert text.count("dnf install -y") == 1, "one dnf transaction, in install_packages"
    for workshop_only in ("amazon-linux-extras", "nvm", "pm2", "chmod -R 755 /home", "chkconfig"):
        assert workshop_only not in text
    assert len(text.encode()) < 16 * 1024, "EC2 user data is limited to 16 KB"
    assert f"BUCKET={APP['bucket']}\n" in text and f"REGION={APP['region']}\n" in text


def test_the_network_is_waited_for_first(user_data):
    """Before any dnf or S3: the app builder boots while its NAT gateway may still be pending."""
    _, text, _ = user_data
    steps = top_level_calls(text, "wait_for_network", "install_packages", "install_node", "fetch_tier", "retry",
                            "aws", "dnf", "curl")
    assert steps[0] == "wait_for_network" and steps.count("wait_for_network") == 1, steps
    assert "NETWORK_WAIT_SECONDS=900\n" in text and "NETWORK_POLL_SECONDS=5\n" in text  # 15 min, a try every 5 s


def test_app_user_data():
    text = render_app_user_data(**APP)
    config = json.loads(re.search(r"<<'JSON'\n(.*?)\nJSON\n", text, re.S).group(1))
    assert config == {"port": 4000, "database": {"host": APP["db_host"], "port": 3306, "name": "webappdb",
                                                 "secretArn": APP["db_secret_arn"], "region": "us-east-1"}}
    assert "password" not in text.lower(), "no credential in user data"
    assert top_level_calls(text, "install_packages", "install_node") == ["install_node"]
    assert 'install_packages "nodejs$NODE_MAJOR" "nodejs$NODE_MAJOR-npm"' in text
    assert 'fetch_tier app-tier "$APP_DIR" package-lock.json' in text
    assert '"$NPM" ci --omit=dev' in text and "run build" not in text
    assert "Restart=on-failure" in text and "WantedBy=multi-user.target" in text
    # TLS to the database, verified against the RDS CAs that ship with the app (src/tls.js):
    # the unit says so, and a bundle missing from the upload fails the bake before the app runs.
    assert "Environment=THREETIER_DB_TLS=required\n" in text
    assert "THREETIER_DB_CA_BUNDLE" not in text, "production trusts the bundled RDS CAs"
    assert 'test -s "$APP_DIR/certs/rds-global-bundle.pem"' in text
    assert "systemctl enable threetier-app.service" in text
    # The bake waits for liveness only: the database may not be reachable yet.
    assert top_level_calls(text, "wait_healthy") == ['wait_healthy "http://localhost:$APP_PORT/health" || app_unhealthy']
    assert "APP_PORT=4000\n" in text


def test_web_user_data_builds_nothing():
    text = render_web_user_data(**WEB)
    assert f"WEB_ROOT={WEB_ROOT}\n" in text
    assert top_level_calls(text, "install_packages", "install_node") == ["install_packages nginx"]
    assert re.search(r"\b(node|nodejs\d*|npm|npx|vite|NODE_MAJOR)\b", text, re.I) is None, \
        "no Node.js on the web builder: the bundle is built ahead of time"
    assert 'fetch_tier web-tier "$WEB_ROOT" index.html' in text
    assert 's3://$BUCKET/nginx.conf' in text and "nginx -t -c" in text
    assert "systemctl enable nginx.service" in text
    assert top_level_calls(text, "wait_healthy", "if ! wait_healthy") == ['if ! wait_healthy "http://localhost/health"; then']


def top_level_calls(text: str, *names: str) -> list[str]:
    """The lines of the script, outside function definitions, that call one of `names`."""
    calls, depth = [], 0
    for line in text.splitlines():
        if depth or re.match(r"^[A-Za-z_]\w*\(\) \{", line):
            depth += line.count("{") - line.count("}")
            continue
        if re.match(rf"^\s*({'|'.join(names)})\b", line):
            calls.append(line.strip())
    return calls


BAD_VALUES = {
    "bucket": ["", "Upper-Case", "a", "bucket;rm -rf /", "bucket$(id)", "b..b", "192.168.1.1", "xn--bucket", "a b"],
    "region": ["", "us-east", "us-east-1; reboot", "US-EAST-1", "us-east-1\n"],
    "db_host": ["", "host name", "host;id", "$(id).example.com", "host`id`", "a" * 254],
    "db_name": ["", "web-app", "db`; DROP", "x" * 65],
    "db_secret_arn": ["", "arn:aws:s3:::bucket", "arn:aws:secretsmanager:us-east-1:123:secret:x",
                      "arn:aws:secretsmanager:us-east-1:123456789012:secret:x'; id; '"],
    "port": [0, 65536, "4000", True, None],
    # Each lands in the agent's JSON, inside the user data's heredoc.
    "log_group": ["", "a b", 'grp"}', "grp\\x", "/threetier/$(id)/app", "/threetier/`id`/app", "grp\n",
                  "/threetier/../app", "g" * 513, None],
    "access_log_group": ["", 'grp"}', "/threetier/$(id)/nginx-access", "grp\nAGENT_CONFIG", 7],
    "error_log_group": ["", 'grp"}', "/threetier/x;id/nginx-error", "grp\nAGENT_CONFIG", 7],
}


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, values in BAD_VALUES.items() for v in values])
def test_unsafe_inputs_are_rejected(field, value):
    if field in APP:
        with pytest.raises(ValueError):
            render_app_user_data(**{**APP, field: value})
    if field in WEB:
        with pytest.raises(ValueError):
            render_web_user_data(**{**WEB, field: value})


# -- the tier's logs to CloudWatch Logs ---------------------------------------------------
def agent_config_in(text: str) -> dict:
    """The CloudWatch agent's configuration as the user data writes it."""
    return json.loads(re.search(r"<<'AGENT_CONFIG'\n(.*?)\nAGENT_CONFIG\n", text, re.S).group(1))


def test_the_log_agent_is_installed_configured_and_enabled(user_data):
    """Both builders install the CloudWatch agent from AL2023's repository in their one dnf
    transaction, write its configuration, start it with it and enable it (the images' instances
    start it at boot) -- before the tier's service starts, so its first lines are shipped too."""
    tier, text, _ = user_data
    assert "LOG_PACKAGES=(amazon-cloudwatch-agent logrotate)\n" in text
    assert 'local packages=("$@" "${LOG_PACKAGES[@]}")' in text
    assert "LOG_AGENT_CTL=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl\n" in text
    assert f"LOG_AGENT_CONFIG_FILE={LOG_AGENT_CONFIG}\n" in text
    ship_logs = re.search(r"^ship_logs\(\) \{\n(.*?)^\}\n\n", text, re.S | re.M).group(1)  # the JSON's own } too
    assert '"$LOG_AGENT_CTL" -a fetch-config -m ec2 -s -c "file:$LOG_AGENT_CONFIG_FILE"\n' in ship_logs
    assert ship_logs.index('cat > "$LOG_AGENT_CONFIG_FILE"') < ship_logs.index('"$LOG_AGENT_CTL"') \
        < ship_logs.index("systemctl enable amazon-cloudwatch-agent.service")
    steps = top_level_calls(text, "install_packages", "install_node", "ship_logs", "systemctl restart")
    assert steps.count("ship_logs") == 1
    assert steps.index("ship_logs") == 1, steps
    assert steps[0] in ("install_node", "install_packages nginx", "install_packages python3.12 python3.12-pip"), steps
    if tier in ("app", "custom"):
        assert steps.index("systemctl restart threetier-app.service") > steps.index("ship_logs")
        assert agent_config_in(text) == json.loads(render_app_log_agent_config(log_group=APP["log_group"]))
    else:
        assert agent_config_in(text) == json.loads(render_web_log_agent_config(
            access_log_group=WEB["access_log_group"], error_log_group=WEB["error_log_group"]))


def test_the_apps_output_goes_to_the_file_the_agent_tails():
    """The agent reads files, not the journal: the unit appends the app's stdout and stderr to
    the very file the agent's configuration names, and logrotate truncates it in place."""
    text = render_app_user_data(**APP)
    assert f"APP_LOG_FILE={APP_LOG_FILE}\n" in text
    (entry,) = agent_config_in(text)["logs"]["logs_collected"]["files"]["collect_list"]
    assert entry["file_path"] == APP_LOG_FILE and entry["log_group_name"] == APP["log_group"]
    unit = re.search(r"<<UNIT\n(.*?)\nUNIT\n", text, re.S).group(1)
    assert "StandardOutput=append:$APP_LOG_FILE\n" in unit and "StandardError=append:$APP_LOG_FILE\n" in unit
    assert 'install -d -m 0755 "$(dirname "$APP_LOG_FILE")"' in text, "systemd does not make the folder"
    rotate = re.search(r"<<ROTATE\n(.*?)\nROTATE\n", text, re.S).group(1)
    assert rotate.startswith("$APP_LOG_FILE {\n") and "    copytruncate\n" in rotate
    assert re.search(r"^\s+rotate \d+$", rotate, re.M) and "    maxsize 50M\n" in rotate
    # On a failed health check the bootstrap shows the app's own lines, no longer in the journal.
    assert 'tail -n 100 "$APP_LOG_FILE"' in text


def test_your_commands_reach_the_builder_as_written():
    """app.install and app.start are one line of shell each, quoted once: nothing in them is read as
    the script's own (a quote, a $, a template's @@ placeholder)."""
    start = """printf '%s' "$PORT @@BUCKET@@" && exec python app.py"""
    text = render_custom_app_user_data(**{**CUSTOM, "install": "echo '@@REGION@@' $HOME", "start": start})
    start_script = re.search(r"<<'START'\n(.*?)\nSTART\n", text, re.S).group(1)
    assert start_script == "#!/bin/bash\nexec /bin/bash -c " + shlex.quote(start)
    assert "\nAPP_INSTALL=" + shlex.quote("echo '@@REGION@@' $HOME") + "\n" in text
    assert "\nrun_install\n" in text


def test_the_longest_commands_fit_in_user_data():
    """app.install and app.start of 1,000 characters each (config's limit), the longest health path: still
    under EC2's 16 KB of user data."""
    text = render_custom_app_user_data(**{**CUSTOM, "install": "i" * 1000, "start": "s" * 1000,
                                          "health_path": "/" + "h" * 1023})
    assert len(text.encode()) < 16 * 1024
