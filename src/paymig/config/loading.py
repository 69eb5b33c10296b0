"""Reading a configuration file: parse, validate, and report every problem on one line."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from paymig.config.root import PaymigConfig
from paymig.errors import ConfigError

#: libyaml's safe loader where PyYAML was built with it (about 10x faster), else PyYAML's.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _format_location(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a dotted field path (`a.b[2]`)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _format_validation_error(path: Path, error: ValidationError) -> str:
    """Render every validation problem on a single line."""
    parts = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling)"
        location = _format_location(tuple(item["loc"]))
        if not item["loc"] or message.startswith(location.split("[")[0] + ":"):
            parts.append(message)
        else:
            parts.append(f"{location}: {message}")
    return (f"{path}: " + "; ".join(parts)).replace("\n", "\\n")


def parse_config(text: str, source: Path) -> PaymigConfig:
    """Parse and validate YAML text; `source` names the file in error messages."""
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: YAML syntax error: {problem}") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{source}: expected a mapping of settings, but the file is {kind}")
    try:
        return PaymigConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None


def load_config(path: Path) -> PaymigConfig:
    """Read and validate one configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}") from None
    return parse_config(text, path)


def default_config_dir() -> Path:
    """The `config/` folder: in the working directory if present, else the repository's."""
    local = Path.cwd() / "config"
    if local.is_dir():
        return local
    # This file is src/paymig/config/loading.py: three folders below the repository.
    return Path(__file__).resolve().parents[3] / "config"


def resolve_config_path(env: str, config: Path | None) -> Path:
    """Choose the file to load: `--config` wins, otherwise `config/<env>.yaml`."""
    if config is not None:
        return config
    folder = default_config_dir()
    path = folder / f"{env}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(
            f"{path}: no configuration for environment {env!r} (available: {', '.join(known)})"
        )
    return path
