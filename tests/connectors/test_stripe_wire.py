"""The wire under the Stripe client (`wire.PooledWire`), against real servers: what it
sends, and every way a request can go unanswered."""

from __future__ import annotations

import base64
import datetime
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.connectors.conftest import source_for
from tests.connectors.scripted_http import Scripted, ScriptedServer
from tests.connectors.wires import ForwardProxy

from headwater.adapters.connectors.stripe import verify_key
from headwater.adapters.connectors.stripe.wire import PooledWire, WireError
from headwater.sandbox.testing import RunningSandbox


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


def test_sends_the_query_the_headers_and_the_base_urls_path(scripted: ScriptedServer) -> None:
    scripted.script = [Scripted(200, b'{"ok": true}', {"Request-Id": "req_1"})]
    wire = PooledWire(scripted.url + "/stripe/", {"Authorization": "Bearer sk_x"}, 5, 2)
    try:
        answer = wire.get(
            "/v1/customers", {"limit": 100, "created[gte]": 5, "expand[]": ["a", "b c"]}
        )
    finally:
        wire.close()
    seen = scripted.seen[0]
    assert seen.path == "/stripe/v1/customers"
    assert seen.query == {"limit": ["100"], "created[gte]": ["5"], "expand[]": ["a", "b c"]}
    assert seen.headers["authorization"] == "Bearer sk_x"
    assert (answer.status_code, answer.content) == (200, b'{"ok": true}')
    assert answer.headers.get("request-id") == answer.headers.get("REQUEST-ID") == "req_1"


def test_an_error_status_is_an_answer(scripted: ScriptedServer) -> None:
    scripted.script = [Scripted(429, b"slow down \xff", {"Stripe-Rate-Limited-Reason": "x"})]
    wire = PooledWire(scripted.url, {}, 5, 2)
    try:
        answer = wire.get("/v1/customers", {})
    finally:
        wire.close()
    assert answer.status_code == 429
    assert answer.headers.get("stripe-rate-limited-reason") == "x"
    assert answer.text == "slow down \ufffd"


def test_more_requests_at_once_than_connections_kept_are_all_answered(
    scripted: ScriptedServer,
) -> None:
    scripted.script = [Scripted(200, b"{}")]
    wire = PooledWire(scripted.url, {}, 5, 1)
    answers: list[int] = []

    def ask() -> None:
        for _ in range(20):
            answers.append(wire.get("/v1/customers", {}).status_code)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        wire.close()
    assert answers == [200] * 80


def _serve_once(handle: Callable[[socket.socket], None]) -> tuple[str, threading.Thread]:
    """A server that accepts one connection and hands it to `handle`."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                handle(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{port}", thread


def test_a_body_cut_short_is_no_answer() -> None:
    """A page whose connection breaks before its last byte is not taken as a page."""

    def cut(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b'{"data": [' * 3)

    url, thread = _serve_once(cut)
    wire = PooledWire(url, {}, 5, 2)
    try:
        with pytest.raises(WireError, match=r"IncompleteRead|Connection broken"):
            wire.get("/v1/customers", {})
    finally:
        wire.close()
        thread.join(5)


def test_a_silent_server_times_out() -> None:
    done = threading.Event()
    url, thread = _serve_once(lambda conn: done.wait(10))
    wire = PooledWire(url, {}, 0.3, 2)
    started = time.monotonic()
    try:
        with pytest.raises(WireError, match="ReadTimeoutError"):
            wire.get("/v1/customers", {})
    finally:
        done.set()
        wire.close()
        thread.join(5)
    assert time.monotonic() - started < 5


def _self_signed(directory: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that no authority signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_a_certificate_no_authority_signed_is_refused(tmp_path: Path) -> None:
    """Over HTTPS the server's certificate is verified: the key is never sent to a
    server that cannot prove it is the one asked for."""
    context = _self_signed(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    received.append(tls.recv(65536))
            except (ssl.SSLError, OSError):
                pass  # the client refused the handshake

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wire = PooledWire(f"https://127.0.0.1:{port}", {"Authorization": "Bearer sk_x"}, 5, 2)
    try:
        with pytest.raises(WireError, match="CERTIFICATE_VERIFY_FAILED"):
            wire.get("/v1/customers", {})
    finally:
        wire.close()
        thread.join(5)
    assert received == []


def test_through_a_proxy_with_its_credentials(sandbox: RunningSandbox) -> None:
    """A proxy (`Settings.proxies`, from HTTPS_PROXY and the like) carries every request
    of a read, the reading process's too, with its credentials, and the key verified
    through it."""
    proxy = ForwardProxy()
    proxied = proxy.url.replace("http://", "http://us%40er:p%3Ass@")
    try:
        access = verify_key(sandbox.url, sandbox.secret_key, proxy=proxied)
        with source_for(sandbox, proxy=proxied) as source:
            customers = [c for page in source.read_full() for c in page]
            calls = source.api_calls
    finally:
        proxy.close()
    assert access.events_read
    assert len({c["id"] for c in customers}) == len(customers) > 0
    assert len(proxy.seen) == calls + 3  # and the key's three checks
    credentials = "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    port = urlsplit(sandbox.url).port
    for line, authorization in proxy.seen:
        assert line.startswith(f"GET http://127.0.0.1:{port}/v1/")
        assert authorization == credentials
