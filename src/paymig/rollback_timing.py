"""The time bounds of the rollback path: every AWS call the controller makes is bounded.

These bounds feed the rollback budget (:mod:`paymig.runtime.controller.budget`), the
handler's own deadlines, and the stack's Lambda timeout and maximum event age for the
rollback function (:mod:`paymig.infra.automation`): one module, so that the function's
timeout can never be shorter than the path it runs.
"""

from __future__ import annotations

import math

__all__ = [
    "ATTEMPT_CONNECT_SECONDS",
    "ATTEMPT_READ_SECONDS",
    "ATTEMPT_SECONDS",
    "BEST_EFFORT_CALL_SECONDS",
    "BEST_EFFORT_CONNECT_SECONDS",
    "BEST_EFFORT_READ_SECONDS",
    "HEALTH_READ_SECONDS",
    "LAMBDA_INIT_SECONDS",
    "LAMBDA_MAX_RETRY_ATTEMPTS",
    "LAMBDA_MIN_EVENT_AGE_SECONDS",
    "LAMBDA_RETRY_WAITS_SECONDS",
    "LISTENER_STEP_SECONDS",
    "SHIFT_GATE_FRESHNESS_SECONDS",
    "SHIFT_LANDING_SECONDS",
    "SNS_FIRST_RETRIES_SECONDS",
    "STAGE_READ_ATTEMPTS",
    "STAGE_READ_SECONDS",
    "TAIL_RESERVE_SECONDS",
    "rollback_event_age_seconds",
    "rollback_timeout_seconds",
]

#: Best-effort calls made before the DNS change (the record of intent): one attempt,
#: 1 s to connect, 1 s to answer. They may fail; they must not delay DNS for long.
BEST_EFFORT_CONNECT_SECONDS = 1
BEST_EFFORT_READ_SECONDS = 1
BEST_EFFORT_CALL_SECONDS = BEST_EFFORT_CONNECT_SECONDS + BEST_EFFORT_READ_SECONDS
#: The migration stage is read before any change, in short attempts like the calls above:
#: one failed attempt must not decide that traffic stays (an unreadable stage holds it).
STAGE_READ_ATTEMPTS = 2
STAGE_READ_SECONDS = STAGE_READ_ATTEMPTS * BEST_EFFORT_CALL_SECONDS
#: One attempt of a Route 53 or load balancer call.
ATTEMPT_CONNECT_SECONDS = 2
ATTEMPT_READ_SECONDS = 5
ATTEMPT_SECONDS = ATTEMPT_CONNECT_SECONDS + ATTEMPT_READ_SECONDS
#: The load balancer half of a rollback keeps retrying for this long.
LISTENER_STEP_SECONDS = 20
#: A shift submits its Route 53 change at most this long after it last read the alarms
#: and confirmed its lock; an older reading is read again first.
SHIFT_GATE_FRESHNESS_SECONDS = 5
#: The latest a shift's change can land after its last alarm reading: the freshness
#: bound plus one Route 53 attempt. Once the composite alarm is in ALARM (or the lock is
#: taken over) no shift can land later than this, so a rollback re-reads the weights
#: this long after its own change and re-applies if a shift landed meanwhile.
SHIFT_LANDING_SECONDS = SHIFT_GATE_FRESHNESS_SECONDS + ATTEMPT_SECONDS
#: What Route 53 answers: the records' health checks are read within this long.
HEALTH_READ_SECONDS = 10
#: Seconds the rollback keeps for its records and notification after the INSYNC wait.
TAIL_RESERVE_SECONDS = 20

#: Lambda Developer Guide, "Lambda execution environment lifecycle": "The Init phase is
#: limited to 10 seconds" (a cold start, VPC networking included: the function's network
#: interfaces exist from its creation).
LAMBDA_INIT_SECONDS = 10
#: SNS Developer Guide, "Amazon SNS message delivery retries", AWS managed endpoints
#: (Lambda, SQS): 3 immediate retries, then 2 retries 1 s apart before the backoff phase.
SNS_FIRST_RETRIES_SECONDS = 2
#: Lambda Developer Guide, "Asynchronous invocation": "If the function returns an error,
#: Lambda attempts to run it two more times, with a one-minute wait between the first two
#: attempts, and two minutes between the second and third attempts."
LAMBDA_RETRY_WAITS_SECONDS = (60, 120)
#: Same page: retry attempts "between 0 and 2"; maximum event age from 60 s to 6 hours.
LAMBDA_MAX_RETRY_ATTEMPTS = 2
LAMBDA_MIN_EVENT_AGE_SECONDS = 60


def rollback_timeout_seconds(route53_submit_seconds: float, insync_timeout_seconds: float) -> int:
    """The rollback function's longest run, rounded up to 10 s: its Lambda timeout.

    Cold start, the event check, the stage read and the intent record, two Route 53
    submissions and the landing guard, the lock take-over, the load balancer step, the
    INSYNC wait, the health read and the reserve for records and notification.
    """
    seconds = (
        LAMBDA_INIT_SECONDS
        + 3 * BEST_EFFORT_CALL_SECONDS  # event check, intent record, lock take-over
        + STAGE_READ_SECONDS
        + ATTEMPT_SECONDS  # identity
        + 2 * route53_submit_seconds
        + SHIFT_LANDING_SECONDS
        + LISTENER_STEP_SECONDS
        + insync_timeout_seconds
        + HEALTH_READ_SECONDS
        + TAIL_RESERVE_SECONDS
    )
    return int(math.ceil(seconds / 10) * 10)


def rollback_event_age_seconds(timeout_seconds: int) -> int:
    """Age past which an alarm event is no longer acted on, rounded up to a minute.

    Long enough for both of Lambda's retries of a failed invocation to start (each
    attempt may run its whole timeout); an older event is discarded to the dead-letter
    queue, whose alarm pages people, and the handler rejects one that arrives later.
    """
    seconds = 2 * timeout_seconds + sum(LAMBDA_RETRY_WAITS_SECONDS) + SNS_FIRST_RETRIES_SECONDS
    return int(max(LAMBDA_MIN_EVENT_AGE_SECONDS, math.ceil(seconds / 60) * 60))
