"""The faults a rehearsal can inject, chosen with ``--scenario``.

Each is a real failure of the AWS side's path to its database, which runs through the
VPN stand-in (:class:`paymig.local.tcp_proxy.TcpProxy`); the production handler meets it
as it would meet the real one. The legacy side is on-prem and never affected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from paymig.local.tcp_proxy import TcpProxy

#: Seconds the slow-database scenario adds to every answer from the source.
SLOW_DB_DELAY_SECONDS = 1.5


@dataclass(frozen=True)
class Scenario:
    """A fault: what it does, how it is injected and repaired, the alarm expected."""

    name: str
    description: str
    inject: Callable[[TcpProxy], None]
    repair: Callable[[TcpProxy], None]
    expected_alarm: str  # the metric alarm (naming.ALARM_METRICS) that should fire
    #: The whole migration (to 100 %, cutover, a fault after it, fallback, cutover
    #: again) after this fault's rollback; False: the traffic part only.
    whole: bool = False


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "migration",
            "the whole migration: the VPN stand-in is cut at 50 % (automatic rollback), "
            "then ack, 100 %, cutover, the path to Aurora cut (the stage's rule: notify, "
            "traffic stays), fallback, cutover again",
            TcpProxy.cut,
            TcpProxy.restore,
            "5xx-rate",
            whole=True,
        ),
        Scenario(
            "vpn-cut",
            "the VPN stand-in resets every connection and refuses new ones: the payment "
            "API's database calls fail and it answers 503",
            TcpProxy.cut,
            TcpProxy.restore,
            "5xx-rate",
        ),
        Scenario(
            "slow-db",
            f"every answer from the source waits {SLOW_DB_DELAY_SECONDS:g} s in the VPN "
            "stand-in: the payment API answers, slowly",
            lambda proxy: proxy.set_delay(SLOW_DB_DELAY_SECONDS),
            lambda proxy: proxy.set_delay(0.0),
            "p99-latency",
        ),
    )
}

DEFAULT_SCENARIO = "migration"
