{#-
  One row per customer × live window with events in it: volume, breadth, purchases, returns
  and first/last times. The data-sufficiency gate and RFM read this. Refreshed for the
  customers of cohort_refresh_scope only, like cohort_signal_buckets.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ marketing_signals.cohort_refresh_delete() }}"
) }}
-- depends_on: {{ ref('cohort_refresh_plan') }}
-- depends_on: {{ ref('cohort_refresh_scope') }}

with per_type as (
    select
        buckets.customer_key,
        windows.window_id,
        buckets.signal_type,
        sum(buckets.event_count) as event_count,
        sum(cast(buckets.amount_sum as decimal(18, 2))) as amount_sum,
        min(buckets.first_occurred_at) as first_occurred_at,
        max(buckets.last_occurred_at) as last_occurred_at
    from {{ ref('cohort_signal_buckets') }} as buckets
    inner join {{ ref('cohort_window_buckets') }} as windows
        on windows.time_bucket = buckets.time_bucket
       and windows.anchor_id = 'as_of'
    where {{ marketing_signals.cohort_refresh_filter('buckets.customer_key') }}
    group by 1, 2, 3
)

select
    customer_key,
    window_id,
    cast(sum(event_count) as bigint) as event_count,
    cast(count(distinct signal_type) as integer) as distinct_signal_types,
    cast(coalesce(sum(event_count) filter (where signal_type = 'purchase'), 0) as bigint) as purchase_count,
    cast(coalesce(sum(amount_sum) filter (where signal_type = 'purchase'), 0) as double) as purchase_amount,
    cast(coalesce(sum(event_count) filter (where signal_type = 'product_return'), 0) as bigint) as return_count,
    cast(coalesce(sum(abs(amount_sum)) filter (where signal_type = 'product_return'), 0) as double) as return_amount,
    min(first_occurred_at) as first_occurred_at,
    max(last_occurred_at) as last_occurred_at,
    min(first_occurred_at) filter (where signal_type = 'purchase') as first_purchase_at,
    max(last_occurred_at) filter (where signal_type = 'purchase') as last_purchase_at
from per_type
group by 1, 2
