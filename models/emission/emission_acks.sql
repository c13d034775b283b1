{#-
  Subscriber acknowledgements from the reverse-ETL sync logs (source subscriber_acks), one row
  per sync run, typed; ack_kind says what the run proves: success and partial runs acknowledge
  every feed change up to acknowledged_through; failed runs acknowledge nothing new. Rows for a
  subscriber not in registry_subscribers are kept with ack_kind unknown_subscriber (and the
  data test on it warns), never dropped. Without a subscriber_acks table (no reverse-ETL logs
  yet) the view is empty, with a log line, and every emission stays pending.
-#}
{{ config(materialized='view') }}

{%- set acks = source('marketing_signals', 'subscriber_acks') -%}
{%- set found = adapter.get_relation(database=acks.database, schema=acks.schema, identifier=acks.identifier) if execute else acks -%}
{%- if found is none %}
{{ log("marketing_signals: source table " ~ acks ~ " does not exist; no acknowledgements, every emission stays pending", info=True) }}
select
    cast(null as varchar) as sync_run_id, cast(null as varchar) as subscriber_id,
    cast(null as timestamp) as sync_started_at, cast(null as timestamp) as sync_completed_at,
    cast(null as varchar) as status, cast(null as bigint) as records_acknowledged,
    cast(null as timestamp) as acknowledged_through, cast(null as varchar) as ack_kind
where false
{%- else %}
select
    cast(acks.sync_run_id as varchar) as sync_run_id,
    cast(acks.subscriber_id as varchar) as subscriber_id,
    cast(acks.sync_started_at as timestamp) as sync_started_at,
    cast(acks.sync_completed_at as timestamp) as sync_completed_at,
    lower(cast(acks.status as varchar)) as status,
    cast(acks.records_acknowledged as bigint) as records_acknowledged,
    cast(acks.acknowledged_through as timestamp) as acknowledged_through,
    case
        when subscribers.subscriber_id is null then 'unknown_subscriber'
        when lower(cast(acks.status as varchar)) in ('success', 'partial') then 'acknowledges_through_cursor'
        else 'acknowledges_nothing'
    end as ack_kind
from {{ source('marketing_signals', 'subscriber_acks') }} as acks
left join {{ ref('registry_subscribers') }} as subscribers
    on subscribers.subscriber_id = acks.subscriber_id
{%- endif %}
