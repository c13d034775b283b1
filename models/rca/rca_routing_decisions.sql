{#-
  One routing decision per root-cause hypothesis worth routing: the top hypothesis of each
  incident component (rank 1), plus any other hypothesis whose posterior reaches the lowest posterior floor
  of the routing rules that match its cause (a rule could take it; below every floor it is noise).

  Rule choice (registry_routing_rules): a rule matches on cause_id and/or cause_family (null is a
  wildcard); among the matching rules whose posterior and causal-evidence floors are met, the
  first by priority (then rule id) decides. An auto-disable rule whose channel shows no affected
  spend (0 USD/day) does not apply: there is nothing to disable, so the next rule decides.

  An automatic rule (its queue has requires_human = false) must also clear, else it fails:
    * its action is in the action library (registry_rca_actions; for the rule's channel when the
      rule has one), reversible in the rule and in the library, and pre-approved;
    * auto-disable only: the affected daily spend (macro rca_daily_spend over
      rca_affected_locations: the mean over the last marketing_signals__rca_spend_lookback_days
      days up to as_of, summed over the affected locations; unknown when a location has no
      observation) is known and under least(rule spend_cap_usd, library max_spend_usd_per_day).
  A failed automatic rule re-routes the decision to a person, with the reason: the next matching
  human rule, else the cause's default queue when it needs a human, else the failed queue's
  escalates_to. No later automatic rule is tried (fail closed). No rule met: the cause's
  default_queue (its escalates_to if that queue were automatic).

  marketing_signals__rca_mode: shadow (default) logs every decision, is_executable false for all;
  enforce makes a decision whose automatic rule cleared executable here (rca_decision_outcomes
  adds the compliance gate).
-#}
{{ config(materialized='table') }}

{%- set mode = var('marketing_signals__rca_mode', 'shadow') -%}
{%- if mode not in ['shadow', 'enforce'] -%}
  {{ exceptions.raise_compiler_error("marketing_signals__rca_mode must be 'shadow' or 'enforce', got '" ~ mode ~ "'") }}
{%- endif -%}
{%- set lookback_days = var('marketing_signals__rca_spend_lookback_days', 7) | int -%}
{%- set disable_queue = 'auto_disable_affected_spend' -%}
{%- set attestor = marketing_signals.attestor_identity() %}

with policy as (
{{ marketing_signals.policy_in_force() }}
),

hypotheses as (
    select
        hypotheses.*,
        coalesce(causes.cause_family, hypotheses.cause_family) as routing_family,
        causes.default_queue
    from {{ ref('rca_hypotheses') }} as hypotheses
    left join {{ ref('registry_root_causes') }} as causes
        on causes.cause_id = hypotheses.cause_id
),

matching_rules as (
    -- every rule whose cause (or cause family) matches, floors met or not
    select
        hypotheses.hypothesis_id,
        rules.routing_rule_id,
        rules.priority,
        rules.min_posterior,
        rules.min_causal_evidence_tier,
        rules.queue_id,
        rules.action_id,
        rules.action_reversible,
        rules.channel,
        rules.spend_cap_usd,
        queues.requires_human,
        queues.escalates_to,
        coalesce(hypotheses.posterior >= rules.min_posterior
                 and hypotheses.causal_evidence_tier >= rules.min_causal_evidence_tier, false) as floors_met
    from hypotheses
    inner join {{ ref('registry_routing_rules') }} as rules
        on coalesce(rules.cause_id = hypotheses.cause_id, true)
       and coalesce(rules.cause_family = hypotheses.routing_family, true)
    inner join {{ ref('registry_routing_queues') }} as queues
        on queues.queue_id = rules.queue_id
),

lowest_floor as (
    select hypothesis_id, min(min_posterior) as min_posterior
    from matching_rules
    group by 1
),

routed as (
    select hypotheses.*
    from hypotheses
    left join lowest_floor
        on lowest_floor.hypothesis_id = hypotheses.hypothesis_id
    where hypotheses.rank = 1
       or hypotheses.posterior >= lowest_floor.min_posterior
),

affected_locations as (
{{ marketing_signals.rca_affected_locations('routed') }}
),

affected_counts as (
    select hypothesis_id, count(*) as locations
    from affected_locations
    group by 1
),

daily_spend as (
{{ marketing_signals.rca_daily_spend() }}
),

location_spend as (
    -- mean daily spend per affected location and channel over the lookback days up to as_of
    select
        affected.hypothesis_id,
        spend.channel,
        affected.location_id,
        avg(spend.spend_usd) as mean_daily_spend_usd
    from affected_locations as affected
    inner join routed
        on routed.hypothesis_id = affected.hypothesis_id
    inner join daily_spend as spend
        on spend.location_id = affected.location_id
       and spend.period_start <= routed.as_of_date
       and spend.period_start > {{ dbt.dateadd('day', -lookback_days, 'routed.as_of_date') }}
    group by 1, 2, 3
),

spend_at_risk as (
    -- known only when every affected location has an observation on the channel
    select
        location_spend.hypothesis_id,
        location_spend.channel,
        case when count(*) = max(affected_counts.locations)
             then round(sum(location_spend.mean_daily_spend_usd), 2) end as spend_usd
    from location_spend
    inner join affected_counts
        on affected_counts.hypothesis_id = location_spend.hypothesis_id
    group by 1, 2
),

evaluated as (
    select
        rules.*,
        actions.action_id is not null as in_library,
        coalesce(rules.action_reversible, false) and coalesce(actions.reversible, false) as is_reversible,
        coalesce(actions.pre_approved, false) as is_pre_approved,
        spend.spend_usd as spend_at_risk_usd,
        case
            when rules.queue_id <> '{{ disable_queue }}' then null
            when actions.max_spend_usd_per_day is null or rules.spend_cap_usd <= actions.max_spend_usd_per_day then rules.spend_cap_usd
            else actions.max_spend_usd_per_day
        end as spend_cap_usd_effective
    from matching_rules as rules
    inner join routed
        on routed.hypothesis_id = rules.hypothesis_id
    left join {{ ref('registry_rca_actions') }} as actions
        on actions.action_id = rules.action_id
       and coalesce(actions.channel, '') = coalesce(rules.channel, '')
    left join spend_at_risk as spend
        on spend.hypothesis_id = rules.hypothesis_id
       and spend.channel = rules.channel
    where rules.floors_met
),

checked as (
    select
        evaluated.*,
        case
            when evaluated.requires_human then null
            when evaluated.action_id is null then 'names no action'
            when not evaluated.in_library
                then 'action ' || evaluated.action_id || coalesce(' on ' || evaluated.channel, '') || ' is not in the action library'
            when not evaluated.is_reversible then 'action ' || evaluated.action_id || ' is not reversible'
            when not evaluated.is_pre_approved
                then 'action ' || evaluated.action_id || coalesce(' on ' || evaluated.channel, '') || ' is not pre-approved'
            when evaluated.queue_id = '{{ disable_queue }}' and evaluated.spend_cap_usd_effective is null then 'auto-disable has no spend cap'
            when evaluated.queue_id = '{{ disable_queue }}' and evaluated.spend_at_risk_usd is null
                then 'affected daily spend on ' || coalesce(evaluated.channel, 'no channel') || ' cannot be estimated from the streams'
            when evaluated.queue_id = '{{ disable_queue }}' and evaluated.spend_at_risk_usd >= evaluated.spend_cap_usd_effective
                then 'affected daily spend of ' || cast(evaluated.spend_at_risk_usd as varchar) || ' USD on ' || evaluated.channel
                     || ' is not under the cap of ' || cast(evaluated.spend_cap_usd_effective as varchar) || ' USD'
        end as automation_failure
    from evaluated
    -- an auto-disable rule with nothing to disable on its channel does not apply
    where not coalesce(evaluated.queue_id = '{{ disable_queue }}' and evaluated.spend_at_risk_usd = 0, false)
),

ordered as (
    select
        checked.*,
        row_number() over (partition by checked.hypothesis_id order by checked.priority, checked.routing_rule_id) as rule_order
    from checked
),

first_rule as (
    select * from ordered where rule_order = 1
),

next_human_rule as (
    -- where the first rule is an automatic rule that failed: the next matching human rule
    select hypothesis_id, routing_rule_id, queue_id
    from (
        select
            ordered.*,
            row_number() over (partition by ordered.hypothesis_id order by ordered.rule_order) as human_order
        from ordered
        where ordered.requires_human
          and ordered.rule_order > 1
    ) as humans
    where human_order = 1
),

decided as (
    select
        routed.*,
        first_rule.routing_rule_id as first_rule_id,
        first_rule.priority as first_priority,
        first_rule.queue_id as first_queue_id,
        first_rule.escalates_to as first_escalates_to,
        first_rule.action_id as first_action_id,
        first_rule.channel as first_channel,
        first_rule.automation_failure,
        first_rule.spend_at_risk_usd as first_spend_at_risk_usd,
        first_rule.spend_cap_usd_effective as first_spend_cap_usd,
        next_human_rule.routing_rule_id as next_human_rule_id,
        next_human_rule.queue_id as next_human_queue_id,
        default_queues.requires_human as default_requires_human,
        default_queues.escalates_to as default_escalates_to,
        coalesce(first_rule.routing_rule_id is not null and not first_rule.requires_human
                 and first_rule.automation_failure is null, false) as automation_cleared,
        coalesce(first_rule.routing_rule_id is not null and not first_rule.requires_human
                 and first_rule.automation_failure is not null, false) as is_rerouted
    from routed
    left join first_rule
        on first_rule.hypothesis_id = routed.hypothesis_id
    left join next_human_rule
        on next_human_rule.hypothesis_id = routed.hypothesis_id
    left join {{ ref('registry_routing_queues') }} as default_queues
        on default_queues.queue_id = routed.default_queue
),

routed_to as (
    select
        decided.*,
        case
            when decided.is_rerouted then decided.next_human_rule_id
            else decided.first_rule_id
        end as routing_rule_id,
        case
            when decided.first_rule_id is not null and not decided.is_rerouted then decided.first_queue_id
            when decided.is_rerouted and decided.next_human_queue_id is not null then decided.next_human_queue_id
            when decided.default_requires_human then decided.default_queue
            when decided.is_rerouted then decided.first_escalates_to
            else decided.default_escalates_to
        end as queue_id
    from decided
)

select
    {{ marketing_signals.sha256_hex("'rca_routing_decision|' || routed_to.hypothesis_id") }} as decision_id,
    routed_to.hypothesis_id,
    routed_to.incident_id,
    routed_to.cause_id,
    routed_to.routing_family as cause_family,
    routed_to.rank as hypothesis_rank,
    routed_to.scope,
    routed_to.location_id,
    routed_to.n_locations,
    routed_to.affects_financial_reporting,
    routed_to.queue_id,
    queues.requires_human,
    routed_to.routing_rule_id,
    case when routed_to.is_rerouted then routed_to.first_rule_id end as rerouted_from_rule_id,
    case when routed_to.automation_cleared then routed_to.first_action_id end as action_id,
    case when routed_to.automation_cleared then routed_to.first_channel end as channel,
    routed_to.confidence_tier,
    routed_to.causal_evidence_tier,
    routed_to.posterior,
    case when routed_to.first_queue_id = '{{ disable_queue }}' then routed_to.first_spend_at_risk_usd end as spend_at_risk_usd,
    case when routed_to.first_queue_id = '{{ disable_queue }}' then routed_to.first_spend_cap_usd end as spend_cap_usd,
    routed_to.automation_cleared,
    routed_to.automation_cleared and {{ 'true' if mode == 'enforce' else 'false' }} as is_executable,
    cast('{{ mode }}' as varchar) as mode,
    case
        when routed_to.first_rule_id is null then
            'no routing rule met (posterior ' || cast(routed_to.posterior as varchar) || ', causal-evidence tier '
            || cast(routed_to.causal_evidence_tier as varchar) || '): default queue of ' || routed_to.cause_id
        when routed_to.is_rerouted then
            'rule ' || routed_to.first_rule_id || ' not automated: ' || routed_to.automation_failure || '; re-routed to '
            || coalesce(routed_to.queue_id, 'no queue')
            || case
                   when routed_to.next_human_rule_id is not null then ' by rule ' || routed_to.next_human_rule_id
                   when routed_to.default_requires_human then ' (default queue of ' || routed_to.cause_id || ')'
                   else ' (escalation of ' || routed_to.first_queue_id || ')'
               end
        when routed_to.automation_cleared then
            'rule ' || routed_to.first_rule_id || ' (priority ' || cast(routed_to.first_priority as varchar) || '): floors met; action '
            || routed_to.first_action_id || coalesce(' on ' || routed_to.first_channel, '') || ' in the library, reversible, pre-approved'
            || coalesce('; affected spend ' || cast(routed_to.first_spend_at_risk_usd as varchar) || ' USD/day under the cap of '
                        || cast(routed_to.first_spend_cap_usd as varchar) || ' USD', '')
            {%- if mode == 'shadow' %}
            || '; shadow mode: logged, not executed'
            {%- endif %}
        else
            'rule ' || routed_to.first_rule_id || ' (priority ' || cast(routed_to.first_priority as varchar) || '): floors met'
    end as reason,
    policy.policy_version,
    cast('{{ attestor.service_identity }}' as varchar) as service_identity,
    cast('{{ attestor.code_version }}' as varchar) as code_version,
    routed_to.prior_version as model_version,
    cast('{{ invocation_id }}' as varchar) as dbt_invocation_id,
    cast(routed_to.as_of_date as timestamp) as decided_at
from routed_to
left join {{ ref('registry_routing_queues') }} as queues
    on queues.queue_id = routed_to.queue_id
left join policy
    on true
