-- Guards: routing floors stay in range (posterior 0..1, causal-evidence tier 0..3) and a
-- rule never names both a cause and a different family than that cause's own.
select r.routing_rule_id, r.min_posterior, r.min_causal_evidence_tier, r.cause_family, c.cause_family as cause_own_family
from {{ ref('registry_routing_rules') }} as r
left join {{ ref('registry_root_causes') }} as c
    on c.cause_id = r.cause_id
where r.min_posterior not between 0 and 1
    or r.min_causal_evidence_tier not between 0 and 3
    or (r.cause_id is not null and r.cause_family is not null and r.cause_family <> c.cause_family)
