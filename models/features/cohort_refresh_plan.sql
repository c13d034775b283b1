{#-
  One row: how this run refreshes the cohort stage, decided from the last completed run
  (cohort_refresh_log).
    full         first run, `--full-refresh`, the bucket grid or method set changed, or as_of
                 moved backwards: every customer is re-featured and re-scored.
    unchanged    same as_of, capture watermark and raw row count as the last completed run:
                 nothing changes.
    incremental  only the customers in cohort_refresh_scope are re-featured and re-scored.
-#}
{{ config(materialized='table') }}

{%- set previous = marketing_signals.cohort_refresh_previous() -%}
{%- set digest = marketing_signals.cohort_refresh_config_digest() -%}
{%- set as_of = marketing_signals.cohort_as_of() -%}
{%- set prev_as_of = marketing_signals.timestamp_literal(previous.as_of) if previous.as_of is not none else 'cast(null as timestamp)' -%}
{%- set prev_captured = marketing_signals.timestamp_literal(previous.captured_through) if previous.captured_through is not none else 'cast(null as timestamp)' %}

with capture as (
    -- the latest capture run: its watermark (newest received_at) and raw rows seen; a late load
    -- with old received_at raises the row count without moving the watermark
    select watermark, raw_rows_through
    from {{ ref('signal_capture_runs') }}
    order by captured_through desc
    limit 1
),

candidate as (
    select
        {{ as_of }} as as_of,
        {{ prev_as_of }} as previous_as_of,
        capture.watermark as captured_through,
        {{ prev_captured }} as previous_captured_through,
        cast(capture.raw_rows_through as bigint) as raw_rows_through,
        cast({{ previous.raw_rows_through if previous.raw_rows_through is not none else 'null' }} as bigint) as previous_raw_rows_through,
        cast('{{ digest }}' as varchar) as config_digest,
        cast({{ "'" ~ previous.config_digest ~ "'" if previous.config_digest is not none else 'null' }} as varchar) as previous_config_digest
    from capture
)

select
    as_of,
    previous_as_of,
    captured_through,
    previous_captured_through,
    raw_rows_through,
    config_digest,
    case
        when previous_as_of is null then 'full'
        when {{ 'true' if flags.FULL_REFRESH else 'false' }} then 'full'
        when previous_config_digest is distinct from config_digest then 'full'
        when as_of < previous_as_of then 'full'
        when as_of = previous_as_of and captured_through = previous_captured_through
             and raw_rows_through = previous_raw_rows_through then 'unchanged'
        else 'incremental'
    end as mode,
    case
        when previous_as_of is null then 'no completed refresh yet'
        when {{ 'true' if flags.FULL_REFRESH else 'false' }} then '--full-refresh'
        when previous_config_digest is distinct from config_digest then 'bucket grid or method set changed'
        when as_of < previous_as_of then 'as_of moved backwards'
        when as_of = previous_as_of and captured_through = previous_captured_through
             and raw_rows_through = previous_raw_rows_through then 'same as_of, watermark and raw rows as the last completed run'
        else 'as_of or capture watermark advanced'
    end as mode_reason,
    {{ dbt.current_timestamp() }} as planned_at,
    cast('{{ invocation_id }}' as varchar) as invocation_id
from candidate
