{#- Per subscriber × emission run: events, acknowledged, pending, latency percentiles (minutes) and SLA breaches. -#}
{{ config(materialized='table') }}

select
    subscriber_id,
    emitted_at,
    max(sla_minutes) as sla_minutes,
    count(*) as events,
    sum(case when ack_status = 'acknowledged' then 1 else 0 end) as acknowledged_events,
    sum(case when ack_status = 'pending' then 1 else 0 end) as pending_events,
    percentile_cont(0.5) within group (order by case when ack_status = 'acknowledged' then latency_minutes end) as latency_p50_minutes,
    percentile_cont(0.95) within group (order by case when ack_status = 'acknowledged' then latency_minutes end) as latency_p95_minutes,
    max(case when ack_status = 'acknowledged' then latency_minutes end) as latency_max_minutes,
    sum(case when sla_breached then 1 else 0 end) as sla_breaches
from {{ ref('emission_latency') }}
group by 1, 2
