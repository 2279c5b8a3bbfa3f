"""What lancesql supports, for SQLAlchemy's compliance suite.

Each closed requirement is something lancesql does not do, by design of Lance (no
constraints, keys, sequences, transactions or temporary tables) or not yet; its reason
is what pytest prints for the tests it skips (``-rs``). The few tests no requirement
covers are listed, with their reasons, in ``conftest.NOT_SUPPORTED``.
"""

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements

opn = exclusions.open


def closed(reason: str) -> property:
    """A requirement lancesql does not meet, and why."""
    return property(lambda self: exclusions.closed(f"lancesql: {reason}"))


NO_CONSTRAINTS = "Lance datasets keep no constraints or keys: CREATE TABLE leaves them out"
NO_TRANSACTIONS = "no transactions: every statement commits its own Lance version"


class Requirements(SuiteRequirements):
    foreign_keys = closed(NO_CONSTRAINTS)
    primary_key_constraint_reflection = closed(NO_CONSTRAINTS)
    foreign_key_constraint_reflection = closed(NO_CONSTRAINTS)
    unique_constraint_reflection = closed(NO_CONSTRAINTS)
    check_constraint_reflection = closed(NO_CONSTRAINTS)
    unique_constraints_reflect_as_index = closed(NO_CONSTRAINTS)
    duplicate_key_raises_integrity_error = closed(
        "no primary key is kept, so a second row with the same key is not refused"
    )
    autoincrement_insert = closed("no autoincrement or sequences: ids are values the writer gives")
    autoincrement_without_sequence = closed("no autoincrement: ids are values the writer gives")
    returning = closed("no RETURNING (not yet): read the rows back with a SELECT")
    insert_returning = closed("no RETURNING (not yet)")
    insert_executemany_returning = closed("no RETURNING (not yet)")
    empty_inserts = closed("no column defaults, so no INSERT of an empty row")
    empty_inserts_executemany = closed("no column defaults, so no INSERT of an empty row")
    savepoints = closed(NO_TRANSACTIONS)
    two_phase_transactions = closed(NO_TRANSACTIONS)
    schemas = closed("one schema per root (main); a table's root is its schema")
    temporary_tables = closed("no temporary tables: a table is a Lance dataset under the root")
    temp_table_reflection = closed("no temporary tables")
    temp_table_names = closed("no temporary tables")
    comment_reflection = closed("Lance keeps no table or column comments")
    # Views: CREATE [TEMP] VIEW; stored views are listed, their columns and definition reflected.
    views = opn()
    view_reflection = opn()
    view_column_reflection = opn()
    index_reflection = closed(
        "a Lance index covers one column (USING BTREE/BITMAP/IVF_PQ ...); the suite's tables"
        " are indexed on several columns at once (single-column indexes reflect: test_sqlalchemy.py)"
    )
    indexes_with_ascdesc = closed("Lance indices have no ASC/DESC")
    indexes_with_expressions = closed("Lance indices cover a column, not an expression")
    uuid_data_type = closed("Lance has no UUID type (store UUIDs as VARCHAR)")
    json_type = closed("Lance has no JSON type (store JSON as VARCHAR)")
    time_timezone = closed("Arrow's TIME has no time zone")
    # Rows changed by executemany are summed (lancesql's cursor.rowcount).
    sane_multi_rowcount = opn()
    # What lancesql does beyond SQLAlchemy's defaults (these run).
    create_table_if_not_exists = opn()
    table_ddl_if_exists = opn()
    create_table_as = opn()
    create_or_replace_view = opn()
    regexp_match = opn()
    regexp_replace = opn()
    supports_bitwise_or = opn()
    supports_bitwise_and = opn()
    supports_bitwise_not = opn()
    supports_bitwise_xor = opn()
    supports_bitwise_shift = opn()
    fetch_first = opn()
    fetch_no_order_by = opn()
    infinity_floats = opn()
    tuple_in = opn()
    tuple_in_w_empty = opn()
    time_microseconds = opn()
    datetime_literals = opn()
    precision_numerics_many_significant_digits = opn()
    # ... and what it does not, beyond SQLAlchemy's defaults.
    index_ddl_if_exists = closed("CREATE INDEX has no IF NOT EXISTS: use WITH (replace = true)")
    fetch_expression = closed("OFFSET/FETCH take a number or a parameter, not an expression")
    fetch_ties = opn()
    fetch_percent = closed("no FETCH ... PERCENT")
    temporary_views = closed("the suite's temporary views are over temporary tables, which lancesql has not")
