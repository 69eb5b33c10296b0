"""Calendar months and the migration plan's phases, as the month-by-month estimate counts them.

A bill covers one calendar month. The estimate prices every month as the same 730-hour
month (the AWS pricing convention) and uses the calendar only to place dated events in it:
the initial load, the end of the migration, a key rotation or the start of RDS Extended
Support, which begins part-way through a month as a share of that month's days.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass
from enum import StrEnum

from paymig.cost.prices import PricingError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    """One calendar month."""

    year: int
    month: int

    def __post_init__(self) -> None:
        """Months run 1-12."""
        if not 1 <= self.month <= 12:
            raise PricingError(f"month {self.year}-{self.month:02d}: month must be 01-12")

    @classmethod
    def parse(cls, text: str, *, what: str = "month") -> Month:
        """`YYYY-MM`, or an error naming `what` and the value."""
        found = _MONTH.match(text)
        if found is None or not 1 <= int(found.group(2)) <= 12:
            raise PricingError(f"{what} {text}: not a month (YYYY-MM)")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, day: datetime.date) -> Month:
        """The month a date falls in."""
        return cls(day.year, day.month)

    def plus(self, months: int) -> Month:
        """The month `months` later (or earlier, when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def minus(self, other: Month) -> int:
        """Whole months from `other` to this month."""
        return (self.year - other.year) * 12 + self.month - other.month

    @property
    def first_day(self) -> datetime.date:
        """The 1st of the month."""
        return datetime.date(self.year, self.month, 1)

    @property
    def days(self) -> int:
        """Days in the month."""
        return calendar.monthrange(self.year, self.month)[1]

    @property
    def end(self) -> datetime.date:
        """The 1st of the next month (exclusive end)."""
        return self.plus(1).first_day

    def share_from(self, start: datetime.date, until: datetime.date | None = None) -> float:
        """Share of this month's days on or after `start` (and before `until`)."""
        begin = max(start, self.first_day)
        stop = min(until, self.end) if until is not None else self.end
        return max(0, (stop - begin).days) / self.days

    def __str__(self) -> str:
        """`YYYY-MM`."""
        return f"{self.year:04d}-{self.month:02d}"


def current_month(today: datetime.date | None = None) -> Month:
    """The month of `today` (UTC today by default)."""
    return Month.of(today or datetime.datetime.now(datetime.UTC).date())


class Phase(StrEnum):
    """Where a month falls in the migration plan."""

    before = "before the migration"
    load = "load month"
    migration = "migration"
    steady = "steady state"


@dataclass(frozen=True)
class MigrationPlan:
    """The migration's first month (the initial load) and how many months DMS runs."""

    start: Month
    months: int

    def phase(self, month: Month) -> Phase:
        """The phase a month is in."""
        elapsed = month.minus(self.start)
        if elapsed < 0:
            return Phase.before
        if elapsed == 0:
            return Phase.load
        return Phase.migration if elapsed < self.months else Phase.steady

    def horizon(self, length: int = 12) -> tuple[Month, ...]:
        """`length` months from the start."""
        return tuple(self.start.plus(i) for i in range(length))
