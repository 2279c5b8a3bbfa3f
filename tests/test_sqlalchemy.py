"""The SQLAlchemy dialect: URLs, pandas, inspection, text() and Core select()."""

from __future__ import annotations

import warnings
from decimal import Decimal
from importlib import import_module
from pathlib import Path

import lance
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import registry

import lancesql
from lancesql.sqlalchemy import BLOB, VECTOR, LanceSQLDialect

# The entry point does this once the package is installed; the tests run from a checkout.
registry.register("lancesql", "lancesql.sqlalchemy", "LanceSQLDialect")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def root(tmp_path):
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "id": pa.array(range(50), pa.int64()),
            "label": pa.array([i % 5 for i in range(50)], pa.int32()),
            "caption": [f"item {i}" for i in range(50)],
            "image": pa.array([bytes([i]) * 10 for i in range(50)], pa.large_binary()),
            "emb": pa.FixedSizeListArray.from_arrays(
                pa.array(rng.normal(size=50 * 16).astype(np.float32)), 16
            ),
            "score": pa.array(rng.random(50), pa.float64()),
        }
    )
    lance.write_dataset(table, str(tmp_path / "train.lance"))
    lance.write_dataset(pa.table({"k": [1, 2]}), str(tmp_path / "small.lance"))
    return tmp_path


def test_entry_point_names_the_dialect():
    """pyproject's sqlalchemy.dialects entry point resolves to the dialect class."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = meta["project"]["entry-points"]["sqlalchemy.dialects"]["lancesql"]
    module, _, name = target.partition(":")
    assert getattr(import_module(module), name) is LanceSQLDialect


def test_read_sql_without_warning(root):
    engine = sa.create_engine(f"lancesql:///{root}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = pd.read_sql("SELECT label, count(*) AS n FROM train GROUP BY label ORDER BY label", engine)
    oracle = lance.dataset(str(root / "train.lance")).to_table().to_pandas()
    expected = oracle.groupby("label").size().reset_index(name="n")
    assert df["label"].tolist() == expected["label"].tolist()
    assert df["n"].tolist() == expected["n"].tolist()


def test_inspect_lists_tables_and_typed_columns(root):
    inspector = sa.inspect(sa.create_engine(f"lancesql:///{root}"))
    assert inspector.get_table_names() == ["small", "train"]
    columns = {c["name"]: c["type"] for c in inspector.get_columns("train")}
    assert isinstance(columns["emb"], VECTOR) and columns["emb"].dim == 16
    assert isinstance(columns["image"], BLOB)
    assert isinstance(columns["id"], sa.BIGINT) and isinstance(columns["label"], sa.INTEGER)
    assert isinstance(columns["score"], sa.DOUBLE) and isinstance(columns["caption"], sa.VARCHAR)
    assert inspector.has_table("train") and not inspector.has_table("nope")
    with pytest.raises(sa.exc.NoSuchTableError):
        inspector.get_columns("nope")
    # Reflected metadata round-trips into a Core query.
    train = sa.Table("train", sa.MetaData(), autoload_with=inspector.bind)
    assert [c.name for c in train.columns] == ["id", "label", "caption", "image", "emb", "score"]


def test_inspect_lists_views_with_their_columns_and_query(root):
    """Stored views (every connection's) and TEMP views (this connection's) are told apart,
    their columns reflect as a table's do, and the definition is the SQL lancesql stored."""
    engine = sa.create_engine(f"lancesql:///{root}", poolclass=sa.pool.StaticPool)
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE VIEW twos AS SELECT id, caption FROM train WHERE label = 2"))
        conn.execute(sa.text("CREATE TEMP VIEW mine AS SELECT k FROM small"))
        inspector = sa.inspect(conn)
        assert inspector.get_table_names() == ["small", "train"]
        assert inspector.get_view_names() == ["twos"]
        assert inspector.get_temp_view_names() == ["mine"]
        assert inspector.has_table("twos") and inspector.has_table("mine")
        columns = {c["name"]: c["type"] for c in inspector.get_columns("twos")}
        assert isinstance(columns["id"], sa.BIGINT) and isinstance(columns["caption"], sa.VARCHAR)
        definition = inspector.get_view_definition("twos")
        assert "label = 2" in definition and "train" in definition
        assert "small" in inspector.get_view_definition("mine")
        with pytest.raises(sa.exc.NoSuchTableError):
            inspector.get_view_definition("train")
        # A reflected view reads as the same rows as its query (the oracle: the Lance table).
        twos = sa.Table("twos", sa.MetaData(), autoload_with=conn)
        got = sorted(conn.execute(sa.select(twos.c.id)).scalars())
    assert got == [i for i in range(50) if i % 5 == 2]
    # Another engine (another connection) sees the stored view, not the TEMP one.
    fresh = sa.inspect(sa.create_engine(f"lancesql:///{root}"))
    assert fresh.get_view_names() == ["twos"] and fresh.get_temp_view_names() == []


def test_inspect_lists_lance_indices(root):
    lance.dataset(str(root / "train.lance")).create_scalar_index("label", "BTREE")
    inspector = sa.inspect(sa.create_engine(f"lancesql:///{root}"))
    (index,) = inspector.get_indexes("train")
    assert index["column_names"] == ["label"] and index["dialect_options"]["lancesql_using"] == "BTREE"


def test_text_with_bound_parameters(root):
    engine = sa.create_engine(f"lancesql:///{root}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, caption FROM train WHERE label = :label AND id < :top ORDER BY id"),
            {"label": 3, "top": 20},
        ).fetchall()
        # A hostile value stays a value.
        none = conn.execute(sa.text("SELECT id FROM train WHERE caption = :c"), {"c": "x' OR 1=1 --"})
        assert none.fetchall() == []
    assert rows == [(3, "item 3"), (8, "item 8"), (13, "item 13"), (18, "item 18")]


def test_core_select_compiles_to_sql_lancesql_runs(root):
    engine = sa.create_engine(f"lancesql:///{root}")
    train = sa.Table("train", sa.MetaData(), autoload_with=engine)
    query = (
        sa.select(train.c.label, sa.func.count().label("n"), sa.func.avg(train.c.score).label("mean"))
        .where(train.c.id.between(10, 39), train.c.caption.like("item %"))
        .group_by(train.c.label)
        .order_by(train.c.label.desc())
        .limit(3)
    )
    with engine.connect() as conn:
        got = conn.execute(query).fetchall()
    table = lance.dataset(str(root / "train.lance")).to_table().to_pandas()
    part = table[(table.id >= 10) & (table.id <= 39)]
    expected = part.groupby("label").agg(n=("id", "size"), mean=("score", "mean")).sort_index(ascending=False)
    assert [(r[0], r[1]) for r in got] == list(zip(expected.index[:3], expected.n[:3], strict=True))
    assert np.allclose([r[2] for r in got], expected["mean"][:3])


def test_core_writes_and_vector_search(tmp_path):
    engine = sa.create_engine(f"lancesql:///{tmp_path}")
    meta = sa.MetaData()
    items = sa.Table(
        "items",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(40)),
        sa.Column("made", sa.DateTime),
        sa.Column("emb", VECTOR(3)),
        sa.Column("img", sa.LargeBinary),
    )
    meta.create_all(engine)
    assert lance.dataset(str(tmp_path / "items.lance")).schema.field("emb").type == pa.list_(pa.float32(), 3)
    with engine.connect() as conn:
        conn.execute(
            items.insert(),
            [
                {"id": 1, "name": "a", "emb": [1.0, 0.0, 0.0], "img": b"\x00\x01"},
                {"id": 2, "name": "b", "emb": [0.0, 1.0, 0.0], "img": b"\x02"},
            ],
        )
        assert conn.execute(items.update().where(items.c.id == 2).values(name="B")).rowcount == 1
        near = conn.execute(
            sa.text("SELECT id FROM vector_search('items', 'emb', :q, 1)"), {"q": [0.1, 0.9, 0.0]}
        ).scalar()
        assert near == 2
        assert conn.execute(sa.select(items.c.name).where(items.c.id == 2)).scalar() == "B"
    meta.drop_all(engine)
    assert not (tmp_path / "items.lance").exists()


def test_not_null_columns_are_kept_and_reflected(tmp_path):
    """A primary key's and a nullable=False column's NOT NULL reach the Lance schema,
    and reflection reads it back from there (the engine says every column is nullable)."""
    engine = sa.create_engine(f"lancesql:///{tmp_path}")
    meta = sa.MetaData()
    sa.Table(
        "t",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("note", sa.String(20)),
    )
    meta.create_all(engine)
    schema = lance.dataset(str(tmp_path / "t.lance")).schema
    assert [schema.field(c).nullable for c in ("id", "name", "note")] == [False, False, True]
    columns = sa.inspect(engine).get_columns("t")
    assert {c["name"]: c["nullable"] for c in columns} == {"id": False, "name": False, "note": True}
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="NOT NULL"):
        conn.execute(sa.text("INSERT INTO t VALUES (1, NULL, 'x')"))


def test_numeric_reads_as_decimal_even_where_duckdb_divides_in_double(tmp_path):
    """DuckDB divides DECIMALs as DOUBLE; a Numeric expression still reads as Decimal."""
    engine = sa.create_engine(f"lancesql:///{tmp_path}")
    price = sa.literal_column("5.52", sa.Numeric(10, 2)) / sa.literal_column("2.4", sa.Numeric(10, 2))
    with engine.connect() as conn:
        assert conn.scalar(sa.select(price)) == Decimal("2.3")
        assert conn.scalar(sa.select(sa.cast(sa.literal("1.25"), sa.Numeric(10, 2)))) == Decimal("1.25")
        ratio = sa.literal_column("5.52", sa.Numeric(10, 2, asdecimal=False)) / 2
        assert isinstance(conn.scalar(sa.select(ratio)), float)


def test_operators_and_literals_in_duckdb_words(tmp_path):
    """Core's xor, regexp and literal dates compile to what DuckDB means by them
    (the oracle: Python's own operators and re.sub)."""
    import datetime as dt
    import re

    engine = sa.create_engine(f"lancesql:///{tmp_path}")
    text = sa.literal("a1b22c333")
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.literal(6).bitwise_xor(3))) == 6 ^ 3
        expected = re.sub("[0-9]+", "#", "a1b22c333")
        assert conn.scalar(sa.select(text.regexp_replace("[0-9]+", "#"))) == expected
        assert conn.scalar(sa.select(text.regexp_match("b2+c"))) is True
        moment = sa.select(sa.literal(dt.time(12, 57, 18), sa.Time)).compile(
            engine, compile_kwargs={"literal_binds": True}
        )
        assert "TIME '12:57:18'" in str(moment)
        assert conn.scalar(sa.text(str(moment))) == dt.time(12, 57, 18)


def test_url_forms(tmp_path):
    dialect = LanceSQLDialect()
    _, kw = dialect.create_connect_args(sa.make_url(f"lancesql:///{tmp_path}?engine=datafusion"))
    assert kw["root"] == str(tmp_path) and kw["engine"] == "datafusion"
    _, kw = dialect.create_connect_args(
        sa.make_url("lancesql:///?uri=s3://bucket/db&storage.aws_region=eu-west-1&vector_nprobes=8")
    )
    assert kw["root"] == "s3://bucket/db" and kw["storage_options"] == {"aws_region": "eu-west-1"}
    assert kw["settings"] == {"vector_nprobes": "8"}
    with pytest.raises(lancesql.ProgrammingError, match="no host"):
        dialect.create_connect_args(sa.make_url("lancesql://host/db"))
    # A setting lancesql does not know is refused when connecting, naming it.
    engine = sa.create_engine(f"lancesql:///{tmp_path}?no_such_setting=1")
    with pytest.raises(sa.exc.DBAPIError, match="no_such_setting"):
        engine.connect()


def test_datafusion_engine_through_the_url(root):
    engine = sa.create_engine(f"lancesql:///{root}?engine=datafusion")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM train WHERE label = 2")).scalar() == 10
