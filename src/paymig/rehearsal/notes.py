"""Every stand-in of the rehearsal, named in the report: what it replaces and why."""

from __future__ import annotations

from paymig.rehearsal.report import RehearsalReport
from paymig.rehearsal.scenarios import Scenario

STAND_INS = (
    "AWS DMS: PostgreSQL logical replication from the source to the target server stands in "
    "for full load + CDC (the emulator creates no working replication instance and moves no "
    "data). Its measured replay lag is published as the DMS CDCLatencyTarget metric, which the "
    "controller's CDC gate and the cdc-latency alarm read.",
    "Site-to-Site VPN: a TCP proxy on loopback, through which alone the AWS side reaches the "
    "source. The fault is injected there.",
    "Application Load Balancer: the AWS side's process builds the documented ALB -> Lambda "
    "event, picks the target group by the listener's weights (read from the emulator), turns "
    "the function's answer into HTTP (502 for a function error), and publishes RequestCount, "
    "HTTPCode_Target_5XX_Count, HTTPCode_ELB_5XX_Count and TargetResponseTime from what it "
    "served, with the stack's dimensions, at 1-second storage resolution.",
    "Lambda: the emulator runs no function. Each runs in a process of its own with the "
    "function's environment from GetFunctionConfiguration (database addresses pointed at the "
    "local servers by paymig.rehearsal.function_env), the credentials of its role (AssumeRole "
    "in the emulator) and every AWS call authorized against that role's policies "
    "(paymig.rehearsal.iam_requests). The rollback runs as a cold start per invocation.",
    "IAM enforcement: moto 5.2.5's (INITIAL_NO_AUTH_ACTION_COUNT, /moto-api/reset-auth) would "
    "deny the rollback role's correct statements: it checks every request against resource "
    "'*' (so resource-scoped statements never match), names CloudWatch actions 'monitoring:*', "
    "ignores statements' conditions, denies every Route 53 request even to an "
    "administrator, and answers AssumeRole of a service-trusted role with HTTP 500. It stays "
    "off; the rehearsal evaluates the role's identity policies itself with IAM's documented "
    "logic (explicit deny, allow, implicit deny; wildcards; condition operators), plus the KMS "
    "permissions encrypted SNS topics, secrets and parameters require of the caller. Key "
    "policies, resource policies and SCPs are not evaluated.",
    "CloudWatch alarm evaluation: moto evaluates no alarm. The rehearsal evaluates the alarms "
    "Terraform created, as DescribeAlarms returns them, with CloudWatch's documented rules "
    "(paymig.semantics): period, M of N, missing-data treatment, the 5xx rate's metric math; "
    "10-second alarms every 10 s, others every minute; datapoints from the emulator's "
    "GetMetricData (percentiles, which moto cannot compute, from the values the load balancer "
    "stand-in served). New states are written back with SetAlarmState, where the controller's "
    "gates read them. The composite's rule comes from the synthesized stack.",
    "SNS delivery: the notification CloudWatch sends (documented schema) is published to the "
    "emulator's topic; each subscription's filter policy is matched with SNS's documented "
    "semantics (no message attributes on alarm notifications), the function's resource policy "
    "must let SNS invoke it, and the event SNS builds is handed to the function asynchronously. "
    "Lambda's retries of a failed asynchronous invocation are not played.",
    "Route 53 resolution: clients read the weighted records from the emulator (every 0.5 s) "
    "and draw answers by weight as Route 53 does. Health checks are not evaluated (the emulator "
    "runs no checkers): every record counts as healthy. The alias record's TTL (60 s for a load "
    "balancer on AWS) is taken as the configured record TTL, as for the legacy record.",
    "Database logins (paymig.rehearsal.db_logins): on the source the DBA's step is played: "
    "paymig's SQL (paymig.runtime.source_sql) as rendered, each user's password set as a SCRAM "
    "verifier, each login stored in the secret Terraform created. On the target the setup "
    "check's work is done by the db-setup function's own code (paymig.lambdas.db_setup.set_up) "
    "in a Lambda execution environment under its role, logged in as the cluster's master from "
    "its RDS-managed secret. Stand-ins there: the master is a superuser of the local server "
    "(on Aurora, a member of rds_superuser), rds_replication and rds_superuser are plain "
    "NOLOGIN roles, and the local servers have no pgaudit, so its two pgaudit statements are "
    "skipped. Every login is admitted over TLS with its password only.",
    "Deployment checks: the three aws_lambda_invocation resources wait on the cluster "
    "instances, which the emulator never completes, so Terraform does not run them (and "
    "moto's Lambda without Docker would only echo the payload back). The setup check's work "
    "is done as above; the pre- and post-migration checks are not run: their gate, the "
    "latest consistent validation, is the rehearsal's own validation, recorded in the audit "
    "table the controller reads.",
    "Secret rotation: not attempted (moto 5.2.5's RotateSecret fails on a secret without "
    "a value); the rotation function is deployed but never invoked.",
    "The legacy (on-prem) API: a stand-in HTTP server recording payments with the payment API's "
    "own validation and SQL, directly on the source.",
)


def stand_in_notes(report: RehearsalReport, scenario: Scenario) -> list[str]:
    """The stand-ins, then what this run's configuration compresses."""
    return [
        *STAND_INS,
        f"Fault ({scenario.name}): {scenario.description}.",
        "Time is compressed by configuration only: no dwell between phases "
        "(controller.dwell_minutes) and a 10 s record TTL (the modelled prod path counts the "
        "load balancer alias's 60 s). The user-facing alarms use 10-second high-resolution "
        "periods, as in prod.",
        f"{len(report.not_rehearsed)} resources the apply could not create are listed under "
        "Not rehearsed, with Terraform's error.",
    ]


def side_descriptions(handler: str, function_name: str, vpn_port: int) -> dict[str, str]:
    """What runs on each side of the rehearsal, for the report."""
    return {
        "AWS side": (
            f"the production handler {handler} (unchanged), in a process whose "
            f"environment is the function's own (GetFunctionConfiguration of {function_name}) "
            "with credentials of its role (AssumeRole) and every AWS call checked against that "
            "role; behind a load balancer stand-in that builds the ALB event, picks the target "
            "group by the listener's weights and publishes the ALB metrics. It reaches the "
            f"source through the VPN stand-in (TCP proxy on 127.0.0.1:{vpn_port}) with TLS "
            "verify-full and the login stored in its secret."
        ),
        "legacy side": (
            "a stand-in for the on-prem API: an HTTP server recording payments with the payment "
            "API's own validation and SQL, directly on the source (no VPN in its path)."
        ),
        "real": (
            "the handler's code, its environment, its IAM role and secret, TLS to PostgreSQL, the "
            "source and target databases, the weights in Route 53, the listener, the alarms' "
            "definitions and the controller's code."
        ),
    }
