"""Who may log in to which database and do what: the one list of paymig's database logins.

PCI DSS 4.0 7.2 (least privilege) and 8.2.2 (no shared accounts) ask for one login per
client, holding exactly what that client needs. Each :class:`Login` below names a
client (the payment API, DMS, the validation function, ...), the server it logs in to
(the on-prem ``source`` or the ``aurora`` target) and what it may do there. Everything
that creates, grants or checks these roles reads this module: the Aurora setup
(:mod:`paymig.runtime.db_setup`), the SQL the DBA runs on the source
(:mod:`paymig.runtime.source_sql`), and
``paymig preflight --check-logins`` (:mod:`paymig.runtime.login_checks`).

Rotation without re-granting
----------------------------
Credentials rotate with the alternating-users scheme: every client login is a PAIR of
users, ``<base>`` and ``<base>_clone``, with identical attributes and memberships.
Rotation changes the password of the user not in use and switches the secret to it, so
a client never holds a password that is about to change. Privileges belong to a
``NOLOGIN`` *group* role both users are members of (``paymig_api_rw`` for
``paymig_api`` and ``paymig_api_clone``), so rotation never grants anything. Set on
both users instead: the ``REPLICATION`` attribute (attributes are never inherited) and,
on Aurora, membership of ``rds_replication``, granted directly like the attribute it
stands in for.

The rotation admin (``paymig_rotation``, source only: on Aurora the RDS master does
this) is a single ``CREATEROLE`` login that changes the pair users' passwords; it
rotates its own password single-user (a role may always change its own). Caveat, shown
by a test: on PostgreSQL 14 and 15 a ``CREATEROLE`` role may grant itself membership in
any non-superuser role, ``pg_execute_server_program`` included, so ``CREATEROLE`` is far
wider than "change these passwords". The preflight reports any membership it holds.

DMS's own tables
----------------
DMS creates tables of its own: on the Aurora target its control tables
(``awsdms_apply_exceptions``, ``awsdms_status``, ``awsdms_suspended_tables``,
``awsdms_history`` and the validation failures table) in the schema the task setting
``ControlTablesSettings.ControlSchema`` names, and on a PostgreSQL source with
``HeartbeatEnable`` its heartbeat artifacts in the schema the endpoint setting
``HeartbeatSchema`` names (default ``public``). Each gets a dedicated schema
(:data:`CONTROL_SCHEMA`, :data:`HEARTBEAT_SCHEMA`) where only the DMS login may create,
so DMS needs no ``CREATE`` on the payments schema and its tables never match the
replication's ``public.%`` rules. (AWS DMS User Guide, "Control table task settings";
API reference ``PostgreSQLSettings.HeartbeatSchema``.)

Audit logging (pgaudit)
-----------------------
:data:`PGAUDIT_PARAMETERS` are the cluster parameter group values:

* ``pgaudit.log = ddl,role,write``: every change to payment data (INSERT, UPDATE,
  DELETE, TRUNCATE, COPY into a table), every schema change and every GRANT, REVOKE and
  CREATE/ALTER/DROP ROLE is logged with the session's user (PCI DSS 10.2.1). ``read`` is
  left out: the API's idempotency reads, ``/health``'s ``SELECT 1`` every few seconds per
  target, the validator's full-table hash scans and DMS validation would flood the log
  with statements that change nothing. ``misc_set`` is left out too: AWS's list of
  allowable ``pgaudit.log`` values for Aurora does not name it (so a parameter group
  may refuse it), and ``SET ROLE``, the one ``SET`` that matters, gains nothing
  here because every login already inherits its only group.
* ``pgaudit.log_parameter = 0``: bind parameters (amounts, idempotency keys, merchant
  ids) stay out of the log; the statement text says what was done and by whom.
* ``pgaudit.log_catalog = 0``: statements that read only ``pg_catalog`` (psql's describe
  commands, the preflight's privilege checks) are not logged.

Per role, :data:`MASTER_PGAUDIT_LOG` (``all``) is set for the Aurora master user: it is
the login people use, and PCI DSS 10.2.1.1/10.2.1.2 want every individual's access to
cardholder data and every action of an administrative account logged, reads included.
(Amazon Aurora User Guide, "Reference for the pgAudit extension".)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paymig.errors import PaymigError
from paymig.payments_schema import MARKERS_TABLE, SCHEMA, TABLES

Server = Literal["source", "aurora"]

#: The two servers paymig logs in to.
SERVERS: tuple[Server, ...] = ("source", "aurora")

#: Suffix of the second user of each pair.
CLONE_SUFFIX = "_clone"

#: Schema for DMS's control tables on a target (the task's `ControlSchema`).
CONTROL_SCHEMA = "awsdms_control"

#: Schema for DMS's heartbeat artifacts on a PostgreSQL source (the endpoint's
#: `HeartbeatSchema`); the default, `public`, would need CREATE on the payments schema.
HEARTBEAT_SCHEMA = "awsdms_heartbeat"

#: The payments schema.
PAYMENTS_SCHEMA = SCHEMA

#: The payment tables, schema-qualified as (schema, table).
PAYMENT_TABLES: tuple[tuple[str, str], ...] = tuple((SCHEMA, table) for table in TABLES)

#: The cutover markers table (schema, name): replicated like the payment tables, so each
#: replication login reads it and each apply login writes it; no client touches it.
MARKERS: tuple[str, str] = (SCHEMA, MARKERS_TABLE)

#: Every table privilege PostgreSQL knows (checked both ways: missing and excess).
TABLE_PRIVILEGES: tuple[str, ...] = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
)

#: What the DMS login of a pair may do on tables DMS itself creates in its own schema
#: (granted to the group by default privileges, so the clone can use them after rotation).
DMS_OWN_TABLE_PRIVILEGES: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")

#: pgaudit settings for the Aurora cluster parameter group (all dynamic: "immediate").
PGAUDIT_PARAMETERS: dict[str, str] = {
    "pgaudit.log": "ddl,role,write",
    "pgaudit.log_parameter": "0",
    "pgaudit.log_catalog": "0",
}

#: `pgaudit.log` for the Aurora master user (people and setup), set per role.
MASTER_PGAUDIT_LOG = "all"


@dataclass(frozen=True)
class Login:
    """One client's login on one server and exactly what it may do there."""

    client: str  # short key: api, dms, dms_apply, dms_target, dms_reverse, validation, rotation
    server: Server
    base: str  # the first user of the pair (or the only user of a single login)
    #: The NOLOGIN role holding the privileges; None for the single rotation admin.
    group: str | None
    purpose: str
    #: Privileges on each payment table.
    table_privileges: tuple[str, ...] = ()
    #: Those of :attr:`table_privileges` that only `paymig cutover` gives (its unfence
    #: step) and a fence takes away: the setup never grants them and keeps them as it
    #: finds them, so re-running it cannot lift a fallback's fence (a split). The login
    #: checks accept them held on every payment table or on none.
    cutover_privileges: tuple[str, ...] = ()
    #: SELECT on every other table the replication's table rules select.
    reads_replicated_tables: bool = False
    #: Privileges on the cutover markers table (:data:`MARKERS`).
    marker_privileges: tuple[str, ...] = ()
    #: Privileges on every sequence in the payments schema.
    sequence_privileges: tuple[str, ...] = ()
    #: A DMS schema (control or heartbeat) where the login creates its own tables.
    own_schema: str | None = None
    replication: bool = False  # the REPLICATION attribute, on both users
    createrole: bool = False
    #: Roles both users are made members of directly (e.g. rds_replication).
    member_of: tuple[str, ...] = ()

    @property
    def paired(self) -> bool:
        """Whether the login is a `<base>`/`<base>_clone` pair sharing a group."""
        return self.group is not None

    @property
    def users(self) -> tuple[str, ...]:
        """The login users: `<base>` and `<base>_clone`, or only `<base>`."""
        return (self.base, self.base + CLONE_SUFFIX) if self.paired else (self.base,)

    @property
    def roles(self) -> tuple[str, ...]:
        """Every role this login consists of: the group (if any), then the users."""
        return ((self.group,) if self.group else ()) + self.users

    def schemas(self) -> tuple[str, ...]:
        """Schemas the login needs USAGE on, payments schema first."""
        needs_payments = bool(self.table_privileges or self.reads_replicated_tables)
        return ((PAYMENTS_SCHEMA,) if needs_payments else ()) + (
            (self.own_schema,) if self.own_schema else ()
        )


_READ = ("SELECT",)
_API = ("SELECT", "INSERT", "UPDATE")
_APPLY = ("SELECT", "INSERT", "UPDATE", "DELETE")
_SEQUENCES = ("USAGE", "SELECT")

_API_PURPOSE = "payment API: records payments idempotently, never deletes"
_VALIDATION_PURPOSE = "validation function: reads and compares, cannot write"


def _api(server: Server) -> Login:
    # On Aurora the API writes only after a cutover: the writes come from its unfence.
    writes = tuple(p for p in _API if p != "SELECT") if server == "aurora" else ()
    return Login(
        "api", server, "paymig_api", "paymig_api_rw", _API_PURPOSE, _API,
        cutover_privileges=writes, sequence_privileges=_SEQUENCES,
    )  # fmt: skip


def _validation(server: Server) -> Login:
    return Login(
        "validation", server, "paymig_validation", "paymig_validation_ro",
        _VALIDATION_PURPOSE, _READ, reads_replicated_tables=True, marker_privileges=_READ,
    )  # fmt: skip


#: Every login, per server.
LOGINS: dict[Server, tuple[Login, ...]] = {
    "source": (
        _api("source"),
        Login(
            "dms", "source", "paymig_dms", "paymig_dms_ro",
            "DMS source endpoint: full load, and CDC from a logical replication slot",
            _READ, reads_replicated_tables=True, own_schema=HEARTBEAT_SCHEMA,
            replication=True, marker_privileges=_READ,
        ),
        _validation("source"),
        Login(
            "dms_apply", "source", "paymig_dms_apply", "paymig_dms_apply_rw",
            f"DMS target endpoint of the way back (Aurora to source after cutover), control "
            f"tables in {CONTROL_SCHEMA}",
            _APPLY, own_schema=CONTROL_SCHEMA, marker_privileges=_APPLY,
        ),
        Login(
            "rotation", "source", "paymig_rotation", None,
            "rotation function: changes the pair users' passwords", createrole=True,
        ),
    ),
    "aurora": (
        _api("aurora"),
        Login(
            "dms_target", "aurora", "paymig_dms_target", "paymig_dms_target_rw",
            f"DMS target endpoint: full load and CDC apply, control tables in {CONTROL_SCHEMA}",
            _APPLY, own_schema=CONTROL_SCHEMA, marker_privileges=_APPLY,
        ),
        _validation("aurora"),
        Login(
            "dms_reverse", "aurora", "paymig_dms_reverse", "paymig_dms_reverse_ro",
            "DMS source endpoint for reverse replication (the fallback path)",
            _READ, reads_replicated_tables=True, own_schema=HEARTBEAT_SCHEMA,
            member_of=("rds_replication",), marker_privileges=_READ,
        ),
    ),
}  # fmt: skip


def logins_for(server: Server) -> tuple[Login, ...]:
    """The logins of one server, in a fixed order."""
    return LOGINS[server]


def login_for(server: Server, client: str) -> Login:
    """The login a client uses on a server; a one-line error when there is none."""
    for login in LOGINS[server]:
        if login.client == client:
            return login
    known = ", ".join(login.client for login in LOGINS[server])
    raise PaymigError(f"login: no {client!r} login on {server} (known: {known})")


def user_names(server: Server) -> tuple[str, ...]:
    """Every login user on a server, each pair's base user before its clone."""
    return tuple(user for login in LOGINS[server] for user in login.users)


def expected_table_privileges(login: Login, table: tuple[str, str]) -> frozenset[str]:
    """What `login` must hold on `table` (schema, name), and nothing more."""
    if table in PAYMENT_TABLES:
        return frozenset(login.table_privileges)
    if table == MARKERS:
        return frozenset(login.marker_privileges)
    if login.reads_replicated_tables:
        return frozenset(_READ)
    return frozenset()


__all__ = [
    "CLONE_SUFFIX",
    "CONTROL_SCHEMA",
    "HEARTBEAT_SCHEMA",
    "LOGINS",
    "MARKERS",
    "MASTER_PGAUDIT_LOG",
    "PAYMENT_TABLES",
    "PGAUDIT_PARAMETERS",
    "SERVERS",
    "TABLE_PRIVILEGES",
    "Login",
    "Server",
    "expected_table_privileges",
    "login_for",
    "logins_for",
    "user_names",
]
