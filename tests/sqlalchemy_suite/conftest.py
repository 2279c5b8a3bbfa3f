"""SQLAlchemy's own dialect compliance suite, run against lancesql.

This folder is its own pytest run (SQLAlchemy's pytest plugin takes over collection):
``scripts/test.sh`` runs it as ``pytest -c tests/sqlalchemy_suite/pytest.ini ...`` with
``--dburi lancesql:///<a fresh directory>``; the main run ignores it. What lancesql does
not support is said in :mod:`tests.sqlalchemy_suite.requirements`, and for the few tests
no requirement covers, in :data:`NOT_SUPPORTED` below.
"""

import pytest
from sqlalchemy.dialects import registry

registry.register("lancesql", "lancesql.sqlalchemy", "LanceSQLDialect")
registry.register("lancesql.lancesql", "lancesql.sqlalchemy", "LanceSQLDialect")
pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403

from tests.sqlalchemy_suite import provision  # noqa: E402, F401  (registers the hooks)

#: (test class, start of the test's name) -> why lancesql does not pass it.
NOT_SUPPORTED = {
    ("ComponentReflectionTestExtra", "test_string_length_reflection["): (
        "Lance strings have no length: String(52) is stored as a string, reflected as VARCHAR"
    ),
    ("InsertBehaviorTest", "test_insert_from_select_autoinc"): (
        "no autoincrement: this test leaves the integer primary key (NOT NULL) to the database"
    ),
    ("InsertBehaviorTest", "test_no_results_for_non_returning_insert["): (
        "no autoincrement: this test leaves the integer primary key (NOT NULL) to the database"
    ),
    ("DifficultParametersTest", "test_round_trip_same_named_column[dot.s]"): (
        "Lance refuses a '.' in a top-level column name (a dot names a struct field)"
    ),
    ("LongNameBlowoutTest", "test_long_convention_name[ix-"): (
        "a Lance index covers one column; this test indexes two"
    ),
    ("TrueDivTest", "test_truediv_divisor[numeric_38_digit_divisor-"): (
        "DuckDB divides DECIMALs in DOUBLE: 3e37 / 1e37 is 3.0000000000000004"
    ),
    ("TrueDivTest", "test_truediv_divisor[numeric_many_decimals-"): (
        "DuckDB divides DECIMALs in DOUBLE: the quotient is 7.000000000000001"
    ),
}


def pytest_runtest_setup(item: pytest.Item) -> None:
    cls = item.getparent(pytest.Class)
    for (cls_name, test), reason in NOT_SUPPORTED.items():
        if cls is not None and cls.name.split("_lancesql")[0] == cls_name and item.name.startswith(test):
            pytest.skip(f"lancesql: {reason}")
