"""Which database the payment API uses: the write-target parameter, read through a cache.

Pure: the value's check and the cache's clock rules; reading the SSM parameter is
:func:`paymig.lambdas.payment_api_connections.read_write_target`. Also the configuration
errors the API answers 503 for.
"""

from __future__ import annotations

from collections.abc import Callable

from paymig.errors import ConfigError
from paymig.lambdas.payment_api_names import ENV_WRITE_TARGET, ENV_WRITE_TARGET_CACHE
from paymig.runtime import database_env

#: How long a read of the write-target parameter is trusted. A switch (cutover, fallback)
#: reaches every execution environment within this time, which the operator waits out;
#: reading it for every request would add an SSM round trip to each payment and, across
#: the API's concurrency, exceed Parameter Store's default throughput (40 transactions per
#: second per account and Region, shared by GetParameter and GetParameters: "AWS Systems
#: Manager endpoints and quotas"). At 5 s one environment reads it 0.2 times a second.
#: The stack sets the time from ``app.write_target_cache_seconds``
#: (:data:`ENV_WRITE_TARGET_CACHE`); this is the value when the variable is absent.
WRITE_TARGET_CACHE_SECONDS = 5.0


class ConfigurationError(ConfigError):
    """The function's environment, a secret or a parameter cannot give a database to use."""


class WriteTargetError(ConfigurationError):
    """The write-target parameter cannot be read or holds no known database."""


def parse_write_target(parameter: str, value: str) -> str:
    """Return the database the write-target parameter names; anything else is refused."""
    if value not in database_env.SERVERS:
        raise WriteTargetError(
            f"{ENV_WRITE_TARGET}: SSM parameter {parameter} holds {value[:64]!r}, "
            f"expected one of {', '.join(database_env.SERVERS)}"
        )
    return value


def cache_seconds(raw: str | None) -> float:
    """The cache time the stack set (:data:`ENV_WRITE_TARGET_CACHE`); absent: the default."""
    if raw is None or not raw.strip():
        return WRITE_TARGET_CACHE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        raise WriteTargetError(
            f"{ENV_WRITE_TARGET_CACHE}: {raw[:32]!r} is not a number of seconds in (0, 60]"
        )
    return value


class WriteTargetCache:
    """The write target, read through ``read`` at most once per cache time.

    A read is trusted from the moment ``clock`` says it was made until ``seconds`` have
    passed; a clock that went backwards makes it stale too, so a value never looks
    fresher than it is. A failed read is not kept: the next request reads again.
    """

    def __init__(
        self,
        parameter: str,
        read: Callable[[], str],
        clock: Callable[[], float],
        seconds: float = WRITE_TARGET_CACHE_SECONDS,
    ) -> None:
        """Read nothing yet; ``read`` returns the parameter's raw value."""
        self.parameter = parameter
        self._read = read
        self._clock = clock
        self._seconds = seconds
        self._value: str | None = None
        self._read_at = 0.0

    def current(self) -> str:
        """The database to use now (re-read if stale); :class:`WriteTargetError` if unknown."""
        now = self._clock()
        if self._value is None or not self._read_at <= now < self._read_at + self._seconds:
            self._value = None
            self._value, self._read_at = self._read(), now
        return parse_write_target(self.parameter, self._value)
