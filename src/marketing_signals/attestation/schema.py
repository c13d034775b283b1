"""Column lists and Arrow schemas of the two attestation tables.

`attestation_ledger` has exactly LEDGER_COLUMNS, in that order; a caller of `ledger.chain` supplies
CANDIDATE_COLUMNS (the engine assigns sequence_no, batch_id and the three hashes). CONTENT_COLUMNS are
the columns whose canonical encoding is hashed into content_hash: every ledger column except the hashes,
so the position (sequence_no) and the batch are part of what is attested.
"""
from __future__ import annotations

import pyarrow as pa

LEDGER_COLUMNS: list[str] = [
    "sequence_no", "attestation_id", "batch_id", "record_kind", "decision", "op", "subject_digest",
    "subscriber_id", "method_id", "window_id", "cohort_id", "confidence", "decided_at", "rule_ids",
    "rationale_json", "art22_json", "admt_json", "custody_json", "attestor_json", "retention_class",
    "retention_until", "content_hash", "prev_hash", "record_hash",
]
HASH_COLUMNS: tuple[str, ...] = ("content_hash", "prev_hash", "record_hash")
ENGINE_COLUMNS: tuple[str, ...] = ("sequence_no", "batch_id", *HASH_COLUMNS)
CANDIDATE_COLUMNS: list[str] = [c for c in LEDGER_COLUMNS if c not in ENGINE_COLUMNS]
CONTENT_COLUMNS: list[str] = [c for c in LEDGER_COLUMNS if c not in HASH_COLUMNS]

JSON_COLUMNS: tuple[str, ...] = ("rationale_json", "art22_json", "admt_json", "custody_json", "attestor_json")
INT_COLUMNS: tuple[str, ...] = ("sequence_no",)
FLOAT_COLUMNS: tuple[str, ...] = ("confidence",)
TIMESTAMP_COLUMNS: tuple[str, ...] = ("decided_at",)
DATE_COLUMNS: tuple[str, ...] = ("retention_until",)
STRING_COLUMNS: tuple[str, ...] = tuple(
    c for c in LEDGER_COLUMNS
    if c not in INT_COLUMNS + FLOAT_COLUMNS + TIMESTAMP_COLUMNS + DATE_COLUMNS
)
# A candidate must carry a value in these; the rest may be null.
REQUIRED_CANDIDATE_COLUMNS: tuple[str, ...] = (
    "attestation_id", "record_kind", "decision", "subject_digest", "decided_at", "retention_class",
    "retention_until",
)

GENESIS_HASH = "0" * 64


def _arrow_type(column: str) -> pa.DataType:
    if column in INT_COLUMNS:
        return pa.int64()
    if column in FLOAT_COLUMNS:
        return pa.float64()
    if column in TIMESTAMP_COLUMNS:
        return pa.timestamp("us")  # naive, UTC
    if column in DATE_COLUMNS:
        return pa.date32()
    return pa.string()


LEDGER_SCHEMA: pa.Schema = pa.schema([pa.field(c, _arrow_type(c)) for c in LEDGER_COLUMNS])
CANDIDATE_SCHEMA: pa.Schema = pa.schema([LEDGER_SCHEMA.field(c) for c in CANDIDATE_COLUMNS])

CHECKPOINT_COLUMNS: list[str] = [
    "checkpoint_no", "batch_id", "first_sequence_no", "last_sequence_no", "record_count", "merkle_root",
    "last_record_hash", "prev_checkpoint_hash", "worm_uri", "worm_sha256", "key_fingerprint",
    "checkpoint_hash", "signature",
]
# checkpoint_hash and the Ed25519 signature both cover the canonical bytes of these fields.
CHECKPOINT_SIGNED_COLUMNS: list[str] = CHECKPOINT_COLUMNS[: CHECKPOINT_COLUMNS.index("checkpoint_hash")]
CHECKPOINT_INT_COLUMNS: tuple[str, ...] = ("checkpoint_no", "first_sequence_no", "last_sequence_no", "record_count")
CHECKPOINT_SCHEMA: pa.Schema = pa.schema(
    [pa.field(c, pa.int64() if c in CHECKPOINT_INT_COLUMNS else pa.string()) for c in CHECKPOINT_COLUMNS]
)
