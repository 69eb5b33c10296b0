"""The pure core of the validator: range planning, bisection decisions, classification.

Nothing here talks to a database. A key is a tuple of the primary-key column values in
their canonical text form (as PostgreSQL prints them with the validator's session
settings). A :class:`KeyRange` is half-open, ``lower <= key < upper``, with ``None``
meaning unbounded, so a list of boundaries always partitions its parent range completely
whatever the key values are: rows that exist on only one side still fall in exactly one
sub-range.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

Key = tuple[str, ...]

#: A table-scope rule: (schema name, table name pattern with ``%`` wildcards, action).
ScopeRule = tuple[str, str, str]


@dataclass(frozen=True)
class KeyRange:
    """Keys with ``lower <= key < upper``; a ``None`` bound is unbounded."""

    lower: Key | None = None
    upper: Key | None = None


@dataclass(frozen=True)
class Aggregate:
    """What one side reports for a range: its row count and the sum of its row hashes."""

    rows: int
    digest: int


class Step(Enum):
    """What to do with a range once both sides' aggregates are known."""

    EQUAL = "equal"
    FETCH = "fetch"
    SPLIT = "split"


class Kind(Enum):
    """How a key differs between the two sides."""

    MISSING = "missing_in_target"
    EXTRA = "extra_in_target"
    DIFFERENT = "different"


def decide(source: Aggregate, target: Aggregate, leaf_rows: int) -> Step:
    """Equal aggregates end the range; small differing ranges are fetched, others split.

    The digest is the exact (arbitrary-precision) sum of 64-bit row hashes, so two
    ranges with the same count and digest differ only through a hash collision.
    """
    if source == target:
        return Step.EQUAL
    if max(source.rows, target.rows) <= leaf_rows:
        return Step.FETCH
    return Step.SPLIT


def split_step(rows: int, fanout: int) -> int:
    """Rows per sub-range when a range of ``rows`` rows is split ``fanout`` ways."""
    if fanout < 2:
        raise ValueError(f"fanout must be at least 2, got {fanout}")
    return max(1, math.ceil(rows / fanout))


def split_range(parent: KeyRange, boundaries: Sequence[Key]) -> list[KeyRange]:
    """Cut ``parent`` at each boundary; the pieces partition it exactly.

    ``boundaries`` must be strictly increasing keys inside the parent (as the database
    returns them in key order). Duplicates are dropped so no piece is empty by
    construction.
    """
    cuts: list[Key] = []
    for key in boundaries:
        if parent.lower is not None and key == parent.lower:
            continue
        if cuts and key == cuts[-1]:
            continue
        cuts.append(key)
    edges: list[Key | None] = [parent.lower, *cuts, parent.upper]
    return [KeyRange(lo, hi) for lo, hi in itertools.pairwise(edges)]


def quantiles(ordered_sample: Sequence[Key], parts: int) -> list[Key]:
    """Up to ``parts - 1`` distinct boundaries that cut an ordered key sample evenly."""
    if parts <= 1 or not ordered_sample:
        return []
    size = len(ordered_sample)
    picked: list[Key] = []
    for index in range(1, parts):
        key = ordered_sample[min(size - 1, (index * size) // parts)]
        if not picked or key != picked[-1]:
            picked.append(key)
    return picked


def segment_count(estimated_rows: int, range_rows: int, max_segments: int) -> int:
    """How many top-level ranges to cut a table of about ``estimated_rows`` rows into."""
    if estimated_rows <= 0:
        return 1
    return max(1, min(max_segments, math.ceil(estimated_rows / range_rows)))


#: Rows per page assumed for a table never analyzed (only the range count depends on it).
ROWS_PER_PAGE_GUESS = 60


def estimate_rows(reltuples: int, relpages: int, pages: int) -> int:
    """Estimate a table's rows as the planner does: last known density times pages now.

    ``reltuples``/``relpages`` are the statistics in ``pg_class`` (``reltuples`` is -1
    before the first ANALYZE); ``pages`` is the table's current size in pages.
    """
    if reltuples >= 0 and relpages > 0:
        return math.ceil(reltuples / relpages * pages)
    if reltuples > 0:
        return reltuples
    return pages * ROWS_PER_PAGE_GUESS


#: Below this many rows a sample reads every page (``BERNOULLI``) for an even spread;
#: above it, whole random pages (``SYSTEM``), which reads only the sampled pages.
PAGE_SAMPLING_ROWS = 1_000_000


@dataclass(frozen=True)
class SamplePlan:
    """How to sample keys: ``TABLESAMPLE method (percent)``, keeping every ``thin``-th."""

    method: str
    percent: float
    thin: int


def _percent(wanted: int, total: int) -> float:
    """Return the percentage of ``total`` that yields about ``wanted`` (0.0001-100)."""
    if total <= 0:
        return 100.0
    return min(100.0, max(0.0001, 100.0 * wanted / total))


def sample_plan(estimated_rows: int, pages: int, wanted_keys: int) -> SamplePlan:
    """Plan a key sample of about ``wanted_keys`` keys spread over the whole table.

    ``SYSTEM`` returns whole pages, i.e. runs of neighbouring keys: quantiles of a few
    such runs would cut a table into a few huge ranges and many tiny ones. So it samples
    one page per wanted key and keeps one key per page's worth of rows (in key order).
    """
    if estimated_rows < PAGE_SAMPLING_ROWS or pages <= 0:
        return SamplePlan("BERNOULLI", _percent(wanted_keys, estimated_rows), 1)
    per_page = max(1, round(estimated_rows / pages))
    return SamplePlan("SYSTEM", _percent(wanted_keys, pages), per_page)


def classify(source: Mapping[Key, int], target: Mapping[Key, int]) -> Iterator[tuple[Kind, Key]]:
    """Yield every key whose presence or row hash differs between the two sides."""
    for key, digest in source.items():
        other = target.get(key)
        if other is None:
            yield Kind.MISSING, key
        elif other != digest:
            yield Kind.DIFFERENT, key
    for key in target:
        if key not in source:
            yield Kind.EXTRA, key


def column_mismatch(
    table: str, source_columns: Sequence[str], target_columns: Sequence[str]
) -> str | None:
    """Describe how two column sets differ (matched by name), or ``None`` if they match."""
    only_source = sorted(set(source_columns) - set(target_columns))
    only_target = sorted(set(target_columns) - set(source_columns))
    if not only_source and not only_target:
        return None
    parts = []
    if only_source:
        parts.append(f"only on source: {', '.join(only_source)}")
    if only_target:
        parts.append(f"only on target: {', '.join(only_target)}")
    return f"table {table}: columns differ between source and target ({'; '.join(parts)})"


# --------------------------------------------------------------------------- table scope

_ACTIONS = ("include", "exclude")


def _pattern(text: str) -> re.Pattern[str]:
    """Compile a DMS-style name pattern: ``%`` matches any run of characters."""
    return re.compile("^" + ".*".join(re.escape(part) for part in text.split("%")) + "$")


def in_scope(schema: str, table: str, rules: Sequence[ScopeRule]) -> bool:
    """Whether a table matches an ``include`` rule and no ``exclude`` rule.

    Schema and table names are patterns, with ``%`` as the only wildcard (as in AWS DMS
    table mappings); everything else matches literally.
    """
    included = False
    for rule_schema, rule_table, action in rules:
        if action not in _ACTIONS:
            raise ValueError(f"scope rule action must be include or exclude, got {action!r}")
        if _pattern(rule_schema).match(schema) and _pattern(rule_table).match(table):
            if action == "exclude":
                return False
            included = True
    return included


def parse_table_name(text: str) -> tuple[str, str]:
    """Split ``SCHEMA.NAME`` into its parts; raise ``ValueError`` naming the problem."""
    schema, dot, name = text.partition(".")
    if not dot or not schema or not name:
        raise ValueError(f"{text!r} is not of the form SCHEMA.NAME")
    return schema, name
