{#-
  Capture manifest (one row per capture run, append-only). The watermark is the newest
  received_at seen at or before the run start and only moves forward; the next run re-decides
  rows received from watermark - lookback on, so late loads within the lookback are caught.
  captured_through (the run start) bounds what the published views show: later arrivals are
  pending until the next run.
-#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}

with

previous as (
    {% if is_incremental() %}
    select max(watermark) as watermark from {{ this }}
    {% else %}
    select cast(null as timestamp) as watermark
    {% endif %}
),

this_run as (
    select cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp) as captured_through
),

arrivals as (
    select
        max(received_at) as newest_received_at,
        -- the newest event time a captured row can carry (rows further ahead of their arrival
        -- are rejected as occurred_in_future); cohort windows end here by default
        max(occurred_at) filter (
            where occurred_at <= {{ dbt.dateadd('hour', var('marketing_signals__future_tolerance_hours'), 'received_at') }}
        ) as newest_occurred_at,
        count(*) as raw_rows_through
    from {{ ref('stg_marketing_signals__events') }}
    where received_at <= (select captured_through from this_run)
)

select
    cast('{{ invocation_id }}' as varchar) as capture_run_id,
    this_run.captured_through,
    previous.watermark as previous_watermark,
    {{ dbt.dateadd('hour', -1 * var('marketing_signals__capture_lookback_hours'), 'previous.watermark') }} as window_start,
    case
        when previous.watermark is null then arrivals.newest_received_at
        when arrivals.newest_received_at is null then previous.watermark
        when arrivals.newest_received_at > previous.watermark then arrivals.newest_received_at
        else previous.watermark
    end as watermark,
    arrivals.raw_rows_through,
    arrivals.newest_occurred_at
from this_run
cross join previous
cross join arrivals
