"""A function's AWS calls authorized against its own role, as IAM would.

moto 5.2.5 can enforce IAM (``INITIAL_NO_AUTH_ACTION_COUNT``, or ``/moto-api/reset-auth``
at run time), but not for a least-privilege role; measured against this stack's roles
(tests/test_rehearse_iam.py keeps each point true):

- it authorizes every request against the resource ``"*"`` (only S3, SQS, IAM and STS
  AssumeRole pass a resource), so a statement that names resources never matches:
  ``sns:Publish`` on the topic's ARN is denied;
- it names actions by the SigV4 signing name, so CloudWatch calls are checked as
  ``monitoring:PutMetricData`` and never match a ``cloudwatch:`` statement;
- it ignores the conditions of identity-based statements: an Allow granted for one
  CloudWatch namespace allows every namespace;
- it denies every Route 53 request, even for a user with AdministratorAccess;
- AssumeRole of a role that trusts a service principal answers HTTP 500.

Switched on, it would deny the rollback Lambda's correct role everything except the
ELB ``Describe*`` calls (granted on ``"*"``). So the rehearsal leaves it off and
authorizes each call itself: a botocore hook, installed in the process that runs the
function (every boto3 session there gets it), maps the call to its IAM action, resource
ARN and condition keys (AWS's "Service Authorization Reference" for each service), adds
the KMS permissions an encrypted resource requires of the caller, and evaluates the
role's policies as the emulator holds them (:mod:`paymig.rehearsal.iam_policy`). A
denied call raises ``AccessDenied`` as AWS answers it. A call without a mapping is
denied too, naming what to add: nothing passes unchecked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from paymig.rehearsal.iam_policy import Decision, Statement, evaluate, parse_statements

#: IAM service prefix of each botocore service whose prefix differs from its name.
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "logs": "logs"}

#: Calls that need no permission ("GetCallerIdentity": "No permissions are required").
ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})


@dataclass(frozen=True)
class Access:
    """One permission a call needs: action, resource ARN and request condition keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


class Lookups:
    """What a mapping needs to know about resources (asked with the emulator's root)."""

    def __init__(self, session: Any, region: str, account: str) -> None:
        """Use `session` (not the function's) for look-ups; cache the answers."""
        self.session = session
        self.region = region
        self.account = account
        self._cache: dict[tuple[str, str], str | None] = {}
        self._pairs: dict[tuple[str, str], tuple[str, str | None]] = {}
        self._lock = threading.Lock()

    def _cached(self, kind: str, key: str, fetch: Callable[[], str | None]) -> str | None:
        with self._lock:
            if (kind, key) in self._cache:
                return self._cache[(kind, key)]
        value = fetch()
        with self._lock:
            self._cache[(kind, key)] = value
        return value

    def key_arn(self, key_id: str | None) -> str | None:
        """The ARN of a KMS key given by id, ARN or alias; None for none or AWS-managed."""
        if not key_id:
            return None

        def fetch() -> str | None:
            meta = self.session.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]
            return None if meta.get("KeyManager") == "AWS" else str(meta["Arn"])

        return self._cached("key", key_id, fetch)

    def topic_key(self, topic_arn: str) -> str | None:
        """The customer key of an SNS topic (attribute ``KmsMasterKeyId``)."""

        def fetch() -> str | None:
            sns = self.session.client("sns")
            attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
            return self.key_arn(attributes.get("KmsMasterKeyId"))

        return self._cached("topic", topic_arn, fetch)

    def _pair(
        self, kind: str, key: str, fetch: Callable[[], tuple[str, str | None]]
    ) -> tuple[str, str | None]:
        with self._lock:
            if (kind, key) in self._pairs:
                return self._pairs[(kind, key)]
        value = fetch()
        with self._lock:
            self._pairs[(kind, key)] = value
        return value

    def secret(self, secret_id: str) -> tuple[str, str | None]:
        """A secret's ARN and its customer key, from its name or ARN."""

        def fetch() -> tuple[str, str | None]:
            client = self.session.client("secretsmanager")
            described = client.describe_secret(SecretId=secret_id)
            return str(described["ARN"]), self.key_arn(described.get("KmsKeyId"))

        return self._pair("secret", secret_id, fetch)

    def parameter(self, name: str) -> tuple[str, str | None]:
        """An SSM parameter's ARN, and its key when it is a SecureString."""

        def fetch() -> tuple[str, str | None]:
            ssm = self.session.client("ssm")
            filters = [{"Key": "Name", "Values": [name]}]
            found = ssm.describe_parameters(ParameterFilters=filters).get("Parameters", [])
            secure = bool(found) and found[0].get("Type") == "SecureString"
            arn = f"arn:aws:ssm:{self.region}:{self.account}:parameter/{name.lstrip('/')}"
            return arn, self.key_arn(found[0].get("KeyId") if secure else None)

        return self._pair("parameter", name, fetch)


Mapper = Callable[[Mapping[str, Any], Lookups], list[Access]]


def _last(value: str) -> str:
    """The id at the end of a Route 53 path (``/hostedzone/Z1`` -> ``Z1``)."""
    return unquote(str(value)).rsplit("/", 1)[-1]


def _zone(action: str) -> Mapper:
    return lambda p, _: [Access(action, f"arn:aws:route53:::hostedzone/{_last(p['HostedZoneId'])}")]


def _table(action: str) -> Mapper:
    return lambda p, at: [
        Access(action, f"arn:aws:dynamodb:{at.region}:{at.account}:table/{p['TableName']}")
    ]


def _any(action: str) -> Mapper:
    return lambda p, _: [Access(action, "*")]


def _through(service: str, key: str, actions: tuple[str, ...], at: Lookups) -> list[Access]:
    """KMS permissions a service uses on the caller's behalf, with the keys it sets.

    AWS KMS Developer Guide, "kms:ViaService" and "kms:CallerAccount": when an AWS
    service calls KMS for the caller, the request carries the service's endpoint name
    (``<service>.<region>.amazonaws.com``) and the caller's account.
    """
    context = {"kms:ViaService": f"{service}.{at.region}.amazonaws.com",
               "kms:CallerAccount": at.account}  # fmt: skip
    return [Access(action, key, context) for action in actions]


def _publish(params: Mapping[str, Any], at: Lookups) -> list[Access]:
    """sns:Publish, and the key of an encrypted topic (through SNS).

    SNS Developer Guide, "Managing Amazon SNS encryption keys": publishers to an encrypted
    topic need ``kms:GenerateDataKey*`` and ``kms:Decrypt`` on its key.
    """
    topic = str(params.get("TopicArn") or params.get("TargetArn"))
    needed = [Access("sns:Publish", topic)]
    key = at.topic_key(topic)
    if key:
        needed += _through("sns", key, ("kms:GenerateDataKey", "kms:Decrypt"), at)
    return needed


def _get_secret(params: Mapping[str, Any], at: Lookups) -> list[Access]:
    """secretsmanager:GetSecretValue, and kms:Decrypt on a customer key.

    Secrets Manager User Guide, "Secret encryption and decryption": to read a secret
    encrypted with a customer managed key, the caller needs ``kms:Decrypt`` on it.
    """
    arn, key = at.secret(str(params["SecretId"]))
    needed = [Access("secretsmanager:GetSecretValue", arn)]
    return needed + (_through("secretsmanager", key, ("kms:Decrypt",), at) if key else [])


def _put_secret(params: Mapping[str, Any], at: Lookups) -> list[Access]:
    """secretsmanager:PutSecretValue, and kms:GenerateDataKey on a customer key.

    Secrets Manager User Guide, "Secret encryption and decryption": a new secret value is
    encrypted with a data key Secrets Manager generates with the secret's KMS key.
    """
    arn, key = at.secret(str(params["SecretId"]))
    needed = [Access("secretsmanager:PutSecretValue", arn)]
    return needed + (_through("secretsmanager", key, ("kms:GenerateDataKey",), at) if key else [])


def _get_parameter(params: Mapping[str, Any], at: Lookups) -> list[Access]:
    """ssm:GetParameter, and kms:Decrypt when a SecureString is decrypted."""
    arn, key = at.parameter(str(params["Name"]))
    needed = [Access("ssm:GetParameter", arn)]
    if key and params.get("WithDecryption"):
        needed += _through("ssm", key, ("kms:Decrypt",), at)
    return needed


def _put_metric_data(params: Mapping[str, Any], _: Lookups) -> list[Access]:
    """cloudwatch:PutMetricData on "*", with the ``cloudwatch:namespace`` condition key."""
    return [Access("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": params["Namespace"]})]


#: Each call a function of this stack makes, by botocore service name and operation.
MAPPERS: dict[tuple[str, str], Mapper] = {
    ("route53", "ListResourceRecordSets"): _zone("route53:ListResourceRecordSets"),
    ("route53", "ChangeResourceRecordSets"): _zone("route53:ChangeResourceRecordSets"),
    ("route53", "GetChange"): lambda p, _: [
        Access("route53:GetChange", f"arn:aws:route53:::change/{_last(p['Id'])}")
    ],
    # "Actions, resources, and condition keys for Elastic Load Balancing V2": the
    # Describe* actions support no resource types.
    ("elbv2", "DescribeLoadBalancers"): _any("elasticloadbalancing:DescribeLoadBalancers"),
    ("elbv2", "DescribeListeners"): _any("elasticloadbalancing:DescribeListeners"),
    ("elbv2", "DescribeTargetGroups"): _any("elasticloadbalancing:DescribeTargetGroups"),
    ("elbv2", "ModifyListener"): lambda p, _: [
        Access("elasticloadbalancing:ModifyListener", str(p["ListenerArn"]))
    ],
    **{
        ("dynamodb", op): _table(f"dynamodb:{op}")
        for op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query")
    },
    ("sns", "Publish"): _publish,
    ("cloudwatch", "PutMetricData"): _put_metric_data,
    ("secretsmanager", "GetSecretValue"): _get_secret,
    ("secretsmanager", "PutSecretValue"): _put_secret,
    # "Actions, resources, and condition keys for AWS Secrets Manager": GetRandomPassword
    # supports no resource type.
    ("secretsmanager", "GetRandomPassword"): _any("secretsmanager:GetRandomPassword"),
    ("ssm", "GetParameter"): _get_parameter,
    ("sts", "GetCallerIdentity"): _any("sts:GetCallerIdentity"),
}


def required_access(
    service: str, operation: str, params: Mapping[str, Any], lookups: Lookups
) -> list[Access]:
    """The permissions one call needs; a call without a mapping is an error."""
    mapper = MAPPERS.get((service, operation))
    if mapper is None:
        prefix = IAM_PREFIX.get(service, service)
        raise UnmappedCallError(
            f"{prefix}:{operation}: the rehearsal cannot authorize this call (no resource "
            "mapping in paymig.rehearsal.iam_requests.MAPPERS); add one from AWS's Service "
            "Authorization Reference"
        )
    return mapper(params, lookups)


class UnmappedCallError(Exception):
    """A call whose IAM action and resource the rehearsal does not know."""


# ---------------------------------------------------------------------------- the role


def role_statements(iam: Any, role_name: str) -> list[Statement]:
    """Every statement of a role's inline and attached policies, as the emulator holds them."""
    statements: list[Statement] = []
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        statements += parse_statements(_document(document), f"{role_name}/{name}")
    attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    for policy in attached:
        arn = policy["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"][
            "Document"
        ]
        statements += parse_statements(_document(document), policy["PolicyName"])
    return statements


def _document(value: Any) -> dict[str, Any]:
    """A policy document as IAM returns it: an object, or URL-encoded JSON text."""
    if isinstance(value, str):
        loaded: dict[str, Any] = json.loads(unquote(value))
        return loaded
    return dict(value)


@dataclass
class CallRecord:
    """One call the function made and what IAM decided."""

    service: str
    operation: str
    decisions: list[Decision]
    params: dict[str, Any]

    @property
    def allowed(self) -> bool:
        """Whether every permission the call needs was granted."""
        return all(d.allowed for d in self.decisions)


class RoleEnforcer:
    """Authorizes every boto3 call of this process against one role's policies."""

    def __init__(self, principal: str, statements: list[Statement], lookups: Lookups) -> None:
        """`principal` is the assumed-role ARN the messages name."""
        self.principal = principal
        self.statements = statements
        self.lookups = lookups
        self.calls: list[CallRecord] = []
        self._lock = threading.Lock()

    def authorize(self, service: str, operation: str, params: Mapping[str, Any]) -> CallRecord:
        """Decide one call; raise ``ClientError`` (AccessDenied) if any permission lacks."""
        try:
            needed = required_access(service, operation, params, self.lookups)
        except UnmappedCallError as error:
            raise _denied(operation, str(error)) from None
        decisions = [
            Decision(True, a.action, a.resource, "no permission required")
            if a.action in ALWAYS_ALLOWED
            else evaluate(self.statements, a.action, a.resource, a.context)
            for a in needed
        ]
        record = CallRecord(service, operation, decisions, _loggable(params))
        with self._lock:
            self.calls.append(record)
        refused = next((d for d in decisions if not d.allowed), None)
        if refused is not None:
            raise _denied(operation, refused.message(self.principal))
        return record

    def hook(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        """Botocore ``before-parameter-build`` handler."""
        service = str(model.service_model.service_name)
        self.authorize(service, str(model.name), params)

    def install(self) -> None:
        """Register the hook for every botocore session created from now on."""
        from botocore import handlers

        handlers.BUILTIN_HANDLERS.append(("before-parameter-build", self.hook))


def _denied(operation: str, message: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "AccessDenied", "Message": message},
         "ResponseMetadata": {"HTTPStatusCode": 403}},
        operation,
    )  # fmt: skip


#: Parameters kept in the call log: those naming resources, and what SNS delivers
#: (so the rehearsal can deliver a function's own messages). No secret value passes
#: through a parameter of these calls.
_LOGGED = ("TopicArn", "TargetArn", "TableName", "HostedZoneId", "ListenerArn", "SecretId",
           "Name", "Namespace", "Id", "Subject", "Message", "MessageAttributes")  # fmt: skip


def _loggable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: params[key] for key in _LOGGED if key in params}
