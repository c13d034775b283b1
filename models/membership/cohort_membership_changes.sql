{#-
  This run's membership delta: the current assignments (cohort_assignments) compared with the
  current rows of cohort_membership_history, for the customers this run re-scored. One row per
  customer × method × window whose membership entered, exited, switched cohort, or kept its
  cohort with new attributes (confidence, score, attribution, model version). Empty when the
  refresh plan is 'unchanged', so a repeated build writes nothing downstream.

  Compared: everything in 'full' mode; otherwise every row of methods whose refresh_scope is
  all_customers or that refitted this run, and the scoped customers of the other methods.

  reason_code (first that applies): initial_membership (no history yet), consent_withdrawn,
  identity_merge_or_split, model_refit (the fitted model or rule revision changed),
  new_signals, window_aged_out, score_crossed_boundary (nothing about the customer changed:
  population boundaries such as quintile edges moved, or time passed for a time-relative score).
-#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('cohort_refresh_plan') }}
-- depends_on: {{ ref('cohort_refresh_scope') }}

{%- set mode = marketing_signals.cohort_refresh_mode() -%}
{%- if execute -%}
  {%- set order = run_query("select as_of, previous_as_of from " ~ ref('cohort_refresh_plan') ~ " where as_of < previous_as_of") -%}
  {%- if order.rows | length > 0 -%}
    {{ exceptions.raise_compiler_error("membership history is forward-only: as_of " ~ order.rows[0][0]
        ~ " is before the last completed refresh's " ~ order.rows[0][1]
        ~ ". Build an earlier as_of into a new database (or drop the membership schema first).") }}
  {%- endif -%}
{%- endif -%}
{%- set history = adapter.get_relation(database=this.database, schema=this.schema, identifier='cohort_membership_history') if execute else none %}

with plan as (
    select as_of, previous_as_of, mode from {{ ref('cohort_refresh_plan') }}
),

refitted as (
    -- Python methods that fitted a new model on this run
    select distinct fits.method_id
    from {{ ref('cohort_model_fits') }} as fits
    inner join plan on fits.as_of = plan.as_of
    where fits.status = 'fitted'
),

compared_methods as (
    select methods.method_id
    from {{ ref('registry_cohort_methods') }} as methods
    where methods.refresh_scope = 'all_customers'
       or methods.method_id in (select method_id from refitted)
       or '{{ mode }}' = 'full'
),

assigned as (
    select assignments.*
    from {{ ref('cohort_assignments') }} as assignments
    where '{{ mode }}' <> 'unchanged'
      and (assignments.method_id in (select method_id from compared_methods)
           or assignments.customer_key in (select customer_key from {{ ref('cohort_refresh_scope') }}))
),

current_rows as (
    {%- if history is none %}
    select
        cast(null as varchar) as customer_key, cast(null as varchar) as method_id,
        cast(null as varchar) as window_id, cast(null as varchar) as cohort_id,
        cast(null as varchar) as cohort_label, cast(null as double) as raw_confidence,
        cast(null as double) as score, cast(null as varchar) as source_attribution,
        cast(null as varchar) as model_version, cast(null as timestamp) as valid_from
    where false
    {%- else %}
    select customer_key, method_id, window_id, cohort_id, cohort_label, raw_confidence, score,
           source_attribution, model_version, valid_from
    from {{ history }}
    where is_current
      and '{{ mode }}' <> 'unchanged'
      and (method_id in (select method_id from compared_methods)
           or customer_key in (select customer_key from {{ ref('cohort_refresh_scope') }}))
    {%- endif %}
),

compared as (
    select
        coalesce(assigned.customer_key, current_rows.customer_key) as customer_key,
        coalesce(assigned.method_id, current_rows.method_id) as method_id,
        coalesce(assigned.window_id, current_rows.window_id) as window_id,
        case
            when current_rows.customer_key is null then 'enter'
            when assigned.customer_key is null then 'exit'
            when assigned.cohort_id <> current_rows.cohort_id then 'switch'
            -- confidences and scores compared to 1e-9: BLAS may round the last bit of a
            -- distance differently for a different batch shape, which is not a change
            when round(assigned.confidence, 9) is distinct from round(current_rows.raw_confidence, 9)
              or round(assigned.score, 9) is distinct from round(current_rows.score, 9)
              or assigned.source_attribution is distinct from current_rows.source_attribution
              or assigned.model_version is distinct from current_rows.model_version then 'update'
        end as change_kind,
        current_rows.cohort_id as from_cohort_id,
        current_rows.cohort_label as from_cohort_label,
        current_rows.raw_confidence as from_confidence,
        current_rows.model_version as from_model_version,
        current_rows.valid_from as from_valid_from,
        assigned.cohort_id as to_cohort_id,
        assigned.cohort_label as to_cohort_label,
        assigned.confidence as to_confidence,
        assigned.score as to_score,
        assigned.source_attribution as to_source_attribution,
        assigned.model_version as to_model_version
    from assigned
    full outer join current_rows
        on current_rows.customer_key = assigned.customer_key
       and current_rows.method_id = assigned.method_id
       and current_rows.window_id = assigned.window_id
)

select
    compared.customer_key,
    compared.method_id,
    compared.window_id,
    compared.change_kind,
    compared.from_cohort_id,
    compared.from_cohort_label,
    compared.from_confidence,
    compared.from_model_version,
    compared.from_valid_from,
    compared.to_cohort_id,
    compared.to_cohort_label,
    compared.to_confidence,
    compared.to_score,
    compared.to_source_attribution,
    compared.to_model_version,
    case
        when {{ 'true' if history is none else 'false' }} then 'initial_membership'
        when scope.has_consent_change then 'consent_withdrawn'
        when scope.has_identity_change then 'identity_merge_or_split'
        when compared.change_kind = 'switch'
             and compared.from_model_version is distinct from compared.to_model_version then 'model_refit'
        when scope.has_new_signals
             and (scope.previous_event_count is null or lifetime.event_count is distinct from scope.previous_event_count)
            then 'new_signals'
        when scope.has_aged_signals or scope.has_new_signals then 'window_aged_out'
        else 'score_crossed_boundary'
    end as reason_code,
    plan.as_of,
    plan.previous_as_of
from compared
cross join plan
left join {{ ref('cohort_refresh_scope') }} as scope
    on scope.customer_key = compared.customer_key
left join {{ ref('cohort_customer_windows') }} as lifetime
    on lifetime.customer_key = compared.customer_key
   and lifetime.window_id = 'lifetime'
where compared.change_kind is not null
