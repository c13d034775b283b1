{#-
  Which time buckets make up each registry window at each anchor. Anchor as_of is the live
  window; the backtest anchors (as_of minus marketing_signals__backtest_anchor_hours) are the
  same windows ending earlier, for methods that learn from what happened next.
-#}
{{ config(materialized='table') }}

{%- set buckets = marketing_signals.cohort_time_buckets(marketing_signals.cohort_window_hours()) -%}
{%- set anchors = [0] + var('marketing_signals__backtest_anchor_hours') %}

with buckets as (
    select * from (values
    {%- for b in buckets %}
        ({{ b.bucket }}, {{ b.hours_from }}, {{ b.hours_to if b.hours_to is not none else 'null' }}){{ ',' if not loop.last }}
    {%- endfor %}
    ) as t (time_bucket, hours_ago_from, hours_ago_to)
),

anchors as (
    select * from (values
    {%- for a in anchors %}
        ('{{ "as_of" if a == 0 else "as_of_minus_" ~ a ~ "h" }}', {{ a }}){{ ',' if not loop.last }}
    {%- endfor %}
    ) as t (anchor_id, anchor_offset_hours)
)

select
    windows.window_id,
    anchors.anchor_id,
    cast(anchors.anchor_offset_hours as integer) as anchor_offset_hours,
    cast(buckets.time_bucket as integer) as time_bucket,
    cast(buckets.hours_ago_from as integer) as hours_ago_from,
    cast(buckets.hours_ago_to as integer) as hours_ago_to
from {{ ref('registry_windows') }} as windows
cross join anchors
inner join buckets
    on buckets.hours_ago_from >= anchors.anchor_offset_hours
   and (windows.window_hours is null
        or buckets.hours_ago_to <= anchors.anchor_offset_hours + windows.window_hours)
