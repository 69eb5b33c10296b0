"""The PCI DSS 4.0 requirements this stack addresses, and what the organisation must provide.

Each :class:`Requirement` names the requirement, builds its claims from the synthesized
stack (a claim that does not hold stops the generation) and cites the tests that prove
it as ``path::function`` (the generator checks that each exists). :data:`ORGANISATION`
lists the account-level controls this stack does not create.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from paymig.config import PaymigConfig
from paymig.controls import claims_accounts as accounts
from paymig.controls import claims_protect as protect
from paymig.controls.evidence import Claim
from paymig.relations.stack import StackGraph

ClaimBuilder = Callable[[StackGraph, PaymigConfig], list[Claim]]


@dataclass(frozen=True)
class Requirement:
    """One PCI DSS 4.0 requirement, the claims that back it and the tests that prove them."""

    number: str
    title: str
    claims: ClaimBuilder
    tests: tuple[str, ...]


@dataclass(frozen=True)
class OrganisationControl:
    """An account-level control the organisation provides, and the requirements it serves."""

    service: str
    provides: str
    requirements: str


_NET = "tests/test_network.py::"
_DATA = "tests/test_data_tier.py::"
_APP = "tests/test_app_tier.py::"
_REP = "tests/test_replication_tier.py::"
_IAM = "tests/test_iam_and_secrets.py::"
_LINT = "tests/test_iam_lint.py::"
_REL = "tests/relations/test_relation_rules.py::"

#: Every requirement the map covers, in the standard's order.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "1.3", "Network access to and from the cardholder data environment is restricted",
        protect.network_claims,
        (_NET + "test_data_tier_has_no_internet_route",
         _NET + "test_default_security_group_has_no_rules",
         _IAM + "test_every_security_group_and_rule_is_described_and_no_open_ingress_but_the_alb",
         _APP + "test_lambda_egress_is_its_databases_and_the_endpoints_only",
         _REP + "test_network_path_to_its_secrets_and_both_databases_both_sides",
         _REL + "test_endpoint_that_does_not_admit_the_client_is_named"),
    ),
    Requirement(
        "3.5", "Primary account number (PAN) is secured wherever it is stored",
        protect.storage_claims,
        (_DATA + "test_storage_pi_and_secret_encrypted_with_the_data_cmk",
         _APP + "test_ecr_repository",
         _REP + "test_events_go_to_an_encrypted_topic_with_recipients",
         "tests/test_observability.py::test_audit_table"),
    ),
    Requirement(
        "3.6 / 3.7", "Cryptographic keys are secured; key management covers their lifecycle",
        protect.keys_claims,
        (_DATA + "test_data_key_policy_grants_root_admin_and_only_named_services_usage",
         _REP + "test_key_policy_grants_usage_only_through_named_principals",
         _REL + "test_log_group_key_needs_the_logs_principal_and_every_action"),
    ),
    Requirement(
        "4.2", "PAN is protected with strong cryptography during transmission",
        protect.transmission_claims,
        (_APP + "test_https_listener_weights_and_tls_policy",
         _DATA + "test_tls_enforced_and_audit_logging",
         _REP + "test_every_endpoint_verifies_its_server_with_the_servers_ca",
         _APP + "test_api_declares_both_databases_each_verified_with_its_own_ca",
         _NET + "test_site_to_site_vpn",
         _REL + "test_require_is_not_verification",
         _REL + "test_aurora_bundle_must_hold_the_instances_ca",
         "tests/test_payment_api.py::test_a_declaration_naming_another_host_is_503_with_one_clear_line"),
    ),
    Requirement(
        "6.4", "Public-facing web applications are protected against attacks",
        protect.web_claims,
        ("tests/test_security_tier.py::test_managed_rule_sets",
         "tests/test_security_tier.py::test_rate_limit_is_1000_per_60_seconds_per_ip",
         _APP + "test_alb_is_public_hardened_logged_and_behind_waf"),
    ),
    Requirement(
        "6.5.3", "Pre-production environments are separated from production",
        protect.separation_claims,
        (_NET + "test_state_backend_is_per_environment_encrypted_and_locked",
         "tests/test_environments.py::test_shipped_environments_have_their_own_state_buckets",
         "tests/test_environments.py::test_staging_and_prod_name_every_resource_apart"),
    ),
    Requirement(
        "7.2", "Access to system components and data is appropriately defined and assigned",
        protect.least_privilege_claims,
        (_LINT + "test_shipped_stacks_have_no_unjustified_finding",
         _LINT + "test_an_over_broad_statement_is_caught",
         _IAM + "test_every_policy_document_is_least_privilege",
         "tests/test_logins.py::test_plan_grants_exactly_per_login",
         "tests/test_db_setup.py::test_api_and_validation_logins_can_do_exactly_their_part",
         "tests/test_login_checks.py::test_over_privileged_logins_fail_with_exact_details"),
    ),
    Requirement(
        "8.2", "User identification and related accounts are strictly managed",
        accounts.identification_claims,
        ("tests/test_logins.py::test_the_login_table",
         _REP + "test_access_role_reads_exactly_the_four_dms_login_secrets",
         "tests/test_db_setup.py::test_every_aurora_login_passes_its_checks_after_setup"),
    ),
    Requirement(
        "8.3", "Strong authentication for users and administrators is established",
        accounts.authentication_claims,
        (_DATA + "test_credentials_managed_by_rds_and_rotated_every_30_days",
         "tests/test_logins.py::test_fresh_plan_creates_tables_without_foreign_keys_and_sends_only_verifiers",
         "tests/test_rotation.py::test_passwords_reach_neither_the_server_log_nor_the_function_log"),
    ),
    Requirement(
        "8.6", "Use of application and system accounts and their authentication factors is managed",
        accounts.application_account_claims,
        (_IAM + "test_no_secret_values_in_the_synthesized_stack",
         _IAM + "test_no_secret_values_in_the_repository",
         "tests/test_rotation.py::test_rotations_alternate_and_old_credentials_work_until_the_second",
         "tests/test_rotation.py::test_a_client_that_rereads_on_login_failure_never_fails_across_two_rotations"),
    ),
    Requirement(
        "10.2", "Audit logs are implemented to support the detection of anomalies",
        accounts.audit_log_claims,
        (_DATA + "test_tls_enforced_and_audit_logging",
         "tests/test_logins.py::test_pgaudit_parameters",
         _NET + "test_flow_logs_encrypted_and_kept_a_year",
         "tests/test_security_tier.py::test_logging_redacts_credentials_to_an_encrypted_group",
         "tests/test_observability.py::test_audit_table"),
    ),
    Requirement(
        "10.3", "Audit logs are protected from destruction and unauthorized modification",
        accounts.log_protection_claims,
        (_APP + "test_access_log_bucket",
         _REL + "test_log_group_key_names_group_and_key_when_context_is_another_group"),
    ),
    Requirement(
        "10.5", "Audit log history is retained and available for analysis",
        accounts.retention_claims,
        (_NET + "test_flow_logs_encrypted_and_kept_a_year", _APP + "test_access_log_bucket"),
    ),
    Requirement(
        "11.5", "Network intrusions and unexpected file changes are detected and responded to",
        accounts.detection_claims,
        ("tests/relations/test_alarm_delivery.py::test_topics_without_subscribers_and_unread_bucket_events_are_named",
         "tests/test_security_tier.py::test_managed_rule_sets"),
    ),
)  # fmt: skip

#: Account-level controls this stack does not create: the organisation must provide them.
ORGANISATION: tuple[OrganisationControl, ...] = (
    OrganisationControl(
        "AWS CloudTrail",
        "a multi-region trail of every API call in the account (management events), with "
        "log file validation, into a KMS-encrypted, versioned bucket that blocks public access",
        "10.2.1, 10.2.2, 10.3, 10.5.1",
    ),
    OrganisationControl(
        "Amazon GuardDuty",
        "threat detection over CloudTrail, VPC flow logs and DNS logs, findings routed to the "
        "security team",
        "11.5.1, 10.4.1",
    ),
    OrganisationControl(
        "AWS Security Hub",
        "the PCI DSS v4.0.1 standard enabled, findings collected across accounts and reviewed",
        "10.4.1",
    ),
    OrganisationControl(
        "AWS Config",
        "a configuration recorder and delivery channel: every resource's configuration "
        "history, for change review",
        "1.2.7, 2.2",
    ),
)
