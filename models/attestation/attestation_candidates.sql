{#-
  The attestation records still to be written, in the ledger's column layout (before sequence
  numbers and hashes, which attestation_ledger adds): one per emission decision (emitted or
  suppressed; explanation, rule ids, GDPR Art. 22 and CCPA ADMT fields) and one per membership
  transition, each with its attestor identity (service, code version, model version, policy
  version, dbt invocation), chain of custody, a pseudonymous subject digest (never the
  customer key: attestation_subjects) and a retention class. A view over attestation_pending.

  With the stream stage on, also one record per state of a root-cause routing decision
  (record_kind rca_routing_decision, from rca_decision_outcomes; see docs/root_cause_routing.md):
  its id is SHA-256 of the decision id and its state digest, so a decision is attested again only
  when its queue, rule, action, tiers, gate outcome, executability, mode or policy changes. Its
  subject is the incident: subject_digest = SHA-256('rca_incident|' || incident_id), unsalted,
  because an incident id (stream × location × day anomalies) is not personal data and there is
  nothing to erase; records of one incident share the digest.
-#}
{{ config(materialized='view') }}

{%- set as_of = marketing_signals.cohort_as_of() -%}
{%- set attestor = marketing_signals.attestor_identity() -%}
{%- set service_identity = attestor.service_identity -%}
{%- set code_version = attestor.code_version -%}
{%- set with_rca = var('marketing_signals__streams_enabled', true) %}

with policy as (
    -- the policy in force when the decision is made (this run), whatever the data's as_of
{{ marketing_signals.policy_in_force() }}
),

retention as (
    -- the longest retention class among the regimes of each jurisdiction
    select jurisdiction_id, retention_class, years
    from (
        select
            jurisdictions.jurisdiction_id,
            classes.retention_class,
            classes.years,
            row_number() over (partition by jurisdictions.jurisdiction_id order by classes.years desc, classes.retention_class) as rank_in_jurisdiction
        from {{ ref('registry_jurisdictions') }} as jurisdictions
        inner join (select distinct regime from {{ ref('registry_compliance_rules') }}) as regimes
            on '|' || jurisdictions.regimes || '|' like '%|' || regimes.regime || '|%'
        inner join {{ ref('registry_retention_classes') }} as classes
            on '|' || classes.regimes || '|' like '%|' || regimes.regime || '|%'
    ) as ranked
    where rank_in_jurisdiction = 1
),

pending as (
    select * from {{ ref('attestation_pending') }}
),

decisions as (
    select
        pending.attestation_id,
        pending.record_kind,
        decisions.outcome as decision,
        decisions.op,
        decisions.customer_key,
        decisions.subscriber_id,
        decisions.method_id,
        decisions.window_id,
        decisions.cohort_id,
        decisions.confidence,
        decisions.decided_at,
        decisions.rule_ids,
        decisions.jurisdiction,
        decisions.model_version,
        {{ marketing_signals.json_object_text([
            ('reason_code', 'decisions.reason_code'),
            ('cohort_label', 'decisions.cohort_label'),
            ('feed_key', 'decisions.feed_key'),
            ('is_holdout', 'decisions.is_holdout'),
            ('suppress_rule_ids', 'decisions.suppress_rule_ids'),
            ('counsel_rule_ids', 'decisions.counsel_rule_ids'),
            ('missing_fields', 'decisions.missing_fields'),
            ('previous_decision_id', 'decisions.previous_decision_id'),
            ('top_signals', marketing_signals.json_parse('decisions.source_attribution')),
        ]) }} as rationale_json,
        {{ marketing_signals.json_object_text([
            ('solely_automated', 'true'),
            ('significant_effect', "coalesce(decisions.decision_significance = 'similarly_significant', false)"),
            ('lawful_basis', 'decisions.lawful_basis'),
            ('art22_exception', 'decisions.art22_exception'),
            ('human_review_path', 'decisions.human_review_path'),
            ('contest_channel', 'decisions.contest_channel'),
            ('explanation', "'Placed in cohort ' || coalesce(decisions.cohort_label, decisions.cohort_id) || ' by ' || decisions.method_id || ' over the ' || decisions.window_id || ' window (confidence ' || coalesce(cast(decisions.confidence as varchar), 'n/a') || '); the main signals are listed in rationale.top_signals'"),
        ]) }} as art22_json,
        {{ marketing_signals.json_object_text([
            ('admt_applies', "coalesce(jurisdictions.admt_applies and decisions.decision_significance = 'similarly_significant', false)"),
            ('opt_out_state', 'decisions.opt_out_state'),
            ('admt_notice_ref', 'decisions.admt_notice_ref'),
            ('ai_notice_ref', 'decisions.ai_notice_ref'),
            ('decision_logic_ref', 'decisions.decision_logic_ref'),
            ('required_fields_digest', 'decisions.required_fields_digest'),
            ('key_parameters', marketing_signals.json_object_value([('method_id', 'decisions.method_id'), ('window_id', 'decisions.window_id'), ('model_version', 'decisions.model_version')])),
            ('decision_output', "decisions.op || ' ' || coalesce(decisions.cohort_id, '')"),
        ]) }} as admt_json
    from pending
    inner join {{ ref('emission_decisions') }} as decisions
        on decisions.decision_id = pending.attestation_id
    left join {{ ref('registry_jurisdictions') }} as jurisdictions
        on jurisdictions.jurisdiction_id = decisions.jurisdiction
    where pending.record_kind = 'emission_decision'
),

transitions as (
    select
        pending.attestation_id,
        pending.record_kind,
        case
            when transitions.from_cohort_id is null then 'enter'
            when transitions.to_cohort_id is null then 'exit'
            else 'switch'
        end as decision,
        cast(null as varchar) as op,
        transitions.customer_key,
        cast(null as varchar) as subscriber_id,
        transitions.method_id,
        transitions.window_id,
        coalesce(transitions.to_cohort_id, transitions.from_cohort_id) as cohort_id,
        transitions.to_confidence as confidence,
        transitions.transition_at as decided_at,
        cast(null as varchar) as rule_ids,
        profile.jurisdiction,
        coalesce(transitions.to_model_version, transitions.from_model_version) as model_version,
        {{ marketing_signals.json_object_text([
            ('reason_code', 'transitions.reason_code'),
            ('from_cohort_id', 'transitions.from_cohort_id'),
            ('from_cohort_label', 'transitions.from_cohort_label'),
            ('to_cohort_id', 'transitions.to_cohort_id'),
            ('to_cohort_label', 'transitions.to_cohort_label'),
            ('from_model_version', 'transitions.from_model_version'),
            ('to_model_version', 'transitions.to_model_version'),
            ('from_confidence', 'transitions.from_confidence'),
            ('previous_as_of', 'transitions.previous_as_of'),
        ]) }} as rationale_json,
        {{ marketing_signals.json_object_text([
            ('solely_automated', 'true'),
            ('significant_effect', 'false'),
            ('note', "'profiling step; the decisions that use it are attested per subscriber'"),
        ]) }} as art22_json,
        cast(null as varchar) as admt_json
    from pending
    inner join {{ ref('cohort_transitions') }} as transitions
        on pending.record_kind = 'membership_transition'
       and {{ marketing_signals.sha256_hex("'membership_transition|' || transitions.customer_key || '|' || transitions.method_id || '|'
        || transitions.window_id || '|' || cast(transitions.transition_at as varchar)") }} = pending.attestation_id
    left join {{ ref('customer_privacy_profile') }} as profile
        on profile.customer_key = transitions.customer_key
    where pending.record_kind = 'membership_transition'
),

records as (
    select * from decisions
    union all
    select * from transitions
)
{%- if with_rca %},

rca_records as (
    select
        {{ marketing_signals.sha256_hex("'rca_routing_decision|' || outcomes.decision_id || '|' || outcomes.state_digest") }} as attestation_id,
        cast('rca_routing_decision' as varchar) as record_kind,
        outcomes.outcome as decision,
        case when outcomes.is_executable then 'execute' when outcomes.mode = 'shadow' then 'shadow' else 'route' end as op,
        {{ marketing_signals.sha256_hex("'rca_incident|' || outcomes.incident_id") }} as subject_digest,
        cast(null as varchar) as subscriber_id,
        cast(null as varchar) as method_id,
        cast(null as varchar) as window_id,
        cast(null as varchar) as cohort_id,
        cast(outcomes.posterior as double) as confidence,
        cast(outcomes.decided_at as timestamp) as decided_at,
        coalesce(outcomes.routing_rule_id || '|', '') || coalesce(outcomes.gate_rule_ids, '') as rule_ids,
        {{ marketing_signals.json_object_text([
            ('decision_id', 'outcomes.decision_id'),
            ('hypothesis_id', 'outcomes.hypothesis_id'),
            ('incident_id', 'outcomes.incident_id'),
            ('cause_id', 'outcomes.cause_id'),
            ('hypothesis_rank', 'outcomes.hypothesis_rank'),
            ('queue_id', 'outcomes.queue_id'),
            ('routing_rule_id', 'outcomes.routing_rule_id'),
            ('rerouted_from_rule_id', 'outcomes.rerouted_from_rule_id'),
            ('action_id', 'outcomes.action_id'),
            ('channel', 'outcomes.channel'),
            ('confidence_tier', 'outcomes.confidence_tier'),
            ('causal_evidence_tier', 'outcomes.causal_evidence_tier'),
            ('spend_at_risk_usd', 'outcomes.spend_at_risk_usd'),
            ('spend_cap_usd', 'outcomes.spend_cap_usd'),
            ('mode', 'outcomes.mode'),
            ('automation_cleared', 'outcomes.automation_cleared'),
            ('is_executable', 'outcomes.is_executable'),
            ('gate_outcome', 'outcomes.outcome'),
            ('surfaces', 'outcomes.surfaces'),
            ('refused_rule_ids', 'outcomes.refused_rule_ids'),
            ('held_rule_ids', 'outcomes.held_rule_ids'),
            ('routing_reason', 'outcomes.routing_reason'),
            ('outcome_reason', 'outcomes.outcome_reason'),
        ]) }} as rationale_json,
        {{ marketing_signals.json_object_text([
            ('solely_automated', 'outcomes.automation_cleared'),
            ('significant_effect', 'false'),
            ('note', "'a decision about an incident, not about a person; a customer-affecting action excludes opted-out customers (gate GDPR22_ADMT_OPT_OUT_EXCLUSION, counts in admt_json)'"),
        ]) }} as art22_json,
        outcomes.opt_out_evidence_json as admt_json,
        {{ marketing_signals.json_object_text([
            ('evidence_export_sha256', 'outcomes.export_sha256'),
            ('as_of', 'cast(outcomes.decided_at as varchar)'),
        ]) }} as custody_json,
        {{ marketing_signals.json_object_text([
            ('service_identity', 'outcomes.service_identity'),
            ('code_version', 'outcomes.code_version'),
            ('model_version', 'outcomes.model_version'),
            ('policy_version', 'outcomes.policy_version'),
            ('dbt_invocation_id', 'outcomes.dbt_invocation_id'),
        ]) }} as attestor_json,
        outcomes.retention_class,
        cast(outcomes.retention_until as date) as retention_until
    from {{ ref('rca_decision_outcomes') }} as outcomes
)
{%- endif %}

select
    records.attestation_id,
    records.record_kind,
    records.decision,
    records.op,
    subjects.subject_digest,
    records.subscriber_id,
    records.method_id,
    records.window_id,
    records.cohort_id,
    records.confidence,
    records.decided_at,
    records.rule_ids,
    records.rationale_json,
    records.art22_json,
    records.admt_json,
    {{ marketing_signals.json_object_text([
        ('input_event_count', 'custody.input_event_count'),
        ('event_id_set_digest', 'custody.event_id_set_digest'),
        ('newest_received_at', 'cast(custody.newest_received_at as varchar)'),
        ('as_of', "cast(" ~ as_of ~ " as varchar)"),
    ]) }} as custody_json,
    {{ marketing_signals.json_object_text([
        ('service_identity', "'" ~ service_identity ~ "'"),
        ('code_version', "'" ~ code_version ~ "'"),
        ('model_version', 'records.model_version'),
        ('policy_version', 'policy.policy_version'),
        ('dbt_invocation_id', "'" ~ invocation_id ~ "'"),
    ]) }} as attestor_json,
    coalesce(retention.retention_class, 'gdpr_6y') as retention_class,
    cast({{ dbt.dateadd('year', 'coalesce(retention.years, 6)', 'cast(records.decided_at as date)') }} as date) as retention_until
from records
left join policy
    on true
-- left joins: a record never disappears here; the ledger engine rejects one without a subject digest
left join {{ ref('attestation_subjects') }} as subjects
    on subjects.customer_key = records.customer_key
left join {{ ref('attestation_custody') }} as custody
    on custody.customer_key = records.customer_key
left join retention
    on retention.jurisdiction_id = records.jurisdiction
{%- if with_rca %}

union all

select * from rca_records
{%- endif %}
