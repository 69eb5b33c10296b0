"""The payment API's Dockerfile agrees with the code and with constraints.txt.

No Docker engine runs on this machine, so the image is never built here. Instead the
Dockerfile is parsed and checked: the base image, the handler its CMD names, the pinned
requirements it installs, and the files it copies: exactly the paymig modules the
handler imports (found by reading their imports), laid out in a temporary task root and
imported from there in a fresh interpreter, exactly as Lambda would import them.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from paymig import naming
from paymig.lambdas import payment_api

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
IMAGE_DIR = REPO / "docker" / "payment-api"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
TASK_ROOT = "${LAMBDA_TASK_ROOT}"
#: The environment the image runs in, for evaluating dependency markers.
IMAGE_MARKERS = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [item["value"] for item in parser.structure if item["instruction"] == name]


def copies(parser: DockerfileParser) -> list[tuple[list[str], str]]:
    result = []
    for value in instructions(parser, "COPY"):
        *sources, destination = value.split()
        result.append((sources, destination))
    return result


def requirement_lines() -> list[Requirement]:
    lines = (IMAGE_DIR / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def module_file(module: str) -> Path | None:
    """The source file of a paymig module (a package's ``__init__.py``), if it exists."""
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """The paymig modules and the other top-level modules that ``path`` imports."""
    paymig: set[str] = set()
    others: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from paymig.runtime import database_env" imports a module, not a name.
            names = [node.module] + [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if module_file(f"{node.module}.{alias.name}") is not None
            ]
        else:
            continue
        for name in names:
            (paymig if name.split(".")[0] == "paymig" else others).add(name)
    return paymig, {name.split(".")[0] for name in others}


def handler_closure() -> tuple[set[str], set[str]]:
    """Every paymig module the handler needs (packages included) and every other import."""
    needed: set[str] = set()
    others: set[str] = set()
    pending = [payment_api.__name__]
    while pending:
        module = pending.pop()
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            package = ".".join(parts[:depth])
            if package in needed:
                continue
            needed.add(package)
            path = module_file(package)
            assert path is not None, package
            found, external = imports_of(path)
            pending.extend(found)
            others |= external
    return needed, others


# ---------------------------------------------------------------- base image and CMD


def test_base_image_is_the_lambda_python_311_image_pinned_by_a_dated_tag(
    dockerfile: DockerfileParser,
) -> None:
    assert instructions(dockerfile, "FROM") == [dockerfile.baseimage]
    assert re.fullmatch(
        r"public\.ecr\.aws/lambda/python:3\.11\.\d{4}\.\d{2}\.\d{2}\.\d{2}(@sha256:[0-9a-f]{64})?",
        dockerfile.baseimage,
    )


def test_cmd_names_the_handler_and_it_is_a_callable_taking_event_and_context(
    dockerfile: DockerfileParser,
) -> None:
    [cmd] = instructions(dockerfile, "CMD")
    assert json.loads(cmd) == [naming.PAYMENT_API_HANDLER]
    module_name, attribute = naming.PAYMENT_API_HANDLER.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), attribute)
    assert callable(handler)
    assert list(inspect.signature(handler).parameters) == ["event", "context"]


def test_no_ca_bundle_is_baked_into_the_image(dockerfile: DockerfileParser) -> None:
    """The CA bundles come from SSM at run time: nothing CA-related is built in."""
    assert dockerfile.args == {}
    assert dockerfile.envs == {}
    assert [
        run for run in instructions(dockerfile, "RUN") if not run.startswith("pip install")
    ] == []
    assert sorted(path.name for path in IMAGE_DIR.iterdir()) == [
        "Dockerfile", "README.md", "requirements.txt"
    ]  # fmt: skip


# ---------------------------------------------------------------- requirements


def test_requirements_are_exactly_the_constraints_pins() -> None:
    pins = constraint_pins()
    found = {}
    for requirement in requirement_lines():
        [specifier] = list(requirement.specifier)
        assert specifier.operator == "==", requirement
        found[canonicalize_name(requirement.name)] = specifier.version
    assert found == {name: pins[name] for name in found}
    assert {"psycopg", "psycopg-binary", "boto3", "botocore"} <= set(found)


def test_requirements_are_closed_under_their_dependencies_in_the_image() -> None:
    """Every dependency (markers evaluated for CPython 3.11 on Linux) is pinned too."""
    listed = {canonicalize_name(r.name): r for r in requirement_lines()}
    missing = []
    for name, requirement in listed.items():
        extras = requirement.extras or {""}
        for line in requires(name) or []:
            dependency = Requirement(line)
            applies = dependency.marker is None or any(
                dependency.marker.evaluate({**IMAGE_MARKERS, "extra": extra}) for extra in extras
            )
            if applies and canonicalize_name(dependency.name) not in listed:
                missing.append(f"{name} needs {dependency}")
    assert missing == []


def test_pip_installs_the_copied_requirements_into_the_task_root(
    dockerfile: DockerfileParser,
) -> None:
    assert (["docker/payment-api/requirements.txt"], "/tmp/requirements.txt") in copies(dockerfile)
    [pip] = [run for run in instructions(dockerfile, "RUN") if run.startswith("pip install")]
    words = pip.split()
    assert words[words.index("--requirement") + 1] == "/tmp/requirements.txt"
    assert words[words.index("--target") + 1] == f'"{TASK_ROOT}"'
    assert "--only-binary=:all:" in words
    assert not any(word in {"-U", "--upgrade", "--pre", "--index-url"} for word in words)


def test_handler_needs_only_the_standard_library_psycopg_boto3_and_two_paymig_modules() -> None:
    needed, others = handler_closure()
    assert needed == {
        "paymig", "paymig.errors", "paymig.lambdas", "paymig.lambdas.payment_api",
        "paymig.lambdas.payment_api_connections", "paymig.lambdas.payment_api_names",
        "paymig.lambdas.payment_api_outcome", "paymig.lambdas.payment_api_request",
        "paymig.lambdas.payment_api_store", "paymig.lambdas.payment_api_write_target",
        "paymig.runtime", "paymig.runtime.database_env",
    }  # fmt: skip
    third_party = others - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"psycopg", "boto3", "botocore"}
    listed = {canonicalize_name(r.name) for r in requirement_lines()}
    assert third_party <= listed


# ---------------------------------------------------------------- copied files


def test_every_copy_source_exists(dockerfile: DockerfileParser) -> None:
    sources = [source for sources, _ in copies(dockerfile) for source in sources]
    assert sources and all((REPO / source).is_file() for source in sources)


def test_the_image_copies_exactly_the_paymig_modules_the_handler_needs(
    dockerfile: DockerfileParser,
) -> None:
    copied = [
        (source, destination)
        for sources, destination in copies(dockerfile)
        for source in sources
        if source.startswith("src/")
    ]
    needed, _ = handler_closure()
    files = {module_file(module) for module in needed}
    assert sorted(REPO / source for source, _ in copied) == sorted(p for p in files if p)
    for source, destination in copied:  # each lands where the package layout puts it
        relative = Path(source).relative_to("src").parent
        assert destination == f"{TASK_ROOT}/{relative}/"


def test_the_copied_files_alone_import_the_handler(
    dockerfile: DockerfileParser, tmp_path: Path
) -> None:
    """Lay the COPYs out as a task root and import the handler from there only."""
    task_root = tmp_path / "var-task"
    for sources, destination in copies(dockerfile):
        if not destination.startswith(TASK_ROOT):
            continue
        target = task_root / destination.removeprefix(TASK_ROOT).lstrip("/")
        for source in sources:
            path = target / Path(source).name if destination.endswith("/") else target
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / source, path)
    probe = (
        "import importlib, json, sys\n"
        f"module_name, attribute = {naming.PAYMENT_API_HANDLER!r}.rsplit('.', 1)\n"
        "module = importlib.import_module(module_name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'paymig')\n"
        "print(json.dumps({'file': module.__file__,\n"
        "                  'callable': callable(getattr(module, attribute)),\n"
        "                  'paymig': loaded}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(task_root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "file": str(task_root / "paymig" / "lambdas" / "payment_api.py"),
        "callable": True,
        "paymig": sorted(handler_closure()[0]),
    }
