"""``lance_scan(uri [, version])``: a Lance dataset by name or URI, at a version."""

from __future__ import annotations

import pyarrow as pa

from lancesql.catalog import TableRef, VersionRef
from lancesql.errors import ProgrammingError
from lancesql.lance_sql import alike
from lancesql.udfs.registry import Session, Source, table_function


@table_function("lance_scan")
def lance_scan(
    session: Session,
    uri: str,
    version: VersionRef = None,
    branch: str | None = None,
    columns: list[str] | None = None,
    filter: str | None = None,
    limit: int | None = None,
) -> Source:
    """The dataset at ``uri`` (a table name under the root, a path or a URI), at
    ``version``: a number, a tag name or a timestamp; the latest when omitted. With
    ``branch``, the version is one of that branch's (a tag names its own branch's).

    ``columns``, ``filter`` and ``limit`` are set by the ``push_limit`` rule for a plain
    scan with a LIMIT: Lance then reads just those rows of just those columns.
    """
    if not isinstance(uri, str) or not uri:
        raise ProgrammingError("lance_scan() needs a table name or a dataset URI as its first argument")
    catalog = session.catalog
    ds = catalog.open(TableRef(catalog.resolve_uri(uri, branch), version))
    if limit is None:
        return ds
    if limit < 0:
        raise ProgrammingError(f"LIMIT must not be negative, got {limit}")
    known = set(ds.schema.names)
    if columns is not None and not set(columns) <= known:
        return ds  # a name the engine will resolve (or reject) itself
    if filter is not None and not alike(filter, ds.schema):
        return ds  # Lance would read the filter otherwise than SQL (literal types): the engine does it all
    try:
        scanner = ds.scanner(columns=columns, filter=filter, limit=limit)
    except (ValueError, OSError, RuntimeError):
        return ds  # a filter Lance reads differently: let the engine do it all
    schema = scanner.projected_schema
    return pa.RecordBatchReader.from_batches(schema, scanner.to_batches())
