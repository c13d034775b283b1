{#-
  Append-only log of emission decisions: one row each time what a subscriber should hold for a
  feed key changes — a membership appears or disappears, its payload changes, or its
  compliance outcome changes. Compares emission_desired with the latest decision per
  (subscriber, feed key) already in this table, so a re-run, or a run after a crash, appends
  only what is not yet decided: nothing twice, nothing missed. Never rebuilt by --full-refresh.

  op is what the subscriber sees: enter (it did not hold the row, now does), exit (it held it,
  no longer does: the membership ended or compliance now suppresses it), update (held before
  and after, payload changed), none (nothing to send: e.g. a decision that stays suppressed).
  held_after: the subscriber holds the row after this decision (present, outcome emit).
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    full_refresh=false
) }}
-- depends_on: {{ ref('cohort_refresh_plan') }}

with plan as (
    select as_of from {{ ref('cohort_refresh_plan') }}
),

latest as (
    {%- if is_incremental() %}
    select *
    from (
        select
            decisions.*,
            row_number() over (partition by subscriber_id, feed_key order by decided_at desc, recorded_at desc, decision_id desc) as recency
        from {{ this }} as decisions
    ) as ranked
    where recency = 1
      and (membership_present or held_after)
    {%- else %}
    select
        cast(null as varchar) as decision_id, cast(null as varchar) as subscriber_id, cast(null as varchar) as feed_key,
        cast(null as varchar) as customer_key, cast(null as varchar) as home_location_id,
        cast(null as varchar) as method_id, cast(null as varchar) as window_id, cast(null as varchar) as cohort_id,
        cast(null as varchar) as cohort_label, cast(null as double) as confidence, cast(null as varchar) as model_version,
        cast(null as boolean) as is_holdout, cast(null as varchar) as jurisdiction,
        cast(null as boolean) as membership_present, cast(null as boolean) as held_after,
        cast(null as varchar) as state_digest, cast(null as timestamp) as decided_at
    where false
    {%- endif %}
),

compared as (
    select
        coalesce(desired.subscriber_id, latest.subscriber_id) as subscriber_id,
        coalesce(desired.feed_key, latest.feed_key) as feed_key,
        coalesce(desired.customer_key, latest.customer_key) as customer_key,
        coalesce(desired.home_location_id, latest.home_location_id) as home_location_id,
        coalesce(desired.method_id, latest.method_id) as method_id,
        coalesce(desired.window_id, latest.window_id) as window_id,
        coalesce(desired.cohort_id, latest.cohort_id) as cohort_id,
        coalesce(desired.cohort_label, latest.cohort_label) as cohort_label,
        coalesce(desired.confidence, latest.confidence) as confidence,
        coalesce(desired.model_version, latest.model_version) as model_version,
        coalesce(desired.is_holdout, latest.is_holdout) as is_holdout,
        coalesce(desired.jurisdiction, latest.jurisdiction) as jurisdiction,
        desired.feed_key is not null as membership_present,
        coalesce(desired.outcome = 'emit', false) as held_after,
        coalesce(latest.held_after, false) as held_before,
        case when desired.feed_key is null then 'emit' else desired.outcome end as outcome,
        desired.rule_ids,
        desired.suppress_rule_ids,
        desired.counsel_rule_ids,
        desired.missing_fields,
        desired.required_fields_present,
        desired.required_fields_digest,
        desired.admt_notice_ref,
        desired.ai_notice_ref,
        desired.decision_logic_ref,
        desired.decision_significance,
        desired.lawful_basis,
        desired.art22_exception,
        desired.opt_out_state,
        desired.human_review_path,
        desired.contest_channel,
        desired.source_attribution,
        desired.member_since,
        desired.entered_reason,
        coalesce(desired.state_digest, 'absent') as state_digest,
        latest.decision_id as previous_decision_id,
        latest.state_digest as previous_state_digest,
        latest.decided_at as previous_decided_at
    from {{ ref('emission_desired') }} as desired
    full outer join latest
        on latest.subscriber_id = desired.subscriber_id
       and latest.feed_key = desired.feed_key
)

select
    {{ marketing_signals.sha256_hex("'emission_decision|' || compared.subscriber_id || '|' || compared.feed_key || '|'
        || cast(plan.as_of as varchar) || '|' || compared.state_digest || '|' || coalesce(compared.previous_decision_id, '')") }} as decision_id,
    compared.subscriber_id,
    compared.feed_key,
    compared.customer_key,
    compared.home_location_id,
    compared.method_id,
    compared.window_id,
    compared.cohort_id,
    compared.cohort_label,
    compared.confidence,
    compared.model_version,
    compared.is_holdout,
    compared.jurisdiction,
    compared.membership_present,
    compared.held_after,
    case
        when compared.held_after and not compared.held_before then 'enter'
        when compared.held_before and not compared.held_after then 'exit'
        when compared.held_before and compared.held_after then 'update'
        else 'none'
    end as op,
    compared.outcome,
    case
        when not compared.membership_present then 'membership_ended'
        when compared.previous_decision_id is null then coalesce(compared.entered_reason, 'initial_membership')
        when compared.held_before <> compared.held_after then 'compliance_outcome_changed'
        else 'membership_updated'
    end as reason_code,
    compared.rule_ids,
    compared.suppress_rule_ids,
    compared.counsel_rule_ids,
    compared.missing_fields,
    compared.required_fields_present,
    compared.required_fields_digest,
    compared.admt_notice_ref,
    compared.ai_notice_ref,
    compared.decision_logic_ref,
    compared.decision_significance,
    compared.lawful_basis,
    compared.art22_exception,
    compared.opt_out_state,
    compared.human_review_path,
    compared.contest_channel,
    compared.source_attribution,
    compared.state_digest,
    compared.previous_decision_id,
    -- when the change the subscriber sees happened: the membership period's start, or this
    -- run for exits and for changes made after the period started (compliance, payload)
    case
        when not compared.membership_present then plan.as_of
        when compared.previous_decided_at is null or compared.member_since > compared.previous_decided_at then compared.member_since
        else plan.as_of
    end as changed_at,
    plan.as_of as decided_at,
    cast({{ dbt.current_timestamp() }} as timestamp) as recorded_at,
    cast('{{ invocation_id }}' as varchar) as invocation_id
from compared
cross join plan
where compared.previous_decision_id is null
   or compared.state_digest <> compared.previous_state_digest
