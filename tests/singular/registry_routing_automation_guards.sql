-- Guards: automatic routing stays safe. A rule routed to a queue that needs no human must
-- have a posterior floor of at least 0.8, an action and a reversible action; auto-disable
-- rules must name a paid channel and a positive spend cap; no other rule may carry a
-- channel or spend cap. Returns each violating rule with the reason.
with rules as (
    select r.*, q.requires_human
    from {{ ref('registry_routing_rules') }} as r
    inner join {{ ref('registry_routing_queues') }} as q
        on q.queue_id = r.queue_id
),

violations as (
    select routing_rule_id, 'automatic rule below the 0.8 posterior floor' as reason
    from rules where not requires_human and min_posterior < 0.8
    union all
    select routing_rule_id, 'automatic rule without an action'
    from rules where not requires_human and action_id is null
    union all
    select routing_rule_id, 'automatic rule with an irreversible action'
    from rules where not requires_human and not action_reversible
    union all
    select routing_rule_id, 'auto-disable without a channel or positive spend cap'
    from rules
    where queue_id = 'auto_disable_affected_spend'
        and (channel is null or spend_cap_usd is null or spend_cap_usd <= 0)
    union all
    select routing_rule_id, 'channel or spend cap on a rule that is not auto-disable'
    from rules
    where queue_id <> 'auto_disable_affected_spend'
        and (channel is not null or spend_cap_usd is not null)
)

select * from violations
