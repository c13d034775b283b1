"""Write-once (WORM) Parquet copy of each sealed batch.

`write_batch` (or `BatchWriter`, which streams a batch piece by piece) writes
<worm_dir>/batches/<batch_id>.parquet deterministically (pyarrow, LEDGER_SCHEMA, no pandas index or
metadata, zstd, row groups of a fixed size) to a temporary file, fsyncs it, and publishes it with os.link, which
fails when the final name exists, so a sealed file is never overwritten; the file is then made read-only
(0o444). A re-run after a crash between writing the file and committing the checkpoint row finds the file:
if its rows are the same records (same record hashes and canonical content) it is reused, otherwise the
call fails loudly.

On a warehouse the equivalent is an external stage on object storage with object lock / retention in
compliance mode (S3 Object Lock, Azure immutable blob storage, GCS bucket lock), e.g. a Snowflake stage
over such a bucket, written with COPY INTO @stage/batches/<batch_id>.parquet: the storage layer, not file
permissions, then guarantees write-once for the retention period.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .canonical import content_digests
from .frames import to_arrow
from .schema import LEDGER_SCHEMA

_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BATCHES_DIR = "batches"


class WormError(RuntimeError):
    """A WORM file exists with other content, or cannot be published."""


def worm_uri(batch_id: str) -> str:
    if not _BATCH_ID.match(str(batch_id)):
        raise ValueError(f"batch_id {batch_id!r} is not a safe file name")
    return f"{BATCHES_DIR}/{batch_id}.parquet"


def resolve_uri(worm_dir: str | os.PathLike, uri: str) -> Path:
    """The file of a relative worm_uri, refusing absolute paths and '..' (the URI comes from a table)."""
    rel = Path(str(uri))
    if rel.is_absolute() or ".." in rel.parts or not str(uri):
        raise ValueError(f"worm_uri {uri!r} is not a relative path inside the WORM folder")
    return Path(worm_dir) / rel


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_batch(path: str | os.PathLike) -> pa.Table:
    return pq.read_table(path)


def same_records(a: pd.DataFrame | pa.Table, b: pd.DataFrame | pa.Table) -> str | None:
    """None when both hold the same records in the same order (sequence numbers, stored hashes and
    recomputed canonical content); otherwise a short reason."""
    ta, tb = to_arrow(a, LEDGER_SCHEMA), to_arrow(b, LEDGER_SCHEMA)
    if ta.num_rows != tb.num_rows:
        return f"{ta.num_rows} rows vs {tb.num_rows}"
    for c in ("sequence_no", "content_hash", "prev_hash", "record_hash"):
        if not ta.column(c).equals(tb.column(c)):
            va, vb = ta.column(c).to_pylist(), tb.column(c).to_pylist()
            i = next(i for i, (x, y) in enumerate(zip(va, vb)) if x != y)
            return f"{c} differs at row {i} ({va[i]!r} vs {vb[i]!r})"
    da, db = content_digests(ta), content_digests(tb)
    if da != db:
        i = next(i for i, (x, y) in enumerate(zip(da, db)) if x != y)
        return f"content differs at sequence_no {ta.column('sequence_no')[i].as_py()}"
    return None


def _to_table(frame: pd.DataFrame | pa.Table) -> pa.Table:
    table = to_arrow(frame, LEDGER_SCHEMA)
    return table.replace_schema_metadata(None)


ROW_GROUP_ROWS = 131_072  # fixed, so a file's bytes depend on its rows only, not on how they were fed
_COMPARE_ROWS = 65_536


class _HashingFile:
    """A write-only binary file that also hashes what is written (so a published file's sha256 needs no
    second read)."""

    def __init__(self, f) -> None:
        self._f, self._h, self._pos, self.closed = f, hashlib.sha256(), 0, False

    def write(self, data) -> int:
        b = memoryview(data).cast("B")
        self._f.write(b)
        self._h.update(b)
        self._pos += len(b)
        return len(b)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self._f.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True  # the underlying file is closed by the BatchWriter after fsync

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class BatchWriter:
    """Streams one batch into its WORM file: `write` any number of ledger pieces in sequence order,
    `finish` (Parquet footer, fsync), then `publish` (os.link, never overwriting; an existing file with
    the same records is reused, other records raise WormError) or `abort`. The file is written in row
    groups of exactly ROW_GROUP_ROWS, zstd, LEDGER_SCHEMA without pandas metadata, so its bytes are a
    function of the rows alone; memory is bounded by one row group."""

    def __init__(self, worm_dir: str | os.PathLike, batch_id: str) -> None:
        self.uri = worm_uri(batch_id)
        self.batch_id = batch_id
        self.final = resolve_uri(worm_dir, self.uri)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=self.final.parent, prefix=f".{batch_id}.", suffix=".tmp")
        self._file = os.fdopen(fd, "wb")
        self._sink = _HashingFile(self._file)
        self._writer = pq.ParquetWriter(pa.PythonFile(self._sink, mode="w"), LEDGER_SCHEMA.remove_metadata(),
                                        compression="zstd", write_statistics=True)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0
        self._sha: str | None = None

    def write(self, rows: pd.DataFrame | pa.Table | pa.RecordBatch) -> None:
        table = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows
        table = _to_table(table)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        data = pa.concat_tables(self._pending) if self._pending else LEDGER_SCHEMA.empty_table()
        full = (data.num_rows // ROW_GROUP_ROWS) * ROW_GROUP_ROWS
        upto = data.num_rows if final else full
        for lo in range(0, upto, ROW_GROUP_ROWS):
            part = data.slice(lo, min(ROW_GROUP_ROWS, upto - lo)).combine_chunks()
            self._writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
        rest = data.slice(upto)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def finish(self) -> None:
        if self.rows == 0 or self._pending_rows:
            self._flush(final=True)
        self._writer.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._sha = self._sink.hexdigest()
        os.chmod(self.tmp, 0o444)

    def publish(self) -> tuple[str, str]:
        """(relative_uri, file_sha256); call after `finish`."""
        if self._sha is None:
            raise WormError(f"batch {self.batch_id}: publish before finish")
        try:
            if not self.final.exists():
                try:
                    os.link(self.tmp, self.final)  # atomic, and never replaces an existing name
                    _fsync_dir(self.final.parent)
                    return self.uri, self._sha
                except FileExistsError:
                    pass  # lost a race: compare below
            reason = same_record_files(self.final, self.tmp)
            if reason is not None:
                raise WormError(f"WORM file {self.final} already exists with different records ({reason}); "
                                "a sealed batch is never overwritten")
            if self.final.stat().st_mode & 0o222:
                os.chmod(self.final, 0o444)
            return self.uri, file_sha256(self.final)
        finally:
            self._unlink_tmp()

    def abort(self) -> None:
        try:
            if not self._file.closed:
                try:
                    self._writer.close()
                except Exception:  # noqa: BLE001 - discarding anyway
                    pass
                self._file.close()
        finally:
            self._unlink_tmp()

    def _unlink_tmp(self) -> None:
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def _aligned(a, b):
    """Pairs of equal-length tables from two streams of tables / batches (same total rows)."""
    buf_a: list = []
    buf_b: list = []
    ra = rb = 0
    it_a, it_b = iter(a), iter(b)
    done_a = done_b = False
    while True:
        while ra < _COMPARE_ROWS and not done_a:
            x = next(it_a, None)
            if x is None:
                done_a = True
            else:
                buf_a.append(pa.Table.from_batches([x]) if isinstance(x, pa.RecordBatch) else x)
                ra += len(x)
        while rb < _COMPARE_ROWS and not done_b:
            x = next(it_b, None)
            if x is None:
                done_b = True
            else:
                buf_b.append(pa.Table.from_batches([x]) if isinstance(x, pa.RecordBatch) else x)
                rb += len(x)
        k = min(ra, rb)
        if k == 0:
            return
        ta, tb = pa.concat_tables(buf_a), pa.concat_tables(buf_b)
        yield ta.slice(0, k), tb.slice(0, k)
        buf_a, buf_b = [ta.slice(k)], [tb.slice(k)]
        ra, rb = ra - k, rb - k


def same_record_files(a: str | os.PathLike, b: str | os.PathLike) -> str | None:
    """`same_records` for two WORM files, streamed (a chunk of rows at a time)."""
    fa, fb = pq.ParquetFile(a), pq.ParquetFile(b)
    na, nb = fa.metadata.num_rows, fb.metadata.num_rows
    if na != nb:
        return f"{na} rows vs {nb}"
    offset = 0
    for ta, tb in _aligned(fa.iter_batches(batch_size=_COMPARE_ROWS), fb.iter_batches(batch_size=_COMPARE_ROWS)):
        reason = same_records(ta, tb)
        if reason is not None:
            return reason if offset == 0 else f"{reason} (chunk at row {offset})"
        offset += ta.num_rows
    return None


def write_batch(worm_dir: str | os.PathLike, batch_id: str, frame: pd.DataFrame | pa.Table) -> tuple[str, str]:
    """Publish one batch write-once; returns (relative_uri, file_sha256). Idempotent for the same records."""
    w = BatchWriter(worm_dir, batch_id)
    try:
        w.write(frame)
        w.finish()
    except BaseException:
        w.abort()
        raise
    return w.publish()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
