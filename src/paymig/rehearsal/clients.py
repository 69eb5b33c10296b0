"""Virtual clients that find the API the way real clients do: through DNS.

The API name has two weighted records in the emulator's Route 53 (``legacy`` and
``aws``). A :class:`ZoneView` reads them as they stand (every
:data:`ZONE_POLL_SECONDS`); each virtual client resolves the name when its cached
answer has expired, choosing a record by weight as Route 53 does
(:func:`paymig.semantics.route53_weighted.choose`), keeps the answer for the record's
TTL, and sends its payments to the side it resolved. The answer's addresses (the legacy
record's IPs, the load balancer's name) stand for the local servers of each side.

Route 53's health checks are not evaluated (the emulator runs no health checkers): every
record counts as healthy, so only the weights move traffic.

A payment counts as acknowledged only when the API answered 2xx with a payment id; the
id is then written to the acknowledged log (one line, flushed) before anything else.
"""

from __future__ import annotations

import http.client
import json
import queue
import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from paymig.naming import AWS_SET_ID, LEGACY_SET_ID
from paymig.semantics.route53_weighted import WeightedRecord, choose

#: How often the zone's weighted records are read back from the emulator.
ZONE_POLL_SECONDS = 0.5
#: Seconds a client waits for an answer before giving up.
REQUEST_TIMEOUT_SECONDS = 15.0
_CURRENCIES = ("USD", "USD", "USD", "EUR", "EUR", "GBP", "CAD")


@dataclass(frozen=True)
class Answer:
    """A DNS answer a client holds: which record, until when (monotonic)."""

    side: str
    expires: float
    read_at: float  # when the records it was drawn from were asked for (monotonic)


class ZoneView(threading.Thread):
    """The API name's weighted records, read from the emulator's Route 53."""

    def __init__(self, route53: Any, zone_id: str, record_name: str, ttl_seconds: int) -> None:
        """`ttl_seconds` is the TTL an alias answer gets (see the module docstring)."""
        super().__init__(name="paymig-zone-view", daemon=True)
        self.route53, self.zone_id = route53, zone_id
        self.record_name = record_name.rstrip(".") + "."
        self.alias_ttl = ttl_seconds
        self.records: list[WeightedRecord] = []
        self.ttls: dict[str, int] = {}
        self.read_at = 0.0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self.refresh()

    def refresh(self) -> None:
        """Read the weighted records once; they show the zone as of `read_at` or later."""
        asked = time.monotonic()
        sets = self.route53.list_resource_record_sets(HostedZoneId=self.zone_id)
        found = [
            r for r in sets["ResourceRecordSets"]
            if "SetIdentifier" in r and str(r["Name"]).rstrip(".") + "." == self.record_name
        ]  # fmt: skip
        records = [WeightedRecord(str(r["SetIdentifier"]), int(r["Weight"])) for r in found]
        # An alias record has no TTL of its own: it gets its target's (see ZoneView).
        ttls = {str(r["SetIdentifier"]): int(r.get("TTL", self.alias_ttl)) for r in found}
        with self._lock:
            self.records, self.ttls, self.read_at = records, ttls, asked

    def weights(self) -> dict[str, int]:
        """The weights as last read."""
        with self._lock:
            return {r.set_identifier: r.weight for r in self.records}

    def resolve(self, rng: random.Random, now: float) -> Answer:
        """One DNS answer, drawn by weight from the records as they stand."""
        with self._lock:
            records, ttls, read_at = list(self.records), dict(self.ttls), self.read_at
        side = choose(records, rng)
        return Answer(side, now + ttls.get(side, self.alias_ttl), read_at)

    def run(self) -> None:
        """Read the records until stopped."""
        while not self._stop_event.wait(ZONE_POLL_SECONDS):
            try:
                self.refresh()
            except Exception as error:  # keep the last answer; note the failure
                self.errors.append(f"{type(error).__name__}: {error}")

    def stop(self) -> None:
        """Stop reading."""
        self._stop_event.set()
        if self.is_alive():
            self.join(5)


@dataclass(frozen=True)
class RequestRecord:
    """One payment request as the client saw it."""

    sent: float  # monotonic
    done: float
    client: int
    side: str
    status: int  # 0: no answer (connection failed or timed out)
    payment_id: str | None
    resolved: bool  # the client resolved the name for this request
    answer_read_at: float  # when the zone records behind its DNS answer were read

    @property
    def acknowledged(self) -> bool:
        """2xx with a payment id: the client was told the payment is recorded."""
        return 200 <= self.status < 300 and self.payment_id is not None


class ClientPool:
    """`clients` virtual clients sending `rate` payments per second in all."""

    def __init__(
        self,
        zone: ZoneView,
        endpoints: Mapping[str, str],
        accounts: Sequence[str],
        *,
        rate: float,
        clients: int,
        ack_log: Path,
        senders: int = 16,
        seed: int = 7,
    ) -> None:
        """`endpoints` maps a set identifier to its side's URL (``http://127.0.0.1:port``)."""
        if rate <= 0:
            raise ValueError(f"--rate: must be positive, got {rate}")
        if clients < 1:
            raise ValueError(f"--clients: must be at least 1, got {clients}")
        self.zone, self.endpoints, self.accounts = zone, dict(endpoints), list(accounts)
        self.rate, self.clients = rate, clients
        self.ack_log_path = ack_log
        self.records: list[RequestRecord] = []
        self.errors: list[str] = []
        self._answers: dict[int, Answer] = {}
        self._random = random.Random(seed)  # noqa: S311 - load, not secrets
        self._lock = threading.Lock()
        self._jobs: queue.Queue[int | None] = queue.Queue(maxsize=senders * 4)
        self._stop_event = threading.Event()
        self._threads = [threading.Thread(target=self._dispatch, name="paymig-dispatch",
                                          daemon=True)]  # fmt: skip
        self._threads += [
            threading.Thread(target=self._send_loop, name=f"paymig-sender-{i}", daemon=True)
            for i in range(senders)
        ]
        self._log: TextIO | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start dispatching and sending."""
        self._log = self.ack_log_path.open("w", encoding="utf-8")
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop sending; wait for requests in flight. Safe to call twice."""
        if self._stop_event.is_set():
            return
        self._stop_event.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(REQUEST_TIMEOUT_SECONDS + 5)
        if self._log is not None:
            self._log.close()

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> list[RequestRecord]:
        """Every request so far."""
        with self._lock:
            return list(self.records)

    def acknowledged_ids(self) -> list[str]:
        """The ids of the acknowledged payments."""
        return [r.payment_id for r in self.snapshot() if r.acknowledged and r.payment_id]

    # ------------------------------------------------------------------ work

    def _dispatch(self) -> None:
        """Hand out one request every 1/rate seconds, to the clients in turn."""
        interval, client, due = 1.0 / self.rate, 0, time.monotonic()
        while not self._stop_event.is_set():
            try:
                self._jobs.put(client, timeout=0.5)
            except queue.Full:
                continue  # every sender is busy: the clients wait, as real ones do
            client = (client + 1) % self.clients
            due += interval
            self._stop_event.wait(max(0.0, due - time.monotonic()))
        for _ in self._threads[1:]:
            self._jobs.put(None)

    def _answer_for(self, client: int, now: float) -> tuple[Answer, bool]:
        with self._lock:
            held = self._answers.get(client)
            if held is not None and held.expires > now:
                return held, False
            answer = self.zone.resolve(self._random, now)
            self._answers[client] = answer
            return answer, True

    def _send_loop(self) -> None:
        connections: dict[str, http.client.HTTPConnection] = {}
        while (client := self._jobs.get()) is not None:
            self._send_one(client, connections)
        for conn in connections.values():
            conn.close()

    def _payment(self) -> tuple[str, bytes]:
        with self._lock:
            account = self._random.choice(self.accounts)
            merchant = f"merchant-{self._random.randrange(97)}"
            amount = f"{self._random.uniform(1, 500):.2f}"
            currency = self._random.choice(_CURRENCIES)
        body = {"merchant_id": merchant, "account_id": account, "amount": amount,
                "currency": currency}  # fmt: skip
        return f"rehearsal-{uuid.uuid4()}", json.dumps(body).encode()

    def _send_one(self, client: int, connections: dict[str, http.client.HTTPConnection]) -> None:
        sent = time.monotonic()
        answer, resolved = self._answer_for(client, sent)
        key, body = self._payment()
        status, payment_id = 0, None
        try:
            conn = connections.get(answer.side) or self._connect(answer.side)
            connections[answer.side] = conn
            conn.request("POST", "/payments", body=body, headers={
                "Content-Type": "application/json", "Idempotency-Key": key})  # fmt: skip
            response = conn.getresponse()
            data = response.read()
            status = response.status
            if 200 <= status < 300:
                payment_id = str(json.loads(data)["payment_id"])
        except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
            connections.pop(answer.side, None)
            with self._lock:
                self.errors.append(f"{answer.side}: {type(error).__name__}: {error}"[:200])
        record = RequestRecord(sent, time.monotonic(), client, answer.side, status, payment_id,
                               resolved, answer.read_at)  # fmt: skip
        with self._lock:
            if record.acknowledged and self._log is not None:
                self._log.write(f"{payment_id}\n")
                self._log.flush()
            self.records.append(record)

    def _connect(self, side: str) -> http.client.HTTPConnection:
        host_port = self.endpoints[side].removeprefix("http://")
        host, _, port = host_port.partition(":")
        return http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT_SECONDS)


def sides() -> tuple[str, str]:
    """The two set identifiers, legacy first."""
    return LEGACY_SET_ID, AWS_SET_ID
