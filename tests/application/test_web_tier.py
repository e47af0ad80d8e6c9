"""The web tier: the React build (the uploaded bundle) served by real nginx with the rendered
nginx.conf, /api/ proxied to a real app tier, and the page driven in headless Chromium."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from threetier.artifacts import render_nginx_conf

from .servers import Nginx, free_port, http, need, wait_until

pytestmark = pytest.mark.slow  # starts real servers

BROWSER_DIR = Path(__file__).parent / "browser"
# On every answer nginx gives, its own and the app's alike (issue 10, item 14).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def assert_security_headers(headers, what: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get_all(name) == [value], f"{what}: {name}: {headers.get_all(name)}"
    policies = headers.get_all("Content-Security-Policy") or []
    assert len(policies) == 1, f"{what}: Content-Security-Policy: {policies}"
    directives = {d.split()[0]: d.split()[1:] for d in policies[0].split(";") if d.strip()}
    assert directives["frame-ancestors"] == ["'none'"], what
    assert directives["default-src"] == ["'self'"] and directives["script-src"] == ["'self'"], what
    assert directives["object-src"] == ["'none'"], what
    # The workshop's front end (styled-components) injects <style> elements: inline styles only.
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"], what


@pytest.fixture(scope="session")
def web_build(application_tree):
    """The uploaded web-tier bytes (the committed build) as the web builder installs them,
    where nginx's workers (an unprivileged user) can read them."""
    root = Path(tempfile.mkdtemp(prefix="threetier-web-"))
    root.chmod(0o755)
    shutil.copytree(application_tree / "web-tier", root / "html")
    yield root / "html"
    shutil.rmtree(root)


@pytest.fixture
def site(start_app, mariadb, web_build, tmp_path):
    """nginx on a free port with the rendered nginx.conf, /api/ -> a fresh app tier."""
    mariadb.sql("DROP DATABASE IF EXISTS webtier")
    app = start_app("webtier")
    app.wait_ready()
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_bytes(render_nginx_conf("127.0.0.1", upstream_port=app.port, listen_port=port,
                                       web_root=str(web_build), log_dir=str(tmp_path)))
    nginx = Nginx(conf, tmp_path)
    checked = nginx.test_config()
    assert checked.returncode == 0, checked.stderr
    nginx.start(port)
    yield f"http://127.0.0.1:{port}"
    nginx.stop()


def test_production_config_passes_nginx_t(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_bytes(render_nginx_conf("internal-threetier-app-1234567890.us-east-1.elb.amazonaws.com"))
    result = Nginx(conf, tmp_path).test_config()
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_rendered_config_shape():
    text = render_nginx_conf("internal-app-1.eu-west-1.elb.amazonaws.com").decode()
    assert "@@" not in text
    assert re.search(r"^\s*listen 80 default_server;", text, re.M)
    assert "set $app_tier internal-app-1.eu-west-1.elb.amazonaws.com;" in text
    assert "root /usr/share/nginx/threetier;" in text
    assert "location = /health" in text and "location /api/" in text
    for directive in ("proxy_set_header X-Forwarded-For", "proxy_connect_timeout", "proxy_read_timeout", "resolver "):
        assert directive in text
    assert "amazon-linux-extras" not in text and "/home/" not in text
    assert render_nginx_conf("10.0.1.5", upstream_port=8080).decode().count("set $app_tier 10.0.1.5:8080;") == 1


@pytest.mark.parametrize(
    "name", ["", "a b", "alb;", "alb.example.com; return 200", "alb}", "alb$host", "-alb.example.com",
             "alb..example.com", "a" * 64 + ".com", "alb.example.com\nlocation", "alb/evil", None, 5],
)
def test_nginx_conf_rejects_unsafe_names(name):
    with pytest.raises(ValueError):
        render_nginx_conf(name)


@pytest.mark.parametrize("kwargs", [{"upstream_port": 0}, {"listen_port": 70000}, {"web_root": "relative"},
                                    {"web_root": "/srv/x; y"}, {"log_dir": "/var/../etc"}, {"upstream_port": True}])
def test_nginx_conf_rejects_unsafe_options(kwargs):
    with pytest.raises(ValueError):
        render_nginx_conf("alb.example.com", **kwargs)


def test_nginx_serves_the_build_and_proxies_the_api(site, web_build):
    status, _, body = http("GET", f"{site}/health")
    assert (status, body) == (200, "healthy\n")
    status, headers, body = http("GET", f"{site}/")
    assert status == 200 and '<div id="root">' in body
    assert headers["Cache-Control"] == "no-cache"
    assert http("GET", f"{site}/some/deep/link")[2] == body, "unknown paths fall back to index.html"
    asset = next((web_build / "assets").glob("*.js")).name
    status, headers, _ = http("GET", f"{site}/assets/{asset}")
    assert status == 200 and "immutable" in headers["Cache-Control"]
    assert http("GET", f"{site}/assets/missing.js")[0] == 404

    # /api/ is stripped: /api/transaction reaches the app as /transaction.
    assert http("GET", f"{site}/api/transaction")[::2] == (
        200, {"result": [{"id": 1, "amount": 400, "description": "groceries"}]})
    status, _, body = http("POST", f"{site}/api/transaction", {"amount": 5.25, "desc": "via nginx"})
    assert status == 201 and body["result"]["amount"] == 5.25
    assert http("GET", f"{site}/api/transaction/{body['result']['id']}")[0] == 200
    assert http("GET", f"{site}/api/transaction/999")[0] == 404
    assert http("POST", f"{site}/api/transaction", {"amount": "x"})[0] == 400
    # The app's probes keep their own paths behind the prefix: /api/ready is the app's /ready.
    assert http("GET", f"{site}/api/health")[::2] == (200, {"status": "ok", "message": "This is the health check"})
    assert http("GET", f"{site}/api/ready")[::2] == (200, {"status": "ok", "database": "up"})


def test_security_headers_on_everything_nginx_serves(site, web_build):
    """nginx adds the headers to its own files and answers and to the app's, whatever the status
    (a location with an add_header of its own would drop the server's: none has one), and its
    headers leave the app's Cache-Control alone."""
    asset = next((web_build / "assets").glob("*.js")).name
    requests = [
        ("GET", "/health", None, 200), ("GET", "/", None, 200), ("GET", "/some/deep/link", None, 200),
        ("GET", f"/assets/{asset}", None, 200), ("GET", "/assets/missing.js", None, 404),
        ("GET", "/api/health", None, 200), ("GET", "/api/ready", None, 200), ("GET", "/api/transaction", None, 200),
        ("GET", "/api/transaction/999", None, 404), ("POST", "/api/transaction", {"amount": "x"}, 400),
        ("PUT", "/api/transaction", {}, 405), ("GET", "/api/nothing", None, 404),
    ]
    for method, path, body, expected in requests:
        status, headers, _ = http(method, f"{site}{path}", body)
        assert status == expected, f"{method} {path}: {status}"
        assert_security_headers(headers, f"{method} {path} ({status})")
        cache = headers.get_all("Cache-Control")
        if path.startswith("/api/"):
            assert cache == ["no-store"], f"{method} {path}: the app's Cache-Control, alone: {cache}"
        elif path.startswith("/assets/") and status == 200:
            assert cache == ["public, max-age=31536000, immutable"], cache
        elif path != "/health" and status == 200:
            assert cache == ["no-cache"], f"{path}: {cache}"


@contextlib.contextmanager
def site_without_app_tier(web_build, tmp_path):
    """Our nginx and site, its upstream a port nobody listens on (nginx answers /api/ with 502)."""
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_bytes(render_nginx_conf("127.0.0.1", upstream_port=free_port(), listen_port=port,
                                       web_root=str(web_build), log_dir=str(tmp_path)))
    nginx = Nginx(conf, tmp_path)
    nginx.start(port)
    try:
        yield port
    finally:
        nginx.stop()


def test_security_headers_on_nginx_own_errors(web_build, tmp_path):
    """Errors nginx makes itself carry them too: the app tier unreachable (502), a body too large (413)."""
    with site_without_app_tier(web_build, tmp_path) as port:
        status, headers, _ = http("GET", f"http://127.0.0.1:{port}/api/transaction")
        assert status == 502
        assert_security_headers(headers, "502 from nginx")
        status, headers, _ = http("POST", f"http://127.0.0.1:{port}/api/transaction", data=b"x" * 70_000,
                                  headers={"Content-Type": "application/json"})
        assert status == 413
        assert_security_headers(headers, "413 from nginx")


def test_a_database_outage_through_nginx(site, mariadb):
    """nginx passes the app's 503 from /ready through as it is; the liveness checks of both
    tiers (what the target groups ask) stay 200."""
    mariadb.stop()
    try:
        status, headers, body = http("GET", f"{site}/api/ready")
        assert (status, body) == (503, {"status": "unavailable", "database": "down"}), "no database error in public"
        assert headers["Retry-After"] == "5"
        assert http("GET", f"{site}/api/transaction")[::2] == (503, {"error": "database unavailable, try again shortly"})
        assert http("GET", f"{site}/health")[0] == 200
        assert http("GET", f"{site}/api/health")[::2] == (200, {"status": "ok", "message": "This is the health check"})
    finally:
        mariadb.start()
    wait_until(lambda: http("GET", f"{site}/api/ready")[0] == 200, "readiness through nginx", 30)


def test_browser_lists_adds_and_deletes(site, artifacts_dir):
    result, seen = run_browser_script("drive.mjs", site, artifacts_dir)
    assert result.returncode == 0, f"{seen.get('error')}\n{result.stderr[-2000:]}"
    steps = {step["name"]: step["rows"] for step in seen["steps"]}
    assert steps["list"] == [["1", "400.00", "groceries"]]
    assert steps["added"][0] == ["1", "400.00", "groceries"]
    assert steps["added"][1][1:] == ["123.45", "browser test"]
    assert steps["deleted-one"] == [["1", "400.00", "groceries"]]
    assert steps["deleted-all"] == []
    assert {"GET /api/transaction", "POST /api/transaction", "DELETE /api/transaction"} <= set(seen["apiCalls"])
    assert any(re.fullmatch(r"DELETE /api/transaction/\d+", call) for call in seen["apiCalls"])
    assert http("GET", f"{site}/api/transaction")[2] == {"result": []}
    assert (artifacts_dir / "web-tier-3-added.png").stat().st_size > 10_000
    # The page works under its Content-Security-Policy, which the browser enforces.
    assert seen["cspViolations"] == []
    assert seen["inlineScriptProbe"] == "blocked"


def run_browser_script(script: str, site: str, artifacts_dir) -> tuple[subprocess.CompletedProcess, dict]:
    need("chromium")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        need("playwright-core (npm ci in tests/application/browser)")
    result = subprocess.run(
        [need("node"), str(BROWSER_DIR / script), site, str(artifacts_dir)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "CHROMIUM": shutil.which("chromium") or "/usr/bin/chromium"},
    )
    seen = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    return result, seen


def test_browser_shows_a_load_error_instead_of_loading(web_build, tmp_path, artifacts_dir):
    """The app tier cannot be reached (nginx answers 502): the DB page says it could not load the
    transactions -- in its alert and in the table -- and "Loading…" does not stay on screen."""
    with site_without_app_tier(web_build, tmp_path) as port:
        result, seen = run_browser_script("load-error.mjs", f"http://127.0.0.1:{port}", artifacts_dir)
    assert result.returncode == 0, f"{seen.get('error')}\n{result.stderr[-2000:]}"
    assert "GET /api/transaction 502" in seen["apiAnswers"]
    assert seen["alert"] == "Could not load transactions: the server answered 502"
    assert seen["loadingVisible"] is False, seen
    assert seen["table"] == "Could not load transactions.", seen

