"""Small hand-written stacks for the relational rules: one VPC client and its neighbours.

Each test starts from :func:`base_stack`, a stack in which every relation holds, breaks
exactly one relation, and asserts the rule names it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

REGION = "us-east-2"
ACCOUNT = "${data.aws_caller_identity.caller.account_id}"


def r(kind: str, name: str, attr: str = "id") -> str:
    return f"${{{kind}.{name}.{attr}}}"


def _meta(path: str) -> dict[str, Any]:
    return {"//": {"metadata": {"path": f"stack/{path}"}}}


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def base_stack() -> dict[str, Any]:
    """A function in a VPC reading a secret through an endpoint, with its log group."""
    log_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/fn"
    resources: dict[str, dict[str, Any]] = {
        "aws_vpc": {"vpc": {**_meta("vpc"), "cidr_block": "10.0.0.0/16"}},
        "aws_subnet": {"app": {**_meta("app-subnet"), "vpc_id": r("aws_vpc", "vpc")}},
        "aws_route_table": {"app": {**_meta("app-rt"), "vpc_id": r("aws_vpc", "vpc")}},
        "aws_route_table_association": {
            "app": {
                **_meta("app-assoc"),
                "subnet_id": r("aws_subnet", "app"),
                "route_table_id": r("aws_route_table", "app"),
            }
        },
        "aws_security_group": {
            "fn": {**_meta("fn-sg"), "vpc_id": r("aws_vpc", "vpc")},
            "endpoints": {**_meta("endpoints-sg"), "vpc_id": r("aws_vpc", "vpc")},
        },
        "aws_vpc_security_group_egress_rule": {
            "fn_to_endpoints": {
                **_meta("fn-to-endpoints"),
                "security_group_id": r("aws_security_group", "fn"),
                "referenced_security_group_id": r("aws_security_group", "endpoints"),
                "ip_protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
            }
        },
        "aws_vpc_security_group_ingress_rule": {
            "endpoints_from_fn": {
                **_meta("endpoints-from-fn"),
                "security_group_id": r("aws_security_group", "endpoints"),
                "referenced_security_group_id": r("aws_security_group", "fn"),
                "ip_protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
            }
        },
        "aws_vpc_endpoint": {
            "secretsmanager": {
                **_meta("endpoint-secretsmanager"),
                "vpc_id": r("aws_vpc", "vpc"),
                "service_name": f"com.amazonaws.{REGION}.secretsmanager",
                "vpc_endpoint_type": "Interface",
                "private_dns_enabled": True,
                "subnet_ids": [r("aws_subnet", "app")],
                "security_group_ids": [r("aws_security_group", "endpoints")],
            }
        },
        "aws_kms_key": {
            "key": {
                **_meta("key"),
                "policy": policy(
                    {
                        "Sid": "CloudWatchLogsUsesKey",
                        "Effect": "Allow",
                        "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
                        "Action": [
                            "kms:Encrypt*",
                            "kms:Decrypt*",
                            "kms:ReEncrypt*",
                            "kms:GenerateDataKey*",
                            "kms:Describe*",
                        ],
                        "Resource": "*",
                        "Condition": {
                            "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": [log_arn]}
                        },
                    }
                ),
            }
        },
        "aws_cloudwatch_log_group": {
            "fn": {
                **_meta("fn-log-group"),
                "name": "/aws/lambda/fn",
                "kms_key_id": r("aws_kms_key", "key", "arn"),
            }
        },
        "aws_secretsmanager_secret": {"db": {**_meta("db-secret"), "name": "db"}},
        "aws_iam_role": {"fn": {**_meta("fn-role"), "name": "fn"}},
        "aws_iam_role_policy": {
            "fn": {
                **_meta("fn-role-policy"),
                "role": r("aws_iam_role", "fn"),
                "policy": policy(
                    {
                        "Sid": "ReadSecret",
                        "Effect": "Allow",
                        "Action": ["secretsmanager:GetSecretValue"],
                        "Resource": [r("aws_secretsmanager_secret", "db", "arn")],
                    },
                    {
                        "Sid": "Logs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": [f"{log_arn}:*"],
                    },
                ),
            }
        },
        "aws_lambda_function": {
            "fn": {
                **_meta("fn"),
                "function_name": "fn",
                "role": r("aws_iam_role", "fn", "arn"),
                "source_code_hash": "CODEHASH",
                "vpc_config": {
                    "subnet_ids": [r("aws_subnet", "app")],
                    "security_group_ids": [r("aws_security_group", "fn")],
                },
                "environment": {
                    "variables": {"SECRET_ARN": r("aws_secretsmanager_secret", "db", "arn")}
                },
            }
        },
    }
    return {"resource": resources}


def broken(document: dict[str, Any]) -> dict[str, Any]:
    """A deep copy to break one relation in."""
    return copy.deepcopy(document)
