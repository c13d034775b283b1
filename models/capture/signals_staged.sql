{#-
  Accepted signals: one row per distinct event_id that passed every capture rule, with the
  customer resolved to its stable identity key. A view by default (the accepted rows are not
  copied: see docs/DECISIONLOG.md); set marketing_signals__staged_materialization to 'table'
  where reads are more frequent than builds.
-#}
{{ config(materialized=var('marketing_signals__staged_materialization', 'view')) }}

select
    accepted.event_id,
    coalesce(identity.customer_key, accepted.customer_id) as customer_key,
    accepted.customer_id,
    accepted.signal_type,
    accepted.occurred_at,
    accepted.received_at,
    accepted.source_system,
    accepted.channel,
    accepted.location_id,
    accepted.jurisdiction,
    accepted.amount,
    accepted.properties
from {{ ref('int_signals__accepted') }} as accepted
left join {{ ref('identity_customer_map') }} as identity
    on accepted.customer_id = identity.customer_id
