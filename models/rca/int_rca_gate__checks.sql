{#-
  The compliance gate before the evidence export: one row per routing decision × surface it
  touches × anchor that applies there (registry_compliance_anchors.surfaces).

  Surfaces come from registry_rca_surfaces: a rule puts a decision on its surface when each of its
  non-null match columns (queue_id, requires_human, action_id, cause_family, scope,
  affects_financial_reporting) equals the decision's; rs_internal (no match columns) puts every
  decision on internal. makes_causal_claim is true when any matching rule states the cause.

  Checks (rule_id, outcome):
    FTC_SUBSTANTIATION_CAUSAL_TIER3   advertising_claim, franchisee_report: a causal claim needs
        causal-evidence tier 3 and an identification record, else the anchor's failure outcome
        (refuse); no causal claim on the surface: allow.
    SEC_FD_PREPUBLISH_CHECK           investor: the latest rca_prepublish_checks row for the
        decision (or, without a decision_id, its incident) logged at or after decided_at:
        passed: allow; failed: the anchor's failure outcome (refuse); none: hold.
    SOX_404_CONTROL_EVIDENCE          investor, franchisee_report: with affects_financial_reporting,
        every value of the financial streams (registry_streams commerce in usd) at the affected
        locations from onset to as_of is staged: allow, the evidence (counts and a digest of the
        values) recorded; a value missing or quarantined: hold. Without it: allow.
    GDPR22_ADMT_OPT_OUT_EXCLUSION     customer_affecting: customers homed at the affected
        locations (customer_privacy_profile) opted out of automated decisions
        (compliance_field_value('opt_out_state')) are excluded: allow with the count; opt-out
        state unknown for a customer (no consent default) or no privacy profile at all: refuse.
    SOC2_EVIDENCE_EXPORT              every surface: outcome null here, decided in
        rca_gate_decisions against rca_evidence_exports (which is built from these rows).
  An anchor without a check here is held, never silently allowed.
-#}
{{ config(materialized='table') }}

with decisions as (
    select
        decisions.*,
        hypotheses.onset_date,
        hypotheses.as_of_date,
        hypotheses.identification
    from {{ ref('rca_routing_decisions') }} as decisions
    inner join {{ ref('rca_hypotheses') }} as hypotheses
        on hypotheses.hypothesis_id = decisions.hypothesis_id
),

surfaces as (
    select
        decisions.decision_id,
        rules.surface,
        {{ dbt.bool_or('rules.makes_causal_claim') }} as makes_causal_claim,
        {{ dbt.listagg('rules.surface_rule_id', "'|'", 'order by rules.surface_rule_id') }} as surface_rule_ids
    from decisions
    inner join {{ ref('registry_rca_surfaces') }} as rules
        on coalesce(rules.queue_id = decisions.queue_id, rules.queue_id is null)
       and coalesce(rules.requires_human = decisions.requires_human, rules.requires_human is null)
       and coalesce(rules.action_id = decisions.action_id, rules.action_id is null)
       and coalesce(rules.cause_family = decisions.cause_family, rules.cause_family is null)
       and coalesce(rules.scope = decisions.scope, rules.scope is null)
       and coalesce(rules.affects_financial_reporting = decisions.affects_financial_reporting, rules.affects_financial_reporting is null)
    group by 1, 2
),

surface_retention as (
    -- the longest retention class among the rules that put the decision on the surface
    select decision_id, surface, retention_class
    from (
        select
            decisions.decision_id,
            rules.surface,
            rules.retention_class,
            row_number() over (partition by decisions.decision_id, rules.surface
                               order by classes.years desc, rules.retention_class) as rank_in_surface
        from decisions
        inner join {{ ref('registry_rca_surfaces') }} as rules
            on coalesce(rules.queue_id = decisions.queue_id, rules.queue_id is null)
           and coalesce(rules.requires_human = decisions.requires_human, rules.requires_human is null)
           and coalesce(rules.action_id = decisions.action_id, rules.action_id is null)
           and coalesce(rules.cause_family = decisions.cause_family, rules.cause_family is null)
           and coalesce(rules.scope = decisions.scope, rules.scope is null)
           and coalesce(rules.affects_financial_reporting = decisions.affects_financial_reporting, rules.affects_financial_reporting is null)
        inner join {{ ref('registry_retention_classes') }} as classes
            on classes.retention_class = rules.retention_class
    ) as ranked
    where rank_in_surface = 1
),

applicable as (
    select
        surfaces.*,
        anchors.anchor_id,
        anchors.gate_outcome_on_failure
    from surfaces
    inner join {{ ref('registry_compliance_anchors') }} as anchors
        on '|' || anchors.surfaces || '|' like '%|' || surfaces.surface || '|%'
),

affected_locations as (
{{ marketing_signals.rca_affected_locations('decisions') }}
),

prepublish_checks as (
    select decision_id, check_id, check_result, checked_by, checked_at, disclosure_ref
    from (
        select
            decisions.decision_id,
            checks.check_id,
            checks.check_result,
            checks.checked_by,
            checks.checked_at,
            checks.disclosure_ref,
            row_number() over (partition by decisions.decision_id order by checks.checked_at desc, checks.check_id desc) as recency
        from decisions
        inner join {{ ref('rca_prepublish_checks') }} as checks
            on (checks.decision_id = decisions.decision_id
                or (checks.decision_id is null and checks.incident_id = decisions.incident_id))
           and checks.checked_at >= decisions.decided_at
    ) as ranked
    where recency = 1
),

financial_streams as (
    select stream_id
    from {{ ref('registry_streams') }}
    where stream_family = 'commerce' and unit = 'usd'
),

control_expected as (
    select
        decisions.decision_id,
        count(*) * (select count(*) from financial_streams)
            * ({{ dbt.datediff('decisions.onset_date', 'decisions.as_of_date', 'day') }} + 1) as expected_values,
        count(*) as locations
    from decisions
    inner join affected_locations
        on affected_locations.hypothesis_id = decisions.hypothesis_id
    where decisions.affects_financial_reporting
    group by decisions.decision_id, decisions.onset_date, decisions.as_of_date
),

control_staged as (
    select
        decisions.decision_id,
        count(*) as staged_values,
        {{ marketing_signals.set_digest("staged.stream_id || '|' || staged.location_id || '|' || cast(staged.period_start as varchar) || '|' || cast(staged.value as varchar)") }} as values_digest
    from decisions
    inner join affected_locations
        on affected_locations.hypothesis_id = decisions.hypothesis_id
    inner join {{ ref('stream_metrics_staged') }} as staged
        on staged.location_id = affected_locations.location_id
       and staged.period_start >= decisions.onset_date
       and staged.period_start <= decisions.as_of_date
       and staged.stream_id in (select stream_id from financial_streams)
    where decisions.affects_financial_reporting
    group by 1
),

profiles as (
    select count(*) as customers from {{ ref('customer_privacy_profile') }}
),

opt_outs as (
    select
        decisions.decision_id,
        count(profile.customer_key) as customers,
        sum(case when {{ marketing_signals.compliance_field_value('opt_out_state') }} = 'opted_out' then 1 else 0 end) as opted_out,
        sum(case when profile.customer_key is not null
                  and {{ marketing_signals.compliance_field_value('opt_out_state') }} <> 'opted_out'
                  and (profile.profiling_consent is null or profile.sale_share_consent is null) then 1 else 0 end) as undetermined
    from decisions
    inner join affected_locations
        on affected_locations.hypothesis_id = decisions.hypothesis_id
    left join {{ ref('customer_privacy_profile') }} as profile
        on profile.home_location_id = affected_locations.location_id
    group by 1
),

evaluated as (
    select
        applicable.*,
        decisions.incident_id,
        decisions.causal_evidence_tier,
        decisions.identification is not null as has_identification,
        decisions.affects_financial_reporting,
        decisions.decided_at,
        prepublish_checks.check_id,
        prepublish_checks.check_result,
        prepublish_checks.checked_by,
        prepublish_checks.checked_at,
        prepublish_checks.disclosure_ref,
        control_expected.expected_values,
        control_expected.locations as control_locations,
        coalesce(control_staged.staged_values, 0) as staged_values,
        control_staged.values_digest,
        coalesce(control_expected.expected_values > 0
                 and control_staged.staged_values = control_expected.expected_values, false) as control_evidence_complete,
        coalesce(opt_outs.customers, 0) as customers,
        coalesce(opt_outs.opted_out, 0) as opted_out,
        coalesce(opt_outs.undetermined, 0) as undetermined,
        profiles.customers > 0 as has_privacy_profiles,
        surface_retention.retention_class
    from applicable
    inner join decisions
        on decisions.decision_id = applicable.decision_id
    left join surface_retention
        on surface_retention.decision_id = applicable.decision_id
       and surface_retention.surface = applicable.surface
    left join prepublish_checks
        on prepublish_checks.decision_id = applicable.decision_id
    left join control_expected
        on control_expected.decision_id = applicable.decision_id
    left join control_staged
        on control_staged.decision_id = applicable.decision_id
    left join opt_outs
        on opt_outs.decision_id = applicable.decision_id
    cross join profiles
)

select
    {{ marketing_signals.sha256_hex("evaluated.decision_id || '|' || evaluated.surface || '|' || evaluated.anchor_id") }} as gate_decision_id,
    evaluated.decision_id,
    evaluated.incident_id,
    evaluated.surface,
    evaluated.anchor_id,
    case evaluated.anchor_id
        when 'ftc_reasonable_basis' then
            case
                when not evaluated.makes_causal_claim then 'allow'
                when evaluated.causal_evidence_tier >= 3 and evaluated.has_identification then 'allow'
                else evaluated.gate_outcome_on_failure
            end
        when 'sec_reg_fd_g_sk' then
            case
                when evaluated.check_result = 'passed' then 'allow'
                when evaluated.check_result is not null then evaluated.gate_outcome_on_failure
                else 'hold'
            end
        when 'sox_302_404' then
            case
                when not evaluated.affects_financial_reporting then 'allow'
                when evaluated.control_evidence_complete then 'allow'
                else evaluated.gate_outcome_on_failure
            end
        when 'gdpr22_ccpa_colorado' then
            case
                when evaluated.has_privacy_profiles and evaluated.undetermined = 0 then 'allow'
                else evaluated.gate_outcome_on_failure
            end
        when 'soc2_iso27001' then null
        else 'hold'
    end as outcome,
    case evaluated.anchor_id
        when 'ftc_reasonable_basis' then 'FTC_SUBSTANTIATION_CAUSAL_TIER3'
        when 'sec_reg_fd_g_sk' then 'SEC_FD_PREPUBLISH_CHECK'
        when 'sox_302_404' then 'SOX_404_CONTROL_EVIDENCE'
        when 'gdpr22_ccpa_colorado' then 'GDPR22_ADMT_OPT_OUT_EXCLUSION'
        when 'soc2_iso27001' then 'SOC2_EVIDENCE_EXPORT'
        else upper(evaluated.anchor_id) || '_NO_CHECK'
    end as rule_id,
    case evaluated.anchor_id
        when 'ftc_reasonable_basis' then
            case
                when not evaluated.makes_causal_claim then
                    'no causal claim on ' || evaluated.surface || ' (' || evaluated.surface_rule_ids || '): the action is reported as taken, without attributing the cause'
                when evaluated.causal_evidence_tier >= 3 and evaluated.has_identification then
                    'causal claim identified at causal-evidence tier 3 with an identification record'
                else
                    'a causal claim on ' || evaluated.surface || ' needs causal-evidence tier 3 with an identification record; the hypothesis is tier '
                    || coalesce(cast(evaluated.causal_evidence_tier as varchar), 'unknown')
                    || case when evaluated.has_identification then '' else ' without identification' end
            end
        when 'sec_reg_fd_g_sk' then
            case
                when evaluated.check_result is null then
                    'held until a pre-publish check for the decision or its incident is logged in rca_prepublish_checks (checked_at on or after '
                    || cast(evaluated.decided_at as varchar) || ')'
                else
                    'pre-publish check ' || evaluated.check_id || ' ' || evaluated.check_result || ' (' || evaluated.checked_by || ', '
                    || cast(evaluated.checked_at as varchar) || coalesce(', ' || evaluated.disclosure_ref, '') || ')'
            end
        when 'sox_302_404' then
            case
                when not evaluated.affects_financial_reporting then 'the incident touches no financial-reporting stream'
                when evaluated.control_evidence_complete then
                    'control evidence recorded: all ' || cast(evaluated.expected_values as varchar)
                    || ' financial values at the affected locations from onset to as_of are staged'
                else
                    'control evidence missing: ' || cast(evaluated.staged_values as varchar) || ' of '
                    || coalesce(cast(evaluated.expected_values as varchar), 'an unknown number of')
                    || ' financial values at the affected locations from onset to as_of are staged'
            end
        when 'gdpr22_ccpa_colorado' then
            case
                when not evaluated.has_privacy_profiles then 'opt-out state cannot be determined: customer_privacy_profile is empty'
                when evaluated.undetermined > 0 then
                    'opt-out state cannot be determined for ' || cast(evaluated.undetermined as varchar)
                    || ' customers homed at the affected locations (no consent state and no jurisdiction default)'
                else
                    cast(evaluated.opted_out as varchar) || ' of ' || cast(evaluated.customers as varchar)
                    || ' customers homed at the affected locations are opted out of automated decisions and are excluded from the action'
            end
        when 'soc2_iso27001' then null
        else 'no check is implemented for anchor ' || evaluated.anchor_id || ': held'
    end as reason,
    case evaluated.anchor_id
        when 'ftc_reasonable_basis' then {{ marketing_signals.json_object_text([
            ('makes_causal_claim', 'evaluated.makes_causal_claim'),
            ('causal_evidence_tier', 'evaluated.causal_evidence_tier'),
            ('has_identification', 'evaluated.has_identification'),
            ('surface_rule_ids', 'evaluated.surface_rule_ids'),
        ]) }}
        when 'sec_reg_fd_g_sk' then {{ marketing_signals.json_object_text([
            ('check_id', 'evaluated.check_id'),
            ('check_result', 'evaluated.check_result'),
            ('checked_by', 'evaluated.checked_by'),
            ('checked_at', 'cast(evaluated.checked_at as varchar)'),
            ('disclosure_ref', 'evaluated.disclosure_ref'),
        ]) }}
        when 'sox_302_404' then {{ marketing_signals.json_object_text([
            ('affects_financial_reporting', 'evaluated.affects_financial_reporting'),
            ('locations', 'evaluated.control_locations'),
            ('expected_values', 'evaluated.expected_values'),
            ('staged_values', 'evaluated.staged_values'),
            ('values_digest', 'evaluated.values_digest'),
        ]) }}
        when 'gdpr22_ccpa_colorado' then {{ marketing_signals.json_object_text([
            ('customers_at_locations', 'evaluated.customers'),
            ('opted_out_excluded', 'evaluated.opted_out'),
            ('opt_out_undetermined', 'evaluated.undetermined'),
            ('opt_out_source', "'customer_privacy_profile'"),
        ]) }}
    end as evidence_json,
    evaluated.retention_class
from evaluated
