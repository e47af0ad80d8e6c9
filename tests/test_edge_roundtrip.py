"""`up`'s round trip to https://<edge.domain> while this machine cannot resolve the new
name yet (probe.fetch_https), against a real HTTPS server on this machine's loopback."""
from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.servers import LocalCA
from helpers import make_engine
from threetier import __version__
from threetier.blocks import probe
from threetier.engine import Ctx

# LocalCA's certificate for another host plays the domain's: a name that resolves nowhere (.test),
# as a new record does not here for minutes. Its certificate for localhost plays another name's.
DOMAIN = "db.elsewhere.test"


@pytest.fixture(scope="module")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def ctx(tmp_path: Path) -> Ctx:
    """Part 7's context, its external ALB's DNS name this machine's loopback."""
    engine = make_engine(tmp_path)
    engine.ctx.part = next(p for p in engine.parts if p.number == 7)
    engine.ctx.resources["load_balancer_dns"] = "localhost"
    return engine.ctx


@pytest.fixture
def trusting(local_ca: LocalCA) -> ssl.SSLContext:
    """The client's TLS as in production (ssl.create_default_context), trusting the test CA."""
    return ssl.create_default_context(cafile=str(local_ca.ca_file))


@contextlib.contextmanager
def https_server(cert_file: Path, key_file: Path) -> Iterator[tuple[int, dict[str, list[str]]]]:
    """An HTTPS server on 127.0.0.1 presenting this certificate: its port, and what it saw of each
    client (the server name asked for in the handshake, the Host header, the path)."""
    seen: dict[str, list[str]] = {"sni": [], "host": [], "path": [], "agent": []}
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    tls.sni_callback = lambda _socket, name, _context: seen["sni"].append(name)

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["host"].append(self.headers["Host"])
            seen["path"].append(self.path)
            seen["agent"].append(self.headers["User-Agent"] or "")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def the_domain_does_not_resolve() -> None:
    with contextlib.suppress(socket.gaierror):
        socket.getaddrinfo(DOMAIN, 443)
        pytest.skip(f"{DOMAIN} resolves on this machine")


def test_a_domain_that_does_not_resolve_is_fetched_through_the_balancers_name_for_the_domain(
        ctx: Ctx, local_ca: LocalCA, trusting: ssl.SSLContext) -> None:
    with https_server(local_ca.other_cert_file, local_ca.other_key_file) as (port, seen):
        fetched = probe.fetch_https(ctx, f"https://{DOMAIN}:{port}/api/ready?x=1", timeout=5, context=trusting)
    assert fetched == (200, b"ok", True)
    # The handshake (SNI) and the request (Host) named the domain, not the name connected to.
    # And it said who it is: AWS's common rule set (edge.waf) blocks a request with no User-Agent.
    assert seen == {"sni": [DOMAIN], "host": [f"{DOMAIN}:{port}"], "path": ["/api/ready?x=1"],
                    "agent": [f"threetier/{__version__} (round trip)"]}


def test_a_certificate_for_another_name_is_refused_through_the_balancers_name(
        ctx: Ctx, local_ca: LocalCA, trusting: ssl.SSLContext) -> None:
    """The ALB's own name is not what the certificate must be for: the domain is."""
    with https_server(local_ca.cert_file, local_ca.key_file) as (port, seen), \
            pytest.raises(ssl.SSLCertVerificationError, match=f"Hostname mismatch.*'{DOMAIN}'"):
        probe.fetch_https(ctx, f"https://{DOMAIN}:{port}/health", timeout=5, context=trusting)
    assert seen["sni"] == [DOMAIN] and seen["host"] == []  # nothing was asked over it


def test_a_domain_that_resolves_is_fetched_as_it_is(ctx: Ctx, local_ca: LocalCA, trusting: ssl.SSLContext) -> None:
    ctx.resources["load_balancer_dns"] = "192.0.2.1"  # TEST-NET-1: reaching it would time out
    with https_server(local_ca.cert_file, local_ca.key_file) as (port, seen):
        fetched = probe.fetch_https(ctx, f"https://localhost:{port}/health", timeout=5, context=trusting)
    assert fetched == (200, b"ok", False)
    assert seen["sni"] == ["localhost"]


def test_without_the_balancers_name_an_unresolved_domain_is_the_error(ctx: Ctx, trusting: ssl.SSLContext) -> None:
    """An OSError, as urllib's: the round trip polls again and says it."""
    del ctx.resources["load_balancer_dns"]
    with pytest.raises(socket.gaierror):
        probe.fetch_https(ctx, f"https://{DOMAIN}/health", timeout=5, context=trusting)
