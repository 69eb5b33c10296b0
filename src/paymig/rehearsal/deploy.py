"""Deploy the production stack to the emulator with real Terraform.

The stack is synthesized from the rehearsal config (in a child process, so the jsii
runtime never outlives this step, and only when the config or the infra code changed).
An ``emulator_override.tf.json`` beside the synthesized ``cdk.tf.json`` points the AWS
provider at the emulator and replaces the S3 backend with a local one; the stack itself
stays the production one.

Terraform applies with ``-json``; its machine-readable stream tells which resource
failed and why. A resource the emulator cannot create (an error, or a create that never
finishes) is set aside together with everything that depends on it, and the apply is
repeated with ``-target`` for every other resource until a round adds no failure. What
was set aside is reported as *not rehearsed*, with the error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from paymig.config import PaymigConfig, load_config
from paymig.errors import CommandFailedError
from paymig.local.emulator import EMULATOR_ACCESS_KEY, EMULATOR_REGION
from paymig.terraform import Terraform, find_terraform

#: Provider endpoint keys (hashicorp/aws 5.100) of every service the stack uses.
EMULATOR_SERVICES: tuple[str, ...] = (
    "acm", "appautoscaling", "cloudwatch", "cloudwatchlogs", "dms", "dynamodb", "ec2", "ecr",
    "elbv2", "events", "iam", "kms", "lambda", "rds", "route53", "s3", "secretsmanager", "sfn",
    "sns", "sqs", "ssm", "sts", "wafv2",
)  # fmt: skip

#: Name of the override file written beside ``cdk.tf.json``.
OVERRIDE_FILE = "emulator_override.tf.json"

#: Source files whose change requires a new synthesis (besides the config).
_SYNTH_INPUTS = ("infra", "config", "naming.py")

#: Resource types whose create never completes against moto 5.2.5, found by trying (the
#: Terraform provider keeps waiting, for the 90 minutes of its default timeout). They are
#: not attempted, so that the rehearsal stays fast; everything else is attempted, and
#: what fails is found from Terraform's own report.
EMULATOR_NEVER_COMPLETES: dict[str, str] = {
    "aws_dms_certificate": (
        "not attempted: against moto 5.2.5 the create never completes (the provider polls "
        "DescribeCertificates, which the emulator answers with HTTP 500)"
    ),
    "aws_dms_replication_subnet_group": (
        "not attempted: against moto 5.2.5 the create did not complete within 150 s in "
        "development trials (the provider kept waiting)"
    ),
    "aws_rds_cluster_instance": (
        "not attempted: against moto 5.2.5 the create never completes (the provider still "
        "waits after minutes although the emulator lists the instance as available)"
    ),
    "aws_sfn_state_machine": (
        "not attempted: against moto 5.2.5 the provider's create of the validation job's "
        "state machine never completed in trials (Terraform sat idle for minutes and the "
        "emulator listed no state machine); the job's definition runs against moto's Step "
        "Functions in tests/test_validation_job_definition.py instead"
    ),
    "aws_secretsmanager_secret_rotation": (
        "not attempted: moto 5.2.5's RotateSecret answers HTTP 500 for a secret that holds "
        "no value yet (UnboundLocalError on new_version_id in its rotate_secret), which is "
        "how the stack creates every login secret; the provider retries it for minutes"
    ),
}

_ADDRESS = re.compile(r"(?<![\w.])((?:data\.)?aws_[a-z0-9_]+\.[A-Za-z0-9_-]+)")
_LOCAL = re.compile(r"(?<![\w.])local\.([A-Za-z0-9_-]+)")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress callback: say nothing."""


# --------------------------------------------------------------------------- config


def derive_config(base: Path, hosted_zone_id: str, workdir: Path) -> tuple[PaymigConfig, Path]:
    """Write the rehearsal config with the emulator's hosted zone into `workdir`; load it.

    The file is validated by the same loader every command uses.
    """
    config = load_config(base)
    config = config.model_copy(
        update={"dns": config.dns.model_copy(update={"hosted_zone_id": hosted_zone_id})}
    )
    path = workdir / "rehearsal.yaml"
    text = "# Derived by `paymig rehearse` from " + str(base) + "; do not edit.\n"
    text += yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return load_config(path), path


def synth_fingerprint(config_path: Path, package_dir: Path | None = None) -> str:
    """Hash of everything the synthesized stack depends on: config and infra code."""
    root = package_dir or Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    digest.update(config_path.read_bytes())
    for name in _SYNTH_INPUTS:
        target = root / name
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in files:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def synthesize_cached(config: PaymigConfig, config_path: Path, outdir: Path) -> tuple[Path, bool]:
    """Synthesize unless the same inputs were synthesized before; return (stack dir, cached).

    Runs `paymig synth` in a child process: the jsii runtime it starts ends with it.
    """
    stack_dir = outdir / "stacks" / config.stack_name
    stamp = outdir / f".{config.stack_name}.synth-hash"
    fingerprint = synth_fingerprint(config_path)
    if (
        stamp.is_file()
        and stamp.read_text(encoding="utf-8") == fingerprint
        and (stack_dir / "cdk.tf.json").is_file()
    ):
        return stack_dir, True
    result = subprocess.run(
        [sys.executable, "-m", "paymig", "synth", "--config", str(config_path), "--out",
         str(outdir), "--format", "json"],
        capture_output=True, text=True, check=False, timeout=900,
        env=_synth_env(),
    )  # fmt: skip
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise CommandFailedError(f"synth failed: {detail[-1] if detail else result.returncode}")
    stamp.write_text(fingerprint, encoding="utf-8")
    return stack_dir, False


def _synth_env() -> dict[str, str]:
    """Environment of the synth child: jsii's Node version banner silenced."""
    import os

    return {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


# --------------------------------------------------------------------------- override


def emulator_override(endpoint_url: str, state_path: Path) -> dict[str, Any]:
    """The override that points the provider at the emulator, with a local backend."""
    return {
        "provider": {
            "aws": {
                "endpoints": [dict.fromkeys(EMULATOR_SERVICES, endpoint_url)],
                "access_key": EMULATOR_ACCESS_KEY,
                "secret_key": EMULATOR_ACCESS_KEY,
                "region": EMULATOR_REGION,
                "skip_credentials_validation": True,
                "skip_requesting_account_id": True,
                "skip_metadata_api_check": True,
                "s3_use_path_style": True,
            }
        },
        "terraform": {"backend": {"local": {"path": str(state_path)}}},
    }


def write_override(stack_dir: Path, endpoint_url: str, state_path: Path) -> Path:
    """Write ``emulator_override.tf.json`` beside the synthesized stack."""
    path = stack_dir / OVERRIDE_FILE
    path.write_text(
        json.dumps(emulator_override(endpoint_url, state_path), indent=2), encoding="utf-8"
    )
    return path


# --------------------------------------------------------------------------- graph


def resource_graph(document: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each managed resource's address and the resource addresses it refers to.

    References through ``local.<name>`` values count as references to what the local
    value refers to (transitively).
    """
    resources: dict[str, Any] = {
        f"{kind}.{name}": body
        for kind, items in document.get("resource", {}).items()
        for name, body in items.items()
    }
    local_values: dict[str, str] = {
        name: json.dumps(value) for name, value in document.get("locals", {}).items()
    }

    def refers_to(text: str, seen: frozenset[str] = frozenset()) -> set[str]:
        found = {m for m in _ADDRESS.findall(text) if m in resources}
        for name in _LOCAL.findall(text):
            if name in local_values and name not in seen:
                found |= refers_to(local_values[name], seen | {name})
        return found

    return {address: refers_to(json.dumps(body)) - {address} for address, body in resources.items()}


def dependents(graph: Mapping[str, set[str]], roots: Iterable[str]) -> set[str]:
    """`roots` and every resource that depends on one of them, transitively."""
    blocked = set(roots)
    changed = True
    while changed:
        changed = False
        for address, needs in graph.items():
            if address not in blocked and needs & blocked:
                blocked.add(address)
                changed = True
    return blocked


# --------------------------------------------------------------------------- apply


@dataclass
class ApplyRound:
    """What one `terraform apply -json` run reported."""

    returncode: int
    seconds: float
    completed: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    stalled: dict[str, str] = field(default_factory=dict)
    general_errors: list[str] = field(default_factory=list)


class _ApplyStream:
    """Reads Terraform's JSON lines and keeps per-resource progress."""

    def __init__(self, progress: Progress) -> None:
        """Start with nothing seen."""
        self.started: dict[str, float] = {}
        self.done: set[str] = set()
        self.completed: set[str] = set()
        self.errored_at: dict[str, float] = {}
        self.diagnostics: dict[str, str] = {}
        self.general: list[str] = []
        self.progress = progress
        self.lock = threading.Lock()
        #: When the last create started, finished or failed (``time.monotonic``).
        self.last_event = time.monotonic()

    def feed(self, line: str) -> None:
        """Digest one line of `terraform apply -json` output."""
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            return
        kind = message.get("type")
        hook = message.get("hook") or {}
        address = (hook.get("resource") or {}).get("addr")
        now = time.monotonic()
        with self.lock:
            if kind in ("apply_start", "apply_complete", "apply_errored") and address:
                self.last_event = now
            if kind == "apply_start" and address:
                self.started[address] = now
            elif kind == "apply_complete" and address:
                self.done.add(address)
                self.completed.add(address)
                self.progress(f"created {address}")
            elif kind == "apply_errored" and address:
                self.done.add(address)
                self.errored_at[address] = now
            elif kind == "diagnostic":
                diag = message.get("diagnostic") or {}
                if diag.get("severity") != "error":
                    return
                text = f"{diag.get('summary', '')}: {diag.get('detail', '')}".strip(": ")
                text = " ".join(text.split())
                target = diag.get("address")
                if target:
                    self.diagnostics.setdefault(target, text)
                else:
                    self.general.append(text)

    def in_flight(self) -> dict[str, float]:
        """Resources being created and when they started."""
        with self.lock:
            return {a: t for a, t in self.started.items() if a not in self.done}


def _stop_group(process: subprocess.Popen[str]) -> None:
    """Interrupt Terraform and its provider plugins; kill them if they linger."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _watch(
    process: subprocess.Popen[str],
    stream: _ApplyStream,
    stalled: dict[str, str],
    stall_seconds: float,
    progress: Progress,
) -> float | None:
    """Wait for Terraform; interrupt it once every create in flight has stalled.

    Interrupting while other creates are still running would cut them off after the
    emulator made the resource but before Terraform recorded it: the next round then
    fails on them ("already exists") and they, with everything that depends on them,
    would be reported as not rehearsed although the emulator can create them. So a
    stalled create waits until the others have finished. Return when it was interrupted.
    """
    interrupted_at: float | None = None
    while process.poll() is None:
        time.sleep(0.25)
        if interrupted_at is not None:
            if time.monotonic() - interrupted_at > 60:
                os.killpg(process.pid, signal.SIGKILL)
            continue
        now = time.monotonic()
        flight = stream.in_flight()
        late = {a for a, started in flight.items() if now - started > stall_seconds}
        # No create started, finished or failed for twice the stall time: nothing is
        # about to be cut off, so Terraform is interrupted even if not all are late.
        idle = now - stream.last_event > 2 * stall_seconds
        if not idle and (not late or late != set(flight)):
            continue
        late = set(flight) if idle else late
        for address in sorted(late):
            stalled[address] = (
                f"the emulator never completed the create: still creating after "
                f"{stall_seconds:.0f} s"
            )
        progress(f"interrupting terraform: {', '.join(sorted(stalled)) or 'nothing'} stalled")
        os.killpg(process.pid, signal.SIGINT)
        interrupted_at = time.monotonic()
    return interrupted_at


def apply_round(
    tf: Terraform,
    *,
    targets: list[str] | None,
    refresh: bool,
    stall_seconds: float,
    parallelism: int = 20,
    progress: Progress = _quiet,
    on_start: Callable[[int], None] | None = None,
) -> ApplyRound:
    """One `terraform apply -json`, interrupted when a create makes no progress.

    A resource still creating after `stall_seconds` is reported as stalled and
    Terraform is interrupted (SIGINT: it stops cleanly and keeps its state). Errors
    reported after the interruption are its consequence, not the emulator's answer, so
    they are not returned.
    """
    args = [find_terraform(), f"-chdir={tf.stack_dir}", "apply", "-auto-approve", "-json",
            f"-parallelism={parallelism}", "-input=false", "-no-color"]  # fmt: skip
    if not refresh:
        args.append("-refresh=false")
    args += [f"-target={t}" for t in targets or []]
    stream = _ApplyStream(progress)
    began = time.monotonic()
    # Its own session: Ctrl-C reaches this process only, which then stops Terraform
    # (and the provider plugins it started) as a group.
    process = subprocess.Popen(
        args, env=tf.environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    if on_start is not None:
        on_start(process.pid)
    stderr_lines: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stream.feed(line)

    def pump_err() -> None:
        assert process.stderr is not None
        stderr_lines.extend(process.stderr)

    readers = [threading.Thread(target=pump, daemon=True),
               threading.Thread(target=pump_err, daemon=True)]  # fmt: skip
    for reader in readers:
        reader.start()
    stalled: dict[str, str] = {}
    try:
        interrupted_at = _watch(process, stream, stalled, stall_seconds, progress)
    finally:
        _stop_group(process)  # a no-op when it ended; else Ctrl-C or a failure here
        for reader in readers:
            reader.join(timeout=10)
    errors: dict[str, str] = {}
    for address, at in stream.errored_at.items():
        if interrupted_at is not None and at >= interrupted_at:
            continue
        errors[address] = stream.diagnostics.get(address, "creation errored (no diagnostic)")
    general = list(stream.general)
    if process.returncode != 0 and not errors and not stalled and not general:
        general = [line.strip() for line in stderr_lines if line.strip()][-3:]
    return ApplyRound(
        returncode=process.returncode,
        seconds=time.monotonic() - began,
        completed=stream.completed,
        errors=errors,
        stalled=stalled,
        general_errors=[] if interrupted_at is not None else general,
    )


@dataclass
class DeployResult:
    """The outcome of deploying the stack to the emulator."""

    stack_dir: Path
    synth_cached: bool
    synth_seconds: float
    apply_seconds: float
    rounds: int
    resources: int
    created: list[str]
    not_rehearsed: dict[str, str]

    @property
    def seconds(self) -> float:
        """Synthesis plus apply."""
        return self.synth_seconds + self.apply_seconds


def apply_to_emulator(
    stack_dir: Path,
    endpoint_url: str,
    state_path: Path,
    *,
    stall_seconds: float = 150.0,
    max_rounds: int = 5,
    progress: Progress = _quiet,
    on_start: Callable[[int], None] | None = None,
) -> tuple[float, int, list[str], dict[str, str], int]:
    """Apply the stack to the emulator; return (seconds, rounds, created, not rehearsed, total).

    Every resource not set aside must be in the Terraform state at the end (checked with
    `terraform state list`); one missing is an error.
    """
    document = json.loads((stack_dir / "cdk.tf.json").read_text(encoding="utf-8"))
    graph = resource_graph(document)
    write_override(stack_dir, endpoint_url, state_path)
    state_path.unlink(missing_ok=True)
    tf = Terraform(stack_dir)
    began = time.monotonic()
    tf.run("init", "-input=false", "-reconfigure", "-no-color")
    not_rehearsed: dict[str, str] = {
        address: EMULATOR_NEVER_COMPLETES[address.split(".", 1)[0]]
        for address in graph
        if address.split(".", 1)[0] in EMULATOR_NEVER_COMPLETES
    }
    blocked = dependents(graph, not_rehearsed)
    rounds = 0
    done: set[str] = set()
    for rounds in range(1, max_rounds + 1):
        targets = None if not blocked else sorted(set(graph) - blocked)
        outcome = apply_round(
            tf, targets=targets, refresh=rounds == 1, stall_seconds=stall_seconds,
            progress=progress, on_start=on_start,
        )  # fmt: skip
        failed = {**outcome.errors, **outcome.stalled}
        if outcome.general_errors and not failed:
            raise CommandFailedError(
                "terraform apply against the emulator failed: " + " | ".join(outcome.general_errors)
            )
        if not failed:
            if outcome.returncode != 0:
                raise CommandFailedError(
                    f"terraform apply against the emulator exited {outcome.returncode}"
                )
            break
        for address, error in failed.items():
            progress(f"not rehearsed: {address}: {error}")
        not_rehearsed.update(failed)
        blocked = dependents(graph, not_rehearsed)
        done.update(outcome.completed)
        if not set(graph) - blocked - done:
            break  # everything else is created: another round would change nothing
    else:
        raise CommandFailedError(
            f"terraform apply against the emulator did not settle in {max_rounds} rounds"
        )
    for address in sorted(blocked - set(not_rehearsed)):
        causes = sorted(graph[address] & blocked)
        not_rehearsed[address] = "depends on " + ", ".join(causes) + ", which was not created"
    listed = tf.run("state", "list", "-no-color").stdout.split()
    created = sorted(a for a in listed if a in graph)
    missing = sorted(set(graph) - blocked - set(created))
    if missing:
        raise CommandFailedError(
            "resources missing from the state after apply: " + ", ".join(missing[:10])
        )
    return time.monotonic() - began, rounds, created, not_rehearsed, len(graph)


def deploy(
    config: PaymigConfig,
    config_path: Path,
    workdir: Path,
    endpoint_url: str,
    *,
    state_path: Path,
    stall_seconds: float = 150.0,
    progress: Progress = _quiet,
    on_start: Callable[[int], None] | None = None,
) -> DeployResult:
    """Synthesize (cached) and apply the stack to the emulator."""
    began = time.monotonic()
    progress("synthesizing the stack")
    stack_dir, cached = synthesize_cached(config, config_path, workdir / "cdktf.out")
    synth_seconds = time.monotonic() - began
    progress("synthesis reused (nothing changed)" if cached else "synthesized")
    seconds, rounds, created, not_rehearsed, total = apply_to_emulator(
        stack_dir,
        endpoint_url,
        state_path.resolve(),
        stall_seconds=stall_seconds,
        progress=progress,
        on_start=on_start,
    )
    return DeployResult(
        stack_dir=stack_dir,
        synth_cached=cached,
        synth_seconds=synth_seconds,
        apply_seconds=seconds,
        rounds=rounds,
        resources=total,
        created=created,
        not_rehearsed=dict(sorted(not_rehearsed.items())),
    )
