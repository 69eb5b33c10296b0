"""Claims of the protective requirements: network, storage, keys, transmission, web, access.

Each function takes the stack and the configuration and returns its claims, or raises
:class:`~paymig.controls.evidence.ControlMapError` when one does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paymig.config import PaymigConfig
from paymig.controls.evidence import (
    Claim,
    ControlMapError,
    default_routes,
    every,
    is_private_source,
    lambda_databases,
    name,
    parameters,
    refers_to,
    route_tables_of,
    subnets_of_tier,
)
from paymig.iam_lint import ACCEPTED_FILE, lint_stack
from paymig.relations.stack import StackGraph, as_list, first_block, parse_policy, statements

_CMK = refers_to("aws_kms_key")


def network_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """1.3: the data tier has no internet route; ingress only from named sources."""
    tables = route_tables_of(graph, subnets_of_tier(graph, "data"))
    open_routes = [name(graph, r) for t in sorted(tables) for r in default_routes(graph, t)]
    if not tables or open_routes:
        raise ControlMapError(f"control map: the data tier routes to the internet: {open_routes}")
    alb_groups = {
        g for body in graph.of_type("aws_lb").values() for g in as_list(body.get("security_groups"))
    }
    return [
        Claim(
            "The data subnets' route table has no default route: no path to the internet.",
            tuple(name(graph, t) for t in sorted(tables)),
        ),
        every(
            graph,
            ["aws_vpc_security_group_ingress_rule"],
            lambda r: is_private_source(r) or r.get("security_group_id") in alb_groups,
            "Every ingress rule admits a security group, a prefix list or a private CIDR; only "
            "the load balancer's group admits any address (443, and 80 that only redirects).",
        ),
        every(
            graph,
            ["aws_default_security_group"],
            lambda b: not b.get("ingress") and not b.get("egress"),
            "The VPC's default security group has no rules.",
        ),
        every(
            graph,
            ["aws_rds_cluster_instance", "aws_dms_replication_instance"],
            lambda b: b.get("publicly_accessible") is False,
            "No database or replication instance is publicly accessible.",
        ),
    ]


def storage_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """3.5: everything that stores data is encrypted with a customer-managed key."""
    return [
        every(
            graph,
            ["aws_rds_cluster"],
            lambda b: b.get("storage_encrypted") is True and _CMK(b.get("kms_key_id")),
            "Aurora storage is encrypted with a customer-managed KMS key.",
        ),
        every(
            graph,
            ["aws_rds_cluster_instance"],
            lambda b: _CMK(b.get("performance_insights_kms_key_id")),
            "Performance Insights data (which holds query text) uses the same kind of key.",
        ),
        every(
            graph,
            ["aws_dms_replication_instance"],
            lambda b: _CMK(b.get("kms_key_arn")),
            "The DMS replication instance's storage is encrypted with a customer-managed key.",
        ),
        every(
            graph,
            ["aws_dynamodb_table"],
            lambda b: _CMK(first_block(b.get("server_side_encryption")).get("kms_key_arn")),
            "The audit table is encrypted with a customer-managed key.",
        ),
        every(
            graph,
            ["aws_sqs_queue", "aws_sns_topic"],
            lambda b: _CMK(b.get("kms_master_key_id")),
            "Every queue and topic is encrypted with a customer-managed key.",
        ),
        every(
            graph,
            ["aws_ecr_repository"],
            lambda b: _CMK(first_block(b.get("encryption_configuration")).get("kms_key")),
            "The image repository is encrypted with a customer-managed key.",
        ),
    ]


def _usage_is_conditioned(body: Mapping[str, Any]) -> bool:
    """Every key-policy statement but the root's administration carries a condition."""
    for statement in statements(parse_policy(body.get("policy"))):
        actions = {a.lower() for a in as_list(statement.get("Action"))}
        uses = any(
            a.startswith(("kms:encrypt", "kms:decrypt", "kms:generatedatakey")) for a in actions
        )
        if statement.get("Effect") == "Allow" and uses and not statement.get("Condition"):
            return False
    return True


def keys_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """3.6 and 3.7: keys rotate, their use is conditioned, deletion is recoverable."""
    return [
        every(
            graph,
            ["aws_kms_key"],
            lambda b: b.get("enable_key_rotation") is True,
            "Every customer-managed key rotates its key material every year (enable_key_rotation).",
        ),
        every(
            graph,
            ["aws_kms_key"],
            _usage_is_conditioned,
            "Every key-policy statement that allows Encrypt, Decrypt or GenerateDataKey is "
            "conditioned on the calling service (kms:ViaService), the source account or the log "
            "group's encryption context.",
        ),
        every(
            graph,
            ["aws_kms_key"],
            lambda b: int(b.get("deletion_window_in_days", 0)) >= 30,
            "A key scheduled for deletion can be recovered for 30 days.",
        ),
    ]


def transmission_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """4.2: TLS everywhere, verified; strong VPN tunnels."""
    listeners = graph.of_type("aws_lb_listener")

    def tls_or_redirect(body: Mapping[str, Any]) -> bool:
        if body.get("protocol") == "HTTPS":
            return str(body.get("ssl_policy", "")).startswith("ELBSecurityPolicy-TLS13-1-2")
        action = first_block(body.get("default_action"))
        return (
            action.get("type") == "redirect"
            and first_block(action.get("redirect")).get("protocol") == "HTTPS"
        )

    if not any(b.get("protocol") == "HTTPS" for b in listeners.values()):
        raise ControlMapError("control map: the load balancer has no HTTPS listener")
    return [
        every(
            graph,
            ["aws_lb_listener"],
            tls_or_redirect,
            "The load balancer serves HTTPS only with a TLS 1.2/1.3 policy "
            "(ELBSecurityPolicy-TLS13-1-2-*); its HTTP listener only redirects to HTTPS.",
        ),
        every(
            graph,
            ["aws_rds_cluster_parameter_group"],
            lambda b: (
                parameters(b).get("rds.force_ssl") == "1"
                and parameters(b).get("ssl_min_protocol_version") in {"TLSv1.2", "TLSv1.3"}
            ),
            "Aurora refuses connections without TLS (rds.force_ssl = 1, TLS 1.2 at least).",
        ),
        every(
            graph,
            ["aws_dms_endpoint"],
            lambda b: b.get("ssl_mode") == "verify-full" and bool(b.get("certificate_arn")),
            "Every DMS endpoint verifies its server's certificate and host name (verify-full) "
            "against the CA of that server.",
        ),
        _database_clients(graph),
        every(
            graph,
            ["aws_vpn_connection"],
            _strong_tunnels,
            "Both VPN tunnels allow only IKEv2, AES-256 (GCM or CBC), SHA-2 256 or stronger "
            "and Diffie-Hellman groups 19 and up.",
        ),
    ]


def _database_clients(graph: StackGraph) -> Claim:
    """Every database declaration of every Lambda function is verify-full with its CA."""
    clients = {
        a: lambda_databases(b)
        for a, b in graph.of_type("aws_lambda_function").items()
        if lambda_databases(b)
    }
    weak = [
        name(graph, a)
        for a, declared in sorted(clients.items())
        if not all(d.get("sslmode") == "verify-full" and d.get("ca_parameter") for d in declared)
    ]
    if not clients or weak:
        raise ControlMapError(f"control map: database clients without verify-full: {weak}")
    return Claim(
        "Every Lambda function that connects to a database declares sslmode verify-full and "
        "the CA parameter of that server.",
        tuple(name(graph, a) for a in sorted(clients)),
    )


def _strong_tunnels(body: Mapping[str, Any]) -> bool:
    """IKEv2, AES-256, SHA-2 and DH >= 19 on both tunnels and both phases."""
    for tunnel in ("tunnel1", "tunnel2"):
        if set(as_list(body.get(f"{tunnel}_ike_versions"))) != {"ikev2"}:
            return False
        for phase in ("phase1", "phase2"):
            ciphers = as_list(body.get(f"{tunnel}_{phase}_encryption_algorithms"))
            hashes = as_list(body.get(f"{tunnel}_{phase}_integrity_algorithms"))
            groups = as_list(body.get(f"{tunnel}_{phase}_dh_group_numbers"))
            if not ciphers or not all(str(c).startswith("AES256") for c in ciphers):
                return False
            if not hashes or not all(str(h).startswith("SHA2-") for h in hashes):
                return False
            if not groups or min(int(g) for g in groups) < 19:
                return False
    return True


def web_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """6.4: the public load balancer is behind AWS WAF with managed rule groups."""
    acls = graph.of_type("aws_wafv2_web_acl")
    lbs = set(graph.of_type("aws_lb"))
    protected = {
        graph.target(b.get("resource_arn"), "aws_lb")
        for b in graph.of_type("aws_wafv2_web_acl_association").values()
    }
    if not acls or not lbs or not lbs <= protected:
        raise ControlMapError("control map: a load balancer has no WAF web ACL")

    def managed(body: Mapping[str, Any]) -> bool:
        groups = {
            first_block(first_block(r.get("statement")).get("managed_rule_group_statement")).get(
                "name"
            )
            for r in as_list(body.get("rule"))
        }
        return (
            "AWSManagedRulesSQLiRuleSet" in groups
            and "AWSManagedRulesKnownBadInputsRuleSet" in groups
        )

    return [
        Claim(
            "The public load balancer is behind an AWS WAF web ACL.",
            tuple(name(graph, a) for a in sorted(graph.of_type("aws_wafv2_web_acl_association"))),
        ),
        every(
            graph,
            ["aws_wafv2_web_acl"],
            managed,
            "The web ACL runs AWS's SQL-injection and known-bad-inputs rule groups and limits "
            f"each client IP to {config.waf.rate_limit_per_minute} requests per minute.",
        ),
    ]


def separation_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """6.5.3: this environment's state is its own."""
    backend = graph.document.get("terraform", {}).get("backend", {}).get("s3", {})
    if backend.get("bucket") != config.state.bucket or backend.get("key") != config.state_key:
        raise ControlMapError("control map: the state backend is not the configured one")
    return [
        Claim(
            f"This environment's Terraform state is `s3://{backend['bucket']}/{backend['key']}`; "
            "`paymig check` fails when another environment of the configuration folder uses the "
            "same bucket; no named resource is shared with another environment but the two "
            "account-wide DMS roles (docs/environments.md).",
            ("terraform backend s3",),
        )
    ]


def least_privilege_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """7.2: the IAM linter finds nothing unjustified; inline policies per role."""
    result = lint_stack(graph.document)
    if result.unjustified:
        raise ControlMapError(
            f"control map: the IAM linter has {len(result.unjustified)} unjustified finding(s)"
        )
    accepted = sorted({f"{f.resource_type} {f.path}" for f, _ in result.justified})
    return [
        Claim(
            f"The IAM linter (cloudsplaining) reads {result.policies} policies "
            f"({result.statements} statements: inline, trust, key, topic, bucket, Lambda "
            "permissions) and finds nothing beyond the findings accepted, with their reasons, in "
            f"src/paymig/{ACCEPTED_FILE}.",
            tuple(accepted),
        ),
        every(
            graph,
            ["aws_iam_role_policy"],
            lambda b: parse_policy(b.get("policy")) is not None,
            "Every role's own permissions are one inline policy written for that role.",
        ),
    ]
