"""The legacy side: a stand-in for the on-premises payment API, writing to the source.

The real on-prem API is not part of this project. Its stand-in is a small HTTP server
in the rehearsal's process that answers ``POST /payments`` and ``GET /health`` like the
payment API does, and records a payment with the payment API's own validation and SQL
(:func:`paymig.lambdas.payment_api_request.parse_payment` and
:func:`paymig.lambdas.payment_api_store.record_payment`), on a direct
connection to the source database: it lives on-prem, so no VPN lies in its path.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from paymig.lambdas.payment_api_outcome import PaymentOutcome, error_outcome
from paymig.lambdas.payment_api_request import HttpRequest, RequestError, parse_payment
from paymig.lambdas.payment_api_store import database_answers, record_payment


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    side: LegacySide


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing: the clients record every answer."""

    def _answer(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """``GET /health``."""
        if self.path != "/health":
            self._answer(404, {"error": f"path: no route {self.path}"})
            return
        healthy = self.server.side.healthy()
        self._answer(200 if healthy else 503, {"status": "healthy" if healthy else "unhealthy"})

    def do_POST(self) -> None:
        """``POST /payments``."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if self.path != "/payments":
            self._answer(404, {"error": f"path: no route {self.path}"})
            return
        request = HttpRequest(
            method="POST", path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            raw_body=body, base64_encoded=False, multi_value=False,
        )  # fmt: skip
        outcome = self.server.side.record(request)
        self._answer(int(outcome.status), outcome.body)


class LegacySide:
    """The on-prem API stand-in on 127.0.0.1, one database connection per thread."""

    def __init__(self, source_dsn: str) -> None:
        """Describe the server; it listens once started."""
        self.source_dsn = source_dsn
        self._local = threading.local()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Where clients send requests (the legacy record's addresses stand for this)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LegacySide:
        """Listen on a free loopback port; serve in a thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.side = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="legacy-side", daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.source_dsn, autocommit=True, connect_timeout=5)
            self._local.conn = conn
        return conn

    def healthy(self) -> bool:
        """Whether the source answers ``SELECT 1``."""
        try:
            return database_answers(self._connection())
        except psycopg.Error:
            self._local.conn = None
            return False

    def record(self, request: HttpRequest) -> PaymentOutcome:
        """Validate and record one payment, as the API does; 503 when the source fails."""
        try:
            payment = parse_payment(request)
            return record_payment(self._connection(), payment)
        except RequestError as error:
            return error_outcome(error)
        except psycopg.Error:
            self._local.conn = None  # the next request reconnects
            return PaymentOutcome(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "database unavailable"})
