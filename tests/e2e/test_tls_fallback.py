"""A TLS ClientHello sent to the plain-HTTP port must get an `HTTP/1.1 400` reply.

Go clients (docker CLI `manifest --insecure`) try https first and fall back to http only
when the reply bytes start with `HTTP/` ("server gave HTTP response to HTTPS client").

In scale-out mode these go to a wharf node directly (``direct``), not to the nginx in front.
"""

from __future__ import annotations

import socket
import ssl

from helpers import direct


def client_hello() -> bytes:
    """The real first flight of Python's TLS client (a ClientHello record)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16", "not a TLS handshake record"
    return hello


def send_raw(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        s.settimeout(10)
        data = b""
        while len(data) < 4096:
            try:
                chunk = s.recv(4096)
            except (TimeoutError, socket.timeout):
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                break
        return data


def test_tls_client_hello_gets_http_400(wharf):
    reply = send_raw(direct(wharf).port, client_hello())
    assert reply.startswith(b"HTTP/1.1 400"), f"reply to a ClientHello: {reply[:200]!r}"


def test_minimal_tls_record_gets_http_400(wharf):
    reply = send_raw(direct(wharf).port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64)
    assert reply.startswith(b"HTTP/1.1 400"), f"reply: {reply[:200]!r}"


def test_server_still_healthy_after_garbage(wharf):
    send_raw(direct(wharf).port, client_hello())
    reply = send_raw(direct(wharf).port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
