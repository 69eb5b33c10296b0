"""The payment API's Dockerfile agrees with the code and with constraints.txt.

No Docker engine runs on this machine, so the image is never built here. Instead the
Dockerfile is parsed and checked: the base image, the handler its CMD names, the pinned
requirements it installs, the files it copies (laid out in a temporary task root and
imported from there in a fresh interpreter, exactly as Lambda would import them), and
the build-time CA bundle check.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from paymig import naming
from paymig.lambdas import payment_api

REPO = Path(__file__).resolve().parents[1]
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


def load_fetch_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fetch_rds_ca_bundle", IMAGE_DIR / "fetch_rds_ca_bundle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_ca_bundle_is_fetched_at_build_time_to_the_path_the_handler_defaults_to(
    dockerfile: DockerfileParser,
) -> None:
    assert dockerfile.envs["DB_CA_BUNDLE"] == payment_api.DEFAULT_CA_BUNDLE
    assert dockerfile.args["RDS_CA_BUNDLE_URL"] == (
        "https://truststore.pki.rds.amazonaws.com/us-east-2/us-east-2-bundle.pem"
    )
    fetch_runs = [run for run in instructions(dockerfile, "RUN") if "fetch_rds_ca_bundle" in run]
    assert [run.split()[:5] for run in fetch_runs] == [
        ["python", "/tmp/fetch_rds_ca_bundle.py", '"${RDS_CA_BUNDLE_URL}"', '"${DB_CA_BUNDLE}"',
         '"${RDS_CA_BUNDLE_SHA256}"']
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


def test_handler_imports_only_the_standard_library_psycopg_and_boto3() -> None:
    tree = ast.parse(Path(payment_api.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    third_party = roots - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"psycopg", "boto3", "botocore"}
    listed = {canonicalize_name(r.name) for r in requirement_lines()}
    assert third_party <= listed


# ---------------------------------------------------------------- copied files


def test_every_copy_source_exists(dockerfile: DockerfileParser) -> None:
    sources = [source for sources, _ in copies(dockerfile) for source in sources]
    assert sources and all((REPO / source).is_file() for source in sources)


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
        "paymig": ["paymig", "paymig.lambdas", "paymig.lambdas.payment_api"],
    }


# ---------------------------------------------------------------- build-time CA bundle check


def _certificate(tmp_path: Path, name: str) -> bytes:
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-days", "1", "-nodes", "-subj", f"/CN={name}",
         "-newkey", "rsa:2048", "-keyout", str(tmp_path / f"{name}.key"),
         "-out", str(tmp_path / f"{name}.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return (tmp_path / f"{name}.pem").read_bytes()


def test_bundle_check_counts_the_certificate_authorities(tmp_path: Path) -> None:
    fetch = load_fetch_script()
    bundle = _certificate(tmp_path, "root-a") + _certificate(tmp_path, "root-b")
    assert fetch.verify_bundle(bundle) == 2
    assert fetch.verify_bundle(bundle, hashlib.sha256(bundle).hexdigest().upper()) == 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda pem, key: pem + key, r"expected only PEM certificates, found \['CERTIFICATE', "),
        (lambda pem, key: b"", r"expected only PEM certificates, found \[\]"),
        (lambda pem, key: pem + b"junk\n", "text outside the PEM certificate blocks"),
        (lambda pem, key: pem.replace(b"M", b"A", 40), "certificates do not load"),
        (lambda pem, key: "é".encode() + pem, "not a PEM text file"),
    ],
)
def test_bundle_check_refuses_what_is_not_a_ca_bundle(
    tmp_path: Path, mutate: Any, message: str
) -> None:
    fetch = load_fetch_script()
    pem = _certificate(tmp_path, "root")
    key = (tmp_path / "root.key").read_bytes()
    with pytest.raises(fetch.BundleError, match=message):
        fetch.verify_bundle(mutate(pem, key))


def test_bundle_check_refuses_a_different_pinned_hash_and_other_urls(tmp_path: Path) -> None:
    fetch = load_fetch_script()
    pem = _certificate(tmp_path, "root")
    with pytest.raises(fetch.BundleError, match=r"^bundle: sha256 differs"):
        fetch.verify_bundle(pem, "0" * 64)
    with pytest.raises(fetch.BundleError, match=r"^url: must start with https://truststore\."):
        fetch.fetch("http://example.com/bundle.pem", tmp_path / "out.pem")
    assert fetch.main(["only-one-argument"]) == 2
    assert fetch.main(["file:///etc/passwd", str(tmp_path / "x.pem")]) == 1
    assert not (tmp_path / "x.pem").exists()
