"""The AWS side of the rehearsal: the production payment API behind a load balancer stand-in.

One process plays the Application Load Balancer and the payment API's Lambda execution
environments (:class:`paymig.rehearsal.lambda_process.ExecutionEnvironment`: the
function's own environment, role credentials and IAM checks). For each HTTP request it

1. picks a target group by the HTTPS listener's forward weights, as the emulator's
   ELB holds them now (read every :data:`LISTENER_POLL_SECONDS`),
2. builds the exact event the load balancer sends (:mod:`paymig.rehearsal.alb_event`)
   and calls the production handler (:mod:`paymig.lambdas.payment_api`) with it,
3. answers the client with the handler's response, or the load balancer's 502,
4. records what it served: an access log (one JSON line per request) and, every second,
   the load balancer's metrics the stack's alarms read (``RequestCount``,
   ``HTTPCode_Target_5XX_Count``, ``HTTPCode_ELB_5XX_Count``, ``TargetResponseTime``)
   published to the emulator's CloudWatch with the stack's dimensions, at 1-second
   storage resolution,
5. plays CloudWatch Logs for the function's stdout: the embedded-metric-format lines the
   handler prints become metrics (:mod:`paymig.rehearsal.emf`).

Run as ``python -m paymig.rehearsal.aws_side SPEC``; :class:`AwsSide` starts and stops it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from paymig.errors import CommandFailedError
from paymig.rehearsal.alb_event import HttpRequest, HttpResponse, bad_gateway, http_response
from paymig.rehearsal.alb_event import lambda_event as build_event
from paymig.rehearsal.emf import metric_data

#: PutMetricData entries sent per call for the function's EMF metrics.
EMF_BATCH = 20

ALB_NAMESPACE = "AWS/ApplicationELB"
#: How often the listener's forward weights are read back from the emulator.
LISTENER_POLL_SECONDS = 1.0
#: The load balancer's per-second metrics are flushed this often.
FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class TargetGroup:
    """A target group of the listener: its ARN, alias, metric dimension, event format."""

    arn: str
    alias: str
    dimension: str  # "targetgroup/<name>/<id>"
    multi_value: bool


@dataclass
class _Second:
    """The load balancer's counts for one second and one target group."""

    requests: int = 0
    target_5xx: int = 0
    elb_5xx: int = 0
    response_times: list[float] = field(default_factory=list)


class Metrics:
    """Per-second counts of what was served, flushed to CloudWatch as the ALB would."""

    def __init__(self, cloudwatch: Any, load_balancer: str) -> None:
        """Publish with `cloudwatch` under dimension ``LoadBalancer=<load_balancer>``."""
        self.cloudwatch = cloudwatch
        self.load_balancer = load_balancer
        self._seconds: dict[tuple[int, str], _Second] = {}
        self._emf: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def add_log_line(self, line: str) -> None:
        """Keep the metrics of one of the function's log lines for the next flush."""
        with self._lock:
            self._emf += [(ns, datum) for ns, data in metric_data(line).items() for datum in data]

    def add(self, wall: float, group: str, response: HttpResponse, seconds: float) -> None:
        """Count one served request."""
        with self._lock:
            entry = self._seconds.setdefault((int(wall), group), _Second())
            entry.requests += 1
            if response.metric == "HTTPCode_Target_5XX_Count":
                entry.target_5xx += 1
            elif response.metric == "HTTPCode_ELB_5XX_Count":
                entry.elb_5xx += 1
            if response.from_target:
                entry.response_times.append(seconds)

    def flush(self, *, everything: bool = False) -> None:
        """Publish every complete second (every second when `everything`)."""
        now = int(time.time())
        with self._lock:
            due = {k: v for k, v in self._seconds.items() if everything or k[0] < now}
            for key in due:
                del self._seconds[key]
            emf, self._emf = self._emf, []
        for (second, group), counts in sorted(due.items()):
            try:
                self._publish(second, group, counts)
            except Exception as error:  # publishing must not stop serving
                self.errors.append(f"{type(error).__name__}: {error}")
        for start in range(0, len(emf), EMF_BATCH):
            batch = emf[start : start + EMF_BATCH]
            for namespace in {ns for ns, _ in batch}:
                data = [datum for ns, datum in batch if ns == namespace]
                try:
                    self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
                except Exception as error:  # publishing must not stop serving
                    self.errors.append(f"EMF: {type(error).__name__}: {error}")

    def _publish(self, second: int, group: str, counts: _Second) -> None:
        stamp = datetime.fromtimestamp(second, UTC)
        values: list[tuple[str, float | list[float], str]] = [
            ("RequestCount", float(counts.requests), "Count")
        ]
        # "Reporting criteria: There is a nonzero value" for the 5XX counts.
        if counts.target_5xx:
            values.append(("HTTPCode_Target_5XX_Count", float(counts.target_5xx), "Count"))
        if counts.elb_5xx:
            values.append(("HTTPCode_ELB_5XX_Count", float(counts.elb_5xx), "Count"))
        if counts.response_times:
            values.append(("TargetResponseTime", counts.response_times, "Seconds"))
        dimension_sets = [
            [{"Name": "LoadBalancer", "Value": self.load_balancer}],
            [{"Name": "LoadBalancer", "Value": self.load_balancer},
             {"Name": "TargetGroup", "Value": group}],
        ]  # fmt: skip
        data = []
        for name, value, unit in values:
            for dimensions in dimension_sets:
                datum: dict[str, Any] = {"MetricName": name, "Dimensions": dimensions,
                                         "Timestamp": stamp, "Unit": unit,
                                         "StorageResolution": 1}  # fmt: skip
                if isinstance(value, list):
                    datum["Values"] = value[:150]  # PutMetricData: at most 150 values
                else:
                    datum["Value"] = value
                data.append(datum)
        self.cloudwatch.put_metric_data(Namespace=ALB_NAMESPACE, MetricData=data)


class FunctionLog:
    """The function's stdout: written to the process's log, its EMF lines to metrics."""

    def __init__(self, stream: Any, metrics: Metrics) -> None:
        """Write through to `stream`; hand each complete line to `metrics`."""
        self.stream, self.metrics = stream, metrics
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Write `text`; complete lines are also read for metrics."""
        with self._lock:
            self.stream.write(text)
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
        for line in lines:
            self.metrics.add_log_line(line)
        return len(text)

    def flush(self) -> None:
        """Flush the underlying stream."""
        self.stream.flush()


class Listener:
    """The HTTPS listener's forward weights, as the emulator holds them."""

    def __init__(self, elbv2: Any, listener_arn: str, groups: Mapping[str, TargetGroup]) -> None:
        """Read weights of `groups` (by ARN) from `listener_arn`."""
        self.elbv2 = elbv2
        self.arn = listener_arn
        self.groups = dict(groups)
        self.weights: dict[str, int] = {}
        self._random = random.Random(23)  # noqa: S311 - a load balancer's pick, not a secret
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        """Read the forward action's weights again."""
        listener = self.elbv2.describe_listeners(ListenerArns=[self.arn])["Listeners"][0]
        forward = next(a for a in listener["DefaultActions"] if a["Type"] == "forward")
        groups = forward.get("ForwardConfig", {}).get("TargetGroups") or [
            {"TargetGroupArn": forward["TargetGroupArn"], "Weight": 1}
        ]
        with self._lock:
            self.weights = {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}

    def pick(self) -> TargetGroup:
        """The target group of one request, drawn by weight."""
        with self._lock:
            arns = [a for a, w in self.weights.items() if w > 0] or list(self.weights)
            weights = [max(self.weights[a], 1) for a in arns]
            arn = self._random.choices(arns, weights=weights)[0]
        return self.groups[arn]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    side: AwsSideProcess


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """The access log is written by the side itself."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        path, _, query = self.path.partition("?")
        request = HttpRequest(
            method=self.command, path=path, query=query,
            headers=list(self.headers.items()), body=self.rfile.read(length) if length else b"",
            client_ip=self.client_address[0],
        )  # fmt: skip
        response = self.server.side.serve(request)
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = _serve  # noqa: N815 - http.server's naming
    do_POST = _serve  # noqa: N815


class AwsSideProcess:
    """The process: the listener, the handler, the access log and the metrics."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        """Create the AWS clients of the load balancer, then the execution environment."""
        import boto3

        from paymig.rehearsal.lambda_process import ExecutionEnvironment, FunctionSpec

        root = spec["root"]
        session = boto3.Session(
            aws_access_key_id=root["AccessKeyId"], aws_secret_access_key=root["SecretAccessKey"],
            region_name=os.environ["AWS_REGION"],
        )  # fmt: skip
        groups = {g["arn"]: TargetGroup(**g) for g in spec["target_groups"]}
        self.listener = Listener(session.client("elbv2"), spec["listener_arn"], groups)
        self.metrics = Metrics(session.client("cloudwatch"), spec["load_balancer"])
        sys.stdout = FunctionLog(sys.stdout, self.metrics)
        self.environment = ExecutionEnvironment(
            FunctionSpec(**spec["function"]), root, spec["principal"]
        )
        self.log = Path(spec["access_log"]).open("a", encoding="utf-8")  # noqa: SIM115
        self._log_lock = threading.Lock()
        self.stop_event = threading.Event()

    def serve(self, request: HttpRequest) -> HttpResponse:
        """One request through the load balancer and the function."""
        group = self.listener.pick()
        event = build_event(request, group.arn, multi_value=group.multi_value)
        began, wall = time.monotonic(), time.time()
        try:
            response = http_response(self.environment.invoke(event, group.alias))
        except Exception as error:  # a function error: the load balancer answers 502
            response = bad_gateway(f"the function failed: {type(error).__name__}")
        seconds = time.monotonic() - began
        self.metrics.add(wall, group.dimension, response, seconds)
        entry = {"t": began, "done": began + seconds, "wall": wall, "status": response.status,
                 "from_target": response.from_target, "alias": group.alias,
                 "target_group": group.dimension, "path": request.path}  # fmt: skip
        with self._log_lock:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()
        return response

    def background(self) -> None:
        """Flush metrics and read the listener until stopped."""
        last_poll = 0.0
        while not self.stop_event.wait(FLUSH_SECONDS):
            self.metrics.flush()
            if time.monotonic() - last_poll >= LISTENER_POLL_SECONDS:
                last_poll = time.monotonic()
                try:
                    self.listener.refresh()
                except Exception as error:  # keep the last weights; note the failure
                    self.metrics.errors.append(f"listener: {error}")
        self.metrics.flush(everything=True)


def main(argv: list[str]) -> int:
    """Serve until SIGTERM; the port goes into the spec's ready file."""
    import signal

    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    side = AwsSideProcess(spec)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.side = side
    worker = threading.Thread(target=side.background, daemon=True)
    worker.start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    Path(spec["ready_file"]).write_text(str(server.server_address[1]), encoding="ascii")
    server.serve_forever(poll_interval=0.2)
    side.stop_event.set()
    worker.join(10)
    if side.metrics.errors:
        sys.stderr.write("metric errors: " + " | ".join(side.metrics.errors[:5]) + "\n")
    return 0


# --------------------------------------------------------------------------- parent side


class AwsSide:
    """Starts and stops the AWS-side process; reads what it served."""

    def __init__(self, spec: dict[str, Any], environment: dict[str, str], workdir: Path) -> None:
        """`environment` is the function's process environment (role credentials included)."""
        self.spec = {**spec, "access_log": str(workdir / "aws-access.jsonl"),
                     "ready_file": str(workdir / "aws-side.port")}  # fmt: skip
        self.environment = environment
        self.workdir = workdir
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._served: list[dict[str, Any]] = []
        self._read = 0  # bytes of the access log read so far
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """Where clients send requests (the ALB's DNS name stands for this)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = 60.0) -> AwsSide:
        """Start the process and wait until it listens."""
        spec_path = self.workdir / "aws-side.json"
        spec_path.write_text(json.dumps(self.spec), encoding="utf-8")
        ready = Path(self.spec["ready_file"])
        ready.unlink(missing_ok=True)
        log = (self.workdir / "aws-side.log").open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "paymig.rehearsal.aws_side", str(spec_path)],
            env=self.environment, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while not ready.is_file() or not ready.read_text(encoding="ascii"):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise CommandFailedError(
                    f"the AWS side did not start (see {self.workdir / 'aws-side.log'})"
                )
            time.sleep(0.1)
        self.port = int(ready.read_text(encoding="ascii"))
        return self

    def stop(self) -> None:
        """Stop serving (metrics of the last second are flushed). Safe to call twice."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def served(self) -> list[dict[str, Any]]:
        """The access log so far, oldest first (read on from where the last call stopped)."""
        path = Path(self.spec["access_log"])
        with self._lock:
            if path.is_file():
                with path.open("rb") as log:
                    log.seek(self._read)
                    data = log.read()
                complete = data[: data.rfind(b"\n") + 1]  # a line being written waits
                self._read += len(complete)
                self._served += [json.loads(line) for line in complete.splitlines() if line]
            return list(self._served)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
