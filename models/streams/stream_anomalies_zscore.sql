{#-
  The in-repo baseline detector every change to Observe is compared with: a rolling z-score,
  |value - mean| / sd over the previous marketing_signals__zscore_window_days values, both
  directions, no seasonality. Consecutive flagged days form one window (gaps and islands).
-#}
{{ config(materialized='table') }}

{%- set w = var('marketing_signals__zscore_window_days') | int -%}
{#- written out in each OVER: Snowflake has no named WINDOW clause -#}
{%- set w_prev -%}
partition by stream_id, location_id order by period_start rows between {{ w }} preceding and 1 preceding
{%- endset -%}
{%- set threshold = var('marketing_signals__zscore_threshold') %}

with stats as (
    select
        stream_id,
        location_id,
        period_start,
        value,
        avg(value) over ({{ w_prev }}) as mean_prev,
        stddev_samp(value) over ({{ w_prev }}) as sd_prev,
        count(value) over ({{ w_prev }}) as n_prev
    from {{ ref('stream_metrics_staged') }}
),

flagged as (
    select
        *,
        (value - mean_prev) / nullif(sd_prev, 0) as z_score,
        row_number() over (partition by stream_id, location_id order by period_start) as rn
    from stats
    where n_prev >= {{ (w / 2) | int }}
      and abs((value - mean_prev) / nullif(sd_prev, 0)) > {{ threshold }}
),

islands as (
    select *, {{ dbt.dateadd('day', '-rn', 'period_start') }} as island
    from flagged
)

select
    stream_id,
    location_id,
    min(period_start) as onset_date,
    max(period_start) as end_date,
    count(*) as flagged_days,
    max(abs(z_score)) as peak_abs_z,
    case when sum(z_score) >= 0 then 'up' else 'down' end as direction
from islands
group by stream_id, location_id, island
