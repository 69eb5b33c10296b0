"""The ALB -> Lambda event and the response back to HTTP, per the ELB user guide.

"Lambda functions as targets": text bodies (text/*, application/json, javascript, xml)
are sent as is, others base64-encoded; the load balancer adds the x-amzn-trace-id and
x-forwarded-* headers; query strings are passed as sent; with multi-value headers on,
``multiValueHeaders``/``multiValueQueryStringParameters`` replace the single forms. The
production handler reads the event it builds.
"""

from __future__ import annotations

import base64
import json
import re
from http import HTTPStatus

import pytest

from paymig.lambdas import payment_api_outcome, payment_api_request
from paymig.rehearsal.alb_event import (
    HttpRequest,
    body_is_text,
    http_response,
    lambda_event,
    trace_id,
)

GROUP = (
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/paymig-blue/6d0ecf831eec9f09"
)


def request(body: bytes = b'{"a": 1}', content_type: str = "application/json") -> HttpRequest:
    return HttpRequest(
        method="post", path="/payments", query="x=a%20b&x=2&empty=",
        headers=[("Content-Type", content_type), ("Idempotency-Key", "k-1"), ("X-Dup", "1"),
                 ("X-Dup", "2")],
        body=body, client_ip="198.51.100.7",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content_type", "text"),
    [("application/json", True), ("text/plain; charset=utf-8", True), ("application/xml", True),
     ("application/javascript", True), ("application/octet-stream", False), (None, False),
     ("image/png", False)],
)  # fmt: skip
def test_which_bodies_are_sent_as_text(content_type: str | None, text: bool) -> None:
    assert body_is_text(content_type) is text


def test_single_value_event() -> None:
    event = lambda_event(request(), GROUP, multi_value=False)
    assert event["requestContext"] == {"elb": {"targetGroupArn": GROUP}}
    assert (event["httpMethod"], event["path"]) == ("POST", "/payments")
    assert (event["body"], event["isBase64Encoded"]) == ('{"a": 1}', False)
    headers = event["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "k-1"
    assert headers["x-dup"] == "2"  # the last value of a repeated header
    assert (headers["x-forwarded-for"], headers["x-forwarded-port"],
            headers["x-forwarded-proto"]) == ("198.51.100.7", "443", "https")  # fmt: skip
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", headers["x-amzn-trace-id"])
    assert event["queryStringParameters"] == {"x": "2", "empty": ""}
    assert "multiValueHeaders" not in event


def test_multi_value_event_and_base64_bodies() -> None:
    event = lambda_event(request(b"\x00\x01", "application/octet-stream"), GROUP, multi_value=True)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01"
    assert event["multiValueHeaders"]["x-dup"] == ["1", "2"]
    assert event["multiValueQueryStringParameters"] == {"x": ["a b", "2"], "empty": [""]}
    assert "headers" not in event and "queryStringParameters" not in event


def test_the_payment_api_reads_the_event_as_built() -> None:
    body = json.dumps({"merchant_id": "m-1", "account_id": "7d5a0f0e-0000-4000-8000-000000000001",
                       "amount": "12.50", "currency": "USD"}).encode()  # fmt: skip
    for multi in (False, True):
        parsed = payment_api_request.parse_event(
            lambda_event(request(body), GROUP, multi_value=multi)
        )
        assert (parsed.method, parsed.path, parsed.multi_value) == ("POST", "/payments", multi)
        payment = payment_api_request.parse_payment(parsed)
        assert (payment.idempotency_key, str(payment.amount)) == ("k-1", "12.50")


def test_the_functions_answer_becomes_the_http_response() -> None:
    answer = payment_api_outcome.build_response(HTTPStatus.SERVICE_UNAVAILABLE,
                                                {"error": "database unavailable"})  # fmt: skip
    response = http_response(answer)
    assert (response.status, response.from_target) == (503, True)
    assert response.metric == "HTTPCode_Target_5XX_Count"
    assert json.loads(response.body) == {"error": "database unavailable"}
    assert ("Content-Type", "application/json") in response.headers
    multi = http_response({"statusCode": 201, "multiValueHeaders": {"Set-Cookie": ["a", "b"]},
                           "body": base64.b64encode(b"ok").decode(), "isBase64Encoded": True})  # fmt: skip
    assert (multi.status, multi.body, multi.metric) == (201, b"ok", None)
    assert multi.headers == [("Set-Cookie", "a"), ("Set-Cookie", "b")]


@pytest.mark.parametrize(
    "answer",
    [None, {"body": "x"}, {"statusCode": "200"}, {"statusCode": 999},
     {"statusCode": 200, "body": 5}, {"statusCode": 200, "body": "%%", "isBase64Encoded": True}],
)  # fmt: skip
def test_an_unreadable_answer_is_the_load_balancers_502(answer: object) -> None:
    response = http_response(answer)
    assert (response.status, response.from_target) == (502, False)
    assert response.metric == "HTTPCode_ELB_5XX_Count"


def test_trace_ids_carry_the_time() -> None:
    assert trace_id(0x5BDB40CA).startswith("Root=1-5bdb40ca-")
