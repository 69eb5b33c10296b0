"""Options shared by several commands, and the config loading they imply."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paymig.config import PaymigConfig, load_config, resolve_config_path

EnvOption = Annotated[
    str, typer.Option("--env", help="Environment: loads config/<env>.yaml.", show_default=True)
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Load this configuration file instead of config/<env>.yaml."),
]


def load(env: str, config: Path | None) -> PaymigConfig:
    """Resolve and load the configuration selected by `--env` / `--config`."""
    return load_config(resolve_config_path(env, config))
