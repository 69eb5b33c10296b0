"""The audit table as the stack creates it (key schema of :mod:`paymig.naming`), for tests."""

from __future__ import annotations

from typing import Any

from paymig.naming import AUDIT_PARTITION_KEY, AUDIT_SORT_KEY


def create_audit_table(dynamodb: Any, name: str) -> None:
    """Create the audit table (pk/sk strings, on demand) through a DynamoDB client."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": AUDIT_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": AUDIT_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": AUDIT_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": AUDIT_SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
