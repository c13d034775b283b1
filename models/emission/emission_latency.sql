{#-
  Emission latency per outbox event: from the membership change (changed_at) to the first
  successful or partial sync of that subscriber whose cursor (acknowledged_through) reaches the
  event's emission (emitted_at). Pending events have no ack yet; their age is measured against
  the newest sync the subscriber completed, so a stalled subscriber shows as breaching.
  sla_breached: latency (or pending age) above the subscriber's sla_minutes.
-#}
{{ config(materialized='table') }}

with acks as (
    select subscriber_id, sync_completed_at, acknowledged_through
    from {{ ref('emission_acks') }}
    where ack_kind = 'acknowledges_through_cursor'
),

first_ack as (
    select
        outbox.idempotency_key,
        min(acks.sync_completed_at) as acknowledged_at
    from {{ ref('emission_outbox') }} as outbox
    inner join acks
        on acks.subscriber_id = outbox.subscriber_id
       and acks.acknowledged_through >= outbox.emitted_at
    group by 1
),

newest_sync as (
    select subscriber_id, max(sync_completed_at) as newest_sync_at
    from {{ ref('emission_acks') }}
    group by 1
)

select
    outbox.idempotency_key,
    outbox.subscriber_id,
    outbox.op,
    outbox.changed_at,
    outbox.emitted_at,
    first_ack.acknowledged_at,
    case when first_ack.acknowledged_at is null then 'pending' else 'acknowledged' end as ack_status,
    {{ dbt.datediff('outbox.changed_at', 'coalesce(first_ack.acknowledged_at, greatest(newest_sync.newest_sync_at, outbox.emitted_at))', 'second') }} / 60.0 as latency_minutes,
    subscribers.sla_minutes,
    {{ dbt.datediff('outbox.changed_at', 'coalesce(first_ack.acknowledged_at, greatest(newest_sync.newest_sync_at, outbox.emitted_at))', 'second') }} / 60.0
        > subscribers.sla_minutes as sla_breached
from {{ ref('emission_outbox') }} as outbox
inner join {{ ref('registry_subscribers') }} as subscribers
    on subscribers.subscriber_id = outbox.subscriber_id
left join first_ack
    on first_ack.idempotency_key = outbox.idempotency_key
left join newest_sync
    on newest_sync.subscriber_id = outbox.subscriber_id
