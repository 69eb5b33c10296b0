"""Invoke a function of the stack as Lambda would, with what the emulator holds of it.

The rehearsal plays the Lambda service: it reads the function's configuration
(GetFunctionConfiguration: handler, role, environment, timeout), assumes the function's
role (the trust policy admits ``lambda.amazonaws.com`` only, which the rehearsal
stands in for; moto does not check trust policies with enforcement off), and starts a
process per invocation (a cold start) that runs the handler under those credentials
(:mod:`paymig.rehearsal.lambda_process`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paymig.errors import CommandFailedError
from paymig.local.emulator import EMULATOR_ACCESS_KEY
from paymig.naming import PAYMENT_API_HANDLER
from paymig.rehearsal.function_env import LocalDatabase, StandInEnvironment, stand_in_environment
from paymig.rehearsal.lambda_process import FunctionSpec, lambda_environment

#: Lambda's limit on an execution environment's initialization ("Lambda execution
#: environment": the Init phase is limited to 10 seconds).
INIT_SECONDS = 10

#: The emulator's root credentials (what IAM's own look-ups use).
ROOT_CREDENTIALS = {"AccessKeyId": EMULATOR_ACCESS_KEY, "SecretAccessKey": EMULATOR_ACCESS_KEY}


@dataclass(frozen=True)
class LoadedFunction:
    """A function's spec and how its environment was pointed at the stand-ins."""

    spec: FunctionSpec
    translation: StandInEnvironment
    declared: dict[str, str]  # the variables as the stack declares them


def load_function(
    lambda_client: Any, name: str, databases: Mapping[tuple[str, int], LocalDatabase]
) -> LoadedFunction:
    """The function as the emulator holds it, its databases mapped to the stand-ins.

    An image function has no ``Handler`` in its configuration: it runs the image's
    command, which for the payment API is :data:`paymig.naming.PAYMENT_API_HANDLER`.
    """
    config = lambda_client.get_function_configuration(FunctionName=name)
    variables = dict((config.get("Environment") or {}).get("Variables") or {})
    translation = stand_in_environment(variables, databases)
    handler = config.get("Handler") or (
        PAYMENT_API_HANDLER if config.get("PackageType") == "Image" else None
    )
    if not handler:
        raise CommandFailedError(f"{name}: the function's configuration names no handler")
    spec = FunctionSpec(
        name=str(config["FunctionName"]),
        arn=str(config["FunctionArn"]),
        handler=str(handler),
        role_arn=str(config["Role"]),
        variables=translation.variables,
        timeout_seconds=int(config.get("Timeout", 3)),
        memory_mb=int(config.get("MemorySize", 128)),
        version=str(config.get("Version", "$LATEST")),
    )
    return LoadedFunction(spec, translation, variables)


def assume_function_role(sts: Any, spec: FunctionSpec) -> tuple[dict[str, str], str]:
    """Credentials of the function's role, and the assumed-role ARN they act as."""
    answer = sts.assume_role(RoleArn=spec.role_arn, RoleSessionName=spec.name[:64])
    creds = answer["Credentials"]
    keys = ("AccessKeyId", "SecretAccessKey", "SessionToken")
    return {k: str(creds[k]) for k in keys}, str(answer["AssumedRoleUser"]["Arn"])


@dataclass
class Invocation:
    """What one invocation did, with the times its process reported."""

    function: str
    principal: str
    started: float | None
    finished: float | None
    result: Any = None
    error: dict[str, str] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    log_path: Path | None = None

    @property
    def denied(self) -> list[str]:
        """The calls IAM refused, one line each."""
        return [
            f"{d['action']} on {d['resource']}"
            for c in self.calls
            for d in c["decisions"]
            if not d["allowed"]
        ]


def invoke(
    loaded: LoadedFunction,
    event: Any,
    *,
    sts: Any,
    endpoint_url: str,
    region: str,
    log_path: Path,
    qualifier: str | None = None,
) -> Invocation:
    """Start an execution environment for one invocation and wait for its outcome."""
    credentials, principal = assume_function_role(sts, loaded.spec)
    spec = {
        "function": loaded.spec.as_dict(),
        "environment": lambda_environment(loaded.spec, credentials, endpoint_url, region),
        "root": ROOT_CREDENTIALS,
        "principal": principal,
        "event": event,
        "qualifier": qualifier,
    }
    with log_path.open("a", encoding="utf-8") as log:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "paymig.rehearsal.lambda_process"],
                input=json.dumps(spec), stdout=subprocess.PIPE, stderr=log, text=True,
                timeout=loaded.spec.timeout_seconds + INIT_SECONDS, check=False,
                env=spec["environment"],
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            message = f"Task timed out after {loaded.spec.timeout_seconds} seconds"
            return Invocation(
                loaded.spec.name,
                principal,
                None,
                None,
                error={"type": "Timeout", "message": message},
                log_path=log_path,
            )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise CommandFailedError(
            f"{loaded.spec.name}: the execution environment exited {done.returncode} "
            f"without an outcome (see {log_path})"
        )
    outcome = json.loads(lines[-1])
    return Invocation(
        function=loaded.spec.name,
        principal=principal,
        started=outcome.get("started"),
        finished=outcome.get("finished"),
        result=outcome.get("result"),
        error=outcome.get("error"),
        calls=outcome.get("calls", []),
        log_path=log_path,
    )
