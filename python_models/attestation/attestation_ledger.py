"""The attestation ledger: append-only, hash-chained records of every emission decision and
membership transition (see marketing_signals.attestation and docs/attestation.md). Never
rebuilt: full_refresh is off and a schema change fails the run."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append", on_schema_change="fail",
               full_refresh=False)
    from marketing_signals.attestation import dbt_bridge

    return dbt_bridge.ledger_append(session, dbt.ref("attestation_candidates"),
                                    existing=dbt.this if dbt.is_incremental else None)
