"""The API's write target: which database the AWS-side payment API writes to.

An SSM String parameter (``naming.write_target_parameter_name``) holding ``source`` or
``aurora``, read by the API before each request and cached for
``paymig.lambdas.payment_api_write_target.WRITE_TARGET_CACHE_SECONDS``. Terraform sets it once and
ignores changes; only `paymig cutover` and `paymig fallback` change it.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from paymig.errors import PaymigError

Target = Literal["source", "aurora"]
TARGETS: tuple[Target, ...] = ("source", "aurora")


class WriteTarget(Protocol):
    """Read and set the database the API writes to."""

    def read(self) -> str:
        """The current value."""
        ...

    def set(self, value: Target) -> bool:
        """Set it; True when it changed."""
        ...


class SsmWriteTarget:
    """The write target as the SSM parameter the API reads."""

    def __init__(self, client: Any, parameter: str) -> None:
        """An SSM client and the parameter's name."""
        self.client = client
        self.parameter = parameter

    def read(self) -> str:
        """The parameter's value; an unknown value is an error naming it."""
        value = str(self.client.get_parameter(Name=self.parameter)["Parameter"]["Value"])
        if value not in TARGETS:
            raise PaymigError(
                f"write target: SSM parameter {self.parameter} holds {value[:64]!r}, "
                f"not one of {', '.join(TARGETS)}"
            )
        return value

    def set(self, value: Target) -> bool:
        """Overwrite the parameter unless it already holds ``value``."""
        if self.read() == value:
            return False
        self.client.put_parameter(Name=self.parameter, Value=value, Type="String", Overwrite=True)
        return True
