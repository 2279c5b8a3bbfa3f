"""Views: named queries, temporary (one connection's) or stored under the root.

A stored view lives in a small Lance dataset at ``<root>/_views.lance`` (one row per view:
``name``, ``sql``), so it is written and read through the same storage Lance uses for the
tables, with the connection's ``storage_options``, on a local root and on ``s3://``,
``gs://`` ... alike, and every connection on the root sees it. Each CREATE or DROP VIEW
commits a version of it. ``_views`` is not listed as a table.
"""

from __future__ import annotations

import lance
import pyarrow as pa
import sqlglot
from sqlglot import exp

from lancesql.catalog import Catalog
from lancesql.errors import ProgrammingError
from lancesql.parse import DIALECT

#: The name of the dataset under the root that holds the stored views.
STORE = "_views"
_SCHEMA = pa.schema(
    [pa.field("name", pa.string(), nullable=False), pa.field("sql", pa.string(), nullable=False)]
)


def stored(catalog: Catalog) -> dict[str, str]:
    """The views stored under the root: name -> SQL (empty when there are none)."""
    uri = catalog.uri_for(STORE)
    if not catalog.exists(uri):
        return {}
    table = catalog.latest(uri).to_table()
    return dict(zip(table["name"].to_pylist(), table["sql"].to_pylist(), strict=True))


def store(catalog: Catalog, views: dict[str, str]) -> None:
    """Write the root's views (all of them: one small version)."""
    uri = catalog.uri_for(STORE)
    data = pa.table({"name": list(views), "sql": list(views.values())}, schema=_SCHEMA)
    mode = "overwrite" if catalog.exists(uri) else "create"
    ds = lance.write_dataset(data, uri, mode=mode, storage_options=catalog.storage_options)
    catalog.refreshed(ds)


def parsed(views: dict[str, str]) -> dict[str, exp.Query]:
    """Each view's query as a tree."""
    out: dict[str, exp.Query] = {}
    for name, sql in views.items():
        tree = sqlglot.parse_one(sql, read=DIALECT)
        if not isinstance(tree, exp.Query):
            raise ProgrammingError(
                f"view {name!r} does not hold a query: DROP VIEW {name} and create it again"
            )
        out[name] = tree
    return out
