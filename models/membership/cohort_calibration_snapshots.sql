{#-
  The history calibration learns from: at each snapshot as_of, the current membership (cohort
  and raw confidence) of a deterministic sample of customers (about
  marketing_signals__calibration_sample_per_million of every million). A snapshot is taken at
  most every marketing_signals__calibration_snapshot_hours of as_of, so hourly refreshes do not
  multiply it. Append-only and never rebuilt by `--full-refresh`.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    full_refresh=false
) }}

{%- set per_million = var('marketing_signals__calibration_sample_per_million') %}

with plan as (
    select as_of, mode from {{ ref('cohort_refresh_plan') }}
),

due as (
    select plan.as_of
    from plan
    {%- if is_incremental() %}
    where plan.mode <> 'unchanged'
      and plan.as_of >= coalesce(
          (select {{ dbt.dateadd('hour', var('marketing_signals__calibration_snapshot_hours'), 'max(as_of)') }} from {{ this }}),
          plan.as_of)
      and plan.as_of not in (select as_of from {{ this }})
    {%- endif %}
)

select
    due.as_of,
    history.customer_key,
    history.method_id,
    history.window_id,
    history.cohort_id,
    history.raw_confidence
from {{ ref('cohort_membership_history') }} as history
cross join due
where history.is_current
  and {{ marketing_signals.cohort_sample_predicate('history.customer_key', per_million) }}
