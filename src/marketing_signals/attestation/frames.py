"""Typed conversion of ledger / checkpoint frames to Arrow, the one place dtypes are decided.

Accepts what callers realistically hold: frames built by hand (object columns, naive or tz-aware
datetimes, Python dates), frames read back from DuckDB (`.df()`: datetime64 for DATE, NaN for NULL) or
from Parquet, and frames with pandas Arrow dtypes (what the engine returns). Timestamps become naive UTC
microseconds (floor), dates become date32.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd
import pyarrow as pa


def is_missing(v) -> bool:
    """None, pd.NA, NaT and float NaN (Python or numpy) count as null."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)):
        return v != v
    if isinstance(v, np.datetime64):
        return bool(np.isnat(v))
    return False


def _utc_micros(series: pd.Series) -> pa.Array:
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_timestamp(dtype.pyarrow_dtype):
        series = series.astype(f"datetime64[{dtype.pyarrow_dtype.unit}"
                               + (f", {dtype.pyarrow_dtype.tz}]" if dtype.pyarrow_dtype.tz else "]"))
    if not isinstance(dtype, pd.DatetimeTZDtype) and not pd.api.types.is_datetime64_dtype(series.dtype):
        # objects: Python datetimes (naive = UTC, aware converted), pd.Timestamps, dates, ISO strings
        series = pd.to_datetime(series.astype(object), utc=True, format="mixed")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    values = series.to_numpy().astype("datetime64[us]")  # numpy casts to a coarser unit by flooring
    return pa.array(values, type=pa.timestamp("us"), from_pandas=True)


def _to_date(v) -> _dt.date | None:
    if is_missing(v):
        return None
    if isinstance(v, _dt.datetime):
        return v.date()
    if isinstance(v, _dt.date):
        return v
    if isinstance(v, np.datetime64):
        return _dt.date.fromisoformat(str(v.astype("datetime64[D]")))
    if isinstance(v, str):
        try:
            return _dt.date.fromisoformat(v)
        except ValueError:
            return pd.Timestamp(v).date()
    raise TypeError(f"not a date: {v!r}")


def _dates(series: pd.Series) -> pa.Array:
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_date(dtype.pyarrow_dtype):
        return pa.array(series).cast(pa.date32())
    if isinstance(dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_localize(None)  # the wall-clock date, as date.date() of the Timestamp
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return pa.array(series.to_numpy().astype("datetime64[D]"), type=pa.date32(), from_pandas=True)
    cache: dict = {}
    out = []
    for v in series.tolist():
        try:
            d = cache[v]
        except (KeyError, TypeError):
            d = _to_date(v)
            try:
                cache[v] = d
            except TypeError:
                pass
        out.append(d)
    return pa.array(out, type=pa.date32())


def _floats(series: pd.Series) -> pa.Array:
    if series.dtype == object:
        series = pd.Series([None if is_missing(v) else float(v) for v in series.tolist()], dtype="float64")
    return pa.array(series, type=pa.float64(), from_pandas=True)


def series_to_arrow(series: pd.Series, field: pa.Field) -> pa.Array:
    t = field.type
    try:
        if pa.types.is_timestamp(t):
            return _utc_micros(series)
        if pa.types.is_date32(t):
            return _dates(series)
        if pa.types.is_floating(t):
            return _floats(series)
        if pa.types.is_integer(t):
            if series.dtype == object:
                series = pd.Series([None if is_missing(v) else v for v in series.tolist()], dtype=object)
            return pa.array(series, type=t, from_pandas=True)
        return pa.array(series, type=t, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"column {field.name!r} cannot be read as {t}: {e}") from e


def to_arrow(data: pd.DataFrame | pa.Table, schema: pa.Schema) -> pa.Table:
    """The columns of `schema` from `data`, converted to the schema's types (extra columns ignored)."""
    names = data.column_names if isinstance(data, pa.Table) else list(data.columns)
    missing = [f.name for f in schema if f.name not in names]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    arrays = []
    for f in schema:
        if isinstance(data, pa.Table):
            col = data.column(f.name)
            if col.type == f.type:
                arrays.append(col)
                continue
            series = col.to_pandas()
        else:
            series = data[f.name]
        arrays.append(series_to_arrow(series.reset_index(drop=True), f))
    return pa.Table.from_arrays(arrays, schema=schema)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A pandas frame with Arrow dtypes (int64 / string / double / timestamp[us] / date32 with real
    NULLs), which DuckDB stores as BIGINT / VARCHAR / DOUBLE / TIMESTAMP / DATE."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)
