{#-
  The final outcome per routing decision: the most restrictive of its gate rows
  (refuse > hold > allow; a decision without gate rows is held). is_executable only when the mode
  is enforce, the routing cleared its automatic rule and the gate allows. would_execute is the
  same without the mode, so shadow decisions can be scored against outcomes. The outcome governs
  automatic execution and any release beyond the internal surface; a human queue sees every
  decision routed to it with its outcome. Also the state the ledger attests (state_digest) and
  the record's retention class (the longest among its surfaces).
-#}
{{ config(materialized='table') }}

with gate as (
    select * from {{ ref('rca_gate_decisions') }}
),

surfaces as (
    select decision_id, {{ dbt.listagg('surface', "'|'", 'order by surface') }} as surfaces
    from (select distinct decision_id, surface from gate) as distinct_surfaces
    group by 1
),

rules as (
    select decision_id, {{ dbt.listagg('rule_id', "'|'", 'order by rule_id') }} as gate_rule_ids
    from (select distinct decision_id, rule_id from gate) as distinct_rules
    group by 1
),

summary as (
    select
        gate.decision_id,
        count(*) as gate_rows,
        sum(case when gate.outcome = 'refuse' then 1 else 0 end) as refusals,
        sum(case when gate.outcome = 'hold' or gate.outcome is null then 1 else 0 end) as holds,
        {{ dbt.listagg("case when gate.outcome = 'refuse' then gate.surface || ':' || gate.rule_id end", "'|'",
                       "order by gate.surface, gate.rule_id") }} as refused_rule_ids,
        {{ dbt.listagg("case when gate.outcome = 'hold' or gate.outcome is null then gate.surface || ':' || gate.rule_id end", "'|'",
                       "order by gate.surface, gate.rule_id") }} as held_rule_ids,
        max(case when gate.anchor_id = 'gdpr22_ccpa_colorado' then gate.evidence_json end) as opt_out_evidence_json
    from gate
    group by 1
),

retention as (
    select decision_id, retention_class, years
    from (
        select
            gate.decision_id,
            classes.retention_class,
            classes.years,
            row_number() over (partition by gate.decision_id order by classes.years desc, classes.retention_class) as rank_in_decision
        from gate
        inner join {{ ref('registry_retention_classes') }} as classes
            on classes.retention_class = gate.retention_class
    ) as ranked
    where rank_in_decision = 1
),

outcomes as (
    select
        decisions.*,
        surfaces.surfaces,
        coalesce(summary.gate_rows, 0) as gate_rows,
        case
            when summary.refusals > 0 then 'refuse'
            when summary.holds > 0 or summary.gate_rows is null then 'hold'
            else 'allow'
        end as outcome,
        rules.gate_rule_ids,
        summary.refused_rule_ids,
        summary.held_rule_ids,
        summary.opt_out_evidence_json,
        retention.retention_class,
        retention.years as retention_years,
        exports.export_sha256
    from {{ ref('rca_routing_decisions') }} as decisions
    left join summary
        on summary.decision_id = decisions.decision_id
    left join surfaces
        on surfaces.decision_id = decisions.decision_id
    left join rules
        on rules.decision_id = decisions.decision_id
    left join retention
        on retention.decision_id = decisions.decision_id
    left join {{ ref('rca_evidence_exports') }} as exports
        on exports.incident_id = decisions.incident_id
)

select
    outcomes.decision_id,
    outcomes.hypothesis_id,
    outcomes.incident_id,
    outcomes.cause_id,
    outcomes.hypothesis_rank,
    outcomes.queue_id,
    outcomes.requires_human,
    outcomes.routing_rule_id,
    outcomes.rerouted_from_rule_id,
    outcomes.action_id,
    outcomes.channel,
    outcomes.confidence_tier,
    outcomes.causal_evidence_tier,
    outcomes.posterior,
    outcomes.spend_at_risk_usd,
    outcomes.spend_cap_usd,
    outcomes.mode,
    outcomes.surfaces,
    outcomes.gate_rows,
    outcomes.outcome,
    outcomes.gate_rule_ids,
    outcomes.refused_rule_ids,
    outcomes.held_rule_ids,
    outcomes.automation_cleared,
    outcomes.automation_cleared and outcomes.outcome = 'allow' as would_execute,
    outcomes.automation_cleared and outcomes.outcome = 'allow' and outcomes.mode = 'enforce' and outcomes.is_executable as is_executable,
    case outcomes.outcome
        when 'refuse' then 'refused: ' || outcomes.refused_rule_ids
        when 'hold' then 'held: ' || coalesce(outcomes.held_rule_ids, 'no gate rows')
        else 'allowed on ' || outcomes.surfaces
    end
    || case
           when outcomes.automation_cleared and outcomes.outcome = 'allow' and outcomes.mode = 'enforce' and outcomes.is_executable
               then '; executable: ' || outcomes.action_id
           when outcomes.automation_cleared and outcomes.mode = 'shadow' then '; shadow mode: logged, not executed'
           when outcomes.automation_cleared then '; automatic action not executed'
           else '; human queue ' || outcomes.queue_id
       end as outcome_reason,
    outcomes.reason as routing_reason,
    outcomes.opt_out_evidence_json,
    outcomes.export_sha256,
    outcomes.retention_class,
    cast({{ dbt.dateadd('year', 'coalesce(outcomes.retention_years, 7)', 'cast(outcomes.decided_at as date)') }} as date) as retention_until,
    {{ marketing_signals.sha256_hex("coalesce(outcomes.queue_id, '') || '|' || coalesce(outcomes.routing_rule_id, '') || '|' || coalesce(outcomes.action_id, '')
        || '|' || coalesce(outcomes.confidence_tier, '') || '|' || coalesce(cast(outcomes.causal_evidence_tier as varchar), '')
        || '|' || outcomes.outcome || '|' || cast(outcomes.automation_cleared and outcomes.outcome = 'allow' and outcomes.mode = 'enforce' and outcomes.is_executable as varchar)
        || '|' || outcomes.mode || '|' || coalesce(outcomes.policy_version, '')") }} as state_digest,
    outcomes.policy_version,
    outcomes.service_identity,
    outcomes.code_version,
    outcomes.model_version,
    outcomes.dbt_invocation_id,
    outcomes.decided_at
from outcomes
