-- Guards: the action library (registry_rca_actions) covers every action routing can name: each
-- action_id of registry_routing_rules on the rule's channel (an automatic rule whose action has
-- no row would always be re-routed to a person), and each reversible_action_id of
-- registry_root_causes. Returns each missing action with where it is named.
select rules.routing_rule_id as named_by, rules.action_id, rules.channel
from {{ ref('registry_routing_rules') }} as rules
left join {{ ref('registry_rca_actions') }} as actions
    on actions.action_id = rules.action_id
   and coalesce(actions.channel, '') = coalesce(rules.channel, '')
where rules.action_id is not null
  and actions.action_id is null

union all

select causes.cause_id, causes.reversible_action_id, cast(null as varchar)
from {{ ref('registry_root_causes') }} as causes
where causes.reversible_action_id is not null
  and causes.reversible_action_id not in (select action_id from {{ ref('registry_rca_actions') }})
