"""A local AWS emulator (moto server) on 127.0.0.1, for tests and rehearsals.

Started as a child process on a free loopback port with the settings the rehearsal
needs: AWS managed IAM policies loaded, ACM certificates issued at once, and Lambda
configured not to use Docker (no engine runs here). With ``extended=True`` it also
answers the APIs :mod:`paymig.local.moto_extensions` adds (CloudWatch
PutCompositeAlarm).

Loading the managed policies (about 1,200 documents) is what lets a Terraform apply
attach ``arn:aws:iam::aws:policy/...``; it also costs about 1.3 s at every reset and
again at the first request after it (moto reads the IAM backend to resolve the caller's
account), so a server that never sees such an attachment can leave them out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import TracebackType

from paymig.errors import CommandFailedError
from paymig.local.postgres import free_port
from paymig.tool_env import tool_environment

#: Fake credentials the emulator accepts; never valid against real AWS.
EMULATOR_ACCESS_KEY = "testing"
EMULATOR_REGION = "us-east-2"


class MotoServer:
    """A moto server child process bound to 127.0.0.1."""

    def __init__(self, *, extended: bool = False, managed_policies: bool = True) -> None:
        """Describe the server; nothing starts until :meth:`start`."""
        self.extended = extended
        self.managed_policies = managed_policies
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """Base URL of the emulator, for boto3 and the Terraform provider."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def module(self) -> str:
        """The module the server runs: moto's, or moto's with this project's extensions."""
        return "paymig.local.moto_extensions" if self.extended else "moto.server"

    def client_environment(self) -> dict[str, str]:
        """Environment variables that point boto3 and the AWS CLI at the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": EMULATOR_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": EMULATOR_ACCESS_KEY,
            "AWS_DEFAULT_REGION": EMULATOR_REGION,
            "AWS_REGION": EMULATOR_REGION,
        }

    def start(self, timeout: float = 30.0) -> MotoServer:
        """Start the server and wait until it answers; return self."""
        self.port = free_port()
        env = tool_environment(
            MOTO_IAM_LOAD_MANAGED_POLICIES="true" if self.managed_policies else "false",
            MOTO_ACM_VALIDATION_WAIT="0",
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module, "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise CommandFailedError(
                    f"moto server exited with code {self._process.returncode} on start"
                )
            try:
                self._post("/moto-api/config", {"lambda": {"use_docker": False}})
                return self
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise CommandFailedError(
                        f"moto server did not answer on {self.endpoint_url} within {timeout}s"
                    ) from None
                time.sleep(0.1)

    def _post(self, path: str, body: dict[str, object]) -> bytes:
        """POST JSON to the emulator's control API."""
        request = urllib.request.Request(  # noqa: S310 - loopback URL built here
            self.endpoint_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            data: bytes = response.read()
            return data

    def reset(self) -> None:
        """Forget every resource the emulator holds."""
        self._post("/moto-api/reset", {})
        self._post("/moto-api/config", {"lambda": {"use_docker": False}})

    def stop(self) -> None:
        """Stop the server. Safe to call twice."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return None if self._process is None else self._process.pid

    def __enter__(self) -> MotoServer:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving a ``with`` block, whatever happened."""
        self.stop()
