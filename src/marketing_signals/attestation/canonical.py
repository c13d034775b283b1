"""Canonical encoding of attestation records, and the content / record hashes built on it.

What is hashed
--------------
content_hash = sha256 hex of the canonical bytes of a record's content fields (CONTENT_COLUMNS: every
ledger column except content_hash, prev_hash and record_hash, so sequence_no and batch_id are attested
too). The canonical bytes are the UTF-8 of ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` after normalising every value:

* strings (also nested strings and object keys) -> Unicode NFC;
* timestamps -> int UTC epoch microseconds (floor); naive means UTC, tz-aware is converted; pandas
  Timestamp, datetime and numpy datetime64 are accepted;
* dates -> "YYYY-MM-DD";
* floats / Decimals -> fixed-scale strings with 6 decimals (ROUND_HALF_EVEN on the exact binary value;
  -0 -> "0.000000"); NaN / None / pd.NA / NaT -> null; +-inf is refused;
* ints stay ints, bools stay bools;
* the *_json columns are parsed and embedded as canonical nested objects (floats inside them are fixed
  scale too), so key order, whitespace and float spelling in the stored text do not matter.

Per column the ledger's SQL type decides the encoding (a DATE column gives "YYYY-MM-DD" even when a
reader hands back a datetime), so a record hashes the same whether it comes from the engine, DuckDB or a
Parquet file.

record_hash = sha256(bytes.fromhex(prev_hash) + bytes.fromhex(content_hash)); the first record's
prev_hash is "0" * 64. Splitting the two lets the expensive part (canonical bytes + content hash) run in
bulk over whole columns while the strictly sequential chain step hashes only 64 bytes per record.

`canonical_bytes` / `content_hash` are the generic per-record definition; `content_digests` is the
column-wise fast path used by the ledger and the verifier, tested byte-for-byte against the generic one.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal
from json.encoder import encode_basestring as _encode_str  # type: ignore[attr-defined]
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .frames import is_missing as _is_missing, to_arrow
from .schema import (
    CONTENT_COLUMNS,
    DATE_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    JSON_COLUMNS,
    LEDGER_SCHEMA,
    TIMESTAMP_COLUMNS,
)

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_QUANTUM = Decimal("0.000001")
_DECIMAL_CTX = Context(prec=500, rounding=ROUND_HALF_EVEN)  # wide enough for any float's integer part
_ZERO = "0.000000"
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# ----------------------------------------------------------------------------- scalar normalisers
is_missing = _is_missing  # one definition, in frames (canonical imports frames)


def nfc(s: str) -> str:
    return s if s.isascii() else unicodedata.normalize("NFC", s)


def fixed_decimal(x: float | Decimal | int) -> str | None:
    """Fixed-scale decimal text with 6 decimals (ROUND_HALF_EVEN of the exact value); NaN -> None."""
    d = x if isinstance(x, Decimal) else Decimal(float(x))
    if d.is_nan():
        return None
    if d.is_infinite():
        raise ValueError(f"non-finite number {x!r} cannot be attested")
    q = d.quantize(_QUANTUM, context=_DECIMAL_CTX)
    return _ZERO if q.is_zero() else format(q, "f")


def _fast_fixed(x: float) -> str | None:
    """Same result as fixed_decimal for a float: %.6f is correctly rounded from the exact binary value,
    with exact ties to even, i.e. Decimal(x).quantize(1e-6, ROUND_HALF_EVEN)."""
    s = "%.6f" % x
    if s == "-0.000000":
        return _ZERO
    if s[-1] in "fn":  # 'inf' / 'nan'
        if x != x:
            return None
        raise ValueError(f"non-finite number {x!r} cannot be attested")
    return s


def _float_fragment(x: float | None) -> str:
    f = None if x is None else _fast_fixed(x)
    return "null" if f is None else '"' + f + '"'


def timestamp_micros(v: Any) -> int | None:
    """UTC epoch microseconds (floor); naive values are UTC, tz-aware ones are converted."""
    if is_missing(v):
        return None
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime(warn=False)  # drops nanoseconds: a floor, components are non-negative
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None or v.utcoffset() is None:
            v = v.replace(tzinfo=_dt.timezone.utc)
        delta = v - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(v, np.datetime64):
        return int(v.astype("datetime64[us]").astype(np.int64))
    if isinstance(v, _dt.date):
        return timestamp_micros(_dt.datetime(v.year, v.month, v.day))
    if isinstance(v, str):
        return timestamp_micros(pd.Timestamp(v))
    raise TypeError(f"not a timestamp: {v!r}")


def date_string(v: Any) -> str | None:
    """'YYYY-MM-DD'; a datetime gives its own (wall-clock) date."""
    if is_missing(v):
        return None
    if isinstance(v, _dt.datetime):  # includes pd.Timestamp
        return v.date().isoformat()
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, np.datetime64):
        return str(v.astype("datetime64[D]"))
    if isinstance(v, str):
        try:
            return _dt.date.fromisoformat(v).isoformat()
        except ValueError:
            return pd.Timestamp(v).date().isoformat()
    raise TypeError(f"not a date: {v!r}")


def canonical_value(v: Any) -> Any:
    """Normalise any supported value (recursively) into plain JSON types, per the module rules."""
    t = type(v)
    if t is str:
        return nfc(v)
    if v is None or t is bool:
        return v
    if t is int:
        return v
    if t is float:
        return None if v != v else fixed_decimal(v)
    if isinstance(v, Mapping):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise TypeError(f"object keys must be strings, got {k!r}")
            out[nfc(k)] = canonical_value(x)
        return out
    if isinstance(v, (list, tuple)):
        return [canonical_value(x) for x in v]
    if is_missing(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating, Decimal)):
        return fixed_decimal(v)
    if isinstance(v, str):
        return nfc(str(v))
    if isinstance(v, (_dt.datetime, np.datetime64)):
        return timestamp_micros(v)
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, np.ndarray):
        return [canonical_value(x) for x in v.tolist()]
    raise TypeError(f"cannot canonicalise {type(v).__name__}: {v!r}")


def canonical_bytes(mapping: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a mapping (generic definition, see the module docstring)."""
    obj = canonical_value(mapping)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- one record (generic path)
def parse_json_object(v: Any, column: str = "json") -> dict | None:
    """A *_json cell: JSON object text (or an already parsed mapping) or null."""
    if is_missing(v):
        return None
    obj = v if isinstance(v, Mapping) else json.loads(v) if isinstance(v, str) else None
    if not isinstance(obj, Mapping):
        raise ValueError(f"{column} must hold a JSON object or null, got {str(v)[:80]!r}")
    return dict(obj)


def _as_int(v: Any, column: str) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{column}: expected an integer, got {v!r}")
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    raise TypeError(f"{column}: expected an integer, got {v!r}")


def content_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's content fields typed by their ledger column (not yet NFC/JSON-normalised)."""
    out: dict[str, Any] = {}
    for c in CONTENT_COLUMNS:
        if c not in record:
            raise KeyError(f"record has no column {c!r}")
        v = record[c]
        if is_missing(v):
            out[c] = None
        elif c in INT_COLUMNS:
            out[c] = _as_int(v, c)
        elif c in FLOAT_COLUMNS:
            out[c] = fixed_decimal(v if isinstance(v, Decimal) else float(v))
        elif c in TIMESTAMP_COLUMNS:
            out[c] = timestamp_micros(v)
        elif c in DATE_COLUMNS:
            out[c] = date_string(v)
        elif c in JSON_COLUMNS:
            out[c] = parse_json_object(v, c)
        elif isinstance(v, str):
            out[c] = v
        else:
            raise TypeError(f"{c}: expected text, got {type(v).__name__} {v!r}")
    return out


def content_bytes(record: Mapping[str, Any]) -> bytes:
    return canonical_bytes(content_fields(record))


def content_hash(record: Mapping[str, Any]) -> str:
    """Generic, one record at a time: sha256 hex of the canonical content bytes."""
    return sha256_hex(content_bytes(record))


def record_hash(prev_hash: str, content_hash_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + bytes.fromhex(content_hash_hex)).hexdigest()


# ----------------------------------------------------------------------------- bulk (fast) path
def _parse_const(name: str) -> Any:
    if name == "NaN":
        return None
    raise ValueError(f"non-finite number {name} cannot be attested")


def _json_float(text: str) -> str | None:
    return _fast_fixed(float(text))


# Built once: json.loads / JSONEncoder.encode would build a scanner / C encoder on every call.
_JSON_DECODER = json.JSONDecoder(parse_float=_json_float, parse_constant=_parse_const)
_scan_once = _JSON_DECODER.scan_once
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode = (_c_make_encoder(None, None, _encode_str, None, ":", ",", True, False, False)
             if _c_make_encoder is not None else None)


def _encode_canonical(obj: Any) -> str:
    if _c_encode is not None:
        return "".join(_c_encode(obj, 0))
    return _ENCODER.encode(obj)


def _json_fragment(text: Any, column: str) -> str:
    """Canonical JSON text of one *_json cell, as it appears inside the record's canonical JSON."""
    if isinstance(text, str) and text.isascii() and "\\u" not in text:
        # Pure ASCII after decoding, so nothing to NFC-normalise; floats turn fixed-scale while parsing.
        try:
            obj, end = _scan_once(text, 0)
        except StopIteration:  # leading whitespace or not JSON: the full decoder explains / handles it
            obj, end = _JSON_DECODER.decode(text), len(text)
        if end != len(text):
            obj = _JSON_DECODER.decode(text)  # trailing whitespace is fine, anything else raises
        if not isinstance(obj, dict):
            raise ValueError(f"{column} must hold a JSON object or null, got {text[:80]!r}")
        return _encode_canonical(obj)
    return _encode_canonical(canonical_value(parse_json_object(text, column)))


def _quote(arr: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', arr, '"', "")


def _plain_string_fragments(arr: pa.Array) -> pa.Array:
    # Printable ASCII without quote or backslash: the JSON string is the text in quotes (anything else,
    # including non-ASCII text that may need NFC, goes through nfc + json's own string encoder).
    simple = pc.and_not(pc.ascii_is_printable(arr),
                        pc.or_(pc.match_substring(arr, '"'), pc.match_substring(arr, "\\")))
    out = pc.fill_null(_quote(arr), "null")
    slow = np.flatnonzero(pc.fill_null(pc.invert(simple), False).to_numpy(zero_copy_only=False))
    if slow.size == 0:
        return out
    frags = out.to_pylist()
    for i in slow.tolist():
        frags[i] = _encode_str(nfc(arr[i].as_py()))
    return pa.array(frags, type=pa.string())


_UNIQUE_PER_RECORD = frozenset({"attestation_id", "subject_digest", "subscriber_id"})


def _string_fragments(arr: pa.Array, column: str) -> pa.Array:
    if column in _UNIQUE_PER_RECORD:
        return _plain_string_fragments(arr)
    # Each distinct value is rendered once (most columns, and the Art. 22 / ADMT / custody JSON, are
    # low-cardinality), then spread back over the rows with one take.
    enc = pc.dictionary_encode(arr)
    if column in JSON_COLUMNS:
        frags = pa.array([_json_fragment(t, column) for t in enc.dictionary.to_pylist()], type=pa.string())
    else:
        frags = _plain_string_fragments(enc.dictionary)
    return pc.fill_null(frags.take(enc.indices), "null")


def _float_fragments(arr: pa.Array) -> pa.Array:
    values = arr.to_numpy(zero_copy_only=False)  # nulls -> NaN
    if not np.isfinite(values[~np.isnan(values)]).all():
        raise ValueError("non-finite number (inf) cannot be attested")
    text = pa.array(list(map("%.6f".__mod__, values.tolist())), type=pa.string())
    text = pc.if_else(pc.equal(text, "-0.000000"), _ZERO, text)
    quoted = _quote(text)
    return pc.if_else(pc.equal(text, "nan"), "null", quoted)


def _column_fragments(name: str, arr: pa.Array) -> pa.Array:
    """The canonical JSON value text of every cell of one typed column."""
    t = arr.type
    if pa.types.is_timestamp(t):
        arr = pc.cast(arr, pa.int64())
        t = arr.type
    if pa.types.is_integer(t):
        return pc.fill_null(pc.cast(arr, pa.string()), "null")
    if pa.types.is_date32(t):
        return pc.fill_null(_quote(pc.cast(arr, pa.string())), "null")
    if pa.types.is_floating(t):
        return _float_fragments(arr)
    return _string_fragments(arr, name)


_SORTED_CONTENT = sorted(CONTENT_COLUMNS)
_SLICE_ROWS = 131_072
_CONTENT_SCHEMA = pa.schema([LEDGER_SCHEMA.field(c) for c in CONTENT_COLUMNS])


def _digest_blob(table: pa.Table) -> bytes:
    """sha256 digests (32 bytes each, row order) of a content table already in _CONTENT_SCHEMA types."""
    sha = hashlib.sha256
    out: list[bytes] = []
    for start in range(0, table.num_rows, _SLICE_ROWS):  # bounded memory, offsets far below 2 GiB
        part = table.slice(start, _SLICE_ROWS)
        pieces: list[Any] = []
        for i, c in enumerate(_SORTED_CONTENT):
            pieces.append(("{" if i == 0 else ",") + _encode_str(c) + ":")
            pieces.append(_column_fragments(c, part.column(c).combine_chunks()))
        pieces.append("}")
        rows = pc.cast(pc.binary_join_element_wise(*pieces, ""), pa.binary())
        out.extend(sha(b).digest() for b in rows.to_pylist())
    return b"".join(out)


# ----------------------------------------------------------------------------- parallel hashing
ENV_WORKERS = "MARKETING_SIGNALS_ATTESTATION_WORKERS"
PARALLEL_MIN_ROWS = 20_000   # below this a process pool costs more than it saves
_CHUNK_ROWS = 32_768         # rows per task: small enough to balance, large enough to amortise pickling
_POOL: Any = None
_POOL_WORKERS = 0


def hash_workers(environ: Mapping[str, str] | None = None) -> int:
    """Worker processes for content hashing: $MARKETING_SIGNALS_ATTESTATION_WORKERS, else
    min(os.cpu_count(), 4); 1 (or 0) means serial, in this process."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_WORKERS)
    if raw not in (None, ""):
        try:
            return max(1, int(raw))
        except ValueError:
            raise ValueError(f"{ENV_WORKERS} must be an integer, got {raw!r}") from None
    return max(1, min(os.cpu_count() or 1, 4))


def _pool(workers: int):
    """A process pool kept for the life of the process (spawned, not forked: the parent may be a dbt
    process with DuckDB threads running, which a fork would copy mid-flight)."""
    global _POOL, _POOL_WORKERS
    if _POOL is None or _POOL_WORKERS != workers:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        _POOL_WORKERS = workers
    return _POOL


def shutdown_pool() -> None:
    global _POOL, _POOL_WORKERS
    if _POOL is not None:
        _POOL.shutdown(wait=True, cancel_futures=True)
    _POOL, _POOL_WORKERS = None, 0


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    # Arrow IPC writes only a slice's own rows; pickling a sliced table would ship its parent's buffers.
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def _digest_blob_ipc(buf: pa.Buffer) -> bytes:
    return _digest_blob(pa.ipc.open_stream(buf).read_all())


def content_digest_blob(data: pd.DataFrame | pa.Table, *, workers: int | None = None) -> bytes:
    """All rows' raw content digests concatenated (32 bytes per row, row order kept). Rows are hashed
    in chunks by a process pool (see `hash_workers`) when there are at least PARALLEL_MIN_ROWS of them;
    the result does not depend on the number of workers."""
    return submit_content_digests(data, workers=workers)()


def submit_content_digests(data: pd.DataFrame | pa.Table, *, workers: int | None = None):
    """Start `content_digest_blob` on the process pool and return a zero-argument function that waits for
    and returns the blob, so the caller can do other work (read the next rows, chain the previous ones)
    while the workers hash. Serial (small input or one worker): the work happens when the function is
    called."""
    table = to_arrow(data, _CONTENT_SCHEMA)
    n = table.num_rows
    workers = hash_workers() if workers is None else max(1, int(workers))
    if workers <= 1 or n < PARALLEL_MIN_ROWS:
        return lambda: _digest_blob(table)
    chunk = max(4_096, min(_CHUNK_ROWS, -(-n // workers)))
    try:
        futures = [_pool(workers).submit(_digest_blob_ipc, _ipc_bytes(table.slice(s, chunk)))
                   for s in range(0, n, chunk)]
    except Exception as e:  # noqa: BLE001 - pool could not take work: hash here when asked
        return _serial_after(e, table)

    def result() -> bytes:
        try:
            return b"".join(f.result() for f in futures)
        except Exception as e:
            return _serial_after(e, table)()
    return result


def _serial_after(e: Exception, table: pa.Table):
    from concurrent.futures.process import BrokenProcessPool
    if not isinstance(e, BrokenProcessPool):
        raise e
    # workers that cannot start (e.g. a __main__ read from stdin cannot be re-imported by a spawned
    # child) or were killed: drop the pool and hash here; the result is the same, only slower
    shutdown_pool()
    import warnings
    warnings.warn(f"attestation hashing pool failed ({e}); hashing in this process", RuntimeWarning, stacklevel=3)
    return lambda: _digest_blob(table)


def content_digests(data: pd.DataFrame | pa.Table, *, workers: int | None = None) -> list[bytes]:
    """Raw sha256 digests of every row's canonical content bytes (row order kept).

    Column-wise fast path: each column is converted to its ledger type once and rendered to canonical
    JSON value text with Arrow kernels (distinct *_json texts are canonicalised once each); the rows'
    canonical JSON is then one vectorised string join, leaving one sha256 per row. Large inputs are
    split over a process pool (`content_digest_blob`)."""
    blob = content_digest_blob(data, workers=workers)
    return [blob[i:i + 32] for i in range(0, len(blob), 32)]


def content_hashes(data: pd.DataFrame | pa.Table, *, workers: int | None = None) -> list[str]:
    """Hex content hashes of every row (fast path; equal to `content_hash` of each row)."""
    blob = content_digest_blob(data, workers=workers)
    return [blob[i:i + 32].hex() for i in range(0, len(blob), 32)]


def chain_digests(content: Sequence[bytes], prev_hash: str) -> list[bytes]:
    """The sequential step: record digest i = sha256(record digest i-1 + content digest i)."""
    out: list[bytes] = []
    append = out.append
    sha = hashlib.sha256
    prev = bytes.fromhex(prev_hash)
    for d in content:
        prev = sha(prev + d).digest()
        append(prev)
    return out


def chain_blob(content: bytes, prev_hash: str) -> bytes:
    """`chain_digests` over a digest blob (32 bytes per row): the record digests, concatenated."""
    sha = hashlib.sha256
    prev = bytes.fromhex(prev_hash)
    out: list[bytes] = []
    append = out.append
    for i in range(0, len(content), 32):
        prev = sha(prev + content[i:i + 32]).digest()
        append(prev)
    return b"".join(out)


_HEX_ARRAY_ROWS = 1 << 20  # 64 MiB of hex text per chunk: int32 string offsets stay far below 2 GiB


def hex_array(blob: bytes) -> pa.ChunkedArray:
    """Lower-case hex strings (pa.string) of consecutive 32-byte digests, built without a Python loop."""
    n = len(blob) // 32
    chunks = []
    for lo in range(0, n, _HEX_ARRAY_ROWS):
        hi = min(n, lo + _HEX_ARRAY_ROWS)
        text = blob[lo * 32:hi * 32].hex().encode("ascii")
        offsets = np.arange(0, (hi - lo) * 64 + 1, 64, dtype=np.int32)
        chunks.append(pa.StringArray.from_buffers(hi - lo, pa.py_buffer(offsets), pa.py_buffer(text)))
    return pa.chunked_array(chunks, type=pa.string())


def hex_blob(arr: pa.Array | pa.ChunkedArray) -> bytes:
    """The inverse of `hex_array`: 64-hex-digit strings -> their digests concatenated. Raises ValueError
    when a value is null, not 64 characters, or not hex."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.null_count:
        raise ValueError("null hash")
    if not len(arr):
        return b""
    if not pc.all(pc.equal(pc.binary_length(arr), 64)).as_py():
        raise ValueError("hash is not 64 hex digits")
    arr = arr.cast(pa.string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
    text = memoryview(arr.buffers()[2])[int(offsets[0]):int(offsets[-1])]
    out = bytes.fromhex(bytes(text).decode("ascii"))  # consecutive values: lengths checked above
    if len(out) != 32 * len(arr):  # fromhex skips whitespace
        raise ValueError("hash is not 64 hex digits")
    return out


__all__ = [
    "canonical_bytes", "canonical_value", "chain_blob", "chain_digests", "content_bytes", "content_digest_blob", "content_digests",
    "content_fields", "content_hash", "content_hashes", "date_string", "fixed_decimal", "hash_workers", "hex_array", "hex_blob",
    "is_missing", "nfc",
    "parse_json_object", "record_hash", "sha256_hex", "timestamp_micros",
]
