"""Your code's directories (app.source, web.source): what `up`, `plan` and `replay` refuse before any
AWS call, what the bucket then holds (moto), and what changes the images' fingerprints."""
from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
import yaml

from helpers import cli, make_engine
from steps import app_image, app_tier, storage, web_image, web_tier
from threetier import artifacts, sources
from threetier import config as configlib
from threetier.blocks import balancing

PYTHON_APP = {"runtime": "python3.12", "install": "pip install -r requirements.txt --target vendor",
              "start": "python app.py", "health_path": "/healthz"}


def make_app(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text("print('hello')\n")
    (directory / "requirements.txt").write_text("PyMySQL==1.1.1\n")
    (directory / "lib").mkdir(exist_ok=True)
    (directory / "lib" / "util.py").write_text("X = 1\n")
    return directory


def make_site(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.html").write_text("<!doctype html><title>mine</title>\n")
    (directory / "assets").mkdir(exist_ok=True)
    (directory / "assets" / "app.js").write_text("console.log('mine')\n")
    return directory


def write_config(directory: Path, app: Path | str, site: Path | str) -> None:
    (directory / "config.yaml").write_text(yaml.safe_dump({"app": {"source": str(app), **PYTHON_APP},
                                                           "web": {"source": str(site)}}))


def fifo(path: Path) -> None:
    os.mkfifo(path)


def non_utf8_name(path: Path) -> None:
    (path.parent / os.fsdecode(b"caf\xe9.txt")).write_text("x")


def long_name(path: Path) -> None:
    deep = path.parent
    for _ in range(6):
        deep = deep / ("d" * 200)
    deep.mkdir(parents=True)
    (deep / "f.txt").write_text("x")


# What breaks the app's directory, how, and what the one line says after "app.source: <dir>: ".
BROKEN_APPS = {
    "missing": (lambda app: os.rename(app, app.with_name("elsewhere")), "no such directory"),
    "a file": (lambda app: (os.rename(app, app.with_name("elsewhere")), app.write_text("x")), "is not a directory"),
    "a symlink": (lambda app: (app / "link.py").symlink_to(app / "app.py"), "link.py: a symbolic link"),
    "a FIFO": (lambda app: fifo(app / "pipe"), "pipe: not a regular file"),
    ".git": (lambda app: (app / ".git").mkdir(), ".git: a version control folder"),
    ".threetier": (lambda app: (app / ".threetier").mkdir(), ".threetier: reserved"),
    "not UTF-8": (lambda app: non_utf8_name(app / "x"), "a name that is not UTF-8"),
    "a long key": (lambda app: long_name(app / "x"), "a path longer than S3's keys"),
    "unreadable": (lambda app: (app / "lib").chmod(0), "lib/: cannot read: Permission denied"),
}


@pytest.mark.parametrize("broken", BROKEN_APPS, ids=list(BROKEN_APPS))
def test_a_source_the_upload_cannot_carry_is_refused_before_any_aws_call(
        broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if broken == "unreadable" and os.geteuid() == 0:  # root reads every directory: as the kernel would refuse
        real_scandir = os.scandir

        def scandir(path):
            if Path(path).name == "lib":
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)
        monkeypatch.setattr(sources.os, "scandir", scandir)
    app, site = make_app(tmp_path / "outside" / "api"), make_site(tmp_path / "outside" / "site")
    write_config(tmp_path, app, site)
    breaks, said = BROKEN_APPS[broken]
    breaks(app)
    assert_refused(tmp_path, monkeypatch, f"error: app.source: {app}", said)


def test_a_site_without_index_html_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, site = make_app(tmp_path / "api"), make_site(tmp_path / "site")
    (site / "index.html").rename(site / "main.html")
    write_config(tmp_path, app, site)
    assert_refused(tmp_path, monkeypatch, f"error: web.source: {site} has no index.html at its top", "")


@pytest.mark.parametrize("limit,value,said", [("FILES_MAX", 2, "more than 2 files"),
                                              ("BYTES_MAX", 20, "MiB; leave out")])
def test_a_source_over_the_limits_is_refused(limit: str, value: int, said: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, limit, value)
    app, site = make_app(tmp_path / "api"), make_site(tmp_path / "site")
    write_config(tmp_path, app, site)
    assert_refused(tmp_path, monkeypatch, f"error: app.source: {app}: more than", said)


def test_the_stated_limits() -> None:
    """README "Your application" states them: 5,000 files, 50 MiB."""
    assert (sources.FILES_MAX, sources.BYTES_MAX) == (5_000, 50 * 1024 * 1024)


def assert_refused(directory: Path, monkeypatch: pytest.MonkeyPatch, starts: str, says: str) -> None:
    made: list[str] = []
    real_client = boto3.Session.client
    monkeypatch.setattr(boto3.Session, "client",
                        lambda self, name, *a, **k: made.append(name) or real_client(self, name, *a, **k))
    for command in (["up", "--yes"], ["plan"], ["replay", "1"]):
        result = cli(*command, cwd=directory)
        lines = result.stderr.strip().splitlines()
        assert (result.code, len(lines)) == (2, 1), (command, result)
        assert lines[0].startswith(starts) and says in lines[0], lines[0]
    assert made == []  # no AWS client was even built


def test_the_bucket_holds_your_code_from_outside_the_project(built: Path, tmp_path: Path) -> None:
    """A stack built with the demo; config.yaml then names directories outside the project: Part 1's
    upload alone (replay) puts exactly that code in the bucket, the demo's gone, and the images that
    carry it are due for a new bake."""
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    app, site = make_app(outside / "api"), make_site(outside / "site")
    write_config(built, app, site)
    result = cli("replay", "1", cwd=built)
    assert result.code == 0, result

    bucket = json.loads(cli("status", "--json", cwd=built).stdout)["outputs"]["bucket"]
    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["app-tier/.threetier/rds-ca-bundle.pem", "app-tier/app.py", "app-tier/lib/util.py",
                    "app-tier/requirements.txt", "nginx.conf", "web-tier/assets/app.js", "web-tier/index.html"]
    assert s3.get_object(Bucket=bucket, Key="app-tier/app.py")["Body"].read() == (app / "app.py").read_bytes()
    assert s3.get_object(Bucket=bucket, Key="web-tier/index.html")["Body"].read() == (site / "index.html").read_bytes()
    assert s3.get_object(Bucket=bucket, Key="app-tier/.threetier/rds-ca-bundle.pem")["Body"].read() == \
        artifacts.RDS_CA_BUNDLE.read_bytes()

    plan = json.loads(cli("plan", "--json", cwd=built).stdout)
    parts = {part["name"]: part for part in plan["parts"]}
    assert parts["storage"]["change"] == [], "the upload is done"
    for name in ("app-image", "web-image"):
        assert parts[name]["create"] or parts[name]["change"], (name, parts[name])  # a new image is due


def test_the_fingerprint_changes_with_install_start_runtime_and_source_bytes(built: Path, tmp_path: Path) -> None:
    """The app image's fingerprint (user data + baked files) moves with each of app.install, app.start,
    app.runtime and the source's bytes; the web image's with the site's bytes."""
    app, site = make_app(tmp_path / "api"), make_site(tmp_path / "site")

    def fingerprints(**app_keys: str) -> tuple[str, str]:
        engine = make_engine(built, {"app": {"source": str(app), **PYTHON_APP, **app_keys}, "web": {"source": str(site)}})
        return app_image.bake(engine.ctx).fingerprint, web_image.bake(engine.ctx).fingerprint

    base = fingerprints()
    seen = {base[0]}
    for change in ({"install": "pip install -r requirements.txt --target lib"}, {"start": "python -m app"},
                   {"runtime": "python3.13"}, {"health_path": "/alive"}):
        app_print, web_print = fingerprints(**change)
        assert app_print not in seen and web_print == base[1], change
        seen.add(app_print)
    (app / "app.py").write_text("print('hello, world')\n")
    assert fingerprints()[0] not in seen
    (site / "index.html").write_text("<!doctype html><title>changed</title>\n")
    assert fingerprints()[1] != base[1]


def test_the_password_is_in_no_user_data_bucket_or_state(built: Path, tmp_path: Path) -> None:
    """Your app's builder gets the secret's ARN and a command that reads it, never the password."""
    app, site = make_app(tmp_path / "api"), make_site(tmp_path / "site")
    write_config(built, app, site)
    assert cli("replay", "1", cwd=built).code == 0
    engine = make_engine(built, yaml.safe_load((built / "config.yaml").read_text()))
    arn = engine.ctx.resources_of(3)["db_secret_arn"]
    password = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])["password"]
    assert len(password) >= 8
    user_data = app_image.bake(engine.ctx).user_data
    assert arn in user_data and password not in user_data
    assert f'DB_CREDENTIALS_COMMAND="{artifacts.CREDENTIALS_COMMAND}"' in user_data
    s3, bucket = boto3.client("s3"), engine.ctx.resources_of(storage.NUMBER)["bucket"]
    for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        assert password.encode() not in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read(), obj["Key"]
    for state_file in (built / "state.json", *(built / ".threetier").glob("*.json")):
        assert password not in state_file.read_text(), state_file


def test_the_demo_is_the_default(tmp_path: Path) -> None:
    """No source: the bucket's code is the bundled demo's, exactly as before."""
    assert artifacts.code_files(None, None) == artifacts.application_files()
    config = configlib.parse({})
    sources.check(config)  # nothing to check


def test_status_and_down_work_on_when_a_source_directory_has_gone(built: Path, tmp_path: Path) -> None:
    """The directories are checked by the commands that upload or plan them; `status` says what it
    cannot tell and exits as for any drift, `cost` needs none of them, `down` removes the stack."""
    raw = yaml.safe_load((built / "config.yaml").read_text()) or {}
    write_config(built, tmp_path / "gone", tmp_path / "gone-site")
    merged = yaml.safe_load((built / "config.yaml").read_text())
    (built / "config.yaml").write_text(yaml.safe_dump({**raw, **merged}))
    status = cli("status", cwd=built)
    assert status.code == 3, status
    assert f"application code: app.source: {tmp_path / 'gone'}: no such directory" in " ".join(status.stdout.split())
    assert cli("cost", cwd=built).code == 0
    assert cli("plan", cwd=built).code == 2
    down = cli("down", "--yes", cwd=built)
    assert down.code == 0, down
    assert boto3.client("ec2").describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])["Vpcs"] == []


def test_the_app_target_group_and_the_bake_check_the_health_path(built: Path, tmp_path: Path) -> None:
    """app.health_path is what the app's target group asks (the web tier's stays nginx's /health), and
    what the bake waits for on the builder."""
    raw = {"stack": "other", "app": {"source": str(make_app(tmp_path / "api")), **PYTHON_APP}}
    engine = make_engine(built, raw)  # another stack's name: new target groups, in the built stack's VPC
    ctx = engine.ctx
    paths = {}
    for step in (app_tier, web_tier):
        ctx.part = engine.part(str(step.NUMBER))
        tier = step.tier(ctx)
        arn = balancing.ensure_target_group(ctx, tier, tier.vpc)
        paths[tier.tier] = boto3.client("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0][
            "HealthCheckPath"]
    assert paths == {"app": "/healthz", "web": "/health"}
    assert app_image.bake(ctx).health_url == "http://localhost:4000/healthz"
