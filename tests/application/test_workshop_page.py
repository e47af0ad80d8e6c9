"""The workshop's own front end against our app tier (issue 11, item 10).

Users may bring the web tier of the AWS workshop this project automates
(github.com/aws-samples/aws-three-tier-web-architecture-workshop, read at commit 20a71db) instead
of ours. Its database page is application-code/web-tier/src/components/DatabaseDemo/DatabaseDemo.js;
the app tier it was written for is application-code/app-tier/index.js. These tests send exactly
the requests that page sends -- method, path, content type, body bytes -- through our nginx
(the rendered nginx.conf) to our app tier and a real MariaDB, and check that every flow of the
page works. The requests, from those files:

- list (DatabaseDemo.js lines 19-42): on mount and after every action, `fetch('/api/transaction')`
  with no options -- a GET without body or Content-Type -- then `res.json()` and `data.result`,
  an array whose rows it renders as `id`, `amount`, `description` (lines 45-56).
- add (lines 70-85): a POST to /api/transaction, header `Content-Type: application/json`, body
  `JSON.stringify({"amount": text_amt, "desc": text_desc})`: both values are the raw text of two
  <input type="text"> boxes (lines 12-16, 87-89, 105-106), so the amount is a *string* such as
  "123.45" (and "" when the box is empty). JSON.stringify writes no spaces. Then `response.json()`
  and the list again; the page shows nothing of a failed add.
- delete all (lines 58-68, the DEL button): `fetch('/api/transaction', {method: 'DELETE'})`, no
  header, no body; then `response.json()` and the list again.
- delete one: the page has no per-row button; the workshop's app tier offers
  `DELETE /transaction/id` with the id in the *body* (index.js lines 67-78), and
  `GET /transaction/id` the same way (lines 80-95), parsed as JSON or as a form (lines 11-12).

Every answer must be JSON: the page calls `.json()` on each one.
"""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from threetier.artifacts import render_nginx_conf

from .servers import Nginx, free_port, http

pytestmark = pytest.mark.slow  # starts real servers

SEED = {"id": 1, "amount": 400, "description": "groceries"}


@pytest.fixture
def site(start_app, mariadb, tmp_path):
    """Our nginx (rendered nginx.conf) on a free port, /api/ -> a fresh app tier on MariaDB. The
    web root is empty: the page's own files play no part in what reaches the app tier."""
    mariadb.sql("DROP DATABASE IF EXISTS workshop")
    app = start_app("workshop")
    app.wait_ready()
    web_root = tmp_path / "html"
    web_root.mkdir()
    web_root.chmod(0o755)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_bytes(render_nginx_conf("127.0.0.1", upstream_port=app.port, listen_port=port,
                                       web_root=str(web_root), log_dir=str(tmp_path)))
    nginx = Nginx(conf, tmp_path)
    nginx.start(port)
    yield f"http://127.0.0.1:{port}"
    nginx.stop()


def stored(mariadb, row_id: int) -> str:
    """The amount as MariaDB holds it (DECIMAL(10,2) as text)."""
    return mariadb.sql(f"SELECT amount FROM workshop.transactions WHERE id = {int(row_id)}").strip()


# --- the page's requests, byte for byte ------------------------------------------------------

def page_list(site: str) -> list[dict]:
    """populateData(): GET, no body, no Content-Type; the page reads data.result."""
    status, headers, body = http("GET", f"{site}/api/transaction")
    assert status == 200 and headers["Content-Type"].startswith("application/json"), (status, body)
    rows = body["result"]
    assert isinstance(rows, list)
    for row in rows:  # what renderTableData destructures
        assert {"id", "amount", "description"} <= set(row)
    return rows


def page_add(site: str, text_amt: str, text_desc: str):
    """handleButtonClick(): the two text boxes' strings, JSON.stringify'd (no spaces)."""
    data = json.dumps({"amount": text_amt, "desc": text_desc}, separators=(",", ":")).encode()
    status, headers, body = http("POST", f"{site}/api/transaction", data=data,
                                 headers={"Content-Type": "application/json", "Origin": site})
    assert headers["Content-Type"].startswith("application/json"), "the page calls response.json()"
    return status, body


def page_delete_all(site: str):
    """handleButtonClickDel(): DELETE, no header, no body."""
    status, headers, body = http("DELETE", f"{site}/api/transaction", headers={"Origin": site})
    assert headers["Content-Type"].startswith("application/json"), "the page calls response.json()"
    return status, body


def workshop_by_id(site: str, method: str, body: bytes, content_type: str):
    """The workshop app tier's /transaction/id routes: the id in the request body."""
    status, headers, answer = http(method, f"{site}/api/transaction/id", data=body,
                                   headers={"Content-Type": content_type})
    assert headers["Content-Type"].startswith("application/json")
    return status, answer


def added_and_listed(site: str, mariadb, boxes: tuple[str, str], amount: float, stored_as: str) -> dict:
    """ADD with the two boxes' text, on a table holding the seed row only: the row answered is
    the row listed after it, and MariaDB holds its amount as `stored_as`."""
    status, body = page_add(site, *boxes)
    assert status == 201, body
    added = body["result"]
    assert added == {"id": added["id"], "amount": amount, "description": boxes[1]}
    assert page_list(site) == [SEED, added]
    assert stored(mariadb, added["id"]) == stored_as
    return added


# --- the flows -------------------------------------------------------------------------------

def test_the_workshop_page_lists_adds_and_deletes_all(site, mariadb):
    assert page_list(site) == [SEED]

    added_and_listed(site, mariadb, ("123.45", "workshop page"), amount=123.45, stored_as="123.45")

    # What a person types in a text box: spaces around it, no decimals, a negative.
    status, body = page_add(site, " 7 ", "seven")
    assert (status, body["result"]["amount"]) == (201, 7)
    status, body = page_add(site, "-20.5", "refund")
    assert (status, body["result"]["amount"]) == (201, -20.5)
    assert [row["description"] for row in page_list(site)] == ["groceries", "workshop page", "seven", "refund"]

    status, body = page_delete_all(site)
    assert status == 200 and body["deleted"] == 4
    assert page_list(site) == []


def test_the_workshop_page_amounts_are_rounded_as_the_database_rounds(site, mariadb):
    """DECIMAL(10,2) rounds half away from zero on the decimal the page sent: "1.005" is 1.01
    (as a double, 1.005 is 1.00499..., which float arithmetic would round down)."""
    for text, expected in [("1.005", "1.01"), ("2.675", "2.68"), ("-1.005", "-1.01"), ("0.004", "0.00")]:
        status, body = page_add(site, text, f"rounding {text}")
        assert status == 201, body
        assert stored(mariadb, body["result"]["id"]) == expected, text
        assert body["result"]["amount"] == float(expected), "the answer is what the database stored"
        listed = next(row for row in page_list(site) if row["id"] == body["result"]["id"])
        assert listed["amount"] == float(expected)


@pytest.mark.parametrize("text_amt", ["", "   ", "abc", "12abc", "1,50", "NaN", "Infinity", "-Infinity",
                                      "0x10", "1e", "99999999.995", "100000000"])
def test_the_workshop_page_bad_amounts_are_400_and_add_nothing(site, text_amt):
    """An empty box (ADD clicked at once), text, a non-finite value, or more than DECIMAL(10,2)
    holds: a JSON 400 that the page parses and ignores, and nothing is added."""
    status, body = page_add(site, text_amt, "should not be added")
    assert status == 400 and "amount" in body["error"], body
    assert page_list(site) == [SEED]


def test_the_workshop_page_adds_an_amount_with_an_empty_description(site, mariadb):
    """ADD with the description box left empty: the workshop's app tier stores the row (its SQL takes
    the "" as it is), so ours does, and the page lists it."""
    added = added_and_listed(site, mariadb, ("42.5", ""), amount=42.5, stored_as="42.50")
    # Both boxes empty: the amount is still refused, and nothing is added.
    status, body = page_add(site, "", "")
    assert status == 400 and "amount" in body["error"], body
    assert page_list(site) == [SEED, added]


def test_the_workshop_delete_one_and_get_one_with_the_id_in_the_body(site, mariadb):
    ids = [page_add(site, amount, desc)[1]["result"]["id"] for amount, desc in
           [("1.50", "first"), ("2.50", "second"), ("3.50", "third"), ("4.50", "fourth")]]

    # GET /transaction/id, {"id": n}: the row, with the fields the workshop app tier answered.
    status, body = workshop_by_id(site, "GET", json.dumps({"id": ids[0]}).encode(), "application/json")
    assert status == 200, body
    assert (body["id"], body["amount"], body["desc"]) == (ids[0], 1.5, "first")
    assert body["result"] == {"id": ids[0], "amount": 1.5, "description": "first"}

    # DELETE /transaction/id: JSON with a number, JSON with a string, a form (curl -d id=N).
    for body_bytes, content_type in [
        (json.dumps({"id": ids[0]}).encode(), "application/json"),
        (json.dumps({"id": str(ids[1])}).encode(), "application/json; charset=utf-8"),
        (urlencode({"id": ids[2]}).encode(), "application/x-www-form-urlencoded"),
    ]:
        status, body = workshop_by_id(site, "DELETE", body_bytes, content_type)
        assert status == 200 and body["deleted"] == 1, (body_bytes, body)
    assert [row["description"] for row in page_list(site)] == ["groceries", "fourth"]

    # Gone, or never there: 404; no id, or not an id: 400. None of them deletes anything.
    status, body = workshop_by_id(site, "DELETE", json.dumps({"id": ids[0]}).encode(), "application/json")
    assert status == 404 and "error" in body
    for bad in [{}, {"id": None}, {"id": "abc"}, {"id": 0}, {"id": 1.5}, {"id": "1 OR 1=1"}, {"id": True}, [3]]:
        status, body = workshop_by_id(site, "DELETE", json.dumps(bad).encode(), "application/json")
        assert status == 400 and "id" in body["error"], (bad, body)
    status, _, body = http("DELETE", f"{site}/api/transaction/id")  # no body at all
    assert status == 400 and "id" in body["error"]
    assert [row["description"] for row in page_list(site)] == ["groceries", "fourth"]

    # Our own /transaction/{id} routes are unchanged beside them.
    assert http("DELETE", f"{site}/api/transaction/{ids[3]}")[0] == 200
    assert page_list(site) == [SEED]
