{#-
  SCD2 history of cohort membership: one row per customer × method × window × period in which
  the customer held one cohort (valid_from inclusive, valid_to exclusive, null while current).
  A new period starts only when the cohort changes; confidence, score, attribution and model
  version of the current period are kept up to date in place (updated_as_of says when).

  Written by an incremental delete+insert from this run's cohort_membership_changes (see
  docs/DECISIONLOG.md: incremental merge, not dbt snapshots). Never rebuilt by
  `--full-refresh` (full_refresh=false): history cannot be recomputed from current data.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['customer_key', 'method_id', 'window_id', 'valid_from'],
    on_schema_change='fail',
    full_refresh=false
) }}

with changes as (
    select * from {{ ref('cohort_membership_changes') }}
),

closed as (
    -- the period that ends: cohort switched or membership exited. A switch restating a period
    -- that began at this same as_of replaces it (opened row, same key); an exit of such a
    -- period leaves it zero-length (valid_to = valid_from).
    select
        changes.customer_key,
        changes.method_id,
        changes.window_id,
        changes.from_cohort_id as cohort_id,
        changes.from_cohort_label as cohort_label,
        changes.from_confidence as raw_confidence,
        history.score,
        history.source_attribution,
        changes.from_model_version as model_version,
        changes.from_valid_from as valid_from,
        changes.as_of as valid_to,
        false as is_current,
        history.entered_reason,
        history.updated_as_of,
        changes.reason_code as exited_reason
    {%- if is_incremental() %}
    from changes
    inner join {{ this }} as history
        on history.customer_key = changes.customer_key
       and history.method_id = changes.method_id
       and history.window_id = changes.window_id
       and history.valid_from = changes.from_valid_from
    where changes.change_kind = 'exit'
       or (changes.change_kind = 'switch' and changes.from_valid_from < changes.as_of)
    {%- else %}
    from changes
    cross join (select cast(null as double) as score, cast(null as varchar) as source_attribution,
                       cast(null as varchar) as entered_reason, cast(null as timestamp) as updated_as_of) as history
    where false
    {%- endif %}
),

opened as (
    -- the period that starts (enter, switch) or the current period with fresh attributes (update)
    select
        customer_key,
        method_id,
        window_id,
        to_cohort_id as cohort_id,
        to_cohort_label as cohort_label,
        to_confidence as raw_confidence,
        to_score as score,
        to_source_attribution as source_attribution,
        to_model_version as model_version,
        case when change_kind = 'update' then from_valid_from else as_of end as valid_from,
        cast(null as timestamp) as valid_to,
        true as is_current,
        case when change_kind = 'update' then cast(null as varchar) else reason_code end as entered_reason,
        as_of as updated_as_of,
        cast(null as varchar) as exited_reason
    from changes
    where change_kind in ('enter', 'switch', 'update')
)

{%- if is_incremental() %}
, kept_reason as (
    -- an update keeps the reason its period was entered with
    select opened.customer_key, opened.method_id, opened.window_id, opened.valid_from, history.entered_reason
    from opened
    inner join {{ this }} as history
        on history.customer_key = opened.customer_key
       and history.method_id = opened.method_id
       and history.window_id = opened.window_id
       and history.valid_from = opened.valid_from
)
{%- endif %}

select * from closed
union all
select
    opened.customer_key, opened.method_id, opened.window_id, opened.cohort_id, opened.cohort_label,
    opened.raw_confidence, opened.score, opened.source_attribution, opened.model_version,
    opened.valid_from, opened.valid_to, opened.is_current,
    {%- if is_incremental() %}
    coalesce(opened.entered_reason, kept_reason.entered_reason) as entered_reason,
    {%- else %}
    opened.entered_reason,
    {%- endif %}
    opened.updated_as_of, opened.exited_reason
from opened
{%- if is_incremental() %}
left join kept_reason
    on kept_reason.customer_key = opened.customer_key
   and kept_reason.method_id = opened.method_id
   and kept_reason.window_id = opened.window_id
   and kept_reason.valid_from = opened.valid_from
{%- endif %}
