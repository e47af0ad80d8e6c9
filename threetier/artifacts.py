"""The application the stack serves, as the bytes threetier uploads.

One function builds the bucket's contents so that the tests exercise the
very same bytes `threetier up` puts in S3. The renderers below produce the
nginx.conf of Part 6, the CloudWatch agent's configuration of each tier and
the user data of the two AMI builders (Parts 4 and 6); every value they
template in is validated first, so that nothing can inject nginx, JSON or
shell syntax, and no placeholder is left in the output.
"""
from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from threetier import sources

# The application ships inside the package (threetier/application/).
BUNDLED_APPLICATION = Path(__file__).parent / "application"
TIERS = ("app-tier", "web-tier")
# What goes to the bucket from each tier's folder. The app tier: its sources and lockfile
# (the builder runs npm ci --omit=dev). The web tier: only its committed Vite build, which
# the builder copies as it is -- no Node.js, no npm on it -- so the web image's fingerprint
# changes exactly when the served bytes do.
UPLOADED_DIR = {"app-tier": ".", "web-tier": "dist"}
WEB_BUNDLE_INDEX = "index.html"
# Never uploaded from within those folders: installed dependencies and build leftovers.
SKIPPED_DIRS = frozenset({"node_modules", "dist", "build", ".vite", "coverage"})

NGINX_TEMPLATE = BUNDLED_APPLICATION / "nginx.conf.template"
BOOTSTRAP_DIR = BUNDLED_APPLICATION / "bootstrap"
# Where the web builder installs the React build, and nginx serves it from.
WEB_ROOT = "/usr/share/nginx/threetier"
NGINX_LOG_DIR = "/var/log/nginx"
# What the CloudWatch agent (installed on both builders, so in both images) ships to the stack's
# log groups: the app's stdout and stderr, which its systemd unit appends to APP_LOG_FILE, and
# nginx's own two logs. Its configuration, rendered per tier from the template below, is written
# by the user data to LOG_AGENT_CONFIG.
APP_LOG_FILE = "/var/log/threetier/app.log"
NGINX_ACCESS_LOG = f"{NGINX_LOG_DIR}/access.log"
NGINX_ERROR_LOG = f"{NGINX_LOG_DIR}/error.log"
LOG_AGENT_TEMPLATE = {"app": BUNDLED_APPLICATION / "cloudwatch-agent-app.json.template",
                      "web": BUNDLED_APPLICATION / "cloudwatch-agent-web.json.template"}
LOG_AGENT_CONFIG = "/etc/threetier/cloudwatch-agent.json"

_PLACEHOLDER = re.compile(r"@@[A-Z_]+@@")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\Z")
_BUCKET = re.compile(r"(?!xn--)(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+\Z)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}\Z")
_DB_NAME = re.compile(r"[A-Za-z0-9_]{1,64}\Z")
_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]{1,512}\Z")
_HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,1023}\Z")
_ABS_PATH = re.compile(r"/(?:[A-Za-z0-9._-]+/?)*\Z")
# CloudWatch Logs' own rule for group names (1-512 of a-z A-Z 0-9 _ - / . #): nothing that could
# end a JSON string or the user data's heredoc. The stack's are /threetier/<stack>/<what>.
_LOG_GROUP = re.compile(r"[A-Za-z0-9_./#-]{1,512}\Z")


def application_files(source: Path | None = None) -> dict[str, bytes]:
    """Bucket key -> content for `app-tier/...` (the app's sources) and `web-tier/...` (the
    built bundle: `web-tier/index.html`, `web-tier/assets/...`), sorted by key."""
    root = Path(source) if source else BUNDLED_APPLICATION
    files: dict[str, bytes] = {}
    for tier in TIERS:
        if not (root / tier).is_dir():
            continue
        uploaded = (root / tier / UPLOADED_DIR[tier]).resolve()
        if tier == "web-tier" and not (uploaded / WEB_BUNDLE_INDEX).is_file():
            raise ValueError(f"{uploaded} has no {WEB_BUNDLE_INDEX}: build the web tier first "
                             f"(npm ci && npm run build in {root / tier})")
        for directory, subdirs, names in os.walk(uploaded):
            subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS]  # never walk into node_modules
            for name in names:
                path = Path(directory) / name
                files[f"{tier}/{path.relative_to(uploaded).as_posix()}"] = path.read_bytes()
    return dict(sorted(files.items()))


# Your app's tier (app.source): the directory byte for byte, plus the database's CA bundle (too large
# for user data) under the folder sources.RESERVED_DIR keeps for threetier.
RDS_CA_BUNDLE = BUNDLED_APPLICATION / "app-tier" / "certs" / "rds-global-bundle.pem"
CUSTOM_CA_KEY = f"app-tier/{sources.RESERVED_DIR}/rds-ca-bundle.pem"
# Where your app's builder puts what it receives (README "Your application").
CUSTOM_CA_BUNDLE = "/etc/threetier/rds-ca-bundle.pem"
CREDENTIALS_COMMAND = "/usr/local/bin/threetier-db-credentials"


def code_files(app_source: str | None, web_source: str | None) -> dict[str, bytes]:
    """What Part 1 uploads, bucket key -> content, sorted: each tier's own directory when config.yaml
    names one (app.source, web.source), else the bundled demo's."""
    files = {k: v for k, v in application_files().items()
             if (app_source is None and k.startswith("app-tier/")) or (web_source is None and k.startswith("web-tier/"))}
    if app_source is not None:
        files.update({f"app-tier/{path}": body for path, body in sources.tree(Path(app_source), "app.source").items()})
        files[CUSTOM_CA_KEY] = RDS_CA_BUNDLE.read_bytes()
    if web_source is not None:
        files.update({f"web-tier/{path}": body
                      for path, body in sources.tree(Path(web_source), "web.source", prefix="web-tier/").items()})
    return dict(sorted(files.items()))


def _check(pattern: re.Pattern[str], value: object, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value) or ".." in value.split("/"):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def _check_port(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def _fill(template: str, values: dict[str, str]) -> str:
    """Replaces each @@KEY@@ in one pass (a value is never read for placeholders: app.start may hold
    @@ as it likes); every placeholder must be known and used."""
    for key in values:
        if f"@@{key}@@" not in template:
            raise ValueError(f"template has no @@{key}@@")
    left = {placeholder for placeholder in _PLACEHOLDER.findall(template) if placeholder[2:-2] not in values}
    if left:
        raise ValueError(f"unfilled placeholders: {sorted(left)}")
    return _PLACEHOLDER.sub(lambda found: values[found.group()[2:-2]], template)


def render_nginx_conf(
    internal_alb_dns: str,
    *,
    upstream_port: int = 80,
    listen_port: int = 80,
    web_root: str = WEB_ROOT,
    log_dir: str = NGINX_LOG_DIR,
) -> bytes:
    """nginx.conf for the web tier: the build on :80, /health, /api/ -> the internal ALB.

    The keyword arguments exist for tests, which serve the same rendered config
    on loopback ports and temporary directories; `threetier up` uses the defaults.
    """
    host = _check(_HOSTNAME, internal_alb_dns, "internal ALB DNS name")
    port = _check_port(upstream_port, "upstream port")
    upstream = host if port == 80 else f"{host}:{port}"
    text = _fill(
        NGINX_TEMPLATE.read_text(),
        {
            "LOG_DIR": _check(_ABS_PATH, log_dir, "log directory"),
            "LISTEN_PORT": str(_check_port(listen_port, "listen port")),
            "WEB_ROOT": _check(_ABS_PATH, web_root, "web root"),
            "UPSTREAM": upstream,
        },
    )
    return text.encode()


def render_app_log_agent_config(*, log_group: str) -> str:
    """The CloudWatch agent's configuration on the app tier: the app's log file (its stdout and
    stderr) to `log_group`, one stream per instance."""
    return _render_log_agent_config("app", {
        "APP_LOG_FILE": _check(_ABS_PATH, APP_LOG_FILE, "app log file"),
        "APP_LOG_GROUP": _check(_LOG_GROUP, log_group, "app log group"),
    })


def render_web_log_agent_config(*, access_log_group: str, error_log_group: str) -> str:
    """The CloudWatch agent's configuration on the web tier: nginx's access and error logs, each
    to its group, one stream per instance."""
    return _render_log_agent_config("web", {
        "NGINX_ACCESS_LOG": _check(_ABS_PATH, NGINX_ACCESS_LOG, "nginx access log"),
        "NGINX_ACCESS_LOG_GROUP": _check(_LOG_GROUP, access_log_group, "nginx access log group"),
        "NGINX_ERROR_LOG": _check(_ABS_PATH, NGINX_ERROR_LOG, "nginx error log"),
        "NGINX_ERROR_LOG_GROUP": _check(_LOG_GROUP, error_log_group, "nginx error log group"),
    })


def _render_log_agent_config(tier: str, values: dict[str, str]) -> str:
    """No retention_in_days: the stack's groups get config.yaml's from Part 1, and an agent that
    set its own would need logs:PutRetentionPolicy (the tiers' roles have only what writing needs)."""
    text = _fill(LOG_AGENT_TEMPLATE[tier].read_text(), values).rstrip("\n")
    collected = json.loads(text)["logs"]["logs_collected"]["files"]["collect_list"]
    if any("retention_in_days" in entry for entry in collected):
        raise ValueError(f"{LOG_AGENT_TEMPLATE[tier].name}: retention is the stack's, not the agent's")
    return text


def _render_user_data(name: str, values: dict[str, str]) -> str:
    """The tier's script with common.sh spliced in at @@COMMON@@, then every placeholder of both filled."""
    common = (BOOTSTRAP_DIR / "common.sh").read_text().rstrip("\n")
    template = (BOOTSTRAP_DIR / name).read_text()
    if template.count("@@COMMON@@") != 1:
        raise ValueError(f"{name} must have @@COMMON@@ once")
    return _fill(template.replace("@@COMMON@@", common), values)


def _bucket_and_region(bucket: str, region: str) -> dict[str, str]:
    return {
        "BUCKET": shlex.quote(_check(_BUCKET, bucket, "bucket name")),
        "REGION": shlex.quote(_check(_REGION, region, "region")),
    }


def _log_agent(config: str) -> dict[str, str]:
    """What common.sh's ship_logs needs: where the agent's configuration goes, and the configuration."""
    return {"LOG_AGENT_CONFIG_FILE": shlex.quote(LOG_AGENT_CONFIG), "LOG_AGENT_CONFIG": config}


def render_app_user_data(
    *, bucket: str, region: str, db_host: str, db_name: str, db_secret_arn: str, port: int, log_group: str
) -> str:
    """User data of the app-tier builder: the Node.js app as a systemd service on `port`, its
    stdout and stderr appended to APP_LOG_FILE, which the CloudWatch agent ships to `log_group`."""
    config = {
        "port": _check_port(port, "app port"),
        "database": {
            "host": _check(_HOSTNAME, db_host, "database host"),
            "port": 3306,
            "name": _check(_DB_NAME, db_name, "database name"),
            "secretArn": _check(_SECRET_ARN, db_secret_arn, "database secret ARN"),
            "region": _check(_REGION, region, "region"),
        },
    }
    return _render_user_data(
        "app-tier.sh",
        {
            **_bucket_and_region(bucket, region),
            "APP_PORT": str(port),
            "APP_CONFIG": json.dumps(config, indent=2),
            "APP_LOG_FILE": shlex.quote(APP_LOG_FILE),
            **_log_agent(render_app_log_agent_config(log_group=log_group)),
        },
    )


def app_environment(*, port: int, db_host: str, db_reader_host: str, db_name: str, db_secret_arn: str,
                    region: str) -> str:
    """/etc/threetier/app.env, what your app's service receives (systemd's EnvironmentFile=): where the
    database is and how to get in, never a secret. Every value checked, each double-quoted (systemd's
    quoting: nothing here holds a quote or a backslash)."""
    values = {
        "PORT": str(_check_port(port, "app port")),
        "DB_HOST": _check(_HOSTNAME, db_host, "database host"),
        "DB_READER_HOST": _check(_HOSTNAME, db_reader_host or db_host, "database reader host"),
        "DB_PORT": "3306",
        "DB_NAME": _check(_DB_NAME, db_name, "database name"),
        "DB_SECRET_ARN": _check(_SECRET_ARN, db_secret_arn, "database secret ARN"),
        "DB_CA_BUNDLE": CUSTOM_CA_BUNDLE,
        "DB_CREDENTIALS_COMMAND": CREDENTIALS_COMMAND,
        "AWS_REGION": _check(_REGION, region, "region"),
        "AWS_DEFAULT_REGION": region,
    }  # and THREETIER_HEALTH_PATH, which the script adds from its HEALTH_PATH (user data holds it once)
    return "\n".join(f'{key}="{value}"' for key, value in values.items())


def render_custom_app_user_data(
    *, bucket: str, region: str, db_host: str, db_reader_host: str, db_name: str, db_secret_arn: str, port: int,
    log_group: str, runtime: str, install: str | None, start: str, health_path: str,
) -> str:
    """User data of the app-tier builder for your app (app.source): the runtime from AL2023's repository,
    app.install run once, app.start as the systemd service threetier-app on `port` (app-custom.sh)."""
    chosen = sources.RUNTIMES[runtime]
    for command in (install or "", start):
        if "\n" in command or "\r" in command or "\0" in command:
            raise ValueError(f"not one line: {command!r}")
    return _render_user_data(
        "app-custom.sh",
        {
            **_bucket_and_region(bucket, region),
            "APP_PORT": str(_check_port(port, "app port")),
            "APP_LOG_FILE": shlex.quote(APP_LOG_FILE),
            "HEALTH_PATH": shlex.quote(_check(_HEALTH_PATH, health_path, "health path")),
            "APP_INSTALL": shlex.quote(install or ""),
            "RUNTIME_PACKAGES": " ".join(shlex.quote(package) for package in chosen.packages),
            "RUNTIME_COMMANDS": "\n".join(f"{name} {command}" for name, command in chosen.commands),
            "RUNTIME_VERSION": chosen.version,
            "APP_ENV": app_environment(port=port, db_host=db_host, db_reader_host=db_reader_host, db_name=db_name,
                                       db_secret_arn=db_secret_arn, region=region),
            # Two lines, neither the heredoc's end (START): app.start, exec'd by bash.
            "START_SCRIPT": f"#!/bin/bash\nexec /bin/bash -c {shlex.quote(start)}",
            **_log_agent(render_app_log_agent_config(log_group=log_group)),
        },
    )


def render_web_user_data(*, bucket: str, region: str, access_log_group: str, error_log_group: str) -> str:
    """User data of the web-tier builder: nginx serving the React build copied from the bucket, its
    access and error logs shipped by the CloudWatch agent to the two groups."""
    return _render_user_data(
        "web-tier.sh",
        {
            **_bucket_and_region(bucket, region),
            "WEB_ROOT": shlex.quote(WEB_ROOT),
            **_log_agent(render_web_log_agent_config(access_log_group=access_log_group,
                                                     error_log_group=error_log_group)),
        },
    )
