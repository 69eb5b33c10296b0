"""Units the rules count in: a 730-hour month (the AWS pricing convention), decimal GB."""

from __future__ import annotations

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0
GB = 1e9  # decimal gigabytes, as AWS bills data
MILLION = 1e6


def bytes_to_gb(nbytes: float) -> float:
    """Bytes to decimal GB."""
    return nbytes / GB
