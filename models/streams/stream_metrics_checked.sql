{#-
  Every stream_metrics row, typed, with the reason it cannot be used (null when it can).
  stream_metrics_staged keeps the usable rows, stream_metrics_quarantine the others; together
  with the rows after the run's as_of they account for every source row (test
  stream_metrics_reconcile). Of several usable values for one stream, location and day the
  smallest is kept and the others are quarantined as duplicate_period.
-#}
{{ config(materialized='view') }}

with typed as (
    select
        cast(stream_id as varchar) as stream_id,
        cast(location_id as varchar) as location_id,
        {{ marketing_signals.try_cast('period_start', 'date') }} as period_start,
        {{ marketing_signals.try_cast('value', 'double') }} as value,
        cast(period_start as varchar) as period_start_raw,
        cast(value as varchar) as value_raw
    from {{ source('marketing_signals', 'stream_metrics') }}
),

checked as (
    select
        t.*,
        case
            when r.stream_id is null then 'unknown_stream'
            when t.location_id is null or t.location_id = '' then 'missing_location'
            when t.location_id = 'ALL' then 'reserved_location_id'
            when t.period_start is null then 'invalid_period_start'
            when t.value is null or isnan(t.value) or isinf(t.value) then 'invalid_value'
            when t.value < 0 then 'negative_value'
            when coalesce(r.is_bounded_ratio, false) and t.value > 1 then 'ratio_out_of_range'
        end as row_reason
    from typed as t
    left join {{ ref('registry_streams') }} as r on r.stream_id = t.stream_id
),

ranked as (
    select
        *,
        row_number() over (
            partition by stream_id, location_id, period_start
            order by row_reason is not null, value, value_raw
        ) as copy_number
    from checked
)

select
    stream_id,
    location_id,
    period_start,
    value,
    period_start_raw,
    value_raw,
    coalesce(row_reason, case when copy_number > 1 then 'duplicate_period' end) as quarantine_reason
from ranked
