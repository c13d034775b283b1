"""The frame adapter: what the dbt Python models need from their engine, for DuckDB and Snowpark.

A dbt Python model gets a ``session`` (a DuckDB connection on dbt-duckdb, a Snowpark Session
on dbt-snowflake) and relations (DuckDB relations, Snowpark DataFrames). The engine package
works on pandas / Arrow; this module is the only place that knows the difference:

* ``pandas(rel)``: a whole relation as pandas with lower-case column names (Snowflake
  upper-cases unquoted identifiers). For the small tables: registries, fits, context.
* ``count_distinct(rel, column)``; ``sample_condition(key, per_million, seed)``: the fit
  sample's condition, ``hash(key || '#seed') mod 1e6 < per_million``, as a Snowpark column.
  DuckDB's ``hash`` (in the cohort bridge's SQL) and Snowflake's ``HASH`` differ, so the two
  engines draw different (equally sized, equally random) samples; where the sample is everyone
  (the population is at most the fit sample) they fit on the same rows.
* ``partitioned(rel, key, n_buckets, fn, schema)``: ``fn`` (Arrow in, pandas or Arrow out,
  lower-case columns) applied to each hash bucket of ``key`` with
  ``group_by(bucket).applyInPandas``, so the buckets run in parallel on the warehouse and no
  node holds the whole table. (On DuckDB the cohort bridge streams hash batches itself, with
  SQL pushdown: ``bridge._score_batches``; both score with ``bridge._score_window``.)
* ``output(frame)``: the engine-native return value of a model (pandas / Arrow on DuckDB; a
  Snowpark DataFrame with upper-case columns on Snowflake).

Snowpark's local testing session (``Session.builder.config("local_testing", True)``) runs
DataFrame code without a warehouse; it has no SQL text, no ``HASH`` and its ``applyInPandas``
calls the function once on all rows (snowpark/mock/_plan.py, handle_udtf_expression). Under it
``partitioned`` runs ``fn`` per bucket with DataFrame filters instead, and tests register a
``HASH`` stand-in (see tests_py/test_snowpark_engine.py). Everything else is the same code.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd
import pyarrow as pa

BUCKET = "__MS_BUCKET"


def for_session(session) -> "DuckDBFrames | SnowparkFrames":
    if type(session).__module__.startswith("snowflake.snowpark"):
        return SnowparkFrames(session)
    return DuckDBFrames(session)


def is_snowpark(rel) -> bool:
    return type(rel).__module__.startswith("snowflake.snowpark")


def read(session, rel) -> pd.DataFrame:
    """A (small) relation as pandas with lower-case column names, on either engine."""
    return for_session(session).pandas(rel)


def result(session, frame):
    """A model's pandas / Arrow result as its engine wants it back (identity on DuckDB)."""
    return for_session(session).output(frame)


class DuckDBFrames:
    engine = "duckdb"

    def __init__(self, con):
        self.con = con

    @staticmethod
    def sql(rel) -> str:
        """A relation (DuckDB relation, or a table name) as a sub-query."""
        return rel.sql_query() if hasattr(rel, "sql_query") else f"select * from {rel}"

    def pandas(self, rel) -> pd.DataFrame:
        return self.con.sql(self.sql(rel)).df()

    def output(self, frame):
        return frame


class SnowparkFrames:
    engine = "snowflake"

    def __init__(self, session):
        self.session = session

    @property
    def local_testing(self) -> bool:
        conn = getattr(self.session, "_conn", None)
        return type(conn).__name__ == "MockServerConnection"

    @staticmethod
    def _lower(df: pd.DataFrame) -> pd.DataFrame:
        return df.rename(columns={c: c.strip('"').lower() for c in df.columns})

    def pandas(self, rel) -> pd.DataFrame:
        """Note: Snowpark 1.56's local testing session returns NaN for integer columns read after
        a filter on another column (seen on cohort_model_fits.n_fit); the small tables are
        therefore read whole and filtered in pandas."""
        if isinstance(rel, str):
            rel = self.session.table(rel)
        return self._lower(rel.to_pandas())

    def arrow(self, rel) -> pa.Table:
        return pa.Table.from_pandas(self.pandas(rel), preserve_index=False)

    def count_distinct(self, rel, column: str) -> int:
        from snowflake.snowpark import functions as F
        return int(rel.select(F.count_distinct(F.col(column.upper()))).collect()[0][0])

    @staticmethod
    def sample_condition(key: str, per_million: int, seed: int):
        from snowflake.snowpark import functions as F
        h = F.hash(F.concat(F.col(key.upper()), F.lit(f"#{seed}")))
        return (F.abs(h) % F.lit(1_000_000)) < F.lit(per_million)

    def partitioned(self, rel, key: str, n_buckets: int, fn: Callable[[pd.DataFrame], pd.DataFrame | pa.Table],
                    schema: pa.Schema):
        """A Snowpark DataFrame of fn applied to each hash bucket of `key` (upper-case columns)."""
        from snowflake.snowpark import functions as F

        bucketed = rel.with_column(BUCKET, F.abs(F.hash(F.col(key.upper()))) % F.lit(n_buckets))
        names = [f.name for f in schema]

        def apply(part: pd.DataFrame) -> pd.DataFrame:
            part = self._lower(part).drop(columns=[BUCKET.lower()], errors="ignore")
            out = fn(pa.Table.from_pandas(part, preserve_index=False))
            out = out.to_pandas() if isinstance(out, pa.Table) else (
                out if out is not None else pd.DataFrame({n: [] for n in names}))
            return out[names].rename(columns=str.upper)

        struct = snowpark_schema(schema)
        if not self.local_testing:
            return bucketed.group_by(BUCKET).applyInPandas(apply, struct)
        frames = [apply(bucketed.filter(F.col(BUCKET) == F.lit(i)).to_pandas()) for i in range(n_buckets)]
        frames = [f for f in frames if len(f)]
        return self.output(pd.concat(frames, ignore_index=True) if frames
                           else pd.DataFrame({n.upper(): [] for n in names}), schema=schema)

    def output(self, frame, schema: pa.Schema | None = None):
        """A pandas / Arrow frame as a Snowpark DataFrame with upper-case column names."""
        if isinstance(frame, pa.RecordBatchReader):
            frame = frame.read_all()
        if isinstance(frame, pa.Table):
            schema = schema or frame.schema
            frame = frame.to_pandas()
        if not isinstance(frame, pd.DataFrame):
            return frame  # already a Snowpark DataFrame
        frame = _plain(frame.rename(columns=str.upper), naive_utc=self.local_testing)
        if frame.empty and schema is not None:  # nothing to infer the types from
            return self.session.create_dataframe([], schema=snowpark_schema(schema, frame.columns))
        return self.session.create_dataframe(frame)


def _plain(frame: pd.DataFrame, naive_utc: bool = False) -> pd.DataFrame:
    """Nullable extension columns (string, Int64, boolean: pd.NA) as objects with None, which
    Snowpark's create_dataframe accepts; with naive_utc (local testing, which cannot create
    time-zone-aware columns) time-zone-aware timestamps as naive UTC."""
    out = frame.copy()
    for c, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            if naive_utc:
                out[c] = frame[c].dt.tz_convert("UTC").dt.tz_localize(None)
            continue
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, pd.DatetimeTZDtype) \
                or dtype == object:
            col = frame[c].astype(object)
            out[c] = col.where(col.notna(), None)
    return out


def snowpark_schema(schema: pa.Schema, columns=None):
    """The Snowpark StructType of an Arrow schema (upper-case names)."""
    from snowflake.snowpark import types as T

    def typ(t: pa.DataType):
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return T.StringType()
        if pa.types.is_integer(t):
            return T.LongType()
        if pa.types.is_floating(t):
            return T.DoubleType()
        if pa.types.is_boolean(t):
            return T.BooleanType()
        if pa.types.is_timestamp(t):
            return T.TimestampType(T.TimestampTimeZone.NTZ)
        if pa.types.is_date(t):
            return T.DateType()
        raise TypeError(f"no Snowpark type for Arrow {t}")

    fields = [T.StructField(f.name.upper(), typ(f.type), nullable=True) for f in schema]
    if columns is not None:
        order = {c: i for i, c in enumerate(columns)}
        fields.sort(key=lambda f: order.get(f.name, len(order)))
    return T.StructType(fields)
