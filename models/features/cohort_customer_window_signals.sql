{#-
  Live windows (anchor as_of) expanded from the bucket table: one row per customer × window ×
  signal type × channel × source system × category. A view: SQL cohort methods aggregate it
  to the grain they need.
-#}
{{ config(materialized='view') }}

select
    buckets.customer_key,
    windows.window_id,
    buckets.signal_type,
    buckets.channel,
    buckets.source_system,
    buckets.category,
    cast(sum(buckets.event_count) as bigint) as event_count,
    cast(sum(cast(buckets.amount_sum as decimal(18, 2))) as double) as amount_sum,
    min(buckets.first_occurred_at) as first_occurred_at,
    max(buckets.last_occurred_at) as last_occurred_at
from {{ ref('cohort_signal_buckets') }} as buckets
inner join {{ ref('cohort_window_buckets') }} as windows
    on windows.time_bucket = buckets.time_bucket
   and windows.anchor_id = 'as_of'
group by 1, 2, 3, 4, 5, 6
