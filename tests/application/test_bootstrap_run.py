"""The builders' user data run for real on a simulated Amazon Linux 2023 host
(al2023/run-user-data.sh: overlays in a private mount namespace, fake dnf/aws/systemctl;
no Node.js, npm or nginx until dnf "installs" this machine's real ones), against the
bytes `threetier up` uploads."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from threetier.artifacts import (
    LOG_AGENT_CONFIG,
    application_files,
    render_app_log_agent_config,
    render_app_user_data,
    render_nginx_conf,
    render_web_log_agent_config,
    render_web_user_data,
)

from .conftest import SECRET_ARN
from .servers import Blackhole, free_port, http, wait_until

pytestmark = pytest.mark.slow  # starts real servers

RUNNER = Path(__file__).parent / "al2023" / "run-user-data.sh"
BUCKET = "threetier-code-123456789012-us-east-1"
APP_LOG_GROUP = "/threetier/threetier/app"
WEB_LOG_GROUPS = {"access_log_group": "/threetier/threetier/nginx-access",
                  "error_log_group": "/threetier/threetier/nginx-error"}
AGENT_CTL_CALL = f"amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:{LOG_AGENT_CONFIG}"
AGENT_DIR = "/opt/aws/amazon-cloudwatch-agent"
SEED = {"id": 1, "amount": 400, "description": "groceries"}


class Host:
    """One simulated instance: its overlay state, the bucket it reads, the services it starts."""

    def __init__(self, base: Path, bucket: Path, service_env: dict[str, str]):
        self.base = base
        self.state = base / "state"
        self.state.mkdir(parents=True)
        (self.state / "calls").touch()
        (base / "service.env").write_text("".join(f"{k}={v}\n" for k, v in service_env.items()))
        self.env = {**os.environ, "FAKE_BUCKET_NAME": BUCKET, "FAKE_BUCKET_DIR": str(bucket),
                    "FAKE_STATE_DIR": str(self.state), "FAKE_SERVICE_ENV": str(base / "service.env")}

    def run(self, user_data: str) -> subprocess.CompletedProcess:
        script = self.base / "user-data.sh"
        script.write_text(user_data)
        return subprocess.run([str(RUNNER), str(self.base / "root"), str(script)], env=self.env,
                              capture_output=True, text=True, timeout=300)

    def file(self, path: str) -> Path:
        top, rest = path.strip("/").split("/", 1)
        return self.base / "root" / top / "upper" / rest

    def calls(self) -> list[str]:
        return (self.state / "calls").read_text().splitlines()

    def stop(self) -> None:
        for pid_file in self.state.glob("*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.fixture
def bucket(tmp_path):
    root = tmp_path / "bucket"
    for key, content in application_files().items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(content)
    return root


@pytest.fixture
def hosts(tmp_path, bucket, secrets_manager, local_ca):
    made: list[Host] = []
    # What the instance role gives the app in AWS: a way to read the secret. And, the one
    # change for this machine to the unit's TLS settings: the test database's CA instead of
    # the RDS CAs (the unit's THREETIER_DB_TLS=required stands).
    service_env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_manager.url,
                   "THREETIER_DB_CA_BUNDLE": str(local_ca.ca_file)}

    def make(name: str) -> Host:
        host = Host(tmp_path / name, bucket, service_env)
        made.append(host)
        return host

    yield make
    for host in made:
        host.stop()


def test_app_and_web_builders_end_to_end(sandbox_ok, hosts, bucket, mariadb):
    app_port = free_port()
    user_data = render_app_user_data(bucket=BUCKET, region="us-east-1", db_host="localhost",
                                     db_name="bootstrapdb", db_secret_arn=SECRET_ARN, port=app_port,
                                     log_group=APP_LOG_GROUP)
    # The only change for this machine: the local MariaDB's port instead of Aurora's 3306.
    user_data = user_data.replace('"port": 3306', f'"port": {mariadb.port}')
    app_host = hosts("app")
    for attempt in (1, 2):  # the second run proves it can be run again
        result = app_host.run(user_data)
        assert result.returncode == 0, f"run {attempt}:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        assert app_host.file("/var/lib/threetier/bootstrap.done").is_file()
        assert http("GET", f"http://127.0.0.1:{app_port}/transaction")[2] == {"result": [SEED]}

    calls = app_host.calls()
    assert [c for c in calls if c.startswith("dnf ")] == \
        ["dnf install -y nodejs24 nodejs24-npm amazon-cloudwatch-agent logrotate"] * 2, "one dnf transaction per run"
    assert "alternatives --set node /usr/bin/node-24" in calls
    assert f"aws s3 cp --recursive --only-show-errors --region us-east-1 s3://{BUCKET}/app-tier/ " \
           "/opt/threetier/app-tier.new/" in calls
    assert "systemctl enable threetier-app.service" in calls
    config = json.loads(app_host.file("/etc/threetier/app-config.json").read_text())
    assert config["database"]["secretArn"] == SECRET_ARN and config["port"] == app_port
    unit = app_host.file("/etc/systemd/system/threetier-app.service").read_text()
    assert "ExecStart=/usr/bin/node-24 /opt/threetier/app-tier/src/server.js" in unit
    # The rows above came over TLS (the app's database user may log in no other way), with the
    # unit's setting; the RDS CAs are installed with the app.
    assert "Environment=THREETIER_DB_TLS=required\n" in unit
    assert app_host.file("/opt/threetier/app-tier/certs/rds-global-bundle.pem").read_bytes() == \
        application_files()["app-tier/certs/rds-global-bundle.pem"]
    assert app_host.file("/opt/threetier/app-tier/node_modules/mysql2").is_dir()
    assert not app_host.file("/opt/threetier/app-tier/node_modules/.bin/vite").exists()
    assert "bootstrap complete" in app_host.file("/var/log/threetier-bootstrap.log").read_text()
    # Its logs: the agent installed, configured with the app's file and group, started, enabled,
    # before the app starts (each run); the app's output in the very file the agent tails.
    agent = render_app_log_agent_config(log_group=APP_LOG_GROUP)
    assert_ships_logs(app_host, agent, before="systemctl restart threetier-app.service", runs=2)
    (entry,) = json.loads(agent)["logs"]["logs_collected"]["files"]["collect_list"]
    app_log = app_host.file(entry["file_path"]).read_text()
    assert app_log.count(f"app tier listening on 0.0.0.0:{app_port}") == 2, app_log  # one per run, appended
    assert "database schema ready" in app_log
    assert not (app_host.state / "threetier-app.service.log").exists(), "nothing of the app's outside that file"
    rotate = app_host.file("/etc/logrotate.d/threetier-app").read_text()
    assert rotate.startswith(f"{entry['file_path']} {{\n") and "copytruncate" in rotate

    # The web builder: nginx.conf is already rendered at the bucket root; the internal
    # ALB is played by the app tier started above.
    (bucket / "nginx.conf").write_bytes(render_nginx_conf("127.0.0.1", upstream_port=app_port))
    web_host = hosts("web")
    result = web_host.run(render_web_user_data(bucket=BUCKET, region="us-east-1", **WEB_LOG_GROUPS))
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert web_host.file("/var/lib/threetier/bootstrap.done").is_file()
    # Only nginx is installed (one dnf transaction); no Node.js, nothing is built: the
    # served files are the uploaded bundle, byte for byte.
    calls = web_host.calls()
    assert [c for c in calls if c.startswith("dnf ")] == ["dnf install -y nginx amazon-cloudwatch-agent logrotate"]
    assert not [c for c in calls if c.startswith("alternatives")]
    assert not web_host.file("/usr/bin/node-24").exists() and not web_host.file("/usr/bin/npm-24").exists()
    assert f"aws s3 cp --recursive --only-show-errors --region us-east-1 s3://{BUCKET}/web-tier/ " \
           "/usr/share/nginx/threetier.new/" in calls
    served = web_host.file("/usr/share/nginx/threetier")
    bundle = {k.removeprefix("web-tier/"): v for k, v in application_files().items() if k.startswith("web-tier/")}
    assert {p.relative_to(served).as_posix(): p.read_bytes() for p in served.rglob("*") if p.is_file()} == bundle
    assert "systemctl enable nginx.service" in calls
    assert http("GET", "http://127.0.0.1/health")[0] == 200
    assert http("GET", "http://127.0.0.1/")[2] == bundle["index.html"].decode()
    assert http("GET", "http://127.0.0.1/api/transaction")[2] == {"result": [SEED]}
    assert http("GET", "http://127.0.0.1/api/ready")[::2] == (200, {"status": "ok", "database": "up"})
    log = web_host.file("/var/log/threetier-bootstrap.log").read_text()
    assert "GET /api/ready through the internal ALB: {\"status\":\"ok\",\"database\":\"up\"}" in log
    # nginx's two logs, each to its group, are the files nginx writes: the requests above are there.
    agent = render_web_log_agent_config(**WEB_LOG_GROUPS)
    assert_ships_logs(web_host, agent, before="systemctl restart nginx.service", runs=1)
    access, error = json.loads(agent)["logs"]["logs_collected"]["files"]["collect_list"]
    assert (access["log_group_name"], error["log_group_name"]) == tuple(WEB_LOG_GROUPS.values())
    assert '"GET /api/transaction HTTP/1.1" 200' in web_host.file(access["file_path"]).read_text()
    assert web_host.file(error["file_path"]).is_file()


def assert_ships_logs(host: Host, agent_config: str, *, before: str, runs: int) -> None:
    """The agent's configuration written where the user data said, handed to the agent (the fake
    control script checks it as the agent's translator would), the agent started with it and
    enabled at boot -- each run, and before the tier's service starts."""
    calls = host.calls()
    assert calls.count(AGENT_CTL_CALL) == runs and calls.count("systemctl enable amazon-cloudwatch-agent.service") == runs
    for start in (i for i, call in enumerate(calls) if call == AGENT_CTL_CALL):
        assert calls.index("systemctl enable amazon-cloudwatch-agent.service", start) < calls.index(before, start)
    assert json.loads(host.file(LOG_AGENT_CONFIG).read_text()) == json.loads(agent_config)
    name = LOG_AGENT_CONFIG.rsplit("/", 1)[1]
    assert host.file(f"{AGENT_DIR}/etc/amazon-cloudwatch-agent.d/file_{name}").read_text() == \
        host.file(LOG_AGENT_CONFIG).read_text()
    assert json.loads((host.state / "cloudwatch-agent.started").read_text()) == json.loads(agent_config)


def test_the_simulated_host_has_no_node_or_nginx_until_installed(sandbox_ok, hosts):
    """What makes the test above prove that the web builder needs no Node.js."""
    host = hosts("bare")
    result = host.run("#!/bin/bash\nfor tool in node npm npx nginx node-24 npm-24; do\n"
                      "  command -v $tool && echo \"FOUND $tool\"\ndone\nexit 0\n")
    assert result.returncode == 0, result.stderr
    assert "FOUND" not in result.stdout


def test_the_app_image_bakes_without_its_database(sandbox_ok, hosts, mariadb):
    """The bake's health gate is liveness: with the database unreachable (a host that never
    answers) the app builder still completes, its app live and not ready."""
    silent = Blackhole()
    app_port = free_port()
    user_data = render_app_user_data(bucket=BUCKET, region="us-east-1", db_host="localhost",
                                     db_name="nodb", db_secret_arn=SECRET_ARN, port=app_port,
                                     log_group=APP_LOG_GROUP)
    user_data = user_data.replace('"port": 3306', f'"port": {silent.port}')
    host = hosts("nodb")
    try:
        result = host.run(user_data)
        assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        assert host.file("/var/lib/threetier/bootstrap.done").is_file()
        assert http("GET", f"http://127.0.0.1:{app_port}/health")[0] == 200
        status, _, body = http("GET", f"http://127.0.0.1:{app_port}/ready")
        assert (status, body["database"]) == (503, "down")
        assert '"database":"down"' in host.file("/var/log/threetier-bootstrap.log").read_text()
    finally:
        silent.close()


def test_a_failing_step_fails_the_bootstrap_loudly(sandbox_ok, hosts, bucket, mariadb):
    (bucket / "app-tier" / "package-lock.json").unlink()  # a broken upload
    host = hosts("broken")
    result = host.run(render_app_user_data(bucket=BUCKET, region="us-east-1", db_host="localhost",
                                           db_name="brokendb", db_secret_arn=SECRET_ARN, port=free_port(),
                                           log_group=APP_LOG_GROUP))
    assert result.returncode != 0
    log = host.file("/var/log/threetier-bootstrap.log")
    wait_until(lambda: "bootstrap FAILED (exit 1)" in log.read_text(), "the failure in the bootstrap log", 5)
    assert 'test -f "$dest.new/$required"' in log.read_text()
    assert host.file("/var/lib/threetier/bootstrap.failed").is_file()
    assert not host.file("/var/lib/threetier/bootstrap.done").exists()
    assert not any(call.startswith("systemctl") for call in host.calls())


def shorter_network_wait(user_data: str, *, wait: int = 900, poll: int = 5) -> str:
    """The user data with wait_for_network's limits (the script's own variables) set for a test."""
    for name, default, value in (("NETWORK_WAIT_SECONDS", 900, wait), ("NETWORK_POLL_SECONDS", 5, poll)):
        assert user_data.count(f"\n{name}={default}\n") == 1, name
        user_data = user_data.replace(f"\n{name}={default}\n", f"\n{name}={value}\n")
    return user_data


def test_the_bootstrap_waits_for_its_way_out(sandbox_ok, hosts):
    """The app builder boots while its NAT gateway is still pending: S3 does not answer the first
    tries; the bootstrap waits, touching nothing else, then installs as usual."""
    app_port = free_port()
    user_data = render_app_user_data(bucket=BUCKET, region="us-east-1", db_host="localhost",
                                     db_name="latedb", db_secret_arn=SECRET_ARN, port=app_port,
                                     log_group=APP_LOG_GROUP)
    user_data = user_data.replace('"port": 3306', f'"port": {free_port()}')  # no database: liveness only
    host = hosts("late-network")
    host.env["FAKE_NETWORK_DOWN_CALLS"] = "2"
    result = host.run(shorter_network_wait(user_data, poll=1))
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert host.file("/var/lib/threetier/bootstrap.done").is_file()
    assert http("GET", f"http://127.0.0.1:{app_port}/health")[0] == 200

    calls = host.calls()
    probe = f"aws s3api head-bucket --bucket {BUCKET} --region us-east-1 --cli-connect-timeout 5 --cli-read-timeout 5"
    assert calls[:3] == [probe] * 3, "three tries (two without the network) before anything else"
    assert probe not in calls[3:] and calls[3] == "dnf install -y nodejs24 nodejs24-npm amazon-cloudwatch-agent logrotate"
    log = host.file("/var/log/threetier-bootstrap.log").read_text()
    assert log.count("waiting for the network") == 1 and log.count("network through after") == 1
    assert f"waiting for the network (s3://{BUCKET} in us-east-1)" in log
    waited = int(re.search(r"network through after (\d+) s", log).group(1))
    assert 2 <= waited <= 30, "a try a second, two of them without an answer"
    assert "bootstrap complete" in log


@pytest.mark.parametrize("tier", ["app", "web"])
def test_no_way_out_fails_the_bootstrap_loudly(sandbox_ok, hosts, tier):
    """The network never comes: the bootstrap gives up at the end of the wait, through the ERR trap
    (marker + log), having installed nothing."""
    if tier == "app":
        user_data = render_app_user_data(bucket=BUCKET, region="us-east-1", db_host="localhost",
                                         db_name="offlinedb", db_secret_arn=SECRET_ARN, port=free_port(),
                                         log_group=APP_LOG_GROUP)
    else:
        user_data = render_web_user_data(bucket=BUCKET, region="us-east-1", **WEB_LOG_GROUPS)
    host = hosts(f"offline-{tier}")
    host.env["FAKE_NETWORK_DOWN_CALLS"] = "always"
    result = host.run(shorter_network_wait(user_data, wait=3, poll=1))
    assert result.returncode != 0
    log = host.file("/var/log/threetier-bootstrap.log")
    wait_until(lambda: "bootstrap FAILED (exit 1)" in log.read_text(), "the failure in the bootstrap log", 5)
    text = log.read_text()
    assert re.search(r"no network after \d+ s: Could not connect to the endpoint URL", text), text
    # The trap names the line of the call (a `return` inside a function is reported at its caller).
    line = user_data.splitlines().index("wait_for_network") + 1
    assert f"bootstrap FAILED (exit 1) at line {line}: return 1" in text, text
    assert host.file("/var/lib/threetier/bootstrap.failed").read_text().strip() == "1"
    assert not host.file("/var/lib/threetier/bootstrap.done").exists()
    calls = host.calls()
    assert len(calls) >= 3 and all(c.startswith("aws s3api head-bucket ") for c in calls), calls
