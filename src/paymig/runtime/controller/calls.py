"""How the controller's shell calls AWS: client settings, retries, errors in one line.

Three kinds of calls. Best-effort ones (the rollback's record of intent and its lock
take-over) make one short attempt: they must never hold up the DNS change. Bounded ones
(Route 53, the load balancer) make attempts of at most `ATTEMPT_SECONDS` each and retry
throttling and connection errors with full-jitter backoff until a deadline, starting an
attempt only if it can finish before it. Ordinary ones use botocore's `standard` mode.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from paymig.errors import PaymigError
from paymig.rollback_timing import (
    ATTEMPT_CONNECT_SECONDS,
    ATTEMPT_READ_SECONDS,
    ATTEMPT_SECONDS,
    BEST_EFFORT_CONNECT_SECONDS,
    BEST_EFFORT_READ_SECONDS,
)
from paymig.runtime.controller.core import (
    backoff_delay,
)

T = TypeVar("T")

#: Error codes worth retrying: throttling and the server-side transient ones.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
    }
)

#: What a failed AWS call raises.
AWS_ERRORS = (BotoCoreError, ClientError)


class AwsCallError(PaymigError):
    """An AWS call failed; the message names the call and AWS's reason."""

    exit_code = 1


#: The same, plus this shell's own clear-message error.
SHELL_ERRORS = (BotoCoreError, ClientError, AwsCallError)


def describe_error(exc: BaseException) -> str:
    """One line for a botocore error: the code and message, or the exception text."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        message = str(error.get("Message", "")).strip().splitlines()
        return f"{error.get('Code', 'Error')}: {message[0] if message else ''}".strip()
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def error_code(exc: BaseException) -> str:
    """AWS's error code of a ClientError, else ''."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_retryable(exc: BaseException) -> bool:
    """Throttling, transient server errors, and failures to connect or to hear back."""
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    return error_code(exc) in RETRYABLE_CODES


def client_config(max_attempts: int = 5) -> Config:
    """Ordinary calls: standard retries (backoff with jitter) and bounded timeouts."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=ATTEMPT_CONNECT_SECONDS,
        read_timeout=ATTEMPT_READ_SECONDS * 2,
    )


def attempt_config() -> Config:
    """Bounded calls: one attempt each (our loop retries), `ATTEMPT_SECONDS` at most."""
    return Config(
        retries={"mode": "standard", "max_attempts": 1},
        connect_timeout=ATTEMPT_CONNECT_SECONDS,
        read_timeout=ATTEMPT_READ_SECONDS,
    )


def best_effort_config() -> Config:
    """Best-effort calls before the DNS change: one short attempt."""
    return Config(
        retries={"mode": "standard", "max_attempts": 1},
        connect_timeout=BEST_EFFORT_CONNECT_SECONDS,
        read_timeout=BEST_EFFORT_READ_SECONDS,
    )


class Retrier:
    """Retries a bounded call until a deadline (monotonic seconds)."""

    def __init__(
        self,
        *,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Backoff from `base_delay`, capped at `max_delay`, with jitter from `rng`."""
        self.base_delay, self.max_delay = base_delay, max_delay
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.sleep, self.clock = sleep, clock
        self.retries = 0

    def call(
        self,
        call: Callable[[], T],
        *,
        deadline: float,
        before: Callable[[], object] | None = None,
    ) -> T:
        """Run `call`; retry what :func:`is_retryable` accepts while time remains.

        An attempt starts only if it can end (`ATTEMPT_SECONDS`) by the deadline, except
        the first. `before` runs before every attempt (e.g. a rate limiter).
        """
        attempt = 0
        while True:
            if before is not None:
                before()
            try:
                return call()
            except AWS_ERRORS as exc:
                if not is_retryable(exc):
                    raise
                delay = backoff_delay(
                    attempt, base=self.base_delay, cap=self.max_delay, rng=self.rng
                )
                if self.clock() + delay + ATTEMPT_SECONDS > deadline:
                    raise
            attempt += 1
            self.retries += 1
            self.sleep(delay)


def guarded(what: str, call: Callable[[], T]) -> T:
    """Run an AWS call; turn a botocore failure into one clear line naming `what`."""
    try:
        return call()
    except AWS_ERRORS as exc:
        raise AwsCallError(f"{what}: {describe_error(exc)}") from None


def deadline_in(seconds: float, clock: Callable[[], float] = time.monotonic) -> float:
    """The monotonic time `seconds` from now."""
    return clock() + seconds
