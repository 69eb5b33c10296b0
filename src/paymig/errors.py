"""User-facing errors.

Every error a user can cause derives from :class:`PaymigError`. The CLI prints its
message as one line on stderr and exits with :attr:`PaymigError.exit_code`; nothing
else is shown, so the message must name the file, field or argument and the reason.
"""

from __future__ import annotations


class PaymigError(Exception):
    """An error caused by input or environment, reported without a traceback."""

    exit_code: int = 2


class ConfigError(PaymigError):
    """The configuration file cannot be read or fails validation."""


class ToolMissingError(PaymigError):
    """A required external tool (terraform, initdb, ...) is not installed."""


class CommandFailedError(PaymigError):
    """An external command ran but reported failure."""

    exit_code = 1


class StoppedError(PaymigError):
    """The command was stopped (Ctrl-C or a stop signal) and says what it left behind."""

    exit_code = 130
