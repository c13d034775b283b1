"""Small vectorised helpers shared by the demo generator (no per-row Python)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

US_PER_SECOND = 1_000_000
US_PER_HOUR = 3_600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR

_LUTS: dict[int, np.ndarray] = {}


def _digits_lut(k: int) -> np.ndarray:
    """All k-digit zero-padded numbers as fixed-width bytes (k <= 4)."""
    if k not in _LUTS:
        _LUTS[k] = np.array([f"{i:0{k}d}" for i in range(10**k)], dtype=f"S{k}")
    return _LUTS[k]


def fixed_width_strings(prefix: str, numbers: np.ndarray, width: int, suffix: str = "") -> pa.Array:
    """`prefix + zero-padded number + suffix` for every number (numbers < 10**width).

    Every string has the same length, so the rows are laid out as a packed numpy record
    (prefix, digit groups of up to four looked up in a table, suffix) whose bytes become the
    Arrow data buffer, and the offsets are an arithmetic sequence.
    """
    nums = np.asarray(numbers, dtype=np.int64)
    n = nums.size
    pre, suf = prefix.encode(), suffix.encode()
    groups = [4] * (width // 4)
    if width % 4:
        groups.insert(0, width % 4)
    fields = [("p", f"S{len(pre)}")] if pre else []
    fields += [(f"d{i}", f"S{g}") for i, g in enumerate(groups)]
    fields += [("s", f"S{len(suf)}")] if suf else []
    rec = np.empty(n, dtype=np.dtype(fields))
    if pre:
        rec["p"] = pre
    if suf:
        rec["s"] = suf
    v = nums
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if i == 0:
            rec[f"d{i}"] = _digits_lut(g)[v]
        else:
            rec[f"d{i}"] = _digits_lut(g)[v % 10**g]
            v = v // 10**g
    row = rec.dtype.itemsize
    offsets = np.arange(0, (n + 1) * row, row, dtype=np.int64)
    data = pa.py_buffer(rec.view(np.uint8))
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), data)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), data).cast(pa.string())


def id_width(n_max: int, minimum: int) -> int:
    """Digits needed for ids up to n_max, at least `minimum`."""
    return max(minimum, len(str(int(n_max))))


def dict_array(codes: np.ndarray, dictionary, mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """Dictionary-encoded string column from integer codes (mask = True where null)."""
    codes = np.asarray(codes)
    if codes.dtype.kind != "i":
        codes = codes.astype(np.int32)
    if not isinstance(dictionary, pa.Array):
        dictionary = pa.array(list(dictionary), type=pa.string())
    idx = pa.array(codes, mask=mask) if mask is not None else pa.array(codes)
    return pa.DictionaryArray.from_arrays(idx, dictionary)


def timestamps(us: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """timestamp[us] (naive UTC) column from int64 microseconds since the epoch."""
    arr = np.asarray(us, dtype=np.int64).view("datetime64[us]")
    return pa.array(arr, type=pa.timestamp("us"), mask=mask)


def cum_tables(weights: np.ndarray) -> np.ndarray:
    """Row-normalised cumulative sums of a 2-D weight table, for inverse-CDF sampling."""
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w, axis=1)
    return c / c[:, -1:]


def sample_rows(cum: np.ndarray, row: np.ndarray, u: np.ndarray, guide_size: int = 1024) -> np.ndarray:
    """Inverse-CDF draw of a column index per element from cum[row] with uniforms u in [0, 1).

    `cum` rows are non-decreasing and end at exactly 1.0 (see cum_tables). A guide table
    (Chen & Asau) gives, for each of `guide_size` equal slices of [0, 1), the first column
    that can hold a draw falling in that slice; a few vectorised correction passes then step
    forward to the exact column, so the result equals a binary search without doing one
    per element.
    """
    cum = np.asarray(cum, dtype=np.float64)
    n_rows, n_cols = cum.shape
    grid = np.arange(guide_size) / guide_size
    guide = np.stack([np.searchsorted(cum[r], grid, side="right") for r in range(n_rows)])
    guide = np.minimum(guide, n_cols - 1).astype(np.int32 if n_cols > 32000 else np.int16)
    row = np.asarray(row)
    idx = guide[row, (u * guide_size).astype(np.int64)].astype(np.int64)
    active = np.flatnonzero(u >= cum[row, idx])
    while active.size:  # a handful of passes: slices are narrower than most columns
        idx[active] += 1
        a_row, a_u = row[active], u[active]
        active = active[a_u >= cum[a_row, idx[active]]]
    return idx


def _parquet_options(dictionary: list[str] | None, statistics: list[str] | None,
                     delta: list[str] | None) -> dict:
    kwargs = {"compression": "zstd", "store_schema": False,
              "use_dictionary": True if dictionary is None else dictionary,
              "write_statistics": True if statistics is None else statistics}
    if delta:
        kwargs["column_encoding"] = {c: "DELTA_BINARY_PACKED" for c in delta}
    return kwargs


def write_parquet(table: pa.Table, path: Path, row_group_size: int = 1 << 20,
                  dictionary: list[str] | None = None, statistics: list[str] | None = None,
                  delta: list[str] | None = None) -> None:
    """Write one Parquet file (zstd).

    No Arrow schema is stored, so dictionary-built string columns read back as plain
    `string` (the Parquet logical type), exactly like files from any other writer.
    `dictionary` / `statistics` restrict dictionary encoding and min/max statistics to the
    named columns (None = all); `delta` columns use DELTA_BINARY_PACKED (timestamps).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, row_group_size=row_group_size,
                   **_parquet_options(dictionary, statistics, delta))
    os.replace(tmp, path)


def parquet_writer(path: Path, schema: pa.Schema, dictionary: list[str] | None = None,
                   statistics: list[str] | None = None,
                   delta: list[str] | None = None) -> pq.ParquetWriter:
    """An open ParquetWriter with write_parquet's options (one row group per write_table)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return pq.ParquetWriter(path, schema, **_parquet_options(dictionary, statistics, delta))
