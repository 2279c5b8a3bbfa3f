"""SQLAlchemy's provisioning hooks for lancesql: no temporary tables (TEMP is for views)."""

from sqlalchemy.testing.provision import temp_table_keyword_args


@temp_table_keyword_args.for_db("lancesql")
def _temp_table_keyword_args(cfg, eng):
    # Never used: the requirements close temporary tables. The fixtures still ask.
    return {"prefixes": ["TEMPORARY"]}
