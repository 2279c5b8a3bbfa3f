"""The SQLAlchemy 2 dialect: ``create_engine("lancesql:///path/to/root?engine=duckdb")``.

Registered as ``lancesql`` through the ``sqlalchemy.dialects`` entry point, so pandas'
``read_sql``, JupySQL's ``%sql`` and anything else that takes a SQLAlchemy URL reach
lancesql. URL forms (see :func:`connect_args`):

- ``lancesql:///data`` (relative path), ``lancesql:////srv/data`` (absolute path);
- ``lancesql:///?uri=s3://bucket/db&storage.aws_region=us-east-1``: a remote root,
  any URI Lance opens, with Lance ``storage_options`` as ``storage.<key>`` parameters;
- ``engine=duckdb|datafusion``; any other parameter is a ``lancesql.*`` setting
  (``?clip_device=cpu&vector_nprobes=32``).

lancesql has no transactions (each statement commits a Lance version), no schemas
and no constraints: the dialect says so (autocommit, one schema ``main``, constraints
left out of CREATE TABLE), and Lance's indices are reflected as indexes.
"""

from lancesql.sqlalchemy.dialect import BLOB, VECTOR, LanceSQLDialect, connect_args

__all__ = ["BLOB", "VECTOR", "LanceSQLDialect", "connect_args"]
