{#-
  What each subscriber should hold now: every current membership (cohort_membership) of the
  methods and windows it takes, with the compliance outcome for the customer × subscriber
  (compliance_evaluations), the deterministic holdout flag and a payload digest.
  emission_decisions compares this with the last decision per feed key.

  feed_key: stable key of a feed row, SHA-256 of subscriber, customer, home location (for
  customer_location subscribers), method, window and cohort. A customer who switches cohort
  leaves one key (exit) and enters another (enter).
  confidence: the raw membership confidence rounded to 0.01; finer movements are not news to
  a subscriber and would only churn updates.
  is_holdout: the customer is in the measurement control group of this cohort: a hash of
  customer, method, window and cohort below the subscriber's holdout_share. Nested across
  subscribers (a 5% holdout is inside a 10% one); activating subscribers must not act on it.
-#}
{{ config(materialized='table') }}

select
    {{ marketing_signals.sha256_hex("subscribers.subscriber_id || '|' || membership.customer_key || '|'
        || case when subscribers.keyed_by = 'customer_location' then coalesce(evaluations.home_location_id, '') else '' end
        || '|' || membership.method_id || '|' || membership.window_id || '|' || membership.cohort_id") }} as feed_key,
    subscribers.subscriber_id,
    membership.customer_key,
    case when subscribers.keyed_by = 'customer_location' then evaluations.home_location_id end as home_location_id,
    membership.method_id,
    membership.window_id,
    membership.cohort_id,
    membership.cohort_label,
    round(membership.raw_confidence, 2) as confidence,
    membership.model_version,
    membership.source_attribution,
    membership.valid_from as member_since,
    membership.entered_reason,
    {{ marketing_signals.emission_hash_unit("membership.customer_key || '|' || membership.method_id || '|' || membership.window_id || '|' || membership.cohort_id") }}
        < subscribers.holdout_share as is_holdout,
    coalesce(evaluations.outcome, 'suppress') as outcome,
    case when evaluations.customer_key is null then 'NO_PRIVACY_PROFILE' else evaluations.rule_ids end as rule_ids,
    evaluations.suppress_rule_ids,
    evaluations.counsel_rule_ids,
    evaluations.missing_fields,
    evaluations.required_fields_present,
    evaluations.required_fields_digest,
    evaluations.admt_notice_ref,
    evaluations.ai_notice_ref,
    evaluations.decision_logic_ref,
    evaluations.jurisdiction,
    evaluations.decision_significance,
    evaluations.lawful_basis,
    evaluations.art22_exception,
    evaluations.opt_out_state,
    evaluations.human_review_path,
    evaluations.contest_channel,
    {{ marketing_signals.sha256_hex("membership.cohort_label || '|' || cast(round(membership.raw_confidence, 2) as varchar) || '|'
        || membership.model_version || '|' || coalesce(evaluations.outcome, 'suppress') || '|' || coalesce(evaluations.rule_ids, '')") }} as state_digest
from {{ ref('cohort_membership') }} as membership
inner join {{ ref('emission_subscriber_cohorts') }} as taken
    on taken.method_id = membership.method_id
   and taken.window_id = membership.window_id
inner join {{ ref('registry_subscribers') }} as subscribers
    on subscribers.subscriber_id = taken.subscriber_id
left join {{ ref('compliance_evaluations') }} as evaluations
    on evaluations.customer_key = membership.customer_key
   and evaluations.subscriber_id = taken.subscriber_id
