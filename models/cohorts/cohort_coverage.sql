{#-
  One row per method × window (13 × 6 = 78): assigned customers, unassigned ones by reason, and
  — where nothing could be assigned — why (the sufficiency gate or the fit's own reason).
  status is 'assigned' or 'not_computed'; a not_computed row always carries a reason.
-#}
{{ config(materialized='table') }}

with assigned as (
    select method_id, window_id, count(*) as assigned_customers,
           count(distinct cohort_id) as cohorts, avg(confidence) as mean_confidence,
           max(model_version) as model_version
    from {{ ref('cohort_assignments') }}
    group by 1, 2
),

unassigned as (
    select method_id, window_id, count(*) as unassigned_customers,
           max(unassigned_reason) as example_unassigned_reason
    from {{ ref('cohort_unassigned') }}
    group by 1, 2
),

latest_fit as (
    select method_id, window_id, status as fit_status, reason as fit_reason
    from {{ ref('cohort_model_fits') }}
    qualify row_number() over (partition by method_id, window_id order by fitted_at desc) = 1
)

select
    sufficiency.method_id,
    sufficiency.window_id,
    methods.method_family,
    sufficiency.customers_with_events,
    sufficiency.eligible_customers,
    cast(coalesce(assigned.assigned_customers, 0) as bigint) as assigned_customers,
    cast(coalesce(unassigned.unassigned_customers, 0) as bigint) as unassigned_customers,
    cast(coalesce(assigned.cohorts, 0) as bigint) as cohorts,
    assigned.mean_confidence,
    assigned.model_version,
    case when coalesce(assigned.assigned_customers, 0) > 0 then 'assigned' else 'not_computed' end as status,
    case
        when coalesce(assigned.assigned_customers, 0) > 0 then null
        when sufficiency.status <> 'sufficient' then sufficiency.reason
        when latest_fit.fit_status = 'insufficient_data' then latest_fit.fit_reason
        when unassigned.unassigned_customers > 0 then 'no customer could be assigned: ' || unassigned.example_unassigned_reason
        when methods.method_family = 'python' and latest_fit.fit_status is null then 'no fitted model for this window'
        else 'no eligible customer received an assignment'
    end as reason,
    unassigned.example_unassigned_reason
from {{ ref('cohort_sufficiency') }} as sufficiency
inner join {{ ref('registry_cohort_methods') }} as methods
    on methods.method_id = sufficiency.method_id
left join assigned
    on assigned.method_id = sufficiency.method_id and assigned.window_id = sufficiency.window_id
left join unassigned
    on unassigned.method_id = sufficiency.method_id and unassigned.window_id = sufficiency.window_id
left join latest_fit
    on latest_fit.method_id = sufficiency.method_id and latest_fit.window_id = sufficiency.window_id
