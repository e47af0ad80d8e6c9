"""The Node.js app tier, run for real against a real MariaDB."""
from __future__ import annotations

import json
import random
import re
import subprocess
import time

import pytest

from .conftest import DB_PASSWORD, DB_USER, PLAINTEXT_DB_USER, SECRET_ARN
from .servers import Blackhole, http, need, wait_until

pytestmark = pytest.mark.slow  # starts real servers

SEED = {"id": 1, "amount": 400, "description": "groceries"}
# What the public readiness check says when the database cannot be used: nothing about why.
NOT_READY = {"status": "unavailable", "database": "down"}


@pytest.fixture
def app(start_app, mariadb):
    mariadb.sql("DROP DATABASE IF EXISTS routes")  # a fresh database for every test
    app = start_app("routes")
    app.wait_ready()
    return app


def test_health_is_liveness_and_ready_is_the_database(app):
    status, headers, body = http("GET", f"{app.url}/health")
    assert status == 200
    assert body == {"status": "ok", "message": "This is the health check"}
    assert headers["Content-Type"].startswith("application/json")
    status, headers, body = http("GET", f"{app.url}/ready")
    assert (status, body) == (200, {"status": "ok", "database": "up"})
    assert headers["Cache-Control"] == "no-store"
    assert http("POST", f"{app.url}/ready")[0] == 405


def _table_exists(mariadb, db_name: str) -> bool:
    return mariadb.sql(
        "SELECT COUNT(*) FROM information_schema.tables"
        f" WHERE table_schema = '{db_name}' AND table_name = 'transactions'").strip() == "1"


def test_every_route_with_the_contract_shapes(app):
    url = f"{app.url}/transaction"
    assert http("GET", url)[::2] == (200, {"result": [SEED]})
    amount = http("GET", url)[2]["result"][0]["amount"]
    assert isinstance(amount, int | float) and not isinstance(amount, bool), "amounts are JSON numbers"

    status, headers, body = http("POST", url, {"amount": 12.5, "desc": "  coffee beans "})
    assert status == 201
    added = body["result"]
    assert added == {"id": added["id"], "amount": 12.5, "description": "coffee beans"}
    assert headers["Location"] == f"/transaction/{added['id']}"

    assert http("GET", f"{url}/{added['id']}")[::2] == (200, {"result": added})
    assert http("GET", url)[::2] == (200, {"result": [SEED, added]})

    status, _, body = http("DELETE", f"{url}/{added['id']}")
    assert (status, body["deleted"], body["result"]) == (200, 1, added)
    assert http("GET", f"{url}/{added['id']}")[0] == 404
    assert http("DELETE", f"{url}/{added['id']}")[0] == 404

    http("POST", url, {"amount": -3, "description": "refund"})  # "description" is accepted too
    status, _, body = http("DELETE", url)
    assert (status, body["deleted"]) == (200, 2)
    assert http("GET", url)[::2] == (200, {"result": []})
    # The prefix-less path and a trailing slash are the same resource.
    assert http("GET", f"{url}/")[0] == 200


def test_amounts_keep_two_decimals(app):
    body = http("POST", f"{app.url}/transaction", {"amount": 19.999, "desc": "rounding"})[2]
    assert body["result"]["amount"] == 20
    stored = http("GET", f"{app.url}/transaction/{body['result']['id']}")[2]["result"]
    assert stored["amount"] == 20 and stored["description"] == "rounding"


# Amounts as JSON numbers or as numeric strings (what a text box gives: the workshop's page sends
# those, test_workshop_page.py), stored as DECIMAL(10,2) stores them: rounded half away from zero
# on the decimal that was sent -- "1.005" is 1.01, though the double nearest 1.005 is below it.
@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("123.45", "123.45"), (" 7 ", "7.00"), ("+5", "5.00"), ("-5", "-5.00"), (".5", "0.50"), ("5.", "5.00"),
        ("000123.4500", "123.45"), ("1e3", "1000.00"), ("1.5E-1", "0.15"), ("1e-400", "0.00"),
        ("1.005", "1.01"), (1.005, "1.01"), ("-1.005", "-1.01"), (-1.005, "-1.01"), ("2.675", "2.68"),
        (2.675, "2.68"), ("0.005", "0.01"), ("0.0049", "0.00"), (1e-7, "0.00"), ("19.999", "20.00"),
        ("1.0049999999999999", "1.00"), ("99999999.99", "99999999.99"), ("99999999.994", "99999999.99"),
        ("-99999999.994", "-99999999.99"), (99999999.99, "99999999.99"),
    ],
)
def test_amounts_are_numbers_or_numeric_strings_rounded_as_the_database_rounds(app, mariadb, amount, expected):
    status, _, body = http("POST", f"{app.url}/transaction", {"amount": amount, "desc": "rounding"})
    assert status == 201, body
    row_id = body["result"]["id"]
    assert mariadb.sql(f"SELECT amount FROM routes.transactions WHERE id = {row_id}").strip() == expected
    assert body["result"]["amount"] == float(expected), "the answer is what the database stored"
    assert http("GET", f"{app.url}/transaction/{row_id}")[2]["result"]["amount"] == float(expected)


# src/app.js's rounding, run on its own: decimalAmount(text) for each text of argv[1] (a JSON list).
DECIMAL_AMOUNT = """
import { decimalAmount } from './src/app.js';
console.log(JSON.stringify(JSON.parse(process.argv[1]).map((text) => decimalAmount(text))));
"""


def test_amount_rounding_is_the_databases_own(application_tree, mariadb):
    """The app rounds amounts itself (on the decimal text, never through a double): on many
    random numeric strings -- half-way cases, long fractions, exponents, signs -- it must give
    exactly what MariaDB's own conversion to DECIMAL(10,2) gives."""
    rng = random.Random(1110)
    texts = []
    for _ in range(400):
        whole = str(rng.randrange(10 ** rng.randrange(0, 9)))
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 7)))
        if rng.random() < 0.4:  # exactly half a cent, or just around it
            fraction = fraction[:2].ljust(2, "0") + rng.choice(["5", "50", "49", "51", "4999", "5001"])
        text = rng.choice(["", "-", "+"]) + whole + ("." + fraction if fraction else "")
        if rng.random() < 0.15:
            text = f"{text}e{rng.randrange(-4, 2)}"
        texts.append(text)
    texts = [t for t in texts if abs(float(t)) < 99_999_999.99]
    result = subprocess.run([need("node"), "--input-type=module", "-e", DECIMAL_AMOUNT, json.dumps(texts)],
                            cwd=application_tree / "app-tier", capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    theirs = mariadb.sql("SELECT " + ", ".join(f"CAST('{t}' AS DECIMAL(10,2))" for t in texts)).split()
    mismatches = [(t, a, b) for t, a, b in zip(texts, ours, theirs, strict=True) if a != b]
    assert not mismatches, mismatches[:10]


@pytest.mark.parametrize(
    "amount",
    ["", "   ", "abc", "12abc", "NaN", "nan", "Infinity", "-Infinity", "1,5", "0x10", "1_000", "1e", "e5", ".",
     "+-1", "1.2.3", "\u0661\u0662", "99999999.995", "-99999999.995", "100000000", "1e8", "1e400", "5 5"],
)
def test_non_numeric_or_out_of_range_amount_strings_are_400(app, mariadb, amount):
    status, _, body = http("POST", f"{app.url}/transaction", {"amount": amount, "desc": "bad amount"})
    assert status == 400 and "amount" in body["error"], body
    assert mariadb.sql("SELECT COUNT(*) FROM routes.transactions").strip() == "1", "nothing was added"


@pytest.mark.parametrize("raw", [b'{"amount": NaN, "desc": "x"}', b'{"amount": Infinity, "desc": "x"}',
                                 b'{"amount": 1e400, "desc": "x"}', b'{"amount": -1e400, "desc": "x"}'])
def test_non_finite_json_amounts_are_400(app, raw):
    status, _, body = http("POST", f"{app.url}/transaction", data=raw, headers={"Content-Type": "application/json"})
    assert status == 400 and "error" in body


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"desc": "no amount"}, 400),
        ({"amount": None, "desc": "null amount"}, 400),
        ({"amount": 1e12, "desc": "too large for DECIMAL(10,2)"}, 400),
        ({"amount": True, "desc": "a boolean"}, 400),
        ({"amount": [5], "desc": "a list"}, 400),
        ({"amount": {"value": 5}, "desc": "an object"}, 400),
        ({"amount": 5, "desc": 42}, 400),
        ({"amount": 5, "desc": ["a list"]}, 400),
        ({"amount": 5, "desc": "x" * 101}, 400),
        ({"amount": 5, "description": "x" * 101}, 400),
        ([1, 2], 400),
        ("just a string", 400),
    ],
)
def test_bad_transactions_are_400(app, body, status):
    got, _, answer = http("POST", f"{app.url}/transaction", body)
    assert got == status
    assert "error" in answer


@pytest.mark.parametrize("body", [{"amount": 5, "desc": ""}, {"amount": 5, "desc": "   "}, {"amount": 5},
                                  {"amount": 5, "desc": None}, {"amount": "5", "description": ""}],
                         ids=["empty", "blank", "missing", "null", "empty-description"])
def test_a_transaction_without_a_description_is_stored_with_an_empty_one(app, mariadb, body):
    """The workshop's app tier stores the row whatever the description (its page sends "" for an
    empty box); here as "", never as the text "undefined" or "null" it interpolated."""
    status, _, answer = http("POST", f"{app.url}/transaction", body)
    assert status == 201, answer
    added = answer["result"]
    assert added == {"id": added["id"], "amount": 5, "description": ""}
    assert http("GET", f"{app.url}/transaction")[2] == {"result": [SEED, added]}
    assert mariadb.sql(f"SELECT amount, description FROM routes.transactions WHERE id = {int(added['id'])}") == "5.00\t\n"


def test_bad_requests(app):
    url = f"{app.url}/transaction"
    assert http("POST", url, data=b"{not json", headers={"Content-Type": "application/json"})[0] == 400
    assert http("POST", url, data=b"amount=5", headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    assert http("POST", url, data=b'{"amount": 1, "desc": "' + b"x" * 20000 + b'"}',
                headers={"Content-Type": "application/json"})[0] == 413
    for bad_id in ("abc", "0", "-1", "1.5", "99999999999", "1%20OR%201=1", "%E0%A4%A"):
        assert http("GET", f"{url}/{bad_id}")[0] == 400, bad_id
        assert http("DELETE", f"{url}/{bad_id}")[0] == 400, bad_id
    assert http("GET", f"{url}/424242")[0] == 404
    assert http("GET", f"{app.url}/nothing-here")[0] == 404
    status, headers, _ = http("PUT", url, {"amount": 1, "desc": "x"})
    assert status == 405 and headers["Allow"] == "GET, POST, DELETE"
    assert http("POST", f"{app.url}/health")[0] == 405
    # Nothing above reached the table.
    assert http("GET", url)[2] == {"result": [SEED]}


def test_sql_is_parameterized(app):
    hostile = "x'); DROP TABLE transactions; --"
    status, _, body = http("POST", f"{app.url}/transaction", {"amount": 1, "desc": hostile})
    assert status == 201
    assert http("GET", f"{app.url}/transaction/{body['result']['id']}")[2]["result"]["description"] == hostile


def test_database_outage_then_recovery_without_restart(app, mariadb):
    url = f"{app.url}/transaction"
    http("POST", url, {"amount": 7, "desc": "before the outage"})
    pid = app.proc.pid
    mariadb.stop(kill=True)
    try:
        status, headers, body = http("GET", url)
        assert status == 503 and headers["Retry-After"] == "5" and "error" in body
        assert http("POST", url, {"amount": 1, "desc": "during"})[0] == 503
        assert http("DELETE", f"{url}/1")[0] == 503
        # Liveness stays green (the ASG must not replace the instance), readiness says why not.
        assert http("GET", f"{app.url}/health")[::2] == (200, {"status": "ok", "message": "This is the health check"})
        status, headers, body = http("GET", f"{app.url}/ready")
        assert (status, body) == (503, NOT_READY), "a generic answer: the reason is in the instance's log"
        assert headers["Retry-After"] == "5"
        assert re.search(r"readiness: database unavailable \((ECONNREFUSED|PROTOCOL_CONNECTION_LOST|ECONNRESET)\b",
                         app.log()), app.log()
        # Bad input is still bad input, whatever the database does.
        assert http("POST", url, {"amount": "x", "desc": "y"})[0] == 400
    finally:
        mariadb.start()
    app.wait_ready(timeout=30)
    assert app.proc.pid == pid and app.proc.poll() is None, "the same process recovered"
    rows = http("GET", url)[2]["result"]
    assert [r["description"] for r in rows] == ["groceries", "before the outage"]
    assert http("POST", url, {"amount": 2, "desc": "after"})[0] == 201


def test_app_starts_while_the_database_is_down(start_app, mariadb):
    """The golden image is baked before Aurora answers: the app must come up, be live,
    and create the schema by itself once the database appears."""
    mariadb.sql("DROP DATABASE IF EXISTS late")
    mariadb.stop()
    try:
        app = start_app("late")
        app.wait_healthy(timeout=5)
        assert http("GET", f"{app.url}/health")[0] == 200
        assert http("GET", f"{app.url}/ready")[::2] == (503, NOT_READY)
        assert "readiness: database unavailable (ECONNREFUSED" in app.log()
        status, headers, body = http("GET", f"{app.url}/transaction")
        assert (status, headers["Retry-After"]) == (503, "5") and "error" in body
        assert http("POST", f"{app.url}/transaction", {"amount": 1, "desc": "too early"})[0] == 503
        assert app.proc.poll() is None, "the app is still running"
    finally:
        mariadb.start()
    # No request touches the database from here on until the schema is there: the
    # background retry alone must create it (database, table, the seed row).
    wait_until(lambda: _table_exists(mariadb, "late"), "the schema to be created in the background", 20)
    wait_until(lambda: mariadb.sql("SELECT amount, description FROM late.transactions") == "400.00\tgroceries\n",
               "the seed row", 5)
    assert http("GET", f"{app.url}/ready")[::2] == (200, {"status": "ok", "database": "up"})
    assert http("GET", f"{app.url}/transaction")[2] == {"result": [SEED]}
    assert "database schema ready after" in app.log()


def test_an_unreachable_database_host(start_app, mariadb):
    """A database that accepts TCP and never answers (a dropped packet, a cluster still being
    created): /health stays instant, /ready gives up in under 5 s, /transaction is a 503."""
    mariadb.sql("DROP DATABASE IF EXISTS blackholed")
    silent = Blackhole()
    try:
        app = start_app("blackholed", db_port=silent.port)
        wait_until(lambda: silent.accepted, "the app to try the database")
        started = time.monotonic()
        assert http("GET", f"{app.url}/health")[::2] == (200, {"status": "ok", "message": "This is the health check"})
        assert time.monotonic() - started < 0.5, "/health does not wait for the database"
        started = time.monotonic()
        status, _, body = http("GET", f"{app.url}/ready", timeout=10)
        took = time.monotonic() - started
        assert (status, body) == (503, NOT_READY)
        assert "readiness: database unavailable (ETIMEDOUT" in app.log()
        assert 1 < took < 4.5, f"/ready answered in {took:.1f} s: a timeout below the probes' 5 s"
        status, _, body = http("GET", f"{app.url}/transaction", timeout=15)
        assert status == 503 and "error" in body
    finally:
        silent.close()
    assert app.proc.poll() is None, "the app is still running"


def test_seed_exactly_once_per_database(start_app, mariadb):
    def rows():
        return mariadb.sql("SELECT id, amount, description FROM seedonce.transactions ORDER BY id")

    for _ in range(3):  # first start, then two restarts
        app = start_app("seedonce")
        app.wait_ready()
        app.stop()
        assert rows() == "1\t400.00\tgroceries\n"
    mariadb.sql("DELETE FROM seedonce.transactions")
    app = start_app("seedonce")
    app.wait_ready()
    assert http("GET", f"{app.url}/transaction")[2] == {"result": []}, "an emptied table is not re-seeded"


def test_seed_leaves_existing_data_alone(start_app, mariadb):
    mariadb.sql(
        "CREATE DATABASE legacy; CREATE TABLE legacy.transactions (id INT NOT NULL AUTO_INCREMENT,"
        " amount DECIMAL(10,2), description VARCHAR(100), PRIMARY KEY (id));"
        " INSERT INTO legacy.transactions (amount, description) VALUES (100, 'class');"
    )
    app = start_app("legacy")
    app.wait_ready()
    assert http("GET", f"{app.url}/transaction")[2] == {"result": [{"id": 1, "amount": 100, "description": "class"}]}


def test_credentials_come_from_secrets_manager_and_follow_rotation(start_app, mariadb, secrets_manager):
    app = start_app("secrets", secrets=secrets_manager)
    app.wait_ready()
    assert http("GET", f"{app.url}/transaction")[0] == 200
    calls = [c for c in secrets_manager.calls if c["target"] == "secretsmanager.GetSecretValue"]
    assert calls and all(c["SecretId"] == SECRET_ARN for c in calls)

    # The managed secret rotates: new password in the database and in the secret, and
    # the pool's sessions end. The app must re-read the secret without a restart.
    mariadb.sql(f"ALTER USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY 'rotated-password'")
    secrets_manager.secret = {"username": DB_USER, "password": "rotated-password"}
    try:
        ids = mariadb.sql(f"SELECT id FROM information_schema.processlist WHERE user = '{DB_USER}'").split()
        for session in ids:
            mariadb.sql(f"KILL {session}")
        wait_until(lambda: http("GET", f"{app.url}/transaction")[0] == 200, "the app to use the rotated secret", 15)
        assert len(secrets_manager.calls) > len(calls)
    finally:
        mariadb.sql(f"ALTER USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'")


def test_invalid_configuration_fails_loudly(application_tree, tmp_path):
    config = tmp_path / "app-config.json"
    config.write_text(json.dumps({"database": {"host": "bad host;rm -rf /"}}))
    result = subprocess.run([need("node"), "src/server.js"], cwd=application_tree / "app-tier",
                            env={"PATH": "/usr/bin:/bin", "THREETIER_APP_CONFIG": str(config)},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "database.host" in result.stderr


def test_a_dropped_database_is_recreated(app, mariadb):
    mariadb.sql("DROP DATABASE routes")
    assert http("GET", f"{app.url}/transaction")[0] == 500  # the request that finds it gone
    wait_until(lambda: http("GET", f"{app.url}/transaction")[2] == {"result": [SEED]}, "the schema to come back", 10)


def test_readiness_reveals_no_database_error(start_app, secrets_manager):
    """/ready is public (/api/ready through both load balancers). A database that refuses the
    app's credentials is a plain "down" there, as is any other failure: the code and the
    server's message (which names the database user) go to the instance's log only."""
    secrets_manager.secret = {"username": DB_USER, "password": "not-the-password"}
    app = start_app("refused", secrets=secrets_manager)
    app.wait_healthy()
    status, headers, body = http("GET", f"{app.url}/ready")
    assert (status, body, headers["Retry-After"]) == (503, NOT_READY, "5")
    assert http("GET", f"{app.url}/transaction")[::2] == (503, {"error": "database unavailable, try again shortly"})
    assert "readiness: database unavailable (ER_ACCESS_DENIED_ERROR) Access denied for user 'app'" in app.log()


# What src/tls.js gives mysql2 for a given environment, as JSON (the CA certificates in full).
TLS_OPTIONS = """
import { databaseTls } from './src/tls.js';
console.log(JSON.stringify(databaseTls('db.cluster-c1a2b3c4.us-east-1.rds.amazonaws.com', JSON.parse(process.argv[1])) ?? null));
"""


def tls_options(app_dir, env: dict[str, str]):
    result = subprocess.run([need("node"), "--input-type=module", "-e", TLS_OPTIONS, json.dumps(env)],
                            cwd=app_dir, capture_output=True, text=True, timeout=30)
    return result.returncode, (json.loads(result.stdout) if result.returncode == 0 else result.stderr)


def pem_blocks(text: str) -> list[str]:
    return re.findall(r"-----BEGIN CERTIFICATE-----\n.+?\n-----END CERTIFICATE-----", text, re.S)


@pytest.mark.parametrize("env", [{"THREETIER_DB_TLS": "required"}, {}], ids=["required", "unset"])
def test_production_tls_verifies_the_server_against_the_bundled_rds_cas(application_tree, env):
    """The production setting (THREETIER_DB_TLS=required, which the app's systemd unit sets; unset
    means the same): TLS 1.2 at least, the server's certificate must chain to one of the RDS CAs
    shipped with the app -- exactly those, not the system's -- and name the host connected to."""
    code, options = tls_options(application_tree / "app-tier", env)
    assert code == 0, options
    bundle = pem_blocks((application_tree / "app-tier" / "certs" / "rds-global-bundle.pem").read_text())
    assert len(bundle) == 108
    assert options == {"ca": bundle, "rejectUnauthorized": True, "verifyIdentity": True, "minVersion": "TLSv1.2"}


def test_tls_off_is_explicit_and_the_server_still_decides(start_app, mariadb, application_tree):
    """THREETIER_DB_TLS=disabled, the one way to plain text (a local database without TLS), says so
    in the log; a server that requires TLS -- the app's user here, Aurora with
    require_secure_transport -- then refuses the app."""
    assert tls_options(application_tree / "app-tier", {"THREETIER_DB_TLS": "disabled"}) == (0, None)
    mariadb.sql("DROP DATABASE IF EXISTS plaintext")
    plain = start_app("plaintext", user=PLAINTEXT_DB_USER, env={"THREETIER_DB_TLS": "disabled"})
    plain.wait_ready()
    assert "database TLS DISABLED (THREETIER_DB_TLS=disabled)" in plain.log()
    refused = start_app("plaintext", env={"THREETIER_DB_TLS": "disabled"})
    wait_until(lambda: "ER_ACCESS_DENIED_ERROR" in refused.log(), "the server to refuse plain text")
    assert http("GET", f"{refused.url}/ready")[::2] == (503, NOT_READY)


def ssl_accepts(mariadb) -> int:
    return int(mariadb.sql("SHOW GLOBAL STATUS LIKE 'Ssl_finished_accepts'").split()[1])


def test_the_app_speaks_tls_to_the_database(start_app, mariadb):
    """With the production setting the app's sessions are TLS: its user may log in over TLS only
    (conftest), and the server counts the handshakes."""
    before = ssl_accepts(mariadb)
    mariadb.sql("DROP DATABASE IF EXISTS tlsdb")
    app = start_app("tlsdb")
    app.wait_ready()
    assert http("GET", f"{app.url}/transaction")[::2] == (200, {"result": [SEED]})
    assert ssl_accepts(mariadb) > before
    assert re.search(r"database TLS required: TLSv1.2\+, the server's certificate checked against \d+ CAs "
                     r"\(.*ca\.pem\) and the name localhost", app.log()), app.log()


def test_tls_trusts_only_the_rds_cas_it_ships(start_app, mariadb):
    """The production settings as they are -- the RDS CAs shipped with the app -- against a server
    whose certificate another CA signed: refused, never used unverified."""
    mariadb.sql("DROP DATABASE IF EXISTS untrusted")
    app = start_app("untrusted", env={"THREETIER_DB_TLS": "required"})
    wait_until(lambda: "HANDSHAKE_SSL_ERROR" in app.log(), "the app to refuse the server's certificate")
    # The chain (the test CA's, whether the server sends it or not) ends outside the bundle.
    assert re.search(r"HANDSHAKE_SSL_ERROR: (self-signed certificate in certificate chain|"
                     r"unable to get local issuer certificate)", app.log()), app.log()
    assert http("GET", f"{app.url}/health")[0] == 200, "liveness does not depend on the database"
    assert http("GET", f"{app.url}/ready")[::2] == (503, NOT_READY)
    assert http("GET", f"{app.url}/transaction")[0] == 503
    assert mariadb.sql("SHOW DATABASES LIKE 'untrusted'") == "", "no statement reached the server"


def test_tls_checks_the_server_name(start_app, mariadb, local_ca):
    """A certificate from the right CA is not enough (every RDS endpoint's chains to the same RDS
    CAs): it must name the host the app connects to. The server presents the CA's certificate
    for another host: refused."""
    mariadb.sql("DROP DATABASE IF EXISTS wrongname")
    with mariadb.present_certificate(local_ca.other_cert_file, local_ca.other_key_file):
        app = start_app("wrongname")
        wait_until(lambda: "HANDSHAKE_SSL_ERROR" in app.log(), "the app to refuse the server's name")
        assert "Host: localhost. is not in the cert's altnames: DNS:db.elsewhere.test" in app.log()
        assert http("GET", f"{app.url}/ready")[::2] == (503, NOT_READY)
    assert mariadb.sql("SHOW DATABASES LIKE 'wrongname'") == "", "no statement reached the server"


@pytest.mark.parametrize(
    ("host", "env", "message"),
    [
        ("db.example.internal", {"THREETIER_DB_TLS": "yes"},
         'THREETIER_DB_TLS must be "required" or "disabled", not "yes"'),
        ("db.example.internal", {"THREETIER_DB_CA_BUNDLE": "/nonexistent/ca.pem"},
         "cannot read the database CA bundle /nonexistent/ca.pem"),
        ("db.example.internal", {"THREETIER_DB_CA_BUNDLE": "EMPTY"}, "has no certificate"),
        ("10.0.3.17", {}, "database.host must be a DNS name for verified TLS, not the address 10.0.3.17"),
    ],
    ids=["unknown-mode", "missing-bundle", "empty-bundle", "address-not-name"],
)
def test_bad_tls_settings_stop_the_app(application_tree, tmp_path, host, env, message):
    """A TLS setting the app cannot honour stops it at start (the bake's health gate then fails):
    it never falls back to plain text or to no verification."""
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    env = {k: str(empty) if v == "EMPTY" else v for k, v in env.items()}
    config = tmp_path / "app-config.json"
    config.write_text(json.dumps({"port": 1, "database": {"host": host, "name": "x"}}))
    result = subprocess.run([need("node"), "src/server.js"], cwd=application_tree / "app-tier",
                            env={"PATH": "/usr/bin:/bin", "THREETIER_APP_CONFIG": str(config),
                                 "THREETIER_DB_CREDENTIALS": json.dumps({"username": "u", "password": "p"}), **env},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert message in result.stderr
