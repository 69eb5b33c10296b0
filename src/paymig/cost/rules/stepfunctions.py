"""Step Functions: the validation job's state machine and the reads a full pass makes.

A state machine that invokes a Lambda function is the sliced validation job: every pass
runs `usage.validation_slices_per_pass` slices of `usage.validation_transitions_per_slice`
state transitions, and reads the whole table from Aurora storage once (a full pass
compares every row; at 500 GB the buffer cache holds a small part of it). The slices'
invocations are priced with the function (:mod:`paymig.cost.traffic`).
"""

from __future__ import annotations

from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, Timing, priced
from paymig.cost.prices import PricingError
from paymig.cost.stack_view import Resource
from paymig.cost.units import GB, MILLION


def price_sfn_state_machine(ctx: Context, res: Resource) -> list[LineItem]:
    """State transitions of the validation passes, and the Aurora reads of each pass."""
    kind = res.attrs.get("type", "STANDARD")
    if kind != "STANDARD":
        raise PricingError(f"{res.address}: type {kind!r} (Express) has no pricing rule")
    if not ctx.stack.referenced(res, "aws_lambda_function"):
        raise PricingError(
            f"{res.address}: a state machine that invokes no Lambda function is not the "
            "validation job and has no pricing rule"
        )
    u = ctx.usage
    transitions = (
        u.validation_passes_per_month * u.validation_slices_per_pass
        * u.validation_transitions_per_slice * res.count
    )  # fmt: skip
    items = [
        priced(
            "Step Functions",
            f"{res.label} state transitions",
            transitions / 1000,
            ctx.price("sfn_standard_transitions_1k"),
            f"{u.validation_passes_per_month} passes x {u.validation_slices_per_pass} slices x "
            f"{u.validation_transitions_per_slice} transitions, x price per 1,000",
            timing=Timing.migration,
        )
    ]
    if ctx.stack.of_type("aws_rds_cluster"):
        reads = u.aurora_storage_gb * GB / ctx.quantity("aurora_page_bytes")
        items.append(
            priced(
                "Aurora",
                f"{res.label} full-pass read I/O",
                u.validation_passes_per_month * reads * res.count / MILLION,
                ctx.price("aurora_io_million"),
                f"{u.validation_passes_per_month} passes x {u.aurora_storage_gb:g} GB / "
                f"{ctx.quantity('aurora_page_bytes'):g} B pages read from storage, x price per "
                "million",
                timing=Timing.migration,
            )
        )
    return items
