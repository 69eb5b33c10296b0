"""The VPN stand-in and the clients that follow DNS, with real sockets and the emulator.

The proxy forwards to a real echo server; the clients resolve records in the emulator's
Route 53 and send to two small HTTP servers playing the sides.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from paymig.local.tcp_proxy import TcpProxy
from paymig.rehearsal.clients import ClientPool, ZoneView

pytestmark = pytest.mark.slow


@pytest.fixture
def echo() -> Iterator[int]:
    """A TCP echo server on loopback; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: _echo(c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()


def _echo(conn: socket.socket) -> None:
    # A cut resets the proxy's side of this connection too: that ends it, as a close does.
    with conn, contextlib.suppress(ConnectionResetError):
        while data := conn.recv(1024):
            conn.sendall(data)


def _roundtrip(port: int, data: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        return conn.recv(1024)


def test_the_proxy_forwards_cuts_restores_and_delays(echo: int) -> None:
    with TcpProxy("127.0.0.1", echo) as proxy:
        assert _roundtrip(proxy.port) == b"ping"
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        held.sendall(b"a")
        assert held.recv(10) == b"a"
        proxy.cut()
        assert proxy.is_cut
        # The open connection is reset, a new one too.
        with pytest.raises(OSError):
            held.sendall(b"b")
            if not held.recv(10):
                raise ConnectionResetError("closed")
        with pytest.raises(OSError):
            reply = _roundtrip(proxy.port)
            if not reply:
                raise ConnectionResetError("closed")
        proxy.restore()
        assert _roundtrip(proxy.port) == b"ping"
        proxy.set_delay(0.3)
        began = time.monotonic()
        assert _roundtrip(proxy.port) == b"ping"
        assert time.monotonic() - began >= 0.3
        with pytest.raises(ValueError, match="delay"):
            proxy.set_delay(-1)
    held.close()


class _Side(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status = 201

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"payment_id": str(uuid.uuid4())}).encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _side(status: int) -> ThreadingHTTPServer:
    handler = type("Side", (_Side,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _records(route53: Any, zone: str, legacy: int, aws: int) -> None:
    changes = [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "api.example.com.", "Type": "A", "SetIdentifier": name, "Weight": weight,
        "TTL": 2, "ResourceRecords": [{"Value": address}]}}
        for name, weight, address in (("legacy", legacy, "203.0.113.20"), ("aws", aws, "192.0.2.1"))]  # fmt: skip
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})


def test_clients_follow_the_weights_after_their_ttl(aws: Any, tmp_path: Path) -> None:
    route53 = aws.client("route53")
    zone = route53.create_hosted_zone(Name="example.com", CallerReference="c")["HostedZone"]["Id"]
    _records(route53, zone, 100, 0)
    legacy, aws_side = _side(201), _side(503)
    view = ZoneView(route53, zone, "api.example.com", ttl_seconds=60)
    assert view.ttls == {"legacy": 2, "aws": 2}  # the records' own TTL
    pool = ClientPool(view, {"legacy": f"http://127.0.0.1:{legacy.server_port}",
                             "aws": f"http://127.0.0.1:{aws_side.server_port}"},
                      ["7d5a0f0e-0000-4000-8000-000000000001"], rate=40.0, clients=4,
                      ack_log=tmp_path / "ack.log", senders=4)  # fmt: skip
    view.start()
    pool.start()
    time.sleep(1.0)
    changing = time.monotonic()
    _records(route53, zone, 0, 100)
    changed = time.monotonic()
    time.sleep(3.5)
    pool.stop()
    view.stop()
    legacy.shutdown()
    aws_side.shutdown()
    records = pool.snapshot()
    # Sent before the change was asked for, so answered from the records before it; and
    # answered from records read after it. (Between the two: answers either side.)
    before = [r for r in records if r.sent < changing]
    settled = [r for r in records if r.answer_read_at >= changed]
    assert before and settled
    assert {r.side for r in before} == {"legacy"}
    assert {r.side for r in settled} == {"aws"}
    # A client resolves again only when its answer expired: 4 clients, 40 requests/s.
    assert sum(r.resolved for r in records) < len(records) / 4
    # Acknowledged: the legacy 201s, logged with their ids; the aws 503s never.
    acknowledged = pool.acknowledged_ids()
    assert len(acknowledged) == sum(1 for r in records if r.side == "legacy" and r.status == 201)
    assert all(r.payment_id is None for r in records if r.side == "aws")
    assert (tmp_path / "ack.log").read_text().split() == acknowledged


def test_a_pool_needs_a_rate_and_clients(aws: Any, tmp_path: Path) -> None:
    route53 = aws.client("route53")
    zone = route53.create_hosted_zone(Name="example.com", CallerReference="d")["HostedZone"]["Id"]
    view = ZoneView(route53, zone, "api.example.com", ttl_seconds=10)
    with pytest.raises(ValueError, match="--rate"):
        ClientPool(view, {}, [], rate=0, clients=1, ack_log=tmp_path / "a")
    with pytest.raises(ValueError, match="--clients"):
        ClientPool(view, {}, [], rate=1, clients=0, ack_log=tmp_path / "a")
