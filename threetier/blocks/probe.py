"""The round trip's HTTP client (Part 7): GET through the front door, https://<edge.domain> or the
external ALB's http name, as a visitor would.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple

from threetier import __version__
from threetier.blocks.cdn import DOMAIN_NAME as CDN_DOMAIN_NAME
from threetier.engine import Ctx


class Fetched(NamedTuple):
    status: int
    body: bytes
    through_balancer: bool  # the domain did not resolve here: sent to the ALB's own DNS name


class DomainAtAddress(http.client.HTTPSConnection):
    """HTTPS for `host` over a TCP connection to `address`: the certificate is verified for `host`,
    which the TLS handshake (SNI) and the Host header name, wherever the connection goes."""

    def __init__(self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self.address, self.tls = address, context

    def connect(self) -> None:
        connection = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(connection, server_hostname=self.host)


def fetch_https(ctx: Ctx, url: str, timeout: float, context: ssl.SSLContext | None = None) -> Fetched:
    """GET an https URL of the domain. A new record takes minutes to resolve everywhere (and a
    resolver that asked before it existed caches the "no such name" for the zone's negative TTL):
    while the domain does not resolve here, the request goes to the external ALB's own DNS name (with
    edge.cdn, the distribution's), still for the domain, so the certificate and the listener are tested
    all the same."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    path = f"{parts.path or '/'}{f'?{parts.query}' if parts.query else ''}"
    tls = context or ssl.create_default_context()
    try:
        return send_get(DomainAtAddress(host, host, port, timeout, tls), path, through_balancer=False)
    except socket.gaierror:
        # With edge.cdn the front door is the distribution (the ALB answers CloudFront only).
        balancer = (ctx.config.edge.cdn and ctx.resources.get(CDN_DOMAIN_NAME)) or ctx.resources.get("load_balancer_dns")
        if not balancer:
            raise
    return send_get(DomainAtAddress(host, balancer, port, timeout, tls), path, through_balancer=True)


def send_get(connection: http.client.HTTPSConnection, path: str, through_balancer: bool) -> Fetched:
    try:
        # A User-Agent: AWS's common rule set (edge.waf) blocks requests without one.
        connection.request("GET", path, headers={"User-Agent": f"threetier/{__version__} (round trip)", "Accept": "*/*"})
        response = connection.getresponse()
        return Fetched(response.status, response.read(65536), through_balancer)
    finally:
        connection.close()


def fetch(ctx: Ctx, url: str) -> Fetched:
    """GET through the front door: https://<edge.domain> by fetch_https (through the ALB's own
    name while the new domain does not resolve here), the ALB's http name by urllib."""
    if url.startswith("https://"):
        return fetch_https(ctx, url, timeout=10)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # our own ALB
            return Fetched(response.status, response.read(65536), False)
    except urllib.error.HTTPError as exc:
        return Fetched(exc.code, exc.read(4096), False)
