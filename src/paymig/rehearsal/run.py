"""The rehearsal, step by step: environment, deploy, data, load, migration, report.

The migration is driven by the production code: :func:`paymig.runtime.preflight.run_preflight`,
the validator (:class:`paymig.runtime.validator.Validator`), the controller's
:func:`~paymig.runtime.controller.actions.shift`, and the rollback Lambda's
:func:`~paymig.lambdas.rollback.handler`, invoked in-process with the SNS event AWS
would deliver (the emulator cannot run Lambda functions).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import psycopg

from paymig.config import PaymigConfig, load_config, resolve_config_path
from paymig.errors import CommandFailedError, PaymigError
from paymig.local.emulator import EMULATOR_REGION
from paymig.naming import composite_alarm_name
from paymig.rehearsal import emulated
from paymig.rehearsal.data import LogicalReplication, count_rows, load_dataset, payments_present
from paymig.rehearsal.deploy import deploy, derive_config
from paymig.rehearsal.environment import RehearsalEnvironment, still_alive
from paymig.rehearsal.load import LoadGenerator
from paymig.rehearsal.report import RehearsalReport, StepResult
from paymig.rehearsal.timeline import Timeline, plot

#: Default size of the seed dataset (payments), sized for a run under 5 minutes on 2 cores.
DEFAULT_ROWS = 50_000
#: Default load, in payments per second.
DEFAULT_RATE = 20.0
#: Seconds between two samples of the live signals.
SAMPLE_INTERVAL_SECONDS = 0.5
#: Seconds the traffic stays at each phase (the rehearsal compresses the dwell time).
PHASE_HOLD_SECONDS = 3.0

STAND_IN_NOTES = (
    "AWS DMS cannot run locally (the emulator creates no replication instance and moves no "
    "data): PostgreSQL logical replication from the source to the target server stands in "
    "for DMS full load + CDC. Its measured lag is published as the DMS CDCLatencyTarget "
    "metric that the controller's CDC gate reads.",
    "The emulator cannot run Lambda functions: the rollback Lambda's handler "
    "(paymig.lambdas.rollback.handler) is invoked in-process with the SNS event AWS "
    "delivers for the alarm's state change, and makes its real boto3 calls to the emulator.",
    "The emulator evaluates no alarm from metric data and has no composite alarms: the "
    "fault is injected with set_alarm_state on the 5xx-rate alarm and on migration-health.",
    "Dwell time between phases is compressed (config/rehearsal.yaml: dwell_minutes {}).",
    "Time to detect the fault is measured from set_alarm_state until the alarm reads ALARM "
    "in the emulator: it leaves out CloudWatch's evaluation periods, which the modelled "
    "rollback budget accounts for from the configured alarm settings.",
)


class Display:
    """What the rehearsal tells the user; the CLI gives a rich implementation."""

    def step(self, name: str) -> None:
        """A new step starts."""

    def info(self, message: str) -> None:
        """A line of detail."""

    def bar(self, name: str, total: int) -> Callable[[int], None]:
        """A progress bar; returns its advance function."""
        return lambda n: None

    def signals(self, weights: dict[str, int], lag: float | None, written: int) -> None:
        """The live weights, replication lag and payments written."""


@dataclass
class Options:
    """What the user asked for."""

    workdir: Path
    rows: int = DEFAULT_ROWS
    rate: float = DEFAULT_RATE
    keep: bool = False
    config_path: Path = field(default_factory=lambda: resolve_config_path("rehearsal", None))
    stall_seconds: float = 150.0

    def check(self) -> None:
        """Reject impossible values with one line naming the option."""
        if self.rows < 1:
            raise PaymigError(f"--rows: must be at least 1, got {self.rows}")
        if not 0 < self.rate <= 1000:
            raise PaymigError(f"--rate: must be above 0 and at most 1000, got {self.rate:g}")


@contextmanager
def emulator_environment(variables: dict[str, str]) -> Iterator[None]:
    """Point boto3 (ours, the controller's, the handler's) at the emulator for a while."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Sampler(threading.Thread):
    """Samples weights, replication lag and the error signal; feeds the CDC metric."""

    def __init__(  # noqa: PLR0917 - the sampler's collaborators
        self,
        timeline: Timeline,
        session: Any,
        config: PaymigConfig,
        replication: LogicalReplication,
        task_id: str,
        load: LoadGenerator,
        display: Display,
    ) -> None:
        """Prepare; sampling starts with the thread."""
        super().__init__(name="paymig-sampler", daemon=True)
        self.timeline, self.config, self.replication = timeline, config, replication
        self.task_id, self.load, self.display = task_id, load, display
        self.route53 = session.client("route53")
        self.cloudwatch = session.client("cloudwatch")
        self.stop_event = threading.Event()
        self.max_lag = 0.0
        self.errors: list[str] = []

    def run(self) -> None:
        """Sample until stopped."""
        alarm = composite_alarm_name(self.config.stack_name)
        with psycopg.connect(self.replication.source_dsn, autocommit=True) as conn:
            while not self.stop_event.is_set():
                try:
                    dns = self.config.dns
                    weights = emulated.read_weights(
                        self.route53, dns.hosted_zone_id, dns.api_record_name
                    )
                    lag = self.replication.lag(conn)
                    state = emulated.alarm_state(self.cloudwatch, alarm)
                    emulated.publish_cdc_latency(
                        self.cloudwatch, self.config, self.task_id, lag.seconds
                    )
                    self.max_lag = max(self.max_lag, lag.seconds)
                    self.timeline.sample(
                        legacy=weights.get("legacy"),
                        aws=weights.get("aws"),
                        lag_seconds=lag.seconds,
                        lag_bytes=lag.bytes,
                        alarm=None if state is None else state["StateValue"] == "ALARM",
                    )
                    self.display.signals(weights, lag.seconds, self.load.written)
                except (PaymigError, psycopg.Error, boto3.exceptions.Boto3Error) as exc:
                    self.errors.append(str(exc))
                except Exception as exc:  # a botocore error must not end the sampling
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                self.stop_event.wait(SAMPLE_INTERVAL_SECONDS)

    def stop(self) -> None:
        """Stop sampling."""
        self.stop_event.set()
        if self.is_alive():
            self.join(10)


class Rehearsal:
    """One rehearsal run."""

    def __init__(self, options: Options, display: Display | None = None) -> None:
        """Prepare the run."""
        options.check()
        self.options = options
        self.display = display or Display()
        self.timeline = Timeline()
        self.report = RehearsalReport(
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            rows=options.rows,
            rate=options.rate,
            notes=list(STAND_IN_NOTES),
        )
        self.work = options.workdir / "work"
        self.current = "start"

    # ------------------------------------------------------------------ helpers

    def _enter(self, name: str) -> None:
        """A step starts: show it, and name it if it fails."""
        self.current = name
        self.display.step(name)

    def _step(self, name: str, ok: bool, began: float, detail: str) -> None:
        """Record a step's result."""
        seconds = time.monotonic() - began
        self.report.steps.append(StepResult(name, ok, round(seconds, 3), detail))
        self.timeline.event(name, detail)
        self.display.info(f"{'ok' if ok else 'FAILED'}: {name} ({seconds:.1f} s): {detail}")

    # ------------------------------------------------------------------ main

    def run(self) -> RehearsalReport:
        """Run every step; the environment is stopped whatever happens."""
        options = self.options
        options.workdir.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        env = RehearsalEnvironment()
        self._enter("starting the emulator and two PostgreSQL servers")
        try:
            with env:
                self.report.processes = [{"name": p.name, "pid": p.pid} for p in env.processes]
                self.display.info(
                    "started " + ", ".join(f"{p.name} (pid {p.pid})" for p in env.processes)
                )
                self._run_in(env)
                self.report.outcome = "passed" if self.report.failure is None else "failed"
        except KeyboardInterrupt:
            self.report.outcome = "interrupted"
            self.report.failure = "interrupted (Ctrl-C or a stop signal)"
            raise
        except PaymigError as exc:
            self.report.outcome = "failed"
            self.report.failure = str(exc)
            raise
        except Exception as exc:  # a database or emulator error: one line, and the report
            message = " ".join(str(exc).split())
            self.report.outcome = "failed"
            self.report.failure = f"{self.current}: {type(exc).__name__}: {message}"
            raise CommandFailedError(self.report.failure) from exc
        finally:
            self.report.total_seconds = round(time.monotonic() - began, 3)
            alive = set(still_alive(int(p["pid"]) for p in self.report.processes))
            self.report.processes_still_running = [
                p for p in self.report.processes if int(p["pid"]) in alive
            ]
            self._write_outputs()
        return self.report

    def _write_outputs(self) -> None:
        """Write the timeline image and the reports; drop the work folder unless --keep."""
        png: Path | None = None
        if self.timeline.samples:
            png = plot(self.timeline, self.options.workdir / "timeline.png")
        self.report.write(self.options.workdir, png)
        if not self.options.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    def _run_in(self, env: RehearsalEnvironment) -> None:
        """The steps inside a running environment."""
        variables = env.moto.client_environment()
        with emulator_environment(variables):
            session = boto3.Session(region_name=EMULATOR_REGION)
            config = self._deploy(env, session)
            replication = self._data(env, config)
            env.add_cleanup(replication.stop)
            self._migrate(env, session, config, replication)

    # ------------------------------------------------------------------ deploy

    def _deploy(self, env: RehearsalEnvironment, session: Any) -> PaymigConfig:
        """Create the zone, derive the config, synthesize and apply to the emulator."""
        self._enter("deploying the stack to the emulator (terraform apply)")
        began = time.monotonic()
        emulated.seed(env.moto.endpoint_url)
        base = self.options.config_path
        zone_name = load_config(base).dns.zone_name
        zone_id = emulated.create_hosted_zone(session.client("route53"), zone_name)
        config, config_path = derive_config(base, zone_id, self.options.workdir)
        result = deploy(
            config,
            config_path,
            self.options.workdir,
            env.moto.endpoint_url,
            state_path=self.work / "terraform.tfstate",
            stall_seconds=self.options.stall_seconds,
            progress=self._deploy_progress(),
            on_start=lambda pid: self.report.processes.append(
                {"name": "terraform apply", "pid": pid}
            ),
        )
        r = self.report
        r.synth_cached, r.synth_seconds = result.synth_cached, round(result.synth_seconds, 3)
        r.apply_seconds, r.apply_rounds = round(result.apply_seconds, 3), result.rounds
        r.resources_total, r.resources_created = result.resources, len(result.created)
        r.not_rehearsed = result.not_rehearsed
        self._step(
            "deploy",
            True,
            began,
            f"{len(result.created)} of {result.resources} resources created in the emulator, "
            f"{len(result.not_rehearsed)} not rehearsed",
        )
        return config

    def _deploy_progress(self) -> Callable[[str], None]:
        """Show the apply's progress without flooding the screen."""
        created = [0]

        def show(message: str) -> None:
            if message.startswith("created "):
                created[0] += 1
                if created[0] % 20 == 0:
                    self.display.info(f"{created[0]} resources created")
                return
            self.display.info(message)

        return show

    # ------------------------------------------------------------------ data

    def _data(self, env: RehearsalEnvironment, config: PaymigConfig) -> LogicalReplication:
        """Load the dataset, run preflight, start replication and wait for the copy."""
        from paymig.runtime.preflight import run_preflight

        self._enter(f"loading {self.options.rows} payments into the source")
        began = time.monotonic()
        counts = load_dataset(
            env.source.dsn(), self.options.rows,
            advance=self.display.bar("loading payments", self.options.rows),
        )  # fmt: skip
        self.report.dataset = {
            "accounts": counts.accounts, "payments": counts.payments, "refunds": counts.refunds,
        }  # fmt: skip
        self.report.dataset_seconds = round(time.monotonic() - began, 3)
        self._step("load dataset", True, began, f"{counts.accounts} accounts, "
                   f"{counts.payments} payments, {counts.refunds} refunds")  # fmt: skip

        self._enter("preflight on the source")
        began = time.monotonic()
        preflight = run_preflight(
            env.source.dsn(),
            None,
            config.replication.lob_mode,
            table_rules=config.replication.table_rules,
        )
        self.report.preflight_passed = preflight.passed
        self.report.preflight_checks = preflight.as_dict()["checks"]
        failed = [c.name for c in preflight.checks if not c.ok]
        self._step("preflight", preflight.passed, began,
                   "every check passed" if preflight.passed else f"failed: {failed}")  # fmt: skip
        if not preflight.passed:
            raise CommandFailedError(f"preflight failed: {', '.join(failed)}")

        self._enter("replicating source -> target (logical replication stands in for DMS)")
        self.display.info(STAND_IN_NOTES[0])
        began = time.monotonic()
        replication = LogicalReplication(env.source.dsn(), env.target.dsn())
        replication.start()
        self.report.initial_copy_seconds = round(replication.wait_initial_copy(), 3)
        target = count_rows(env.target.dsn())
        self._step("initial copy", True, began, f"target holds {target.payments} payments "
                   "(publication + subscription, initial copy done)")  # fmt: skip
        return replication

    # ------------------------------------------------------------------ migration

    def _migrate(
        self,
        env: RehearsalEnvironment,
        session: Any,
        config: PaymigConfig,
        replication: LogicalReplication,
    ) -> None:
        """Load, validate, shift, fault, rollback, final checks."""
        from paymig.runtime.controller import actions
        from paymig.runtime.controller.aws import ControllerAws
        from paymig.runtime.controller.budget import budget_from_config
        from paymig.runtime.controller.core import ControllerSettings

        self.report.rollback_budget = budget_from_config(config).as_dict()
        began = time.monotonic()
        inputs = emulated.provision_gate_inputs(session, config)
        self.report.created_by_rehearsal = inputs.created_by_rehearsal
        self._step("gate inputs", True, began,
                   f"{len(inputs.created_by_rehearsal)} created by the rehearsal")  # fmt: skip

        load = LoadGenerator(env.source.dsn(), self.options.rate, self.work / "acknowledged.log")
        sampler = Sampler(self.timeline, session, config, replication,
                          inputs.dms_task_resource_id, load, self.display)  # fmt: skip
        load.start()
        sampler.start()
        env.add_cleanup(load.stop)
        env.add_cleanup(sampler.stop)
        self.timeline.event("load-started", f"{self.options.rate:g} payments/s")
        settings = ControllerSettings.from_config(config)
        try:
            self._validate(env, session, config, live=True)
            if self.report.validation_consistent:
                aws = ControllerAws.connect(settings.rollback, session)
                shifted = self._shift(actions, aws, settings, 10) and self._shift(
                    actions, aws, settings, 50
                )
                if shifted:
                    self._fault_and_rollback(session, config, inputs)
        finally:
            self._enter("stopping the load; replication catches up")
            load.stop()
            began = time.monotonic()
            self.report.catch_up_seconds = round(replication.wait_caught_up(), 3)
            self._step("catch up", True, began, "target replayed all the source's WAL")
            sampler.stop()
        self.report.max_lag_seconds = round(sampler.max_lag, 3)
        self._validate(env, session, config, live=False)
        self._count_payments(env, load)
        self._final_weights(session, config)

    def _validator_report(
        self, env: RehearsalEnvironment, config: PaymigConfig, grace: float
    ) -> tuple[Any, float]:
        """Run the real validator over the replication scope; return (report, seconds)."""
        from paymig.runtime.validator import Settings, Validator

        rules = [(r.schema_name, r.table_name, r.action) for r in config.replication.table_rules]
        tables: dict[str, Callable[[int], None]] = {}

        class Bars:
            def start(inner, table: str, ranges: int) -> None:  # noqa: N805
                tables[table] = self.display.bar(f"validating {table}", ranges)

            def advance(inner, table: str, ranges: int) -> None:  # noqa: N805
                tables[table](ranges)

            def finish(inner, table: str) -> None:  # noqa: N805
                pass

        began = time.monotonic()
        cfg = config.validation
        settings = Settings(
            workers=cfg.workers,
            grace_seconds=grace,
            max_keys_reported=cfg.max_keys_reported,
            range_rows=cfg.range_rows,
            leaf_rows=cfg.leaf_rows,
            fanout=cfg.fanout,
        )
        validator = Validator(env.source.dsn(), env.target.dsn(), settings, progress=Bars())
        report = validator.run(None, rules=rules)
        return report, time.monotonic() - began

    def _validate(
        self, env: RehearsalEnvironment, session: Any, config: PaymigConfig, *, live: bool
    ) -> None:
        """Validate source vs target and record the result where the gate reads it."""
        from paymig.naming import audit_table_name
        from paymig.runtime.controller.aws import AuditTrail

        name = "validation (load running)" if live else "final validation"
        self._enter(name)
        began = time.monotonic()
        # While the load runs, changes in flight are re-checked after the configured grace;
        # at the end replication has caught up and the load stopped, so none is needed.
        grace = config.validation.grace_seconds if live else 0.0
        report, seconds = self._validator_report(env, config, grace)
        tables = report.to_json()["tables"]
        differences = sum(
            t["missing_in_target_count"] + t["extra_in_target_count"] + t["different_count"]
            for t in tables
        )
        summary = (
            f"{sum(t['source_rows'] for t in tables)} source rows vs "
            f"{sum(t['target_rows'] for t in tables)} target rows over {len(tables)} tables, "
            f"{differences} differing keys, grace {grace:g} s"
        )
        audit = AuditTrail(session.client("dynamodb"), audit_table_name(config.stack_name))
        audit.record_validation(
            {
                "status": "consistent" if report.consistent else "inconsistent",
                "summary": summary,
                "seconds": round(seconds, 3),
                "source": "paymig rehearse",
            }
        )
        if live:
            self.report.validation_seconds = round(seconds, 3)
            self.report.validation_consistent = report.consistent
        else:
            self.report.final_validation_seconds = round(seconds, 3)
            self.report.final_validation_consistent = report.consistent
            self.report.final_validation_tables = tables
        self._step(name, report.consistent, began, summary)
        if not report.consistent:
            self.report.failure = f"{name}: source and target differ ({summary})"

    def _shift(self, actions: Any, aws: Any, settings: Any, target: int) -> bool:
        """Shift through the controller; a refusal is recorded as the rehearsal's failure."""
        self._enter(f"shift to {target}% (controller, gates against the emulator)")
        time.sleep(PHASE_HOLD_SECONDS)
        began = time.monotonic()
        try:
            outcome = actions.shift(
                aws, settings, target=target, reason=f"paymig rehearse: phase {target}%",
                source="rehearsal",
            )  # fmt: skip
        except PaymigError as exc:
            self._step(f"shift-{target}", False, began, str(exc))
            self.report.failure = f"shift to {target}% refused: {exc}"
            return False
        gates = ", ".join(f"{g.name} ok" for g in outcome.gates)
        self._step(f"shift-{target}", True, began, f"{outcome.detail}; gates: {gates}")
        return True

    def _fault_and_rollback(self, session: Any, config: PaymigConfig, inputs: Any) -> None:
        """Inject the fault, detect it, run the rollback handler, verify the weights."""
        from paymig.lambdas import rollback as rollback_lambda

        time.sleep(PHASE_HOLD_SECONDS)
        self._enter("fault: migration-health to ALARM; automatic rollback")
        cloudwatch = session.client("cloudwatch")
        alarm_name = composite_alarm_name(config.stack_name)
        before = emulated.alarm_state(cloudwatch, alarm_name)
        old_state = "OK" if before is None else str(before["StateValue"])
        fault_at = time.monotonic()
        emulated.inject_fault(cloudwatch, config, "paymig rehearse: injected 5xx fault")
        self.timeline.event("fault", "5xx-rate and migration-health set to ALARM")
        # Detection: watch the alarm until it reports ALARM, as CloudWatch's action would fire.
        while True:
            alarm = emulated.alarm_state(cloudwatch, alarm_name)
            if alarm is not None and alarm["StateValue"] == "ALARM":
                break
            if time.monotonic() - fault_at > 60:
                raise CommandFailedError(f"{alarm_name} did not report ALARM within 60 s")
            time.sleep(0.05)
        detected_at = time.monotonic()
        self.report.fault_detect_seconds = round(detected_at - fault_at, 3)
        self.timeline.event("detected", f"{alarm_name} is ALARM")
        # What CloudWatch does next: publish the state change to the alarm topic.
        message_id = session.client("sns").publish(
            TopicArn=inputs.topic_arn,
            Subject=f'ALARM: "{alarm_name}"',
            Message="alarm state change (the rehearsal hands the event to the handler)",
        )["MessageId"]
        event = emulated.alarm_sns_event(
            alarm, topic_arn=inputs.topic_arn, message_id=message_id,
            region=config.region, old_state=old_state,
        )  # fmt: skip
        lambda_env = {
            "PAYMIG_STACK_NAME": config.stack_name,
            "PAYMIG_ENVIRONMENT": config.environment,
            "PAYMIG_HOSTED_ZONE_ID": config.dns.hosted_zone_id,
            "PAYMIG_RECORD_NAME": config.dns.api_record_name,
            "PAYMIG_STABLE_ALIAS": config.controller.stable_alias,
            "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS": str(
                config.controller.route53_insync_timeout_seconds
            ),
            "PAYMIG_LOCK_TTL_SECONDS": str(config.controller.lock_ttl_seconds),
        }
        context = SimpleNamespace(
            aws_request_id=str(uuid.uuid4()),
            function_name=f"{config.stack_name}-rollback",
        )
        invoked = time.monotonic()
        with emulator_environment(lambda_env):
            result = rollback_lambda.handler(event, context)
        done = time.monotonic()
        self.timeline.event("rollback-done", str(result.get("detail", "")))
        self.report.rollback_handler_seconds = round(done - invoked, 3)
        self.report.fault_to_restored_seconds = round(done - fault_at, 3)
        self.report.rollback_result = {k: v for k, v in result.items() if k != "trigger"}
        weights = emulated.read_weights(
            session.client("route53"), config.dns.hosted_zone_id, config.dns.api_record_name
        )
        ok = weights == {"legacy": 100, "aws": 0}
        self._step("rollback", ok, fault_at,
                   f"handler result {result.get('result')}: {result.get('detail')}; Route 53 "
                   f"now legacy {weights.get('legacy')} / aws {weights.get('aws')}")  # fmt: skip
        if not ok:
            self.report.failure = f"weights after rollback are {weights}, not legacy 100 / aws 0"
        time.sleep(PHASE_HOLD_SECONDS)  # the timeline shows the restored weights under load

    def _count_payments(self, env: RehearsalEnvironment, load: LoadGenerator) -> None:
        """Every acknowledged payment must be in the target."""
        began = time.monotonic()
        ids = load.acknowledged_ids()
        found = payments_present(env.target.dsn(), ids)
        r = self.report
        r.payments_written, r.payments_found, r.payments_lost = len(ids), found, len(ids) - found
        r.load_errors = len(load.errors)
        lost = len(ids) - found
        detail = f"{len(ids)} acknowledged, {found} in the target, {lost} lost"
        self._step("payments", found == len(ids), began, detail)
        if found != len(ids):
            self.report.failure = f"{len(ids) - found} acknowledged payments missing in the target"

    def _final_weights(self, session: Any, config: PaymigConfig) -> None:
        """Read the final weights from the emulator's Route 53."""
        self.report.final_weights = emulated.read_weights(
            session.client("route53"), config.dns.hosted_zone_id, config.dns.api_record_name
        )
