"""A Lambda execution environment in a process of its own (the emulator runs none).

The process is what Lambda would start for one function: its environment is exactly
the function's (as GetFunctionConfiguration returns it, with the database stand-ins of
:mod:`paymig.rehearsal.function_env`), its credentials are those of the function's role
(AssumeRole in the emulator, as the Lambda service does), and every AWS call the code
makes is authorized against that role (:mod:`paymig.rehearsal.iam_requests`). Boto3
reaches the emulator through ``AWS_ENDPOINT_URL``, which stands in for AWS's endpoints.

Run as ``python -m paymig.rehearsal.lambda_process``: it reads one JSON spec on stdin
(the function, the event, the credentials), invokes the handler once and prints one JSON
line on stdout: when the handler started and ended (``time.monotonic``, one clock for
every process of the machine), its result or error, and the calls it made.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

#: Variables of the rehearsal's own process a Lambda runtime has too (its interpreter
#: needs them); nothing else leaks into the function's environment.
RUNTIME_VARIABLES = ("PATH", "PYTHONPATH", "LANG", "HOME", "TMPDIR")
#: Prefixes of coverage.py's variables, set only while the test suite measures coverage,
#: so that it measures these processes too.
MEASUREMENT_PREFIXES = ("COVERAGE_", "COV_CORE_")


@dataclass(frozen=True)
class FunctionSpec:
    """What Lambda knows of a function when it starts an execution environment."""

    name: str
    arn: str
    handler: str  # "package.module.function"
    role_arn: str
    variables: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    version: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the spec."""
        return dict(self.__dict__)


def lambda_environment(
    spec: FunctionSpec, credentials: Mapping[str, str], endpoint_url: str, region: str
) -> dict[str, str]:
    """The process environment: the function's variables, Lambda's reserved ones, the role."""
    env = {k: os.environ[k] for k in RUNTIME_VARIABLES if k in os.environ}
    env.update({k: v for k, v in os.environ.items() if k.startswith(MEASUREMENT_PREFIXES)})
    env.update(spec.variables)
    env.update(
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        AWS_LAMBDA_FUNCTION_NAME=spec.name,
        AWS_LAMBDA_FUNCTION_VERSION=spec.version,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(spec.memory_mb),
        AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{spec.name}",
        AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
        AWS_SESSION_TOKEN=credentials["SessionToken"],
        AWS_ENDPOINT_URL=endpoint_url,
    )
    return env


class ExecutionEnvironment:
    """The function's handler, imported after the role's enforcement is in place."""

    def __init__(self, spec: FunctionSpec, root: Mapping[str, str], principal: str) -> None:
        """Enforce the role for every later boto3 session, then import the handler.

        `root` holds the emulator's root credentials for the look-ups IAM itself makes
        (policies, resource keys); that session is created before the hook exists.
        """
        import boto3

        from paymig.rehearsal.iam_requests import Lookups, RoleEnforcer, role_statements

        region = os.environ["AWS_REGION"]
        session = boto3.Session(
            aws_access_key_id=root["AccessKeyId"],
            aws_secret_access_key=root["SecretAccessKey"],
            region_name=region,
        )
        account = spec.role_arn.split(":")[4]
        statements = role_statements(session.client("iam"), spec.role_arn.rsplit("/", 1)[-1])
        self.enforcer = RoleEnforcer(principal, statements, Lookups(session, region, account))
        self.enforcer.install()
        self.spec = spec
        module, _, function = spec.handler.rpartition(".")
        self.handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module), function)

    def context(self, qualifier: str | None) -> SimpleNamespace:
        """The context object Lambda passes (the fields our handlers read)."""
        deadline = time.monotonic() + self.spec.timeout_seconds
        return SimpleNamespace(
            aws_request_id=str(uuid.uuid4()),
            function_name=self.spec.name,
            function_version=self.spec.version,
            invoked_function_arn=self.spec.arn + (f":{qualifier}" if qualifier else ""),
            memory_limit_in_mb=self.spec.memory_mb,
            log_group_name=f"/aws/lambda/{self.spec.name}",
            get_remaining_time_in_millis=lambda: int(max(0.0, deadline - time.monotonic()) * 1000),
        )

    def invoke(self, event: Any, qualifier: str | None = None) -> Any:
        """Call the handler once, as Lambda does."""
        return self.handler(event, self.context(qualifier))


def main() -> int:
    """One invocation from the spec on stdin; one JSON line of outcome on stdout."""
    spec_data = json.loads(sys.stdin.read())
    spec = FunctionSpec(**spec_data["function"])
    os.environ.clear()
    os.environ.update(spec_data["environment"])
    outcome: dict[str, Any] = {"calls": []}
    environment: ExecutionEnvironment | None = None
    try:
        environment = ExecutionEnvironment(spec, spec_data["root"], spec_data["principal"])
        outcome["started"] = time.monotonic()
        outcome["result"] = environment.invoke(spec_data["event"], spec_data.get("qualifier"))
    except Exception as error:  # the handler's error is the invocation's outcome
        outcome["error"] = {"type": type(error).__name__, "message": str(error)}
        traceback.print_exc(file=sys.stderr)
    outcome["finished"] = time.monotonic()
    if environment is not None:
        outcome["calls"] = [
            {"service": c.service, "operation": c.operation, "allowed": c.allowed,
             "params": c.params,
             "decisions": [{"action": d.action, "resource": d.resource, "allowed": d.allowed,
                            "statement": d.statement} for d in c.decisions]}
            for c in environment.enforcer.calls
        ]  # fmt: skip
    sys.stdout.write(json.dumps(outcome, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
