{#-
  Append-only outbox of change events for subscribers: every emission_decisions row whose op
  is enter, exit or update, once. The idempotency key is the decision id (SHA-256 of
  subscriber, feed key, as_of, state and the previous decision), so a consumer that sees an
  event twice can drop the repeat; this table never holds one twice (anti-join on the key),
  and a run after a crash picks up decisions appended before it. Never rebuilt by --full-refresh.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    full_refresh=false
) }}

select
    decisions.decision_id as idempotency_key,
    decisions.subscriber_id,
    decisions.feed_key,
    decisions.op,
    decisions.customer_key,
    decisions.home_location_id,
    decisions.method_id,
    decisions.window_id,
    decisions.cohort_id,
    decisions.cohort_label,
    decisions.confidence,
    decisions.model_version,
    decisions.is_holdout,
    decisions.reason_code,
    decisions.decision_id as attestation_id,
    decisions.changed_at,
    decisions.decided_at as emitted_at,
    decisions.recorded_at
from {{ ref('emission_decisions') }} as decisions
where decisions.op in ('enter', 'exit', 'update')
{%- if is_incremental() %}
  and decisions.decision_id not in (select idempotency_key from {{ this }})
{%- endif %}
