{#-
  The erasable side table: one row per customer that ever appeared in an attestation, with a
  random per-subject salt and subject_digest = SHA-256(salt || customer_key). The ledger stores
  only subject_digest; deleting a customer's row here (right to erasure: see
  docs/attestation.md) leaves every ledger hash verifiable while nothing links the ledger back
  to the person. Append-only; never rebuilt by --full-refresh (new salts would orphan the
  ledger's digests).
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    full_refresh=false
) }}

with subjects as (
    select distinct customer_key from {{ ref('attestation_pending') }}
),

salted as (
    select customer_key, {{ marketing_signals.random_hex() }} as subject_salt
    from subjects
    {%- if is_incremental() %}
    where customer_key not in (select customer_key from {{ this }})
    {%- endif %}
)

select
    customer_key,
    subject_salt,
    {{ marketing_signals.sha256_hex("subject_salt || customer_key") }} as subject_digest,
    cast({{ dbt.current_timestamp() }} as timestamp) as first_attested_at
from salted
