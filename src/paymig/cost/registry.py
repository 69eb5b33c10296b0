"""Which rule prices which Terraform resource type, and why the other types are free.

Every resource type in the stack must either have a rule (:data:`RULES`) or be listed as
free with a reason (:data:`FREE_TYPES`); anything else fails loudly
(:func:`paymig.cost.estimate.check_priceable`), so a new resource can never be silently left
out of the estimate. To price a new type, write its rule in the service's module under
:mod:`paymig.cost.rules` and name it here.
"""

from __future__ import annotations

from paymig.cost.context import Rule, StackRule
from paymig.cost.rules.compute import price_lambda_function
from paymig.cost.rules.database import price_rds_cluster, price_rds_cluster_instance
from paymig.cost.rules.dms import price_dms_replication_instance, price_dms_replication_task
from paymig.cost.rules.dns import (
    price_route53_health_check,
    price_route53_record,
    price_route53_zone,
    usage_hosted_zone,
)
from paymig.cost.rules.edge import price_acm_certificate, price_lb, price_wafv2_web_acl
from paymig.cost.rules.events import price_cloudwatch_event_rule
from paymig.cost.rules.messaging import price_sns_topic, price_sqs_queue
from paymig.cost.rules.network import (
    price_eip,
    price_nat_gateway,
    price_vpc_endpoint,
    price_vpn_connection,
    usage_api_database,
)
from paymig.cost.rules.observability import (
    price_cloudwatch_composite_alarm,
    price_cloudwatch_dashboard,
    price_cloudwatch_log_group,
    price_cloudwatch_metric_alarm,
    usage_custom_metrics,
)
from paymig.cost.rules.security import (
    price_kms_key,
    price_secretsmanager_secret,
    usage_kms_requests,
    usage_secrets_api,
)
from paymig.cost.rules.ssm import price_ssm_parameter
from paymig.cost.rules.stepfunctions import price_sfn_state_machine
from paymig.cost.rules.storage import price_dynamodb_table, price_ecr_repository, price_s3_bucket

#: Billable resource types and their pricing rules.
RULES: dict[str, Rule] = {
    "aws_nat_gateway": price_nat_gateway,
    "aws_eip": price_eip,
    "aws_vpn_connection": price_vpn_connection,
    "aws_vpc_endpoint": price_vpc_endpoint,
    "aws_rds_cluster": price_rds_cluster,
    "aws_rds_cluster_instance": price_rds_cluster_instance,
    "aws_dms_replication_instance": price_dms_replication_instance,
    "aws_dms_replication_task": price_dms_replication_task,
    "aws_lambda_function": price_lambda_function,
    "aws_lb": price_lb,
    "aws_wafv2_web_acl": price_wafv2_web_acl,
    "aws_route53_health_check": price_route53_health_check,
    "aws_route53_record": price_route53_record,
    "aws_route53_zone": price_route53_zone,
    "aws_kms_key": price_kms_key,
    "aws_secretsmanager_secret": price_secretsmanager_secret,
    "aws_acm_certificate": price_acm_certificate,
    "aws_cloudwatch_log_group": price_cloudwatch_log_group,
    "aws_cloudwatch_dashboard": price_cloudwatch_dashboard,
    "aws_cloudwatch_metric_alarm": price_cloudwatch_metric_alarm,
    "aws_cloudwatch_composite_alarm": price_cloudwatch_composite_alarm,
    "aws_ecr_repository": price_ecr_repository,
    "aws_s3_bucket": price_s3_bucket,
    "aws_sns_topic": price_sns_topic,
    "aws_sqs_queue": price_sqs_queue,
    "aws_dynamodb_table": price_dynamodb_table,
    "aws_ssm_parameter": price_ssm_parameter,
    "aws_sfn_state_machine": price_sfn_state_machine,
    "aws_cloudwatch_event_rule": price_cloudwatch_event_rule,
}


#: Usage-driven items that belong to the stack as a whole rather than to one resource.
STACK_RULES: tuple[StackRule, ...] = (
    usage_api_database,
    usage_hosted_zone,
    usage_kms_requests,
    usage_secrets_api,
    usage_custom_metrics,
)

_PRICED_VIA = "no charge of its own; its cost is priced through "

#: Resource types with no charge of their own, each with the reason.
FREE_TYPES: dict[str, str] = {
    "aws_vpc": "VPCs are free",
    "aws_subnet": "subnets are free",
    "aws_route": "routes are free",
    "aws_route_table": "route tables are free",
    "aws_route_table_association": "route table associations are free",
    "aws_main_route_table_association": "route table associations are free",
    "aws_internet_gateway": "internet gateways are free (data out is priced per GB)",
    "aws_egress_only_internet_gateway": "egress-only internet gateways are free",
    "aws_default_security_group": "security groups are free",
    "aws_security_group": "security groups are free",
    "aws_security_group_rule": "security group rules are free",
    "aws_vpc_security_group_ingress_rule": "security group rules are free",
    "aws_vpc_security_group_egress_rule": "security group rules are free",
    "aws_network_acl": "network ACLs are free",
    "aws_network_acl_rule": "network ACL rules are free",
    "aws_default_network_acl": "network ACLs are free",
    "aws_vpc_dhcp_options": "DHCP option sets are free",
    "aws_vpc_dhcp_options_association": "DHCP option sets are free",
    "aws_customer_gateway": "customer gateways are free (the VPN connection is priced)",
    "aws_vpn_gateway": "virtual private gateways are free (the VPN connection is priced)",
    "aws_vpn_gateway_attachment": "VPN gateway attachments are free",
    "aws_vpn_gateway_route_propagation": "route propagation is free",
    "aws_vpn_connection_route": "VPN static routes are free",
    "aws_flow_log": _PRICED_VIA + "its CloudWatch log group (ingestion and storage)",
    "aws_iam_role": "IAM is free",
    "aws_iam_role_policy": "IAM is free",
    "aws_iam_policy": "IAM is free",
    "aws_iam_role_policy_attachment": "IAM is free",
    "aws_iam_service_linked_role": "IAM is free",
    "aws_iam_instance_profile": "IAM is free",
    "aws_iam_policy_attachment": "IAM is free",
    "aws_iam_role_policies_exclusive": "IAM is free",
    "aws_iam_role_policy_attachments_exclusive": "IAM is free",
    "aws_iam_openid_connect_provider": "IAM is free",
    "aws_kms_alias": "aliases are free (the key is priced)",
    "aws_kms_key_policy": "key policies are free (the key is priced)",
    "aws_db_subnet_group": "subnet groups are free",
    "aws_rds_cluster_parameter_group": "parameter groups are free",
    "aws_db_parameter_group": "parameter groups are free",
    "aws_rds_cluster_role_association": "role associations are free",
    "aws_dms_replication_subnet_group": "subnet groups are free",
    "aws_dms_endpoint": _PRICED_VIA + "the replication instance",
    "aws_dms_certificate": "DMS certificates are free",
    "aws_dms_event_subscription": _PRICED_VIA + "its SNS topic",
    "aws_lambda_alias": "aliases are free",
    "aws_lambda_permission": "permissions are free",
    "aws_lambda_invocation": (
        "one invocation of the validation function per apply whose inputs changed: a "
        "handful of requests a month, priced with that function"
    ),
    "aws_lambda_provisioned_concurrency_config": _PRICED_VIA + "its aws_lambda_function",
    "aws_lambda_code_signing_config": "code signing configurations are free",
    "aws_lambda_function_event_invoke_config": "invoke configurations are free",
    "aws_signer_signing_profile": "signing profiles are free (signing jobs are not billed)",
    "aws_appautoscaling_target": _PRICED_VIA + "the scaled resource (provisioned concurrency)",
    "aws_appautoscaling_policy": "Application Auto Scaling is free",
    "aws_lb_listener": _PRICED_VIA + "its aws_lb (hours and LCUs)",
    "aws_lb_listener_rule": _PRICED_VIA + "its aws_lb (rule evaluations in LCUs)",
    "aws_lb_target_group": _PRICED_VIA + "its aws_lb",
    "aws_lb_target_group_attachment": _PRICED_VIA + "its aws_lb",
    "aws_wafv2_web_acl_association": _PRICED_VIA + "the web ACL",
    "aws_wafv2_web_acl_logging_configuration": _PRICED_VIA + "its CloudWatch log group",
    "aws_acm_certificate_validation": "validation is free",
    "aws_sns_topic_subscription": _PRICED_VIA + "its topic (email/HTTPS deliveries negligible)",
    "aws_sns_topic_policy": "topic policies are free",
    "aws_sqs_queue_policy": "queue policies are free",
    "aws_sqs_queue_redrive_policy": "redrive policies are free",
    "aws_s3_bucket_versioning": _PRICED_VIA + "the bucket's storage",
    "aws_s3_bucket_public_access_block": "bucket settings are free",
    "aws_s3_bucket_server_side_encryption_configuration": "SSE-S3 is free",
    "aws_s3_bucket_lifecycle_configuration": "lifecycle rules are free",
    "aws_s3_bucket_policy": "bucket policies are free",
    "aws_s3_bucket_ownership_controls": "bucket settings are free",
    "aws_s3_bucket_logging": _PRICED_VIA + "the target bucket's storage",
    "aws_ecr_lifecycle_policy": "lifecycle policies are free",
    "aws_ecr_repository_policy": "repository policies are free",
    "aws_secretsmanager_secret_rotation": (
        _PRICED_VIA + "the secret and its rotation function's invocations (4 steps a rotation)"
    ),
    "aws_secretsmanager_secret_version": _PRICED_VIA + "the secret",
    "aws_secretsmanager_secret_policy": "secret policies are free",
    "aws_cloudwatch_log_resource_policy": "resource policies are free",
    "aws_cloudwatch_log_metric_filter": _PRICED_VIA + "custom metrics (usage.custom_metric_count)",
    "aws_xray_sampling_rule": "sampling rules are free (recorded traces are priced)",
    "aws_kms_grant": "grants are free",
    "aws_lb_listener_certificate": "listener certificates are free",
    "aws_wafv2_ip_set": "IP sets are free (the rules using them are priced)",
    "aws_wafv2_regex_pattern_set": "pattern sets are free (the rules using them are priced)",
    "aws_cloudwatch_event_target": "targets are free (the invoked resource is priced)",
    "aws_cloudwatch_log_stream": _PRICED_VIA + "its log group",
    "aws_s3_bucket_notification": "bucket notifications are free",
    "aws_db_event_subscription": _PRICED_VIA + "its SNS topic",
    "aws_rds_cluster_endpoint": "custom cluster endpoints are free",
    "aws_sfn_activity": "activities are free (their state transitions are priced)",
    "terraform_data": "built into Terraform: not an AWS resource",
}

#: Types known to be billable for which no rule exists yet: they fail with this message.
UNPRICED_BILLABLE: frozenset[str] = frozenset(
    {
        "aws_db_instance",
        "aws_instance",
        "aws_ebs_volume",
        "aws_elasticache_cluster",
        "aws_elasticache_replication_group",
        "aws_ecs_service",
        "aws_cloudfront_distribution",
        "aws_shield_protection",
        "aws_dms_replication_config",
        "aws_rds_global_cluster",
        "aws_ec2_transit_gateway",
        "aws_globalaccelerator_accelerator",
        "aws_kinesis_firehose_delivery_stream",
        "aws_cloudwatch_event_bus",
        "aws_synthetics_canary",
        "aws_acmpca_certificate_authority",
        "aws_backup_plan",
    }
)
