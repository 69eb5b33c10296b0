"""The login model and the SQL planned from it, checked without a server.

What the SQL does on a real server is tested in tests/test_db_setup.py and
tests/test_login_checks.py; here are the names, the exact statements and the errors.
"""

from __future__ import annotations

import pytest

from paymig.errors import PaymigError
from paymig.infra import dms_settings
from paymig.logins import (
    CONTROL_SCHEMA,
    LOGINS,
    MARKERS,
    MASTER_PGAUDIT_LOG,
    PAYMENT_TABLES,
    PGAUDIT_PARAMETERS,
    expected_table_privileges,
    login_for,
    user_names,
)
from paymig.runtime.db_setup import RoleCatalog, plan_aurora_setup
from paymig.runtime.role_sql import DbSetupError, create_user, name, plan_text
from paymig.runtime.source_sql import source_setup_script

VERIFIER = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"


def _all_verifiers() -> dict[str, str]:
    return dict.fromkeys(user_names("aurora"), VERIFIER)


def test_the_login_table() -> None:
    table = {
        server: [(login.client, login.group, login.users) for login in logins]
        for server, logins in LOGINS.items()
    }
    assert table == {
        "source": [
            ("api", "paymig_api_rw", ("paymig_api", "paymig_api_clone")),
            ("dms", "paymig_dms_ro", ("paymig_dms", "paymig_dms_clone")),
            (
                "validation",
                "paymig_validation_ro",
                ("paymig_validation", "paymig_validation_clone"),
            ),
            ("dms_apply", "paymig_dms_apply_rw", ("paymig_dms_apply", "paymig_dms_apply_clone")),
            ("rotation", None, ("paymig_rotation",)),
        ],
        "aurora": [
            ("api", "paymig_api_rw", ("paymig_api", "paymig_api_clone")),
            (
                "dms_target",
                "paymig_dms_target_rw",
                ("paymig_dms_target", "paymig_dms_target_clone"),
            ),
            (
                "validation",
                "paymig_validation_ro",
                ("paymig_validation", "paymig_validation_clone"),
            ),
            (
                "dms_reverse",
                "paymig_dms_reverse_ro",
                ("paymig_dms_reverse", "paymig_dms_reverse_clone"),
            ),
        ],
    }


def test_what_each_login_may_do_on_a_payment_table_the_markers_and_another_replicated_one() -> None:
    other = ("public", "ledger")
    rows = {
        (login.server, login.client): (
            sorted(expected_table_privileges(login, PAYMENT_TABLES[0])),
            sorted(expected_table_privileges(login, MARKERS)),
            sorted(expected_table_privileges(login, other)),
        )
        for logins in LOGINS.values()
        for login in logins
    }
    apply = ["DELETE", "INSERT", "SELECT", "UPDATE"]
    assert rows == {
        ("source", "api"): (["INSERT", "SELECT", "UPDATE"], [], []),
        ("source", "dms"): (["SELECT"], ["SELECT"], ["SELECT"]),
        ("source", "validation"): (["SELECT"], ["SELECT"], ["SELECT"]),
        ("source", "dms_apply"): (apply, apply, []),
        ("source", "rotation"): ([], [], []),
        ("aurora", "api"): (["INSERT", "SELECT", "UPDATE"], [], []),
        ("aurora", "dms_target"): (apply, apply, []),
        ("aurora", "validation"): (["SELECT"], ["SELECT"], ["SELECT"]),
        ("aurora", "dms_reverse"): (["SELECT"], ["SELECT"], ["SELECT"]),
    }


def test_control_schema_is_the_one_the_dms_task_names() -> None:
    assert dms_settings.CONTROL_SCHEMA == CONTROL_SCHEMA


def test_pgaudit_parameters() -> None:
    assert PGAUDIT_PARAMETERS == {
        "pgaudit.log": "ddl,role,write",
        "pgaudit.log_parameter": "0",
        "pgaudit.log_catalog": "0",
    }
    assert MASTER_PGAUDIT_LOG == "all"


def test_unknown_client_is_one_line() -> None:
    assert login_for("aurora", "dms_target").base == "paymig_dms_target"
    with pytest.raises(PaymigError, match=r"^login: no 'dms' login on aurora \(known: api, "):
        login_for("aurora", "dms")


def test_both_users_of_a_pair_get_the_same_attributes() -> None:
    for logins in LOGINS.values():
        for login in logins:
            rendered = {
                create_user(login, user, None).as_string(None).replace(user, "<user>")
                for user in login.users
            }
            assert len(rendered) == 1, login.base


def test_names_must_be_plain() -> None:
    assert name("paymig_api").as_string(None) == "paymig_api"
    with pytest.raises(DbSetupError, match="not a plain lower-case SQL name"):
        name('x"; DROP TABLE payments; --')


# --------------------------------------------------------------------------- Aurora plan


def test_fresh_plan_creates_tables_without_foreign_keys_and_sends_only_verifiers() -> None:
    text = plan_text(plan_aurora_setup("payments", RoleCatalog(), _all_verifiers()))
    assert text[:4] == [
        "SET LOCAL search_path = public",
        "CREATE EXTENSION IF NOT EXISTS pgaudit",
        'REVOKE ALL ON DATABASE "payments" FROM PUBLIC',
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    ]
    assert text[-1] == "ALTER ROLE CURRENT_USER SET pgaudit.log = 'all'"
    assert not [s for s in text if "REFERENCES" in s or "FOREIGN KEY" in s]
    assert "CONSTRAINT payments_merchant_idempotency_key UNIQUE" in "\n".join(text)
    assert (
        "CREATE ROLE paymig_api LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT "
        f"NOREPLICATION NOBYPASSRLS PASSWORD '{VERIFIER}'"
    ) in text
    assert [s for s in text if "PASSWORD" in s and VERIFIER not in s] == []


def test_plan_grants_exactly_per_login() -> None:
    text = plan_text(plan_aurora_setup("payments", RoleCatalog(), _all_verifiers()))
    grants = [s for s in text if s.startswith("GRANT") and "paymig_dms_target" in s]
    assert grants == [
        "GRANT paymig_dms_target_rw TO paymig_dms_target, paymig_dms_target_clone",
        'GRANT CONNECT ON DATABASE "payments" TO paymig_dms_target_rw',
        "GRANT USAGE ON SCHEMA public TO paymig_dms_target_rw",
        "GRANT USAGE, CREATE ON SCHEMA awsdms_control TO paymig_dms_target_rw",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.accounts, public.payments, "
        "public.refunds TO paymig_dms_target_rw",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.paymig_markers TO "
        "paymig_dms_target_rw",
        "GRANT paymig_dms_target TO CURRENT_USER",
        "GRANT paymig_dms_target_clone TO CURRENT_USER",
    ]
    reverse = [s for s in text if s.startswith("GRANT rds_replication")]
    assert reverse == ["GRANT rds_replication TO paymig_dms_reverse, paymig_dms_reverse_clone"]


def test_default_privileges_borrow_membership_only_when_not_superuser() -> None:
    def around(superuser: bool) -> list[str]:
        text = plan_text(
            plan_aurora_setup("p", RoleCatalog(), _all_verifiers(), superuser=superuser)
        )
        return [s for s in text if "CURRENT_USER" in s and "pgaudit" not in s]

    assert around(superuser=True) == []
    assert around(superuser=False) == [
        "GRANT paymig_dms_target TO CURRENT_USER",
        "REVOKE paymig_dms_target FROM CURRENT_USER",
        "GRANT paymig_dms_target_clone TO CURRENT_USER",
        "REVOKE paymig_dms_target_clone FROM CURRENT_USER",
        "GRANT paymig_dms_reverse TO CURRENT_USER",
        "REVOKE paymig_dms_reverse FROM CURRENT_USER",
        "GRANT paymig_dms_reverse_clone TO CURRENT_USER",
        "REVOKE paymig_dms_reverse_clone FROM CURRENT_USER",
    ]


def test_not_aurora_skips_only_pgaudit() -> None:
    aurora = plan_text(plan_aurora_setup("p", RoleCatalog(), _all_verifiers()))
    local = plan_text(plan_aurora_setup("p", RoleCatalog(), _all_verifiers(), aurora=False))
    assert [s for s in aurora if s not in local] == [
        "CREATE EXTENSION IF NOT EXISTS pgaudit",
        "ALTER ROLE CURRENT_USER SET pgaudit.log = 'all'",
    ]


def test_existing_roles_are_reset_and_keep_their_passwords_unless_given() -> None:
    roles = frozenset(r for login in LOGINS["aurora"] for r in login.roles)
    catalog = RoleCatalog(
        existing=roles,
        memberships={"paymig_api": frozenset({"paymig_api_rw", "pg_write_all_data"})},
        members={"paymig_api_rw": frozenset({"paymig_api", "paymig_api_clone", "legacy_app"})},
    )
    text = plan_text(plan_aurora_setup("p", catalog, {"paymig_api_clone": VERIFIER}))
    api = [s for s in text if "paymig_api" in s and not s.startswith(("GRANT", "REVOKE ALL"))]
    assert api == [
        "ALTER ROLE paymig_api_rw NOLOGIN NOCREATEDB NOCREATEROLE",
        "REVOKE paymig_api_rw FROM legacy_app",
        "ALTER ROLE paymig_api LOGIN NOCREATEDB NOCREATEROLE INHERIT",
        "REVOKE pg_write_all_data FROM paymig_api",
        f"ALTER ROLE paymig_api_clone LOGIN NOCREATEDB NOCREATEROLE INHERIT PASSWORD '{VERIFIER}'",
    ]


@pytest.mark.parametrize(
    ("catalog", "verifiers", "message"),
    [
        (RoleCatalog(), {"paymig_api": VERIFIER},
         "passwords: paymig_api_clone does not exist yet and has no password"),
        (RoleCatalog(), {**_all_verifiers(), "paymig_rotation": VERIFIER},
         "passwords: paymig_rotation not an Aurora login user"),
        (RoleCatalog(), {**_all_verifiers(), "paymig_api": "hunter2"},
         "passwords: the value for paymig_api is not a SCRAM-SHA-256 verifier"),
        (RoleCatalog(existing=frozenset({"paymig_api"}),
                     special={"paymig_api": frozenset({"SUPERUSER"})}), _all_verifiers(),
         "paymig_api has SUPERUSER: only a superuser can remove it; the setup will not run over it"),
    ],
)  # fmt: skip
def test_plan_refuses(catalog: RoleCatalog, verifiers: dict[str, str], message: str) -> None:
    with pytest.raises(DbSetupError) as info:
        plan_aurora_setup("p", catalog, verifiers)
    assert str(info.value) == message
    assert "hunter2" not in str(info.value)


# --------------------------------------------------------------------------- source SQL


def test_source_script_is_deterministic_and_exact_for_the_api_login() -> None:
    script = source_setup_script("payments")
    assert script.text == source_setup_script("payments").text
    block = script.sql.split("\n\n")[2]
    assert block == "\n".join(
        [
            "-- paymig_api: payment API: records payments idempotently, never deletes",
            "CREATE ROLE paymig_api_rw NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
            "NOREPLICATION NOBYPASSRLS;",
            "CREATE ROLE paymig_api LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT "
            "NOREPLICATION NOBYPASSRLS;",
            "CREATE ROLE paymig_api_clone LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT "
            "NOREPLICATION NOBYPASSRLS;",
            "GRANT paymig_api_rw TO paymig_api, paymig_api_clone;",
            'GRANT CONNECT ON DATABASE "payments" TO paymig_api_rw;',
            "GRANT USAGE ON SCHEMA public TO paymig_api_rw;",
            "GRANT SELECT, INSERT, UPDATE ON TABLE public.accounts, public.payments, "
            "public.refunds TO paymig_api_rw;",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO paymig_api_rw;",
        ]
    )


def test_source_script_dms_rotation_and_passwords() -> None:
    script = source_setup_script("payments")
    lines = script.sql.splitlines()
    assert lines[0] == "BEGIN;" and lines[-1] == "COMMIT;"
    assert "CREATE ROLE paymig_dms LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT " \
        "REPLICATION NOBYPASSRLS;" in lines  # fmt: skip
    assert "GRANT USAGE, CREATE ON SCHEMA awsdms_heartbeat TO paymig_dms_ro;" in lines
    assert (
        "ALTER DEFAULT PRIVILEGES FOR ROLE paymig_dms_clone IN SCHEMA awsdms_heartbeat "
        "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO paymig_dms_ro;"
    ) in lines
    # The guard first (it names every role, so a second run stops before any grant).
    guard = lines[lines.index("DO $$") : lines.index("$$;") + 1]
    assert lines.index("DO $$") == 3 and "RAISE EXCEPTION" in guard[3]
    assert all(f"'{user}'" in guard[2] for user in user_names("source"))
    after_guard = lines[lines.index("$$;") + 1 :]
    rotation = [
        line for line in after_guard if "paymig_rotation" in line and not line.startswith("--")
    ]
    assert rotation == [
        "CREATE ROLE paymig_rotation LOGIN NOSUPERUSER NOCREATEDB CREATEROLE NOINHERIT "
        "NOREPLICATION NOBYPASSRLS;",
        'GRANT CONNECT ON DATABASE "payments" TO paymig_rotation;',
    ]
    assert "PASSWORD" not in script.sql
    assert script.password_commands == tuple(f"\\password {u}" for u in user_names("source"))
    assert script.text.splitlines()[1] == "-- psql -v ON_ERROR_STOP=1 -d payments -f this-file.sql"
    assert script.text.rstrip().endswith("\\password paymig_rotation")
