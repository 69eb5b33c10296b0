"""The ALB's access logs: a private, versioned bucket, its retention and its policy.

Built in the application tier's scope (:class:`paymig.infra.app.AppTier`), so the
resources keep their ids there; the ALB points at :attr:`AlbAccessLogs.bucket` under
:data:`ALB_LOG_PREFIX`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
)
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA as SseDefault,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from paymig.infra.iam import policy_document, statement

#: Key prefix of the ALB access logs in their bucket.
ALB_LOG_PREFIX = "alb"

#: The account Elastic Load Balancing writes us-east-2 access logs from (AWS documented).
ELB_LOG_DELIVERY_ACCOUNT = {"us-east-2": "033677994240", "us-east-1": "127311923021"}


@dataclass(frozen=True)
class AlbAccessLogs:
    """The bucket the ALB writes to, and the policy the ALB must wait for."""

    bucket: S3Bucket
    policy: S3BucketPolicy


def build_access_logs(
    scope: Construct, *, name: str, region: str, account_id: str, retention_days: int
) -> AlbAccessLogs:
    """The bucket (created first), its retention and events, then its policy."""
    bucket = _bucket(scope, name)
    _retention(scope, bucket, retention_days)
    return AlbAccessLogs(bucket, _policy(scope, bucket, region, account_id))


def _bucket(scope: Construct, name: str) -> S3Bucket:
    """The private, versioned, encrypted bucket of the ALB's access logs.

    ALB log delivery supports only SSE-S3 (AES256) buckets, not KMS.
    """
    bucket = S3Bucket(scope, "access-logs", bucket=f"{name}-alb-access-logs")
    S3BucketPublicAccessBlock(
        scope,
        "access-logs-public-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    S3BucketVersioningA(
        scope,
        "access-logs-versioning",
        bucket=bucket.id,
        versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
    )
    S3BucketServerSideEncryptionConfigurationA(
        scope,
        "access-logs-encryption",
        bucket=bucket.id,
        rule=[
            S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=SseDefault(sse_algorithm="AES256")
            )
        ],
    )
    return bucket


def _retention(scope: Construct, bucket: S3Bucket, retention_days: int) -> None:
    """How long access logs are kept, and events that make their deletion visible."""
    S3BucketLifecycleConfiguration(
        scope,
        "access-logs-lifecycle",
        bucket=bucket.id,
        rule=[
            S3BucketLifecycleConfigurationRule(
                id="retain-then-expire",
                status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                transition=[
                    S3BucketLifecycleConfigurationRuleTransition(
                        days=30, storage_class="STANDARD_IA"
                    )
                ],
                expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=retention_days)],
                noncurrent_version_expiration=[
                    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                        noncurrent_days=retention_days
                    )
                ],
                abort_incomplete_multipart_upload=[
                    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                        days_after_initiation=7
                    )
                ],
            )
        ],
    )
    # Object events go to EventBridge, so a deletion of access logs can be alerted on.
    S3BucketNotification(scope, "access-logs-events", bucket=bucket.id, eventbridge=True)


def _policy(scope: Construct, bucket: S3Bucket, region: str, account_id: str) -> S3BucketPolicy:
    """The bucket policy: ELB log delivery writes under the prefix; TLS only."""
    delivery_account = ELB_LOG_DELIVERY_ACCOUNT[region]
    return S3BucketPolicy(
        scope,
        "access-logs-policy",
        bucket=bucket.id,
        policy=policy_document(
            statement(
                "ElbWritesAccessLogs",
                ["s3:PutObject"],
                [f"{bucket.arn}/{ALB_LOG_PREFIX}/AWSLogs/{account_id}/*"],
                principal={"AWS": f"arn:aws:iam::{delivery_account}:root"},
            ),
            statement(
                "DenyInsecureTransport",
                ["s3:*"],
                [bucket.arn, f"{bucket.arn}/*"],
                effect="Deny",
                principal={"AWS": "*"},
                condition={"Bool": {"aws:SecureTransport": "false"}},
            ),
        ),
    )
