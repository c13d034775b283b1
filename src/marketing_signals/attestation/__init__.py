"""Tamper-evident attestation ledger: canonical hashing, hash chain, RFC 6962 Merkle roots per batch,
write-once Parquet copies, Ed25519-signed checkpoints, and a verifier that needs only the public key.

Typical use from dbt Python models::

    rows = chain(candidates, last_sequence_no=n, last_record_hash=h)       # -> attestation_ledger
    cps = seal(unsealed_rows, previous_checkpoint=last_checkpoint(existing),
               worm_dir="data/worm", signer=load_signer("data/worm"))     # -> attestation_checkpoints
    verify(ledger, checkpoints, "data/worm", "data/worm/public_key.pem").ok

`dbt_bridge.ledger_append` / `dbt_bridge.checkpoints_append` wrap these for the incremental dbt models;
`marketing-signals verify --duckdb PATH` runs `verify_duckdb` from the command line.
"""
from .canonical import canonical_bytes, content_hash, content_hashes, record_hash
from .checkpoint import SealError, checkpoint_payload, last_checkpoint, seal
from .keys import AttestationKeyError, Signer, fingerprint, load_public_key, load_signer
from .ledger import chain, empty_ledger, ledger_tail
from .merkle import audit_path, merkle_root, verify_inclusion
from .schema import CANDIDATE_COLUMNS, CHECKPOINT_COLUMNS, GENESIS_HASH, LEDGER_COLUMNS
from .verify import VerifyResult, VerifyUsageError, verify, verify_duckdb
from .worm import WormError, write_batch

__all__ = [
    "AttestationKeyError", "CANDIDATE_COLUMNS", "CHECKPOINT_COLUMNS", "GENESIS_HASH", "LEDGER_COLUMNS",
    "SealError", "Signer", "VerifyResult", "VerifyUsageError", "WormError", "audit_path", "canonical_bytes",
    "chain", "checkpoint_payload", "content_hash", "content_hashes", "empty_ledger", "fingerprint",
    "last_checkpoint", "ledger_tail", "load_public_key", "load_signer", "merkle_root", "record_hash", "seal",
    "verify", "verify_duckdb", "verify_inclusion", "write_batch",
]
