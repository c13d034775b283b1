"""Signed checkpoints: one per sealed ledger batch (Merkle root, write-once Parquet file,
Ed25519 signature over the checkpoint and the previous one). Signing happens here, in Python,
with the key from MARKETING_SIGNALS_SIGNING_KEY (a demo key, with a loud warning, otherwise)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append", on_schema_change="fail",
               full_refresh=False)
    from marketing_signals.attestation import dbt_bridge

    return dbt_bridge.checkpoints_append(session, dbt.ref("attestation_ledger"),
                                         existing=dbt.this if dbt.is_incremental else None,
                                         worm_dir=dbt.config.get("worm_dir"))
