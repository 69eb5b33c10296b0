"""The validation job on AWS: a Step Functions Standard state machine over slices.

:class:`ValidationJob` creates the state machine (definition:
:mod:`paymig.infra.validation_job_definition`) and its role. The function it drives is
made by the stack like every other VPC function, from :func:`job_function_spec`: its
code, handler, environment, the IAM statements its code needs and the AWS APIs it calls
(each needs a network path from the app subnets); its two databases are connected as
for the deployment checks (the validator's read-only login on each server, preferably
the on-prem standby and the Aurora reader endpoint, declared as
``PAYMIG_DB_SOURCE_STANDBY`` and ``PAYMIG_DB_AURORA_READER`` next to
``PAYMIG_DB_SOURCE`` and ``PAYMIG_DB_AURORA``).

The state machine's execution history holds pass ids, slice numbers and counts only,
never a row or a key, so it is logged in full (checkov CKV_AWS_285) and encrypted with
the AWS owned key Step Functions always applies; a customer key would need key-policy
statements for this role and for every principal that starts an execution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.sfn_state_machine import (
    SfnStateMachine,
    SfnStateMachineLoggingConfiguration,
    SfnStateMachineTracingConfiguration,
)
from constructs import Construct

from paymig import naming
from paymig.config import PaymigConfig
from paymig.infra.dashboard import GraphWidget, Metric
from paymig.infra.iam import Statement, assume_role_policy, policy_document, statement
from paymig.infra.validation_job_definition import state_machine_definition
from paymig.runtime.validator.job import (
    METRIC_DIFFERING_KEYS,
    METRIC_NAMESPACE,
    METRIC_RANGES_DONE,
    METRIC_RANGES_TOTAL,
    METRIC_ROWS_COMPARED,
    job_function_name,
    state_machine_name,
)

#: Modules of paymig the validation functions need (boto3 comes with the Lambda runtime):
#: the deployment checks' function, and the job's with its own handler besides.
VALIDATION_MODULES = ("errors.py", "naming.py", "rollback_timing.py", "config", "logins.py",
                      "payments_schema.py",
                      "runtime/__init__.py", "runtime/checks.py", "runtime/database_env.py",
                      "runtime/login_checks.py", "runtime/preflight.py", "runtime/validator",
                      "runtime/controller", "semantics", "lambdas/__init__.py",
                      "lambdas/validation.py")  # fmt: skip
JOB_MODULES = (*VALIDATION_MODULES, "lambdas/validation_job.py")
#: Installed distributions they need (the psycopg binary wheel is Lambda-compatible).
VALIDATION_DISTRIBUTIONS = ("psycopg", "psycopg-binary", "psycopg-pool", "typing-extensions",
                            "pydantic", "pydantic-core", "annotated-types",
                            "typing-inspection", "pyyaml")  # fmt: skip
JOB_DISTRIBUTIONS = VALIDATION_DISTRIBUTIONS
JOB_HANDLER = "paymig.lambdas.validation_job.handler"
#: Endpoint names of the AWS APIs the job's code calls: CA bundles, logins, the audit
#: table, progress metrics (plus ``xray`` for active tracing, as every function).
JOB_APIS = ("ssm", "secretsmanager", "dynamodb", "monitoring")
#: 1,769 MB is one full vCPU: the client side of 4 workers with room (Lambda guide).
JOB_MEMORY_MB = 1769
JOB_TIMEOUT_SECONDS = 900

#: What the Step Functions role needs to deliver its logs (Step Functions Developer
#: Guide, "Using CloudWatch Logs to log execution history": these take ``Resource *``).
LOG_DELIVERY_ACTIONS = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
]
#: Tracing (Step Functions Developer Guide, "AWS X-Ray and Step Functions").
TRACING_ACTIONS = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
]


def state_machine_log_group_name(stack_name: str) -> str:
    """The state machine's log group name.

    Under ``/aws/vendedlogs/``, as AWS recommends for vended logs: it keeps the CloudWatch
    Logs resource policy small.
    """
    return f"/aws/vendedlogs/states/{state_machine_name(stack_name)}"


def validation_environment(cfg: PaymigConfig) -> dict[str, str]:
    """Environment of the validation functions (the checks' and the job's).

    Besides these, connecting the databases writes the ``PAYMIG_DB_*`` declarations.
    """
    rep = cfg.replication
    return {
        "PAYMIG_STACK_NAME": cfg.stack_name,
        "PAYMIG_ENVIRONMENT": cfg.environment,
        "PAYMIG_AUDIT_TABLE": naming.audit_table_name(cfg.stack_name),
        "PAYMIG_TABLE_RULES": json.dumps([r.model_dump() for r in rep.table_rules]),
        "PAYMIG_LOB_MODE": rep.lob_mode,
        "PAYMIG_VALIDATION": cfg.validation.model_dump_json(),
        "PAYMIG_CDC_THRESHOLD_SECONDS": str(cfg.controller.cdc_latency_threshold_seconds),
        "PAYMIG_CDC_LOOKBACK_SECONDS": str(cfg.controller.cdc_latency_lookback_seconds),
    }


@dataclass(frozen=True)
class JobFunctionSpec:
    """Everything the stack needs to create the job's function."""

    function_name: str
    handler: str
    modules: tuple[str, ...]
    distributions: tuple[str, ...]
    environment: dict[str, str]
    statements: list[Statement]
    apis: tuple[str, ...]
    memory_mb: int
    timeout_seconds: int
    reserved_concurrency: int


def job_function_spec(
    cfg: PaymigConfig, audit_table_arn: str, audit_key_arn: str
) -> JobFunctionSpec:
    """The job function: code, environment, the IAM its code needs, the APIs it calls.

    The database logins and CA bundles are granted by connecting the databases, not here.
    """
    statements = [
        statement(
            # TransactWriteItems is authorised as the UpdateItem calls it is made of.
            "PassCheckpointsAndVerdict",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
            [audit_table_arn],
        ),
        statement(
            "AuditTableKeyThroughDynamodb",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            [audit_key_arn],
            condition={"StringEquals": {"kms:ViaService": f"dynamodb.{cfg.region}.amazonaws.com"}},
        ),
        statement(
            "ProgressMetrics",
            ["cloudwatch:PutMetricData"],
            "*",
            condition={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
        ),
    ]
    return JobFunctionSpec(
        function_name=job_function_name(cfg.stack_name),
        handler=JOB_HANDLER,
        modules=JOB_MODULES,
        distributions=JOB_DISTRIBUTIONS,
        environment=validation_environment(cfg),
        statements=statements,
        apis=JOB_APIS,
        memory_mb=JOB_MEMORY_MB,
        timeout_seconds=JOB_TIMEOUT_SECONDS,
        # the slices running at once, plus one for a plan or verdict of another execution
        reserved_concurrency=cfg.validation.job_concurrency + 1,
    )


def progress_widget(environment: str) -> GraphWidget:
    """The dashboard widget of a running pass: ranges done of total, rows, differences."""
    dims = (("Environment", environment),)
    labels = {
        METRIC_RANGES_TOTAL: "key ranges in the pass",
        METRIC_RANGES_DONE: "key ranges compared",
        METRIC_ROWS_COMPARED: "rows compared (source)",
        METRIC_DIFFERING_KEYS: "differing keys so far",
    }
    return GraphWidget(
        title="Full validation pass (validation job)",
        metrics=tuple(
            Metric(METRIC_NAMESPACE, name, dims, stat="Maximum", label=label)
            for name, label in labels.items()
        ),
        period=300,
    )


@dataclass(frozen=True)
class ValidationJobProps:
    """Inputs of :class:`ValidationJob`."""

    stack_name: str
    region: str
    account_id: str
    #: ARN of the job's function (made from :func:`job_function_spec`).
    function_arn: str
    #: ARN of the state machine's log group (without ``:*``), named by
    #: :func:`state_machine_log_group_name` and made by the automation key's
    #: ``encrypted_log_group`` (the one way to make a log group).
    log_group_arn: str
    #: Slices compared at once (``validation.job_concurrency``).
    concurrency: int


class ValidationJob(Construct):
    """The state machine that runs a full pass, and its role.

    Attributes: :attr:`state_machine`, :attr:`role`, :attr:`definition` (the ASL as data).
    """

    def __init__(self, scope: Construct, construct_id: str, props: ValidationJobProps) -> None:
        """Create the role, then the state machine."""
        super().__init__(scope, construct_id)
        self.props = props
        self.definition = state_machine_definition(props.function_arn, props.concurrency)
        self._build_role()
        self._build_state_machine()

    def _build_role(self) -> None:
        """Invoke the one function; deliver logs and traces."""
        props = self.props
        name = state_machine_name(props.stack_name)
        self.role = IamRole(
            self,
            "role",
            name=f"{name}-states",
            # Confused-deputy guard: only Step Functions acting for this account.
            assume_role_policy=assume_role_policy(
                "states.amazonaws.com",
                condition={"StringEquals": {"aws:SourceAccount": props.account_id}},
            ),
        )
        self.role_policy = IamRolePolicy(
            self,
            "role-policy",
            role=self.role.id,
            policy=policy_document(
                statement(
                    "InvokeTheJobFunction",
                    ["lambda:InvokeFunction"],
                    [props.function_arn, f"{props.function_arn}:*"],
                ),
                statement("DeliverExecutionLogs", LOG_DELIVERY_ACTIONS, "*"),
                statement("WriteTraces", TRACING_ACTIONS, "*"),
            ),
        )

    def _build_state_machine(self) -> None:
        """A Standard workflow: runs for as long as the pass needs, logged and traced."""
        props = self.props
        self.state_machine = SfnStateMachine(
            self,
            "state-machine",
            name=state_machine_name(props.stack_name),
            type="STANDARD",
            role_arn=self.role.arn,
            definition=json.dumps(self.definition),
            logging_configuration=SfnStateMachineLoggingConfiguration(
                level="ALL",
                include_execution_data=True,
                log_destination=f"{props.log_group_arn}:*",
            ),
            tracing_configuration=SfnStateMachineTracingConfiguration(enabled=True),
            # the role's policy must exist before Step Functions checks it can log
            depends_on=[self.role_policy],
        )
