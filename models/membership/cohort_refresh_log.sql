{#-
  One row per completed refresh of the cohort stage (the last model of the stage): as_of, the
  capture watermark it covered, the plan, and what changed. cohort_refresh_plan reads the latest
  row to decide the next run; a run that fails before this point leaves no row, so the next run
  re-scopes from the last completed one. Every run appends a row, 'unchanged' ones included.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    full_refresh=false,
    schema='features'
) }}
-- depends_on: {{ ref('cohort_membership_history') }}
-- depends_on: {{ ref('cohort_transitions') }}
-- depends_on: {{ ref('cohort_calibration_snapshots') }}
-- depends_on: {{ ref('attestation_checkpoints') }}

with changes as (
    select
        count(*) as membership_changes,
        count(*) filter (where change_kind in ('enter', 'exit', 'switch')) as transitions
    from {{ ref('cohort_membership_changes') }}
)

select
    plan.as_of,
    plan.previous_as_of,
    plan.captured_through,
    plan.raw_rows_through,
    plan.config_digest,
    plan.mode,
    plan.mode_reason,
    cast((select count(*) from {{ ref('cohort_refresh_scope') }}) as bigint) as customers_in_scope,
    cast(changes.membership_changes as bigint) as membership_changes,
    cast(changes.transitions as bigint) as transitions,
    plan.planned_at as started_at,
    {{ dbt.current_timestamp() }} as completed_at,
    plan.invocation_id
from {{ ref('cohort_refresh_plan') }} as plan
cross join changes
