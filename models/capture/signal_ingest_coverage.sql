{#-
  One row per registry signal type: is it arriving, how fresh is it, how much is quarantined,
  and the health status of its latest arrival day. Freshness is measured against the newest
  arrival of any type (deterministic) and against the build time.
-#}
{{ config(materialized='table') }}

with per_type as (
    select
        signal_type,
        cast(sum(accepted_events) as bigint) as accepted_events,
        cast(sum(quarantined_events) as bigint) as quarantined_events,
        count(case when accepted_events > 0 then 1 end) as days_with_events,
        min(case when accepted_events > 0 then received_date end) as first_received_date,
        max(last_received_at) as last_received_at
    from {{ ref('signal_ingest_health_daily') }}
    group by signal_type
),

latest_day as (
    select signal_type, health_status as latest_day_status, volume_z as latest_day_volume_z
    from {{ ref('signal_ingest_health_daily') }}
    qualify row_number() over (partition by signal_type order by received_date desc) = 1
),

newest as (
    select max(last_received_at) as newest_arrival_at from per_type
)

select
    registry.signal_type,
    registry.signal_group,
    coalesce(per_type.accepted_events, 0) > 0 as is_present,
    coalesce(per_type.accepted_events, 0) as accepted_events,
    coalesce(per_type.quarantined_events, 0) as quarantined_events,
    cast(coalesce(per_type.quarantined_events, 0) as double)
        / nullif(coalesce(per_type.accepted_events, 0) + coalesce(per_type.quarantined_events, 0), 0) as quarantine_rate,
    cast(coalesce(per_type.accepted_events, 0) as double)
        / nullif(sum(coalesce(per_type.accepted_events, 0)) over (), 0) as share_of_accepted,
    coalesce(per_type.days_with_events, 0) as days_with_events,
    per_type.first_received_date,
    per_type.last_received_at,
    {{ dbt.datediff('per_type.last_received_at', 'newest.newest_arrival_at', 'hour') }} as hours_behind_newest_arrival,
    {{ dbt.datediff('per_type.last_received_at', dbt.current_timestamp(), 'hour') }} as hours_since_last_arrival_at_build,
    latest_day.latest_day_status,
    latest_day.latest_day_volume_z
from {{ ref('registry_signal_types') }} as registry
cross join newest
left join per_type on registry.signal_type = per_type.signal_type
left join latest_day on registry.signal_type = latest_day.signal_type
