{#-
  The per-incident evidence export (SOC 2 / ISO 27001 evidence): one row per incident with a
  routing decision, holding as JSON the incident (incidents), every hypothesis with its
  supporting and counter evidence and identification (rca_hypotheses), the routing decisions and
  the gate checks of int_rca_gate__checks, with export_sha256 = SHA-256 of export_json.

  The export is what the SOC2_EVIDENCE_EXPORT check in rca_gate_decisions looks for, so it holds
  the gate rows that do not depend on it (every anchor but soc2_iso27001). Nothing run-specific
  (invocation id, build time) is in export_json: the same inputs give the same digest.
-#}
{{ config(materialized='table') }}

with decisions as (
    select * from {{ ref('rca_routing_decisions') }}
),

incidents_in_scope as (
    select incident_id, max(decided_at) as decided_at, max(policy_version) as policy_version
    from decisions
    group by 1
),

incident_json as (
    select
        incidents.incident_id,
        {{ marketing_signals.json_object_text([
            ('onset_date', 'cast(incidents.onset_date as varchar)'),
            ('first_detected_date', 'cast(incidents.first_detected_date as varchar)'),
            ('end_date', 'cast(incidents.end_date as varchar)'),
            ('n_anomalies', 'incidents.n_anomalies'),
            ('n_streams', 'incidents.n_streams'),
            ('n_locations', 'incidents.n_locations'),
            ('scope', 'incidents.scope'),
            ('peak_score', 'incidents.peak_score'),
            ('is_open', 'incidents.is_open'),
            ('lead_stream_id', 'incidents.lead_stream_id'),
            ('lead_location_id', 'incidents.lead_location_id'),
            ('streams', 'incidents.streams'),
            ('as_of_date', 'cast(incidents.as_of_date as varchar)'),
        ]) }} as incident_json
    from {{ ref('incidents') }} as incidents
    where incidents.incident_id in (select incident_id from incidents_in_scope)
),

hypotheses_json as (
    select
        hypotheses.incident_id,
        count(*) as n_hypotheses,
        {{ marketing_signals.json_array_agg(marketing_signals.json_object_value([
            ('hypothesis_id', 'hypotheses.hypothesis_id'),
            ('rank', 'hypotheses.rank'),
            ('cause_id', 'hypotheses.cause_id'),
            ('cause_family', 'hypotheses.cause_family'),
            ('scope', 'hypotheses.scope'),
            ('posterior', 'hypotheses.posterior'),
            ('prior', 'hypotheses.prior'),
            ('prior_version', 'hypotheses.prior_version'),
            ('confidence_tier', 'hypotheses.confidence_tier'),
            ('causal_evidence_tier', 'hypotheses.causal_evidence_tier'),
            ('location_id', 'hypotheses.location_id'),
            ('n_locations', 'hypotheses.n_locations'),
            ('onset_date', 'cast(hypotheses.onset_date as varchar)'),
            ('as_of_date', 'cast(hypotheses.as_of_date as varchar)'),
            ('root_stream_id', 'hypotheses.root_stream_id'),
            ('supporting_evidence', marketing_signals.json_parse('hypotheses.supporting_evidence')),
            ('counter_evidence', marketing_signals.json_parse('hypotheses.counter_evidence')),
            ('identification', marketing_signals.json_parse('hypotheses.identification')),
            ('affects_financial_reporting', 'hypotheses.affects_financial_reporting'),
        ]), 'hypotheses.rank, hypotheses.hypothesis_id') }} as hypotheses_json
    from {{ ref('rca_hypotheses') }} as hypotheses
    where hypotheses.incident_id in (select incident_id from incidents_in_scope)
    group by 1
),

routing_json as (
    select
        decisions.incident_id,
        count(*) as n_decisions,
        {{ marketing_signals.json_array_agg(marketing_signals.json_object_value([
            ('decision_id', 'decisions.decision_id'),
            ('hypothesis_id', 'decisions.hypothesis_id'),
            ('cause_id', 'decisions.cause_id'),
            ('queue_id', 'decisions.queue_id'),
            ('routing_rule_id', 'decisions.routing_rule_id'),
            ('rerouted_from_rule_id', 'decisions.rerouted_from_rule_id'),
            ('action_id', 'decisions.action_id'),
            ('channel', 'decisions.channel'),
            ('confidence_tier', 'decisions.confidence_tier'),
            ('causal_evidence_tier', 'decisions.causal_evidence_tier'),
            ('posterior', 'decisions.posterior'),
            ('spend_at_risk_usd', 'decisions.spend_at_risk_usd'),
            ('spend_cap_usd', 'decisions.spend_cap_usd'),
            ('automation_cleared', 'decisions.automation_cleared'),
            ('is_executable', 'decisions.is_executable'),
            ('mode', 'decisions.mode'),
            ('reason', 'decisions.reason'),
            ('policy_version', 'decisions.policy_version'),
            ('code_version', 'decisions.code_version'),
            ('model_version', 'decisions.model_version'),
            ('decided_at', 'cast(decisions.decided_at as varchar)'),
        ]), 'decisions.hypothesis_rank, decisions.decision_id') }} as routing_json
    from decisions
    group by 1
),

gate_json as (
    select
        checks.incident_id,
        {{ marketing_signals.json_array_agg(marketing_signals.json_object_value([
            ('gate_decision_id', 'checks.gate_decision_id'),
            ('decision_id', 'checks.decision_id'),
            ('surface', 'checks.surface'),
            ('anchor_id', 'checks.anchor_id'),
            ('rule_id', 'checks.rule_id'),
            ('outcome', 'checks.outcome'),
            ('reason', 'checks.reason'),
            ('evidence', marketing_signals.json_parse('checks.evidence_json')),
        ]), 'checks.decision_id, checks.surface, checks.anchor_id') }} as gate_json
    from {{ ref('int_rca_gate__checks') }} as checks
    where checks.anchor_id <> 'soc2_iso27001'
    group by 1
),

exports as (
    select
        scope.incident_id,
        cast(scope.decided_at as date) as as_of_date,
        scope.policy_version,
        coalesce(hypotheses_json.n_hypotheses, 0) as n_hypotheses,
        routing_json.n_decisions,
        incident_json.incident_json,
        coalesce(hypotheses_json.hypotheses_json, '[]') as hypotheses_json,
        routing_json.routing_json,
        coalesce(gate_json.gate_json, '[]') as gate_json
    from incidents_in_scope as scope
    inner join routing_json
        on routing_json.incident_id = scope.incident_id
    left join incident_json
        on incident_json.incident_id = scope.incident_id
    left join hypotheses_json
        on hypotheses_json.incident_id = scope.incident_id
    left join gate_json
        on gate_json.incident_id = scope.incident_id
),

documents as (
    select
        exports.*,
        {{ marketing_signals.json_object_text([
            ('incident_id', 'exports.incident_id'),
            ('as_of_date', 'cast(exports.as_of_date as varchar)'),
            ('policy_version', 'exports.policy_version'),
            ('incident', marketing_signals.json_parse('exports.incident_json')),
            ('hypotheses', marketing_signals.json_parse('exports.hypotheses_json')),
            ('routing', marketing_signals.json_parse('exports.routing_json')),
            ('gate', marketing_signals.json_parse('exports.gate_json')),
        ]) }} as export_json
    from exports
)

select
    documents.incident_id,
    documents.as_of_date,
    documents.policy_version,
    documents.n_hypotheses,
    documents.n_decisions,
    documents.incident_json,
    documents.hypotheses_json,
    documents.routing_json,
    documents.gate_json,
    documents.export_json,
    {{ marketing_signals.sha256_hex('documents.export_json') }} as export_sha256
from documents
