{#-
  The one scan of accepted events that every cohort method reads: counts and amounts per
  customer × signal type × channel × source system × product category × time bucket, for
  events at or before as_of. Windows are sums of buckets (cohort_window_buckets), so this long
  table serves all 6 windows at every anchor; wide matrices are built from it in the engine.
  Customers and sources excluded before cohorts (compliance_cohort_exclusions,
  compliance_excluded_sources) are filtered out here, so no method ever sees them.
  Incremental: a run re-buckets only the customers of cohort_refresh_scope (deleting their old
  rows first); every other customer's events stayed in the same buckets, so their rows stand.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ marketing_signals.cohort_refresh_delete() }}"
) }}
-- depends_on: {{ ref('cohort_refresh_plan') }}
-- depends_on: {{ ref('cohort_refresh_scope') }}

{%- set as_of = marketing_signals.cohort_as_of() -%}
{%- set buckets = marketing_signals.cohort_time_buckets(marketing_signals.cohort_window_hours()) %}

select
    customer_key,
    signal_type,
    channel,
    source_system,
    {{ marketing_signals.json_text_field('properties', 'category') }} as category,
    cast({{ marketing_signals.cohort_bucket_expression('occurred_at', as_of, buckets) }} as integer) as time_bucket,
    cast(count(*) as bigint) as event_count,
    -- summed as decimals: exact, so a rebuild reproduces every amount (and every rank on it)
    cast(sum(cast(amount as decimal(18, 2))) as double) as amount_sum,
    min(occurred_at) as first_occurred_at,
    max(occurred_at) as last_occurred_at
from {{ ref('signals_staged') }}
where occurred_at <= {{ as_of }}
  and {{ marketing_signals.cohort_refresh_filter() }}
  and {{ marketing_signals.compliance_cohort_input_filter() }}
group by 1, 2, 3, 4, 5, 6
