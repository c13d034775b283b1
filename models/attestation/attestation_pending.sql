{#-
  Decisions and transitions that may still need an attestation: emission_decisions and
  cohort_transitions since the last completed refresh (anything earlier was attested by a run
  that completed; a run that crashed left its rows after that point). attestation_ledger
  drops those already attested, so this superset is safe.
-#}
{{ config(materialized='view') }}

with plan as (
    select as_of, coalesce(previous_as_of, cast('1900-01-01' as timestamp)) as since
    from {{ ref('cohort_refresh_plan') }}
)

select
    decisions.decision_id as attestation_id,
    'emission_decision' as record_kind,
    decisions.customer_key,
    decisions.decided_at
from {{ ref('emission_decisions') }} as decisions
cross join plan
where decisions.decided_at >= plan.since

union all

select
    {{ marketing_signals.sha256_hex("'membership_transition|' || transitions.customer_key || '|' || transitions.method_id || '|'
        || transitions.window_id || '|' || cast(transitions.transition_at as varchar)") }} as attestation_id,
    'membership_transition' as record_kind,
    transitions.customer_key,
    transitions.transition_at as decided_at
from {{ ref('cohort_transitions') }} as transitions
cross join plan
where transitions.transition_at >= plan.since
