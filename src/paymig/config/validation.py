"""The `validation` section: the data-consistency validator and the load it may put on.

A full pass reads every row of both databases, so its load is bounded here: workers per
side, a statement timeout, an optional rate limit, optional replicas to read instead of
the primaries, and how long one snapshot is held. The same settings drive
`paymig validate`, the validation job on AWS and the deployment check.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from paymig.config.base import _Model

#: Lambda's hard limit on one invocation, in seconds; the job's function runs with it.
LAMBDA_TIMEOUT_SECONDS = 900

#: libpq keywords a replica DSN in the configuration may not carry (secrets live elsewhere).
_SECRET_KEYWORDS = ("password", "passfile", "sslpassword")


def _check_replica_dsn(value: str | None) -> str | None:
    """A replica DSN is libpq ``key=value`` keywords without any secret."""
    if value is None:
        return None
    from psycopg import conninfo  # here: only configs that name a replica pay the import

    try:
        keywords = conninfo.conninfo_to_dict(value)
    except Exception as exc:  # psycopg raises ProgrammingError with libpq's reason
        raise ValueError(f"not a libpq connection string: {str(exc).strip()}") from None
    secret = [k for k in _SECRET_KEYWORDS if k in keywords]
    if secret or "@" in value.split("?", 1)[0]:
        raise ValueError("must not hold a password: the login comes from the DSN or secret")
    if "host" not in keywords:
        raise ValueError("must name the replica's host")
    return value


class ValidationConfig(_Model):
    """The data-consistency validator (`paymig validate`, the job, the gate and the checks)."""

    grace_seconds: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description=(
            "Seconds after which a differing key is re-checked before it is reported, so "
            "that replication in flight is not reported as corruption. Used by the "
            "controller's gate, the validation job and the deployment check; "
            "`paymig validate` defaults to 0."
        ),
    )
    max_keys_reported: int = Field(
        default=100,
        ge=0,
        le=1_000,
        description="Keys listed per kind of difference and table; the full count is always given.",
    )
    workers: int = Field(
        default=4,
        ge=1,
        le=64,
        description=(
            "Parallel queries per side (connections to each database, over all the slices "
            "the job runs at once)."
        ),
    )
    range_rows: int = Field(
        default=20_000,
        ge=100,
        description="Target rows per top-level key range whose aggregate hash is compared.",
    )
    leaf_rows: int = Field(
        default=2_000,
        ge=1,
        description=(
            "A differing range with at most this many rows on each side is compared row by "
            "row (key and row hash); larger ones are split further."
        ),
    )
    fanout: int = Field(
        default=16, ge=2, le=256, description="Pieces a differing range is split into."
    )
    statement_timeout_seconds: float = Field(
        default=120.0,
        ge=1,
        le=600,
        description=(
            "`statement_timeout` of every validator session on both sides: PostgreSQL "
            "cancels a validator query that runs longer."
        ),
    )
    rate_limit_rows_per_second: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Rows per second a pass may read from each side, over all its workers; unset "
            "means no limit beyond `workers`."
        ),
    )
    batch_seconds: float = Field(
        default=60.0,
        ge=0.001,
        le=300,
        description=(
            "A pass works in batches: it compares key ranges for at most this long in one "
            "snapshot per side, then re-checks and records them (a checkpoint) and takes "
            "a fresh snapshot. Bounds how long vacuum is held back and what a crash loses."
        ),
    )
    source_replica_dsn: str | None = Field(
        default=None,
        description=(
            "libpq keywords of a hot standby of the on-prem source that full passes read "
            "instead of the primary: `host=` the standby's address, `port=` if not 5432; the "
            "login and database come from the source DSN. No password here."
        ),
    )
    target_replica_dsn: str | None = Field(
        default=None,
        description=(
            "libpq keywords of the Aurora reader endpoint that `paymig validate` reads "
            "instead of the target DSN's host (the job on AWS uses `use_aurora_reader`). "
            "No password here."
        ),
    )
    use_aurora_reader: bool = Field(
        default=True,
        description=(
            "The validation job on AWS reads Aurora through the cluster's reader endpoint, "
            "so a full pass does not load the writer."
        ),
    )
    job_concurrency: int = Field(
        default=1,
        ge=1,
        le=16,
        description=(
            "Slices the validation job compares at once (its Map state's MaxConcurrency); "
            "`workers` and the rate limit are shared among them."
        ),
    )
    estimated_rows_per_second_per_worker: int = Field(
        default=150_000,
        gt=0,
        description=(
            "Rows one worker compares per second on each side; sizes the job's slices and "
            "the duration estimates. About 340,000 were measured per worker on 2 cores with "
            "both databases local (benchmarks/README.md); the default leaves room for the "
            "network and a busy production server."
        ),
    )
    estimated_rows: int = Field(
        default=1_500_000_000,
        ge=0,
        description=(
            "Rows in scope on the source, for the duration estimate of `paymig validate "
            "--help`; `paymig validate --estimate` reads the real sizes from the catalog."
        ),
    )
    changed_columns: dict[str, str] = Field(
        default_factory=lambda: {"public.payments": "updated_at"},
        description=(
            "Per table (`schema.name`), an indexed timestamp column every write sets; the "
            "deployment check compares the rows whose value is at or after the start of "
            "the latest full pass (less `changed_margin_seconds`)."
        ),
    )
    changed_margin_seconds: int = Field(
        default=3_600,
        ge=0,
        description=(
            "How far before the latest full pass's start the deployment check looks for "
            "changed rows (clock skew between writers, transactions open at the start)."
        ),
    )
    deploy_check_max_rows: int = Field(
        default=1_000_000,
        ge=1,
        description=(
            "Most rows the deployment check compares per table: more changed rows, or a "
            "table without a changed column that is larger, means a new full pass is due."
        ),
    )
    full_pass_max_age_hours: float = Field(
        default=168.0,
        gt=0,
        description=(
            "Oldest start of the latest full pass the deployment check accepts; an older "
            "pass fails the check (run the validation job again)."
        ),
    )

    _replica = field_validator("source_replica_dsn", "target_replica_dsn")(_check_replica_dsn)

    @field_validator("changed_columns")
    @classmethod
    def _qualified_tables(cls, value: dict[str, str]) -> dict[str, str]:
        """Tables are named `schema.name`; columns are plain names."""
        for table, column in value.items():
            schema, dot, name = table.partition(".")
            if not (schema and dot and name):
                raise ValueError(f"{table!r} is not of the form SCHEMA.NAME")
            if not column or "." in column:
                raise ValueError(f"{table}: {column!r} is not a column name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ValidationConfig:
        """Leaves below ranges; one batch fits in one Lambda invocation; slices get workers."""
        if self.leaf_rows >= self.range_rows:
            raise ValueError(
                f"leaf_rows ({self.leaf_rows}) must be smaller than range_rows ({self.range_rows})"
            )
        if self.job_concurrency > self.workers:
            raise ValueError(
                f"job_concurrency ({self.job_concurrency}) exceeds workers ({self.workers}): "
                "each slice needs at least one worker per side"
            )
        if self.invocation_reserve_seconds > LAMBDA_TIMEOUT_SECONDS:
            raise ValueError(
                f"batch_seconds + grace_seconds + 2 x statement_timeout_seconds + 60 "
                f"({self.invocation_reserve_seconds:g} s) must fit in one Lambda invocation "
                f"({LAMBDA_TIMEOUT_SECONDS} s)"
            )
        return self

    @property
    def invocation_reserve_seconds(self) -> float:
        """Time one batch may take at worst: a job invocation starts one only with this left."""
        return self.batch_seconds + self.grace_seconds + 2 * self.statement_timeout_seconds + 60
