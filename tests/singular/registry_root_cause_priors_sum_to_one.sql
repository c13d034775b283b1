-- Guards: root-cause priors form a probability distribution (sum to 1 within 1e-6, each in
-- (0, 1)), which the posterior computation and prior recalibration assume.
-- Returns the offending total when the sum is off; one row per out-of-range prior.
select 'sum' as check_name, cast(null as varchar) as cause_id, sum(prior) as value
from {{ ref('registry_root_causes') }}
having sum(prior) is null or abs(sum(prior) - 1.0) >= 1e-6

union all

select 'range' as check_name, cause_id, prior as value
from {{ ref('registry_root_causes') }}
where prior is null or prior <= 0 or prior >= 1
