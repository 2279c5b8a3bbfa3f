"""``lance_scan(uri [, version])``: a Lance dataset by name or URI, at a version."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lance

from lancesql.catalog import TableRef, VersionRef
from lancesql.errors import ProgrammingError
from udfs.registry import table_function

if TYPE_CHECKING:
    from lancesql.connection import Connection


@table_function("lance_scan", "uri", "version")
def lance_scan(connection: Connection, uri: str, version: VersionRef = None) -> lance.LanceDataset:
    """The dataset at ``uri`` (a table name under the root, a path or a URI), at
    ``version``: a number, a tag name or a timestamp; the latest when omitted.
    """
    if not isinstance(uri, str) or not uri:
        raise ProgrammingError("lance_scan() needs a table name or a dataset URI as its first argument")
    catalog = connection.catalog
    return catalog.open(TableRef(catalog.resolve_uri(uri), version))
