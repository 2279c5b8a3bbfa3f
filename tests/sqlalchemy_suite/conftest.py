"""SQLAlchemy's own dialect compliance suite, run against lancesql.

This folder is its own pytest run (SQLAlchemy's pytest plugin takes over collection):
``scripts/test.sh`` runs it as ``pytest -c tests/sqlalchemy_suite/pytest.ini ...`` with
``--dburi lancesql:///<a fresh directory>``; the main run ignores it. What lancesql does
not support is said in :mod:`tests.sqlalchemy_suite.requirements`.
"""

import pytest
from sqlalchemy.dialects import registry

registry.register("lancesql", "lancesql.sqlalchemy", "LanceSQLDialect")
registry.register("lancesql.lancesql", "lancesql.sqlalchemy", "LanceSQLDialect")
pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403

from tests.sqlalchemy_suite import provision  # noqa: E402, F401  (registers the hooks)
