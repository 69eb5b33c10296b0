"""The validation job's state machine, in the Amazon States Language, as plain data.

Why Step Functions (Standard): a full pass of 500 GB runs for hours, far past one Lambda
invocation (900 s), and must survive crashes without starting over. A Standard workflow
runs up to a year, retries each task with backoff, keeps its state across failures, and
needs no server of ours; the work itself stays in the validation function, in the VPC,
next to the data. The alternative, a Fargate task running ``paymig validate``, would
also work but needs an image, a cluster and a scheduler-free way to restart it; Step
Functions gives the restart for free and makes each slice's progress visible.

The flow::

    Plan ─► Slices (Map over slice numbers, MaxConcurrency = job_concurrency)
              └─ CompareSlice ─► SliceDone? ─(no)─► CompareSlice   (one slice, in loops)
                                    └─(yes)─► SliceFinished
         ─► Verdict ─► CheckVerdict ─► Consistent (Succeed) | Inconsistent (Fail)
    any failure ─► RecordError ─► Failed (Fail)

Each invocation of ``CompareSlice`` compares batches until its time is short and says
whether the slice is done; a killed or timed-out invocation is retried and resumes from
the slice's last committed batch. A new execution (input ``{}``) resumes the latest
unfinished pass; ``{"new_pass": true}`` starts a fresh one. The inline Map keeps the whole
pass in one execution history (quota 25,000 events), so the plan caps a pass at
:data:`paymig.runtime.validator.passes.MAX_SLICES` slices of about 11 events each.

Retries follow "Handle Lambda service exceptions" (Step Functions Developer Guide): the
Lambda service errors with backoff, ``Lambda.TooManyRequestsException`` when the
reserved concurrency is busy, and, for a slice only, ``Lambda.Unknown`` and
``Sandbox.Timedout`` (a function timeout or crash: the retry resumes from the
checkpoint) and ``ValidatorError`` (a database error such as a replica's recovery
conflict or a dropped connection).
"""

from __future__ import annotations

from typing import Any

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"

#: Transient errors of the Lambda service (AWS's recommended retry list).
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
]
#: A slice invocation killed by its timeout, or crashed: its retry resumes.
SLICE_INTERRUPTED = ["Lambda.Unknown", "Sandbox.Timedout"]
#: A database error of the validator (connection lost, statement cancelled).
VALIDATOR_ERRORS = ["ValidatorError"]

#: Task timeout: longer than the function's own 900 s, so Lambda's timeout decides.
TASK_TIMEOUT_SECONDS = 960


def _retry(errors: list[str], interval: int, attempts: int, backoff: float) -> dict[str, Any]:
    return {
        "ErrorEquals": errors,
        "IntervalSeconds": interval,
        "MaxAttempts": attempts,
        "BackoffRate": backoff,
    }


def _service_retries() -> list[dict[str, Any]]:
    return [
        _retry(LAMBDA_SERVICE_ERRORS, 2, 6, 2.0),
        _retry(["Lambda.TooManyRequestsException"], 5, 10, 2.0),
    ]


def _invoke(function_arn: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A Task that invokes the function and continues with what it returned."""
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function_arn, "Payload": payload},
        "TimeoutSeconds": TASK_TIMEOUT_SECONDS,
    }
    task.update(fields)
    return task


def _catch_to_error() -> list[dict[str, Any]]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordError"}]


def _slice_processor(function_arn: str) -> dict[str, Any]:
    """One Map item: compare one slice, invocation after invocation, until it is done."""
    return {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "CompareSlice",
        "States": {
            "CompareSlice": _invoke(
                function_arn,
                {"action": "slice", "pass_id.$": "$.pass_id", "slice.$": "$.slice"},
                ResultSelector={"done.$": "$.Payload.done", "left.$": "$.Payload.ranges_left"},
                ResultPath="$.progress",
                Retry=[
                    *_service_retries(),
                    _retry(SLICE_INTERRUPTED, 5, 5, 1.5),
                    _retry(VALIDATOR_ERRORS, 30, 3, 2.0),
                ],
                Next="SliceDone",
            ),
            "SliceDone": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.progress.done", "BooleanEquals": True, "Next": "SliceFinished"}
                ],
                "Default": "CompareSlice",
            },
            "SliceFinished": {"Type": "Succeed"},
        },
    }


def state_machine_definition(function_arn: str, concurrency: int) -> dict[str, Any]:
    """The job's ASL definition, driving ``function_arn`` with ``concurrency`` slices at once."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    return {
        "Comment": "paymig full validation pass: plan, slices in parallel, verdict",
        "StartAt": "Plan",
        "States": {
            "Plan": _invoke(
                function_arn,
                {"action": "plan", "state.$": "$"},
                OutputPath="$.Payload",
                Retry=_service_retries(),
                Catch=_catch_to_error(),
                Next="Slices",
            ),
            "Slices": {
                "Type": "Map",
                "ItemsPath": "$.slices",
                "MaxConcurrency": concurrency,
                "ItemSelector": {"pass_id.$": "$.pass_id", "slice.$": "$$.Map.Item.Value"},
                "ItemProcessor": _slice_processor(function_arn),
                "ResultPath": None,
                "Catch": _catch_to_error(),
                "Next": "Verdict",
            },
            "Verdict": _invoke(
                function_arn,
                {"action": "verdict", "pass_id.$": "$.pass_id"},
                OutputPath="$.Payload",
                Retry=[*_service_retries(), _retry(VALIDATOR_ERRORS, 30, 3, 2.0)],
                Catch=_catch_to_error(),
                Next="CheckVerdict",
            ),
            "CheckVerdict": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.status", "StringEquals": "consistent", "Next": "Consistent"}
                ],
                "Default": "Inconsistent",
            },
            "Consistent": {"Type": "Succeed"},
            "Inconsistent": {
                "Type": "Fail",
                "Error": "Inconsistent",
                "Cause": "The full pass found differences: see the VALIDATION items of the "
                "audit table.",
            },
            "RecordError": _invoke(
                function_arn,
                {"action": "error", "state.$": "$"},
                Retry=_service_retries(),
                ResultPath=None,
                Next="Failed",
            ),
            "Failed": {
                "Type": "Fail",
                "Error": "ValidationJobFailed",
                "Cause": "The pass stopped; a new execution resumes it from its checkpoint.",
            },
        },
    }
