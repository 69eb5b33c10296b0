"""The validation job's state machine: its ASL as data, and its control flow run in moto.

What runs where: moto 5.2.5 executes Standard state machines (the ASL interpreter it
took from LocalStack, enabled with ``{"stepfunctions": {"execute_state_machine":
true}}``), and its Lambda tasks call moto's Lambda, which without Docker runs no code:
it answers each invocation with the next result queued through
``/moto-api/static/lambda-simple/response``. So the execution here tests the
definition's own flow (Plan, the Map over slices, each slice's loop until done, the
verdict's Choice, the payloads each task sends) with the function's answers scripted;
the function's real actions run against real PostgreSQL in tests/test_validation_job.py.
Retries and catches cannot be triggered this way (the scripted function never fails);
they are checked structurally below, against AWS's documented error names.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from paymig.infra.validation_job_definition import (
    LAMBDA_SERVICE_ERRORS,
    SLICE_INTERRUPTED,
    TASK_TIMEOUT_SECONDS,
    VALIDATOR_ERRORS,
    state_machine_definition,
)
from paymig.local.postgres import free_port

ARN = "arn:aws:lambda:us-east-2:111122223333:function:paymig-prod-validation-job"


def _states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, the Map's inner ones included, by name."""
    states = dict(definition["States"])
    for state in definition["States"].values():
        if state["Type"] == "Map":
            states.update(state["ItemProcessor"]["States"])
    return states


def _errors(task: dict[str, Any]) -> list[str]:
    return [name for retry in task.get("Retry", []) for name in retry["ErrorEquals"]]


def test_the_definition_plans_maps_slices_and_decides() -> None:
    definition = state_machine_definition(ARN, concurrency=3)
    top = definition["States"]
    assert definition["StartAt"] == "Plan"
    assert set(top) == {"Plan", "Slices", "Verdict", "CheckVerdict", "Consistent",
                        "Inconsistent", "RecordError", "Failed"}  # fmt: skip
    slices = top["Slices"]
    assert (slices["Type"], slices["MaxConcurrency"], slices["ItemsPath"]) == ("Map", 3, "$.slices")
    assert slices["ItemSelector"] == {"pass_id.$": "$.pass_id", "slice.$": "$$.Map.Item.Value"}
    assert slices["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert slices["ResultPath"] is None  # the pass id goes on to the verdict
    inner = slices["ItemProcessor"]["States"]
    assert inner["SliceDone"]["Default"] == "CompareSlice"  # the loop over invocations
    assert inner["SliceDone"]["Choices"] == [
        {"Variable": "$.progress.done", "BooleanEquals": True, "Next": "SliceFinished"}
    ]
    for name in ("Plan", "Verdict", "RecordError"):
        assert top[name]["Parameters"]["FunctionName"] == ARN
    assert inner["CompareSlice"]["Parameters"] == {
        "FunctionName": ARN,
        "Payload": {"action": "slice", "pass_id.$": "$.pass_id", "slice.$": "$.slice"},
    }
    assert top["CheckVerdict"]["Choices"][0] == {
        "Variable": "$.status", "StringEquals": "consistent", "Next": "Consistent"
    }  # fmt: skip
    with pytest.raises(ValueError, match="at least 1"):
        state_machine_definition(ARN, concurrency=0)


def test_every_transition_lands_on_a_state_and_every_state_is_reached() -> None:
    definition = state_machine_definition(ARN, concurrency=1)
    states = _states(definition)
    targets = {"Plan", "CompareSlice"}
    for state in states.values():
        targets |= {state[k] for k in ("Next", "Default") if k in state}
        targets |= {c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])}
    assert targets == set(states)
    terminal = {n for n, s in states.items() if s["Type"] in ("Succeed", "Fail")}
    assert terminal == {"SliceFinished", "Consistent", "Inconsistent", "Failed"}


def test_retries_resume_slices_and_catches_record_the_error_once() -> None:
    states = _states(state_machine_definition(ARN, concurrency=1))
    for name in ("Plan", "Verdict", "RecordError", "CompareSlice"):
        task = states[name]
        assert set(LAMBDA_SERVICE_ERRORS) | {"Lambda.TooManyRequestsException"} <= set(
            _errors(task)
        )
        assert task["TimeoutSeconds"] == TASK_TIMEOUT_SECONDS > 900  # Lambda's own limit wins
        assert all(r["MaxAttempts"] >= 3 and r["BackoffRate"] >= 1 for r in task["Retry"])
    # only a slice resumes after a timeout or crash, and retries a database error
    assert set(SLICE_INTERRUPTED + VALIDATOR_ERRORS) <= set(_errors(states["CompareSlice"]))
    assert not set(SLICE_INTERRUPTED) & set(_errors(states["Plan"]))
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordError"}]
    for name in ("Plan", "Slices", "Verdict"):
        assert states[name]["Catch"] == catch
    assert "Catch" not in states["RecordError"] and states["RecordError"]["Next"] == "Failed"
    assert states["RecordError"]["Parameters"]["Payload"] == {"action": "error", "state.$": "$"}


# --------------------------------------------------------------------------- in moto


@pytest.fixture
def sfn_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An in-process moto server whose Step Functions executes and reaches its own Lambda.

    moto's state machine interpreter calls Lambda at localhost:$MOTO_PORT, so the
    server runs in this process with MOTO_PORT set to its port.
    """
    from moto.server import ThreadedMotoServer

    port = free_port()
    monkeypatch.setenv("MOTO_PORT", str(port))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    _post(url, "/moto-api/reset", {})  # moto's backends live in this process: start empty
    _post(url, "/moto-api/config", {"stepfunctions": {"execute_state_machine": True},
                                    "lambda": {"use_docker": False}})  # fmt: skip
    for key, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-2"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    try:
        yield url
    finally:
        server.stop()


def _post(url: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=30).close()


def _execute(
    url: str, answers: list[dict[str, Any]], concurrency: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create the function and the state machine, script the answers, run one execution."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="job", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    function = boto3.client("lambda").create_function(
        FunctionName="paymig-prod-validation-job", Runtime="python3.11", Role=role,
        Handler="handler.handler", Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]  # fmt: skip
    _post(url, "/moto-api/static/lambda-simple/response", {
        "account_id": function.split(":")[4], "region": "us-east-2",
        "results": [json.dumps(a) for a in answers],
    })  # fmt: skip
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="paymig-prod-validation-job", roleArn=role, type="STANDARD",
        definition=json.dumps(state_machine_definition(function, concurrency)),
    )["stateMachineArn"]  # fmt: skip
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution still running after 60 s"
        time.sleep(0.1)
    history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return described, history


def _payloads(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The payload of every Lambda task the execution scheduled, in order."""
    out = []
    for event in history:
        details = event.get("taskScheduledEventDetails")
        if details is not None:
            out.append(json.loads(details["parameters"])["Payload"])
    return out


@pytest.mark.slow
def test_slices_loop_until_done_then_the_verdict_decides(sfn_moto: str) -> None:
    answers = [
        {"pass_id": "p-1", "slices": [0, 1, 2], "resumed": False},
        {"pass_id": "p-1", "slice": 0, "done": False, "ranges_left": 4},
        {"pass_id": "p-1", "slice": 0, "done": False, "ranges_left": 2},
        {"pass_id": "p-1", "slice": 0, "done": True, "ranges_left": 0},
        {"pass_id": "p-1", "slice": 1, "done": True, "ranges_left": 0},
        {"pass_id": "p-1", "slice": 2, "done": True, "ranges_left": 0},
        {"pass_id": "p-1", "status": "consistent", "summary": "ok"},
    ]
    described, history = _execute(sfn_moto, answers, concurrency=1)
    assert described["status"] == "SUCCEEDED"
    payloads = _payloads(history)
    assert payloads[0] == {"action": "plan", "state": {}}
    slices = [p for p in payloads if p["action"] == "slice"]
    assert len(slices) == 5  # three invocations of the first slice, one of each other
    assert sorted({p["slice"] for p in slices}) == [0, 1, 2]
    assert all(p["pass_id"] == "p-1" for p in slices)
    assert payloads[-1] == {"action": "verdict", "pass_id": "p-1"}
    assert json.loads(described["output"])["status"] == "consistent"


@pytest.mark.slow
def test_differences_fail_the_execution_as_inconsistent(sfn_moto: str) -> None:
    answers = [
        {"pass_id": "p-2", "slices": [0], "resumed": True},
        {"pass_id": "p-2", "slice": 0, "done": True, "ranges_left": 0},
        {"pass_id": "p-2", "status": "inconsistent", "summary": "differences"},
    ]
    described, history = _execute(sfn_moto, answers, concurrency=2)
    assert described["status"] == "FAILED"
    failed = [e for e in history if e["type"] == "ExecutionFailed"]
    assert failed[0]["executionFailedEventDetails"]["error"] == "Inconsistent"
    assert [p["action"] for p in _payloads(history)] == ["plan", "slice", "verdict"]
