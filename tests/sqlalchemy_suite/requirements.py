"""What lancesql supports, for SQLAlchemy's compliance suite.

Each closed requirement is something lancesql does not do, by design of Lance (no
constraints, keys, sequences, transactions or temporary tables) or not yet.
"""

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements

closed = exclusions.closed
opn = exclusions.open


class Requirements(SuiteRequirements):
    # Lance datasets have no constraints or keys: CREATE TABLE leaves them out.
    foreign_keys = property(lambda self: closed())
    primary_key_constraint_reflection = property(lambda self: closed())
    foreign_key_constraint_reflection = property(lambda self: closed())
    unique_constraint_reflection = property(lambda self: closed())
    check_constraint_reflection = property(lambda self: closed())
    unique_constraints_reflect_as_index = property(lambda self: closed())
    # No autoincrement, sequences or RETURNING: ids are values the writer gives.
    autoincrement_insert = property(lambda self: closed())
    autoincrement_without_sequence = property(lambda self: closed())
    returning = property(lambda self: closed())
    insert_returning = property(lambda self: closed())
    insert_executemany_returning = property(lambda self: closed())
    empty_inserts = property(lambda self: closed())
    empty_inserts_executemany = property(lambda self: closed())
    # No transactions: every statement commits its own Lance version.
    independent_connections = property(lambda self: closed())
    savepoints = property(lambda self: closed())
    two_phase_transactions = property(lambda self: closed())
    # One schema, no temporary tables, no comments.
    schemas = property(lambda self: closed())
    temporary_tables = property(lambda self: closed())
    temp_table_reflection = property(lambda self: closed())
    temp_table_names = property(lambda self: closed())
    comment_reflection = property(lambda self: closed())
    # Views: lancesql's CREATE VIEW is reflected by name only (no definition).
    views = property(lambda self: closed())
    view_reflection = property(lambda self: closed())
    view_column_reflection = property(lambda self: closed())
    # Lance indices are one column each, made with USING BTREE/BITMAP/IVF_PQ/...
    index_reflection = property(lambda self: closed())
    indexes_with_ascdesc = property(lambda self: closed())
    indexes_with_expressions = property(lambda self: closed())
    # Types Lance stores no native form of.
    uuid_data_type = property(lambda self: closed())
    json_type = property(lambda self: closed())
    datetime_timezone = property(lambda self: closed())
    time_timezone = property(lambda self: closed())
    datetime_implicit_bound = property(lambda self: closed())
    # Rows changed by executemany are summed (lancesql's cursor.rowcount).
    sane_multi_rowcount = property(lambda self: opn())
    # Column names Lance refuses (a dot makes a struct path).
    symbol_names_w_double_quote = property(lambda self: closed())
