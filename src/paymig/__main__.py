"""`python -m paymig` runs the CLI."""

from paymig.cli import entrypoint

entrypoint()
