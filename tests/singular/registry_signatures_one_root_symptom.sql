-- Guards: every root cause has exactly one root symptom (the stream where the cascade
-- starts), and that symptom sits at lag 0..0. Returns the offending causes.
with roots as (
    select
        c.cause_id,
        count(s.cause_id) as root_symptoms,
        sum(case when s.lag_min_days <> 0 or s.lag_max_days <> 0 then 1 else 0 end) as lagged_roots
    from {{ ref('registry_root_causes') }} as c
    left join {{ ref('registry_root_cause_signatures') }} as s
        on s.cause_id = c.cause_id
        and s.is_root_symptom
    group by c.cause_id
)

select *
from roots
where root_symptoms <> 1 or lagged_roots > 0
