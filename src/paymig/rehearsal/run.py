"""The rehearsal, step by step: environment, deploy, data, the two sides, migration, report.

The migration is driven by production code: :func:`paymig.runtime.preflight.run_preflight`,
the validator, the controller's :func:`~paymig.runtime.controller.actions.shift`, the
payment API handler (behind the load balancer stand-in) and the rollback Lambda's
handler (delivered the composite alarm's notification as SNS would, run under its own
role). The stand-ins for what cannot run locally are named in the report.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg

from paymig import naming
from paymig.config import PaymigConfig, load_config
from paymig.errors import CommandFailedError, PaymigError
from paymig.local.emulator import EMULATOR_REGION
from paymig.local.tcp_proxy import TcpProxy
from paymig.rehearsal import db_logins, emulated, stand_ins
from paymig.rehearsal.aws_side import AwsSide
from paymig.rehearsal.cdc import CdcPublisher
from paymig.rehearsal.data import (
    LogicalReplication,
    count_rows,
    create_database,
    load_dataset,
)
from paymig.rehearsal.deploy import DeployResult, deploy, derive_config
from paymig.rehearsal.environment import RehearsalEnvironment, still_alive
from paymig.rehearsal.lambda_process import lambda_environment
from paymig.rehearsal.lambda_runtime import Invocation, LoadedFunction, invoke, load_function
from paymig.rehearsal.legacy_side import LegacySide
from paymig.rehearsal.live import LiveMigration, LiveParts
from paymig.rehearsal.migration import Migration
from paymig.rehearsal.notes import side_descriptions, stand_in_notes
from paymig.rehearsal.options import Display, Options
from paymig.rehearsal.outcome import fill_outcome
from paymig.rehearsal.report import RehearsalReport, StepResult
from paymig.rehearsal.scenarios import SCENARIOS, Scenario
from paymig.rehearsal.sides import aws_side_spec
from paymig.rehearsal.stages import CutoverPath
from paymig.rehearsal.switches import Switches, install_receipts
from paymig.rehearsal.timeline import Timeline
from paymig.rehearsal.validation import ProgressBars, validate
from paymig.rehearsal.write_figures import write_figures, write_problems


@contextmanager
def emulator_environment(variables: dict[str, str]) -> Iterator[None]:
    """Point boto3 (ours, the controller's) at the emulator for a while."""
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


@dataclass
class Setup:
    """What the steps before the migration produced."""

    config: PaymigConfig
    config_path: Path
    task_id: str
    deployed: DeployResult | None = None
    completed: emulated.CompletedStack | None = None
    replication: LogicalReplication | None = None
    cdc: CdcPublisher | None = None
    vpn: TcpProxy | None = None
    aurora_path: TcpProxy | None = None
    legacy: LegacySide | None = None
    aws: AwsSide | None = None


class Rehearsal:
    """One rehearsal run."""

    def __init__(self, options: Options, display: Display | None = None) -> None:
        """Prepare the run."""
        options.check()
        self.options = options
        self.scenario: Scenario = SCENARIOS[options.scenario]
        self.display = display or Display()
        self.timeline = Timeline()
        self.report = RehearsalReport(
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            rows=options.rows,
            rate=options.rate,
            clients=options.clients,
            scenario=f"{self.scenario.name}: {self.scenario.description}",
        )
        self.work = options.workdir / "work"
        self.current = "start"
        self.live: LiveMigration | None = None
        self.migration: Migration | None = None
        self.setup: Setup | None = None

    # ------------------------------------------------------------------ helpers

    def enter(self, name: str) -> None:
        """A step starts: show it, and name it if it fails."""
        self.current = name
        self.display.step(name)

    def step(self, name: str, ok: bool, began: float, detail: str) -> None:
        """Record a step's result."""
        seconds = time.monotonic() - began
        self.report.steps.append(StepResult(name, ok, round(seconds, 3), detail))
        self.timeline.event(name, detail)
        self.display.info(f"{'ok' if ok else 'FAILED'}: {name} ({seconds:.1f} s): {detail}")
        if not ok and self.report.failure is None:
            self.report.failure = f"{name}: {detail}"

    def _process(self, name: str, pid: int | None) -> None:
        if pid is not None:
            self.report.processes.append({"name": name, "pid": pid})

    # ------------------------------------------------------------------ main

    def run(self) -> RehearsalReport:
        """Run every step; the environment is stopped whatever happens."""
        self.options.workdir.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        env = RehearsalEnvironment()
        self.enter("starting the emulator and two PostgreSQL servers")
        try:
            with env:
                for proc in env.processes:
                    self._process(proc.name, proc.pid)
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
            self.report.failure = self.report.failure or str(exc)
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
        from paymig.rehearsal.outcome import draw_timeline

        png = draw_timeline(self.timeline, self.live, self.options.workdir / "timeline.png")
        (self.options.workdir / "timeline.json").write_text(
            json.dumps(self.timeline.as_dict(), default=str), encoding="utf-8"
        )
        self.report.write(self.options.workdir, png)
        if not self.options.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    def _run_in(self, env: RehearsalEnvironment) -> None:
        """The steps inside a running environment."""
        with emulator_environment(env.moto.client_environment()):
            session = boto3.Session(region_name=EMULATOR_REGION)
            setup = self._configure(env, session)
            self._data(env, setup)
            assert setup.replication is not None
            # Replication runs from here on: its lag is the CDC latency DMS would publish.
            setup.cdc = CdcPublisher(
                setup.replication, session.client("cloudwatch"), setup.config, setup.task_id
            )
            setup.cdc.start()
            env.add_cleanup(setup.cdc.stop)
            self._deploy(env, session, setup)
            self._sides(env, session, setup)
            self._migrate(env, session, setup)

    # ------------------------------------------------------------------ deploy

    def _configure(self, env: RehearsalEnvironment, session: Any) -> Setup:
        """The emulator's zone and DMS task record, and the config derived with the zone."""
        emulated.seed(env.moto.endpoint_url)
        base = self.options.config_path
        zone_id = emulated.create_hosted_zone(
            session.client("route53"), load_config(base).dns.zone_name
        )
        config, config_path = derive_config(base, zone_id, self.options.workdir)
        task_id = emulated.dms_task_record(session, config)
        self.report.created_by_rehearsal = [
            f"DMS replication task {naming.dms_task_identifier(config.stack_name)} "
            "(record only: it moves no data)"
        ]
        return Setup(config, config_path, task_id)

    def _deploy(self, env: RehearsalEnvironment, session: Any, setup: Setup) -> None:
        """Synthesize, apply, then create what the apply could not from its definitions."""
        self.enter("deploying the stack to the emulator (terraform apply)")
        began = time.monotonic()
        config, state = setup.config, self.work / "terraform.tfstate"
        result = deploy(
            config,
            setup.config_path,
            self.options.workdir,
            env.moto.endpoint_url,
            state_path=state,
            stall_seconds=self.options.stall_seconds,
            progress=self._deploy_progress(),
            on_start=lambda pid: self._process("terraform apply", pid),
        )
        r = self.report
        r.synth_cached, r.synth_seconds = result.synth_cached, round(result.synth_seconds, 3)
        r.apply_seconds, r.apply_rounds = round(result.apply_seconds, 3), result.rounds
        r.resources_total, r.resources_created = result.resources, len(result.created)
        r.not_rehearsed = result.not_rehearsed
        self.step(
            "deploy",
            True,
            began,
            f"{len(result.created)} of {result.resources} resources created by Terraform, "
            f"{len(result.not_rehearsed)} not",
        )
        began = time.monotonic()
        document = json.loads((result.stack_dir / "cdk.tf.json").read_text(encoding="utf-8"))
        completed = emulated.complete_stack(
            session,
            document,
            state_path=state,
            not_rehearsed=result.not_rehearsed,
            task_resource_id=setup.task_id,
            config=config,
        )
        r.created_by_rehearsal += completed.created
        self.step(
            "complete the stack",
            True,
            began,
            f"{len(completed.created)} resource(s) created from their definitions",
        )
        setup.deployed, setup.completed = result, completed

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

    def _data(self, env: RehearsalEnvironment, setup: Setup) -> None:
        """Load the dataset, run preflight, start replication and wait for the copy."""
        from paymig.runtime.preflight import run_preflight

        config = setup.config
        source_db, target_db = (
            config.replication.source.database_name,
            config.database.database_name,
        )
        create_database(env.source.dsn(), source_db)
        create_database(env.target.dsn(), target_db)
        self.enter(f"loading {self.options.rows} payments into the source")
        began = time.monotonic()
        counts = load_dataset(
            env.source.dsn(dbname=source_db),
            self.options.rows,
            advance=self.display.bar("loading payments", self.options.rows),
        )
        self.report.dataset = {
            "accounts": counts.accounts,
            "payments": counts.payments,
            "refunds": counts.refunds,
        }
        self.report.dataset_seconds = round(time.monotonic() - began, 3)
        self.step(
            "load dataset",
            True,
            began,
            f"{counts.accounts} accounts, {counts.payments} payments, {counts.refunds} refunds",
        )
        self.enter("preflight on the source")
        began = time.monotonic()
        preflight = run_preflight(
            env.source.dsn(dbname=source_db),
            None,
            config.replication.lob_mode,
            table_rules=config.replication.table_rules,
        )
        self.report.preflight_passed = preflight.passed
        self.report.preflight_checks = preflight.as_dict()["checks"]
        failed = [c.name for c in preflight.checks if not c.ok]
        self.step(
            "preflight",
            preflight.passed,
            began,
            "every check passed" if preflight.passed else f"failed: {failed}",
        )
        if not preflight.passed:
            raise CommandFailedError(f"preflight failed: {', '.join(failed)}")
        self.enter("replicating source -> target (logical replication stands in for DMS)")
        began = time.monotonic()
        replication = LogicalReplication(
            env.source.dsn(dbname=source_db), env.target.dsn(dbname=target_db)
        )
        replication.start()
        env.add_cleanup(replication.stop)
        self.report.initial_copy_seconds = round(replication.wait_initial_copy(), 3)
        target = count_rows(env.target.dsn(dbname=target_db))
        self.step(
            "initial copy",
            True,
            began,
            f"target holds {target.payments} payments "
            "(publication + subscription, initial copy done)",
        )
        setup.replication = replication

    # ------------------------------------------------------------------ the two sides

    def _sides(self, env: RehearsalEnvironment, session: Any, setup: Setup) -> None:
        """The VPN stand-in, the legacy side, and the AWS side with the function's env."""
        self.enter("starting the legacy side and the AWS side")
        began = time.monotonic()
        config = setup.config
        vpn = TcpProxy("127.0.0.1", env.source.port, name="vpn").start()
        env.add_cleanup(vpn.stop)
        setup.vpn = vpn
        aurora_path = TcpProxy("127.0.0.1", env.target.port, name="aurora-path").start()
        env.add_cleanup(aurora_path.stop)
        setup.aurora_path = aurora_path
        endpoint = _aurora_endpoint(self.work / "terraform.tfstate")
        found = stand_ins.stand_ins(
            config, env.source, env.target, vpn, endpoint, aurora_path=aurora_path
        )
        self._logins(env, session, config, found)
        function = naming.payment_api_function(config.stack_name)
        loaded = self._load(session, function, found)
        self.report.translation = loaded.translation.mapped
        source_db = config.replication.source.database_name
        setup.legacy = LegacySide(env.source.dsn(dbname=source_db)).start()
        env.add_cleanup(setup.legacy.stop)
        setup.aws = self._start_aws_side(env, session, config, loaded)
        self.report.sides = side_descriptions(loaded.spec.handler, loaded.spec.name, vpn.port)
        self.step(
            "the two sides",
            True,
            began,
            f"legacy on {setup.legacy.url}, AWS side on {setup.aws.url} (pid {setup.aws.pid})",
        )

    def _load(
        self, session: Any, function: str, found: dict[tuple[str, int], stand_ins.StandIn]
    ) -> LoadedFunction:
        """A function pointed at the stand-ins; the CA parameters it reads hold their CAs."""
        loaded = load_function(session.client("lambda"), function, stand_ins.reach_map(found))
        for name, pem in loaded.translation.ca_parameters.items():
            stand_ins.store_ca_parameter(session.client("ssm"), name, pem)
        return loaded

    def _logins(
        self,
        env: RehearsalEnvironment,
        session: Any,
        config: PaymigConfig,
        found: dict[tuple[str, int], stand_ins.StandIn],
    ) -> None:
        """The logins: the DBA's script on the source, the setup function on the target."""
        began = time.monotonic()
        rep = config.replication.source
        secretsmanager = session.client("secretsmanager")
        source = db_logins.SourceServer(env.source, rep.database_name, str(rep.host), rep.port)
        lines = db_logins.prepare_source(source, secretsmanager, config.stack_name)
        function = self._load(session, naming.db_setup_function(config.stack_name), found)
        outcome = db_logins.run_setup(
            function,
            env.target,
            sts=session.client("sts"),
            secretsmanager=secretsmanager,
            endpoint_url=env.moto.endpoint_url,
            region=EMULATOR_REGION,
            log_path=self.work / f"lambda-{function.spec.name}.log",
        )
        self.report.logins = lines + outcome.lines
        self.report.setup_check = outcome.detail
        detail = (
            f"source: {len(lines)} login secrets stored (the DBA's script); "
            f"target: the setup function {outcome.detail}"
        )
        self.step("database logins", outcome.ok, began, detail)
        if not outcome.ok:
            raise CommandFailedError(f"database logins: the setup function {outcome.detail}")

    def _start_aws_side(
        self, env: RehearsalEnvironment, session: Any, config: PaymigConfig, loaded: LoadedFunction
    ) -> AwsSide:
        from paymig.rehearsal.lambda_runtime import ROOT_CREDENTIALS, assume_function_role

        credentials, principal = assume_function_role(session.client("sts"), loaded.spec)
        spec = aws_side_spec(session, config, loaded.spec, principal, ROOT_CREDENTIALS)
        environment = lambda_environment(
            loaded.spec, credentials, env.moto.endpoint_url, config.region
        )
        side = AwsSide(spec, environment, self.work).start()
        env.add_cleanup(side.stop)
        self._process("aws side (ALB + payment API)", side.pid)
        return side

    # ------------------------------------------------------------------ migration

    def _invoker(
        self, session: Any, endpoint_url: str
    ) -> Callable[[str, dict[str, Any]], Invocation]:
        """How SNS's deliveries invoke a function: a cold start under its own role."""

        def run(function: str, event: dict[str, Any]) -> Invocation:
            loaded = load_function(session.client("lambda"), function, {})
            name = loaded.spec.name
            return invoke(
                loaded,
                event,
                sts=session.client("sts"),
                endpoint_url=endpoint_url,
                region=EMULATOR_REGION,
                log_path=self.work / f"lambda-{name}.log",
            )

        return run

    def _migrate(self, env: RehearsalEnvironment, session: Any, setup: Setup) -> None:
        """Traffic through the phases, the fault, the rollback, the final checks."""
        assert setup.replication and setup.legacy and setup.aws and setup.vpn
        assert setup.cdc and setup.completed
        config = setup.config
        with psycopg.connect(setup.replication.source_dsn, autocommit=True) as conn:
            accounts = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id::text FROM accounts ORDER BY id LIMIT 200"
                ).fetchall()
            ]
        account = session.client("sts").get_caller_identity()["Account"]
        parts = LiveParts(
            config=config,
            session=session,
            legacy=setup.legacy,
            aws=setup.aws,
            cdc=setup.cdc,
            composite=setup.completed.composite,
            accounts=accounts,
            account_id=account,
            invoke=self._invoker(session, env.moto.endpoint_url),
            workdir=self.work,
            rate=self.options.rate,
            clients=self.options.clients,
        )
        self.live = LiveMigration(parts, self.timeline, self._signals)
        env.add_cleanup(self.live.stop)
        self.setup = setup
        self.migration = Migration(
            self,
            config,
            self.scenario,
            setup.vpn,
            setup.aws,
            setup.replication,
            self.live,
            self.timeline,
        )
        switches = self._whole(setup, session)
        self.migration.run()
        self.report.catch_up_seconds = self.migration.catch_up_seconds
        setup.cdc.stop()
        self.report.max_lag_seconds = round(setup.cdc.max_lag, 3)
        self.validate(setup, live=False)
        fill_outcome(self.report, self.migration, setup.completed, session, self.timeline)
        if switches is not None:
            self._write_figures(switches, setup)
        self.report.notes = stand_in_notes(self.report, self.scenario)

    def _whole(self, setup: Setup, session: Any) -> Switches | None:
        """The stages after the first rollback, for the whole migration (the default)."""
        assert self.migration is not None and setup.replication and setup.aurora_path
        if not self.scenario.whole:
            return None
        for dsn in (setup.replication.source_dsn, setup.replication.target_dsn):
            install_receipts(dsn)
        switches = Switches(setup.config, session, setup.replication)
        self.migration.after = CutoverPath(self.migration, switches, setup.aurora_path)
        return switches

    def _write_figures(self, switches: Switches, setup: Setup) -> None:
        """Windows, payments and sequences of the whole migration; failures named."""
        assert self.migration is not None and self.live is not None
        rep = setup.replication
        assert rep is not None
        final = rep.target_dsn if rep.reverse else rep.source_dsn
        after = self.migration.after
        figures = write_figures(switches, self.live.pool.snapshot(), self.timeline, final)
        r = self.report
        r.writes = figures
        r.held_alarm = after.held.as_dict() if isinstance(after, CutoverPath) and after.held else {}
        r.stages = [e.detail for e in self.timeline.events if e.name == "stage"]
        problems = write_problems(figures, completed=self.migration.completed)
        if problems and r.failure is None:
            r.failure = "writes: " + "; ".join(problems)

    def validate_live(self) -> bool:
        """The validation while the load runs (the controller's gate reads its record)."""
        assert self.setup is not None
        return self.validate(self.setup, live=True)

    def _signals(self, weights: dict[str, int], lag: float | None) -> None:
        written = len(self.live.pool.acknowledged_ids()) if self.live else 0
        self.display.signals(weights, lag, written)

    def validate(self, setup: Setup, *, live: bool) -> bool:
        """Validate source vs target; record the verdict where the controller's gate reads it."""
        from paymig.runtime.controller.audit import AuditTrail

        assert setup.replication is not None
        name = "validation (load running)" if live else "final validation"
        self.enter(name)
        began = time.monotonic()
        grace = setup.config.validation.grace_seconds if live else 0.0
        result = validate(
            setup.replication.source_dsn,
            setup.replication.target_dsn,
            setup.config,
            grace=grace,
            progress=ProgressBars(self.display.bar),
        )
        session = boto3.Session(region_name=EMULATOR_REGION)
        audit = AuditTrail(
            session.client("dynamodb"), naming.audit_table_name(setup.config.stack_name)
        )
        audit.record_validation(
            {
                "status": "consistent" if result.consistent else "inconsistent",
                "summary": result.summary(),
                "seconds": round(result.seconds, 3),
                "source": "paymig rehearse",
            }
        )
        figures = {
            "consistent": result.consistent,
            "seconds": round(result.seconds, 3),
            "summary": result.summary(),
            "explanation": result.explanation(),
            "tables": result.report["tables"],
        }
        if live:
            self.report.validation = figures
        else:
            self.report.final_validation = figures
        self.step(name, result.consistent, began, result.summary())
        return result.consistent


def _aurora_endpoint(state_path: Path) -> str | None:
    """The Aurora cluster's endpoint, as the apply created it."""
    from paymig.rehearsal.stack_defs import state_attributes

    for address, attributes in state_attributes(state_path).items():
        if address.startswith("aws_rds_cluster.") and attributes.get("endpoint"):
            return str(attributes["endpoint"])
    return None
