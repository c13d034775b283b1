"""Sealing: one signed checkpoint per batch (table `attestation_checkpoints`).

For each not-yet-sealed batch, in sequence order, `seal` checks the batch's hash links (and, with
recheck_content=True, recomputes its content hashes) and its link to the previous checkpoint, computes the RFC 6962 Merkle root over its record hashes, publishes the WORM Parquet
file, and appends a checkpoint row. checkpoint_hash = sha256 of the canonical bytes (canonical.py) of the
fields checkpoint_no .. key_fingerprint, and signature = Ed25519 over those same bytes; prev_checkpoint_hash
chains the checkpoints ("0" * 64 for the first). Signing happens only here, in Python, with the key from
keys.load_signer: SQL never sees the private key.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .canonical import canonical_bytes, content_digest_blob, hex_blob, sha256_hex
from .frames import to_arrow, to_frame
from .merkle import MerkleBuilder
from .schema import (
    CHECKPOINT_COLUMNS,
    CHECKPOINT_INT_COLUMNS,
    CHECKPOINT_SCHEMA,
    CHECKPOINT_SIGNED_COLUMNS,
    GENESIS_HASH,
    LEDGER_SCHEMA,
)
from .worm import BatchWriter


class SealError(ValueError):
    """The rows handed to `seal` do not continue the sealed ledger, or their hashes do not recompute."""


class SignerLike(Protocol):
    fingerprint: str

    def sign(self, message: bytes) -> str: ...


def checkpoint_payload(row: Mapping[str, Any]) -> bytes:
    """The canonical bytes that checkpoint_hash and the signature cover."""
    fields: dict[str, Any] = {}
    for c in CHECKPOINT_SIGNED_COLUMNS:
        v = row[c]
        fields[c] = int(v) if c in CHECKPOINT_INT_COLUMNS else (None if v is None else str(v))
    return canonical_bytes(fields)


def empty_checkpoints() -> pd.DataFrame:
    return to_frame(CHECKPOINT_SCHEMA.empty_table())


def last_checkpoint(checkpoints: pd.DataFrame | None) -> dict | None:
    """The row with the highest checkpoint_no as a dict (the `previous_checkpoint` for the next seal)."""
    if checkpoints is None or len(checkpoints) == 0:
        return None
    nos = pd.to_numeric(checkpoints["checkpoint_no"]).to_numpy()
    row = checkpoints.iloc[int(np.argmax(nos))]
    return {c: (int(row[c]) if c in CHECKPOINT_INT_COLUMNS else str(row[c])) for c in CHECKPOINT_COLUMNS}


def _anchor(previous: Mapping | None) -> tuple[int, int, str, str]:
    if previous is None:
        return 0, 0, GENESIS_HASH, GENESIS_HASH
    missing = [c for c in CHECKPOINT_COLUMNS if c not in previous]
    if missing:
        raise SealError(f"previous_checkpoint lacks {', '.join(missing)}")
    if sha256_hex(checkpoint_payload(previous)) != previous["checkpoint_hash"]:
        raise SealError(f"previous checkpoint {previous['checkpoint_no']} does not hash to its checkpoint_hash")
    return (int(previous["checkpoint_no"]), int(previous["last_sequence_no"]), str(previous["last_record_hash"]),
            str(previous["checkpoint_hash"]))


def seal(ledger_rows: pd.DataFrame | pa.Table, *, previous_checkpoint: Mapping | None,
         worm_dir: str | os.PathLike, signer: SignerLike, recheck_content: bool = False) -> pd.DataFrame:
    """Checkpoint rows (CHECKPOINT_COLUMNS) sealing every batch in `ledger_rows` (all records of the
    batches not sealed yet, one or more batch_ids), each batch also written to the WORM folder.

    Before signing, the rows must be contiguous in sequence_no, continue the previous checkpoint, link
    (prev_hash = the previous record_hash) and satisfy record_hash = sha256(prev_hash || content_hash).
    content_hash itself is recomputed from the content only with `recheck_content=True`: by default the
    hashes the ledger step computed are trusted here (`verify` recomputes them)."""
    cp_no, last_seq, last_hash, cp_hash = _anchor(previous_checkpoint)
    if len(ledger_rows) == 0:
        return empty_checkpoints()
    table = to_arrow(ledger_rows, LEDGER_SCHEMA)
    table = table.take(pa.array(np.argsort(table.column("sequence_no").to_numpy(), kind="stable")))
    return seal_stream((table.slice(lo, _SEAL_CHUNK_ROWS) for lo in range(0, table.num_rows, _SEAL_CHUNK_ROWS)),
                       previous_checkpoint=previous_checkpoint, worm_dir=worm_dir, signer=signer,
                       recheck_content=recheck_content)


_SEAL_CHUNK_ROWS = 200_000


def _first_difference(a: bytes, b: bytes) -> int:
    """Index of the first differing 32-byte digest of two equal-length digest blobs (-1 when equal)."""
    if a == b:
        return -1
    for i in range(0, len(a), 32):
        if a[i:i + 32] != b[i:i + 32]:
            return i // 32
    return len(a) // 32


def _blob(col: pa.ChunkedArray, name: str, seq: np.ndarray, ids: pa.ChunkedArray) -> bytes:
    try:
        return hex_blob(col)
    except ValueError:
        values = col.to_pylist()
        for i, v in enumerate(values):
            if not isinstance(v, str) or len(v) != 64 or not all(ch in "0123456789abcdefABCDEF" for ch in v):
                raise SealError(f"record {seq[i]} ({ids[i].as_py()}): bad {name} {v!r}") from None
        raise SealError(f"{name}: not 64-hex-digit hashes") from None


def seal_stream(chunks: Iterable[pa.Table | pa.RecordBatch | pd.DataFrame], *, previous_checkpoint: Mapping | None,
                worm_dir: str | os.PathLike, signer: SignerLike, recheck_content: bool = False) -> pd.DataFrame:
    """`seal` over ledger rows arriving as pieces already in sequence_no order (e.g. a DuckDB
    `... order by sequence_no` read as Arrow record batches): memory is bounded by one piece plus one WORM
    row group; the Merkle root is built incrementally. Every check runs before any WORM file is
    published or anything is signed; on an error the temporary files are removed."""
    cp_no, last_seq, last_hash, cp_hash = _anchor(previous_checkpoint)
    sha = hashlib.sha256
    done: list[tuple[BatchWriter, dict[str, Any]]] = []
    current: BatchWriter | None = None
    tree: MerkleBuilder | None = None
    info: dict[str, Any] = {}
    seen: set[str] = set()
    carry_seq: int | None = None      # last sequence_no of the previous piece
    carry_record: bytes | None = None  # its record digest
    try:
        for piece in chunks:
            if isinstance(piece, pa.RecordBatch):
                piece = pa.Table.from_batches([piece])
            table = to_arrow(piece, LEDGER_SCHEMA)
            n = table.num_rows
            if n == 0:
                continue
            seq_col = table.column("sequence_no")
            if seq_col.null_count:
                raise SealError("ledger rows without sequence_no")
            seq = seq_col.to_numpy()
            ids = table.column("attestation_id")
            if carry_seq is not None and seq[0] != carry_seq + 1:
                raise SealError(f"ledger rows are not contiguous: sequence_no {carry_seq} is followed by {seq[0]}")
            steps = np.diff(seq)
            if (steps != 1).any():
                i = int(np.flatnonzero(steps != 1)[0])
                raise SealError(f"ledger rows are not contiguous: sequence_no {seq[i]} is followed by {seq[i + 1]}")

            content = _blob(table.column("content_hash"), "content_hash", seq, ids)
            if recheck_content:
                i = _first_difference(content_digest_blob(table), content)
                if i >= 0:
                    raise SealError(f"record {seq[i]} ({ids[i].as_py()}): content_hash does not recompute; "
                                    "refusing to sign")
            prev = _blob(table.column("prev_hash"), "prev_hash", seq, ids)
            records = _blob(table.column("record_hash"), "record_hash", seq, ids)
            expected = b"".join([sha(prev[k:k + 32] + content[k:k + 32]).digest() for k in range(0, 32 * n, 32)])
            linked = (prev[:32] == carry_record if carry_record is not None else True) and prev[32:] == records[:-32]
            if not linked or expected != records:
                i = max(0, min(x for x in (
                    _first_difference(expected, records),
                    _first_difference(prev, (carry_record or prev[:32]) + records[:-32])) if x >= 0))
                raise SealError(f"record {seq[i]} ({ids[i].as_py()}): hash chain broken; refusing to sign")

            batches = table.column("batch_id")
            if batches.null_count:
                raise SealError("batch None is not one contiguous run of sequence numbers")
            batches = batches.combine_chunks()
            cuts = [0]
            if n > 1:
                cuts += (np.flatnonzero(pc.not_equal(batches[1:], batches[:-1]).to_numpy(zero_copy_only=False))
                         + 1).tolist()
            cuts.append(n)
            for lo, hi in zip(cuts, cuts[1:]):
                batch_id = batches[lo].as_py()
                if current is None or batch_id != current.batch_id:
                    if current is not None:  # close the batch before
                        current.finish()
                        info["merkle_root"] = tree.root()
                        done.append((current, info))
                        last_seq, last_hash = info["last"], info["last_record_hash"]
                        current = None
                    if batch_id in seen:
                        raise SealError(f"batch {batch_id!r} is not one contiguous run of sequence numbers")
                    seen.add(batch_id)
                    first = int(seq[lo])
                    if first != last_seq + 1:
                        raise SealError(f"batch {batch_id} starts at sequence_no {first}, but the sealed ledger "
                                        f"ends at {last_seq}: expected {last_seq + 1}")
                    if prev[32 * lo:32 * lo + 32].hex() != last_hash:
                        raise SealError(f"batch {batch_id}: first record's prev_hash does not match the previous "
                                        f"checkpoint's last_record_hash")
                    current, tree = BatchWriter(worm_dir, batch_id), MerkleBuilder()
                    info = {"first": first, "count": 0}
                current.write(table.slice(lo, hi - lo))
                tree.add_digests(records[32 * lo:32 * hi])
                info["count"] += hi - lo
                info["last"] = int(seq[hi - 1])
                info["last_record_hash"] = records[32 * (hi - 1):32 * hi].hex()
            carry_seq, carry_record = int(seq[-1]), records[-32:]
        if current is not None:
            current.finish()
            info["merkle_root"] = tree.root()
            done.append((current, info))
            current = None
    except BaseException:
        for w in [current, *(w for w, _ in done)]:
            if w is not None:
                w.abort()
        raise

    rows = []
    for k, (writer, info) in enumerate(done):
        try:
            uri, file_hash = writer.publish()
        except BaseException:
            for w, _ in done[k + 1:]:
                w.abort()
            raise
        row: dict[str, Any] = {
            "checkpoint_no": cp_no + 1, "batch_id": writer.batch_id, "first_sequence_no": info["first"],
            "last_sequence_no": info["last"], "record_count": info["count"], "merkle_root": info["merkle_root"],
            "last_record_hash": info["last_record_hash"], "prev_checkpoint_hash": cp_hash, "worm_uri": uri,
            "worm_sha256": file_hash, "key_fingerprint": signer.fingerprint,
        }
        payload = checkpoint_payload(row)
        row["checkpoint_hash"] = sha256_hex(payload)
        row["signature"] = signer.sign(payload)
        rows.append(row)
        cp_no, cp_hash = row["checkpoint_no"], row["checkpoint_hash"]
    if not rows:
        return empty_checkpoints()
    return to_frame(pa.Table.from_pylist(rows, schema=CHECKPOINT_SCHEMA))
