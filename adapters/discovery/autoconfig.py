"""Autoconfig: Thunderbird's config-v1.1 XML, fetched over HTTPS from
`https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>` and
`https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml`.

The fetch connects only to allowed addresses (addresses.allowed: every address of the host public
unless private hosts are allowed), to the address it checked (the certificate is still verified
for the host name, sent as SNI and Host), follows at most 3 redirects, each checked the same way,
reads at most 64 KB and gives up after 5 s per request. The XML is parsed with defusedxml (no DTD,
no entities). Whatever goes wrong (malformed XML, an entity bomb, a huge body, a redirect to a
private address, TLS errors): no candidates, never an exception.

Tests point it at a loopback HTTPS server with the constructor: `port=` (the server's port;
None: the scheme's default), `ssl_context=` (trusting the test CA; check_hostname may be off for
made-up names) or `extra_ca_file=` (added to the system's CAs, as MAILROOM_EXTRA_CA_FILE),
`scheme="http"` if they like, and `public=` (a per-address test admitting 127.0.0.1, so that
`allow_private=False` can still be exercised against redirects); DNS names come from the test
DNS server through the resolver.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import httpx

from adapters.discovery.addresses import AddressResolver, allowed, is_public
from adapters.discovery.model import Candidate
from domain.values import MailProtocol, TransportSecurity

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 5.0
MAX_BYTES = 64 * 1024
MAX_REDIRECTS = 3
TOTAL_BUDGET = 10.0  # seconds for one URL, redirects included
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
_PASSWORD_AUTH = {"password-cleartext", "password-encrypted", "plain", "secure", ""}


class FetchRefused(Exception):
    """The fetch was not made or not finished (private address, too many redirects, too big...)."""


class Autoconfig:
    def __init__(
        self,
        resolver: AddressResolver,
        *,
        scheme: str = "https",
        port: int | None = None,
        allow_private: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        extra_ca_file: str | None = None,
        timeout: float = HTTP_TIMEOUT,
        max_bytes: int = MAX_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        public: Callable[[str], bool] = is_public,
    ) -> None:
        if scheme not in ("https", "http"):
            raise ValueError("scheme must be https or http")
        self.resolver = resolver
        self.scheme = scheme
        self.port = port
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.public = public
        self.allow_private = allow_private
        if ssl_context is None:
            ssl_context = ssl.create_default_context()
            if extra_ca_file:
                ssl_context.load_verify_locations(cafile=extra_ca_file)
        self.ssl_context = ssl_context

    def urls(self, address: str) -> list[str]:
        domain = address.rpartition("@")[2].strip().lower().rstrip(".").encode("idna").decode("ascii")
        port = f":{self.port}" if self.port else ""
        query = urllib.parse.urlencode({"emailaddress": address})
        return [
            f"{self.scheme}://autoconfig.{domain}{port}/mail/config-v1.1.xml?{query}",
            f"{self.scheme}://{domain}{port}/.well-known/autoconfig/mail/config-v1.1.xml",
        ]

    def candidates(self, address: str, *, allow_private: bool | None = None,
                   deadline: float | None = None) -> list[Candidate]:
        """Candidates (source "autoconfig") from the first of the two URLs that gives any; both are
        fetched at once, within `deadline` (time.monotonic()) and TOTAL_BUDGET. `allow_private`
        None: the constructor's. Never raises."""
        if allow_private is None:
            allow_private = self.allow_private
        try:
            urls = self.urls(address)
            stop = time.monotonic() + TOTAL_BUDGET
            if deadline is not None:
                stop = min(stop, deadline)
            results: list[list[Candidate] | None] = [None] * len(urls)

            def run(index: int, url: str) -> None:
                results[index] = self._from_url(url, address, allow_private, stop)

            threads = [threading.Thread(target=run, args=(i, u), daemon=True, name="mailroom-autoconfig")
                       for i, u in enumerate(urls)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(max(0.0, stop - time.monotonic()))
            for found in results:
                if found:
                    return found
            return []
        except Exception:
            log.warning("autoconfig lookup failed", exc_info=True)
            return []

    def _from_url(self, url: str, address: str, allow_private: bool, stop: float) -> list[Candidate]:
        try:
            body = self.fetch(url, allow_private=allow_private, stop=stop)
        except Exception as exc:
            log.info("autoconfig %s: %s", _safe_url(url), exc.__class__.__name__)
            return []
        return parse(body, address)

    # -- fetching ------------------------------------------------------------------------------

    def fetch(self, url: str, *, allow_private: bool, stop: float) -> bytes:
        """The body of a 200 answer at `url`, following at most max_redirects redirects, each
        target checked before any connection. FetchRefused / DnsError / PrivateAddress /
        httpx errors otherwise."""
        for _hop in range(self.max_redirects + 1):
            status, location, body = self._get(url, allow_private, stop)
            if status in (301, 302, 303, 307, 308) and location:
                url = urllib.parse.urljoin(url, location)
                if urllib.parse.urlsplit(url).scheme != self.scheme:
                    raise FetchRefused("redirect to another scheme")
                continue
            if status != 200:
                raise FetchRefused(f"HTTP {status}")
            return body
        raise FetchRefused("too many redirects")

    def _get(self, url: str, allow_private: bool, stop: float) -> tuple[int, str, bytes]:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host or parts.username or parts.password:
            raise FetchRefused("bad URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        remaining = stop - time.monotonic()
        if remaining <= 0:
            raise FetchRefused("out of time")
        addresses = allowed(host, self.resolver, allow_private, timeout=remaining, public=self.public)
        default_port = port == (443 if parts.scheme == "https" else 80)
        host_header = (f"[{host}]" if ":" in host else host) + ("" if default_port else f":{port}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        last: Exception = FetchRefused("no address")
        for ip in addresses:
            remaining = stop - time.monotonic()
            if remaining <= 0:
                raise FetchRefused("out of time")
            literal = f"[{ip}]" if ":" in ip else ip
            target = f"{parts.scheme}://{literal}:{port}{path}"
            timeout = httpx.Timeout(min(self.timeout, remaining))
            try:
                with httpx.Client(verify=self.ssl_context, timeout=timeout, follow_redirects=False,
                                  trust_env=False) as client:
                    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
                    request = client.build_request(
                        "GET", target,
                        # identity: the size cap counts what is parsed (no compression bombs)
                        headers={"Host": host_header, "Accept": "application/xml, text/xml",
                                 "Accept-Encoding": "identity", "User-Agent": "mailroom-discovery"},
                        extensions=extensions)
                    response = client.send(request, stream=True)
                    try:
                        body = bytearray()
                        if response.status_code == 200:
                            declared = response.headers.get("content-length", "")
                            if declared.isdigit() and int(declared) > self.max_bytes:
                                raise FetchRefused("response too large")
                            for chunk in response.iter_raw():
                                body += chunk
                                if len(body) > self.max_bytes:
                                    raise FetchRefused("response too large")
                                if time.monotonic() > stop:
                                    raise FetchRefused("out of time")
                        return response.status_code, response.headers.get("location", ""), bytes(body)
                    finally:
                        response.close()
            except httpx.ConnectError as exc:  # try the host's next address
                last = exc
            except httpx.ConnectTimeout as exc:
                last = exc
        raise last


def _safe_url(url: str) -> str:
    return url.split("?", 1)[0]


# -- parsing -----------------------------------------------------------------------------------

_SECURITY = {"SSL": TransportSecurity.TLS, "TLS": TransportSecurity.TLS, "STARTTLS": TransportSecurity.STARTTLS}


def parse(body: bytes | str, address: str) -> list[Candidate]:
    """Candidates from a config-v1.1 document: incoming IMAP and POP3 servers, outgoing SMTP, in
    document order (the caller orders them), a server listed twice once. Plaintext (socketType
    plain), servers that take no password (OAuth2 only...), bad host names and ports are left out.
    Malformed XML, a DTD or entities: []."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except Exception:
        return []
    if not isinstance(root, Element) or _local(root.tag) != "clientConfig":
        return []
    local, _, domain = address.rpartition("@")
    found: dict[tuple[object, ...], Candidate] = {}  # a server listed twice: once
    for server in root.iter():
        tag = _local(server.tag)
        kind = (server.get("type") or "").strip().lower()
        if tag == "incomingServer" and kind in ("imap", "pop3"):
            protocol: MailProtocol | None = MailProtocol.IMAP if kind == "imap" else MailProtocol.POP3
            role = "incoming"
        elif tag == "outgoingServer" and kind == "smtp":
            protocol, role = None, "outgoing"
        else:
            continue
        candidate = _server(server, role, protocol, address, local, domain)
        if candidate is not None:
            key = (candidate.role, candidate.protocol, candidate.host, candidate.port, candidate.security)
            found.setdefault(key, candidate)
    return list(found.values())


def _server(element: Element, role: str, protocol: MailProtocol | None, address: str, local: str,
            domain: str) -> Candidate | None:
    def text(name: str) -> str:
        child = next((c for c in element if _local(c.tag) == name), None)
        return (child.text or "").strip() if child is not None else ""

    def substitute(value: str) -> str:
        return (value.replace("%EMAILADDRESS%", address).replace("%EMAILLOCALPART%", local)
                .replace("%EMAILDOMAIN%", domain))

    host = substitute(text("hostname")).lower().rstrip(".")
    security = _SECURITY.get(text("socketType").upper())
    port_text = text("port")
    if security is None or not _HOSTNAME.match(host) or not port_text.isdigit():
        return None  # plain (or unknown) never proposed
    port = int(port_text)
    if not 0 < port < 65536:
        return None
    methods = {(c.text or "").strip().lower() for c in element if _local(c.tag) == "authentication"}
    if methods and not methods & _PASSWORD_AUTH:
        return None
    username = substitute(text("username"))
    usernames = (username,) if username and "%" not in username else ()
    return Candidate("autoconfig", "incoming" if role == "incoming" else "outgoing", protocol, host, port,
                     security, usernames)


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""
