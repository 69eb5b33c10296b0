"""Writing a generated document, or checking that the committed one is fresh (`--check`)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from paymig.errors import CommandFailedError, PaymigError


def write_or_check(output: Path, text: str, *, check: bool, regenerate: str, stack: str) -> None:
    """Write `text` to `output`, or with `check` exit 1 if `output` differs from it.

    `regenerate` is the command line that rewrites the file, named in the stale message.
    """
    if check:
        try:
            current = output.read_text(encoding="utf-8")
        except OSError as exc:
            raise PaymigError(f"--output {output}: cannot read: {exc.strerror}") from None
        if current != text:
            raise CommandFailedError(f"{output} is stale: regenerate it with `{regenerate}`")
        Console().print(f"{output} is up to date")
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PaymigError(f"--output {output}: cannot write: {exc.strerror}") from None
    Console().print(f"wrote {output} ({len(text.splitlines())} lines) for {stack}")
