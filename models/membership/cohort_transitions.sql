{#-
  Append-only record of real membership transitions: a customer entered a cohort, left one, or
  moved from one to another, at an as_of, with the reason code of cohort_membership_changes.
  Attribute-only updates are not transitions. Keyed by customer × method × window × at, so a
  re-run at the same as_of replaces its own rows and never duplicates them. Never rebuilt by
  `--full-refresh`.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['customer_key', 'method_id', 'window_id', 'transition_at'],
    on_schema_change='fail',
    full_refresh=false
) }}

select
    customer_key,
    method_id,
    window_id,
    from_cohort_id,
    from_cohort_label,
    to_cohort_id,
    to_cohort_label,
    as_of as transition_at,
    previous_as_of,
    reason_code,
    from_confidence,
    to_confidence,
    from_model_version,
    to_model_version,
    cast('{{ invocation_id }}' as varchar) as invocation_id
from {{ ref('cohort_membership_changes') }}
where change_kind in ('enter', 'exit', 'switch')
