"""The guard that keeps `migration.stage: finished` from running ahead of `paymig finish`.

At ``finished`` the stack reads the run-time stage item of the audit table with a data
source and fails its postcondition unless the stored stage is ``complete``. Terraform
reads a data source whose arguments are known while it plans (the table name and the
key are literals here, on purpose: a reference to the table resource could defer the
read to apply time), and a failed postcondition fails the plan. So ``terraform plan``
stops before anything is destroyed, with the reason and the command to run. A missing
item is an error of the data source itself: it too stops the plan (nothing was cut
over). The guard adds no resource, so the plan still shows only the removals.
"""

from __future__ import annotations

import json

from cdktf import Postcondition, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_dynamodb_table_item import DataAwsDynamodbTableItem
from constructs import Construct

from paymig.naming import AUDIT_PARTITION_KEY, AUDIT_SORT_KEY, audit_table_name
from paymig.runtime.controller.stage import STAGE_PK, STAGE_SK

#: What the postcondition requires of the stored stage item.
GUARD_CONDITION = '${try(jsondecode(self.item).stage.S, "") == "complete"}'


def guard_message(env: str) -> str:
    """The plan's error when the stored stage is not complete."""
    return (
        "migration.stage is finished but the stored migration stage is not complete: run "
        f"`paymig finish --env {env} --reason ...` first (it checks the cut-over hold and "
        "the gates); nothing was changed"
    )


class FinishGuard(Construct):
    """A data source on the stage item whose postcondition requires ``complete``."""

    def __init__(self, scope: Construct, construct_id: str, *, stack_name: str, env: str) -> None:
        """Read ``<stack>-migration-audit``'s stage item while planning."""
        super().__init__(scope, construct_id)
        self.item = DataAwsDynamodbTableItem(
            self,
            "stage",
            table_name=audit_table_name(stack_name),
            key=json.dumps(
                {AUDIT_PARTITION_KEY: {"S": STAGE_PK}, AUDIT_SORT_KEY: {"S": STAGE_SK}},
                sort_keys=True,
            ),
            lifecycle=TerraformResourceLifecycle(
                postcondition=[
                    Postcondition(condition=GUARD_CONDITION, error_message=guard_message(env))
                ]
            ),
        )
