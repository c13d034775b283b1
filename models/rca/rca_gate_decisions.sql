{#-
  The compliance gate: one row per routing decision × surface it touches × anchor that applies,
  with outcome allow, hold or refuse and the rule and reason. Every row of int_rca_gate__checks,
  with the SOC 2 / ISO 27001 rows decided here: allow when the incident's evidence export
  (rca_evidence_exports) exists with its digest and the decision carries its policy and code
  version; otherwise the anchor's failure outcome (hold). The hash chain itself is verified after
  sealing (marketing-signals verify), so it cannot be a condition of the decision it seals.
-#}
{{ config(materialized='table') }}

select
    checks.gate_decision_id,
    checks.decision_id,
    checks.incident_id,
    checks.surface,
    checks.anchor_id,
    case
        when checks.anchor_id <> 'soc2_iso27001' then checks.outcome
        when exports.export_sha256 is not null and decisions.policy_version is not null
             and decisions.code_version is not null then 'allow'
        else coalesce(anchors.gate_outcome_on_failure, 'hold')
    end as outcome,
    checks.rule_id,
    case
        when checks.anchor_id <> 'soc2_iso27001' then checks.reason
        when exports.export_sha256 is null then 'no evidence export for the incident in rca_evidence_exports'
        when decisions.policy_version is null then 'no registry policy version in force'
        when decisions.code_version is null then 'no code version in the attestor identity'
        else 'evidence export ' || exports.export_sha256 || ' of the incident exists; policy ' || decisions.policy_version
             || ', code ' || decisions.code_version
    end as reason,
    case
        when checks.anchor_id <> 'soc2_iso27001' then checks.evidence_json
        else {{ marketing_signals.json_object_text([
            ('export_sha256', 'exports.export_sha256'),
            ('policy_version', 'decisions.policy_version'),
            ('code_version', 'decisions.code_version'),
            ('service_identity', 'decisions.service_identity'),
            ('dbt_invocation_id', 'decisions.dbt_invocation_id'),
        ]) }}
    end as evidence_json,
    checks.retention_class
from {{ ref('int_rca_gate__checks') }} as checks
inner join {{ ref('rca_routing_decisions') }} as decisions
    on decisions.decision_id = checks.decision_id
left join {{ ref('rca_evidence_exports') }} as exports
    on exports.incident_id = checks.incident_id
left join {{ ref('registry_compliance_anchors') }} as anchors
    on anchors.anchor_id = checks.anchor_id
