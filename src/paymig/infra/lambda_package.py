"""Deterministic zip packages for the Lambda functions whose code lives in this repository.

A package holds chosen modules of ``src/paymig`` plus, where needed, installed
distributions copied from this environment's ``site-packages`` (the pinned versions of
``constraints.txt``; the psycopg binary wheel here is built for manylinux x86_64 and
CPython 3.11, which is what the Lambda ``python3.11`` runtime runs). Nothing is
downloaded. The archive is byte-for-byte reproducible: entries sorted, fixed times and
permissions, so an unchanged source never changes ``source_code_hash``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from paymig.errors import ToolMissingError

SOURCE_ROOT = Path(__file__).resolve().parents[1]  # src/paymig
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class LambdaPackage:
    """A built archive and its hash as Lambda's `source_code_hash` expects it."""

    path: Path
    sha256_base64: str
    files: tuple[str, ...]


def _source_files(modules: Iterable[str]) -> dict[str, bytes]:
    """Archive names and bytes of paymig modules or packages (e.g. `runtime/controller`)."""
    out: dict[str, bytes] = {}
    for module in modules:
        target = SOURCE_ROOT / module
        paths = (
            sorted(target.rglob("*.py"))
            if target.is_dir()
            else [target.with_suffix(".py") if target.suffix != ".py" else target]
        )
        for path in paths:
            out[f"paymig/{path.relative_to(SOURCE_ROOT).as_posix()}"] = path.read_bytes()
    return out


def _distribution_files(names: Iterable[str]) -> dict[str, bytes]:
    """Archive names and bytes of installed distributions (code only, no caches)."""
    out: dict[str, bytes] = {}
    for name in names:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ToolMissingError(f"{name}: not installed; run scripts/setup.sh") from None
        check_lambda_compatible(name, dist.read_text("WHEEL") or "")
        for file in dist.files or ():
            text = file.as_posix()
            if "__pycache__" in text or text.endswith(".pyc") or text.startswith(".."):
                continue
            out[text] = Path(str(dist.locate_file(file))).read_bytes()
    return out


#: Wheel tags the Lambda python3.11 x86_64 runtime (Amazon Linux 2, glibc 2.26) can load.
LAMBDA_TAGS = (
    "py3-none-any",
    "cp311-cp311-manylinux2014_x86_64",
    "cp311-cp311-manylinux_2_17_x86_64",
)


def check_lambda_compatible(name: str, wheel_metadata: str) -> None:
    """Refuse a distribution whose installed wheel Lambda's runtime cannot load."""
    tags = [
        line.split(":", 1)[1].strip()
        for line in wheel_metadata.splitlines()
        if line.startswith("Tag:")
    ]
    if not any(tag in LAMBDA_TAGS for tag in tags):
        raise ToolMissingError(
            f"{name}: installed wheel ({', '.join(tags) or 'no tag'}) does not run on Lambda "
            "python3.11 x86_64"
        )


def build_package(
    name: str,
    modules: Iterable[str],
    distributions: Iterable[str] = (),
    extra_files: Mapping[str, bytes] | None = None,
) -> LambdaPackage:
    """Build (or reuse) the zip of one function; its file name carries its hash."""
    files = {
        **_distribution_files(distributions),
        **_source_files(["__init__.py", *modules]),
        **(extra_files or {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname in sorted(files):
            info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[arcname])
    data = buffer.getvalue()
    digest = hashlib.sha256(data).digest()
    folder = Path(tempfile.gettempdir()) / "paymig-lambda-packages"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{digest.hex()[:16]}.zip"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(path)
    return LambdaPackage(
        path=path,
        sha256_base64=base64.b64encode(digest).decode(),
        files=tuple(sorted(files)),
    )
